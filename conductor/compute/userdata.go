package compute

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/ferric-metal/ferric/conductor/store"
)

// userDataTable is the store's record table that keeps each server's user
// data (as Nova keeps it with the instance) for as long as the server
// lives: its detailed view shows it (OS-EXT-SRV-ATTR:user_data, 2.3) and a
// rebuild that does not change it puts it in the new config drive again.
// It is not kept in the allocation's extra, which the node API serves; no
// API but the servers' views serves this table and nothing logs it.
const userDataTable = "compute-userdata"

// putUserData stores the server id's user data in tx; empty data removes
// it.
func putUserData(tx store.Tx, id string, data []byte) error {
	if len(data) == 0 {
		return dropUserData(tx, id)
	}
	b, err := json.Marshal(data) // a JSON string: the base64 of data
	if err != nil {
		return fmt.Errorf("compute: server %s: user data: %w", id, err)
	}
	rec, err := tx.Record(userDataTable, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		rec = &store.Record{Key: id}
	case err != nil:
		return fmt.Errorf("compute: server %s: reading the user data: %w", id, err)
	}
	rec.Data = b
	if err := tx.PutRecord(userDataTable, rec); err != nil {
		return fmt.Errorf("compute: server %s: storing the user data: %w", id, err)
	}
	return nil
}

// dropUserData removes the server id's user data (in tx), if any.
func dropUserData(tx store.Tx, id string) error {
	err := tx.DeleteRecord(userDataTable, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("compute: server %s: removing the user data: %w", id, err)
	}
	return nil
}

// userData reads the server id's user data (nil when it has none).
func (h *Handler) userData(id string) ([]byte, error) {
	var data []byte
	err := h.st.Update(h.ctx, func(tx store.Tx) error {
		r, err := tx.Record(userDataTable, id)
		if err != nil {
			return err
		}
		return json.Unmarshal(r.Data, &data)
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("compute: server %s: reading the user data: %w", id, err)
	}
	return data, nil
}

// allUserData reads every server's user data, by server id.
func (h *Handler) allUserData() map[string][]byte {
	out := map[string][]byte{}
	recs, err := h.st.Records(userDataTable)
	if err != nil {
		h.log.Warn("compute: listing user data", "err", err)
		return out
	}
	for _, r := range recs {
		var data []byte
		if err := json.Unmarshal(r.Data, &data); err != nil {
			h.log.Warn("compute: reading user data", "server", r.Key, "err", err)
			continue
		}
		out[r.Key] = data
	}
	return out
}

// userDataView is the server's user data as its view shows it: base64,
// or null without any (read from the store unless read already).
func (h *Handler) userDataView(s *server) any {
	if !s.userDataRead {
		s.userData, _ = h.userData(s.a.UUID)
		s.userDataRead = true
	}
	if len(s.userData) == 0 {
		return nil
	}
	return base64.StdEncoding.EncodeToString(s.userData)
}

// parseUserData checks a user_data member as Nova's schema: base64 of at
// most 65535 characters, or null (nil data).
func parseUserData(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	s, ok := v.(string)
	b, err := base64.StdEncoding.DecodeString(s)
	if !ok || err != nil || len(s) > 65535 {
		return nil, faultf(http.StatusBadRequest, "Invalid input for field/attribute user_data. Value: %.40v. must be base64 encoded and at most 65535 characters", v)
	}
	return b, nil
}
