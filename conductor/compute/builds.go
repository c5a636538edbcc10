package compute

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/store"
)

// buildTable is the store's record table that keeps, per server, what
// its first deploy needs beyond the server's record: the admin password,
// the injected files and the user data. A create writes it in the same
// transaction as the server's allocation; the deploy's start removes it
// (from then on the node's config drive holds them), so a conductor
// restart between the two loses nothing. No API serves this table and
// nothing logs it.
const buildTable = "compute-builds"

// storedBuild is a buildRequest as the store keeps it.
type storedBuild struct {
	AdminPass string       `json:"admin_pass"`
	UserData  []byte       `json:"user_data,omitempty"`
	Files     []storedFile `json:"files,omitempty"`
}

type storedFile struct {
	Path    string `json:"path"`
	Content []byte `json:"content"`
}

// putBuild stores the server id's build request in tx.
func putBuild(tx store.Tx, id string, req *buildRequest) error {
	sb := storedBuild{AdminPass: req.adminPass, UserData: req.userData}
	for _, f := range req.files {
		sb.Files = append(sb.Files, storedFile{Path: f.path, Content: f.content})
	}
	b, err := json.Marshal(sb)
	if err != nil {
		return fmt.Errorf("compute: server %s: build request: %w", id, err)
	}
	if err := tx.PutRecord(buildTable, &store.Record{Key: id, Data: b}); err != nil {
		return fmt.Errorf("compute: server %s: storing the build request: %w", id, err)
	}
	return nil
}

// loadBuild reads the server id's stored build request; ok is false when
// there is none (its deploy started, or it never had one).
func (h *Handler) loadBuild(id string) (*buildRequest, bool, error) {
	var rec *store.Record
	err := h.st.Update(h.ctx, func(tx store.Tx) error {
		r, err := tx.Record(buildTable, id)
		rec = r
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("compute: server %s: reading the build request: %w", id, err)
	}
	var sb storedBuild
	if err := json.Unmarshal(rec.Data, &sb); err != nil {
		return nil, false, fmt.Errorf("compute: server %s: build request: %w", id, err)
	}
	req := &buildRequest{adminPass: sb.AdminPass, userData: sb.UserData}
	for _, f := range sb.Files {
		req.files = append(req.files, injected{path: f.Path, content: f.Content})
	}
	return req, true, nil
}

// dropBuild removes the server id's build request (in tx), if any.
func dropBuild(tx store.Tx, id string) error {
	err := tx.DeleteRecord(buildTable, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("compute: server %s: removing the build request: %w", id, err)
	}
	return nil
}

// pendingBuilds lists the servers whose build request is stored: their
// deploy has not started yet.
func (h *Handler) pendingBuilds() map[string]bool {
	out := map[string]bool{}
	recs, err := h.st.Records(buildTable)
	if err != nil {
		h.log.Warn("compute: listing pending builds", "err", err)
		return out
	}
	for _, r := range recs {
		out[r.Key] = true
	}
	return out
}
