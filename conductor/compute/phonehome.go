package compute

// The phone-home: a per-server, token-protected URL on the API port that
// the deployed OS's own agent talks to. Its config drive carries the URL
// and the token in vendor_data2.json:
//
//	{"ferric": {"phone_home": {"url": "http://CONDUCTOR:6385/compute/phone-home/SERVER_ID",
//	                           "token": "TOKEN", "poll_interval": 3}}}
//
// With "Authorization: Bearer TOKEN":
//
//	POST url {"status": "DEPLOYING"|"DEPLOYED"|"FAILED"|"UNPROCESSABLE", "detail": "..."}
//	     url {"actions": [{"id": "ID", "result": "done"|"failed", "detail": "..."}]}
//	GET  url
//
// A status becomes the server's metadata ferric_automation_status (and
// ferric_automation_detail, removed when a status comes without detail),
// stored at once. Both answer the pending actions:
//
//	{"id": SERVER_ID, "automation_status": "DEPLOYED", "poll_interval": 3,
//	 "actions": [{"id": "ID", "action": "changePassword", "adminPass": "..."}]}
//
// changePassword (the servers API's action) waits for the agent: the
// server is PASSWORD (task updating_password) until the agent posts the
// action's result, or until passwordTimeout; the new password is kept in
// memory only, so a conductor restart drops a change in flight (the
// server goes back to ACTIVE, the caller may ask again). The token is
// stored as its SHA-256 only; each build (create, rebuild) gets a new one
// and starts without an automation status.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/store"
)

// The server metadata keys the phone-home writes.
const (
	AutomationStatusKey = "ferric_automation_status"
	AutomationDetailKey = "ferric_automation_detail"
)

// PhoneHomePath is where the phone-home URLs live (then the server id).
const PhoneHomePath = "/compute/phone-home/"

// AutomationStatuses are the statuses the deployed OS may report.
var AutomationStatuses = []string{"DEPLOYING", "DEPLOYED", "FAILED", "UNPROCESSABLE"}

const (
	// phoneExtraKey keeps a server's phone-home state in its allocation's
	// extra (no secret: the token's SHA-256 only).
	phoneExtraKey = "compute_phone_home"
	// maxPhoneBody bounds what the agent may post.
	maxPhoneBody = 4096
	// pollInterval is the period the agent is told to poll at, seconds.
	pollInterval = 3
	// passwordTimeout bounds the wait for the agent to confirm a password
	// change.
	passwordTimeout = 10 * time.Minute
)

// phoneState is a server's phone-home state in its allocation's extra.
type phoneState struct {
	TokenSHA256 string     `json:"token_sha256"`
	ReportedAt  *time.Time `json:"reported_at,omitempty"`
	// PendingID is the changePassword action waiting for the agent.
	PendingID string     `json:"pending_id,omitempty"`
	PendingAt *time.Time `json:"pending_at,omitempty"`
}

func phoneStateOf(a *store.Allocation) phoneState {
	var ps phoneState
	if b, err := json.Marshal(a.Extra[phoneExtraKey]); err == nil {
		_ = json.Unmarshal(b, &ps)
	}
	return ps
}

func (ps phoneState) object() map[string]any {
	b, _ := json.Marshal(ps)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// phoneHome holds the password changes waiting for their agents.
type phoneHome struct {
	mu      sync.Mutex
	pending map[string]pendingPassword // server id →
	timeout time.Duration
}

type pendingPassword struct{ id, pass string }

func newPhoneHome() *phoneHome {
	return &phoneHome{pending: map[string]pendingPassword{}, timeout: passwordTimeout}
}

// updatePhone changes a server's record and phone-home state in one
// transaction; fn sees both.
func (h *Handler) updatePhone(ctx context.Context, id string, fn func(*record, *phoneState) error) error {
	return h.st.Update(ctx, func(tx store.Tx) error {
		a, err := tx.Allocation(id)
		if err != nil {
			return faultf(http.StatusNotFound, "Instance %s could not be found.", id)
		}
		rec, ok := recordOf(a)
		if !ok {
			return faultf(http.StatusNotFound, "Instance %s could not be found.", id)
		}
		ps := phoneStateOf(a)
		if err := fn(&rec, &ps); err != nil {
			return err
		}
		rec.Updated = time.Now().UTC()
		if a.Extra == nil {
			a.Extra = store.Object{}
		}
		a.Extra[extraKey] = rec.object()
		a.Extra[phoneExtraKey] = ps.object()
		return tx.PutAllocation(a)
	})
}

// phoneHomeVendorData issues a new phone-home token for the server (the
// previous one stops working, its automation status is cleared) and
// returns the vendor data that tells the deployed OS where to report;
// nil when the conductor's public URL is unknown.
func (h *Handler) phoneHomeVendorData(ctx context.Context, id string) (map[string]any, error) {
	if h.cfg.PublicURL == "" {
		return nil, nil
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(token))
	err := h.updatePhone(ctx, id, func(rec *record, ps *phoneState) error {
		*ps = phoneState{TokenSHA256: hex.EncodeToString(sum[:])}
		delete(rec.Metadata, AutomationStatusKey)
		delete(rec.Metadata, AutomationDetailKey)
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.phone.mu.Lock()
	delete(h.phone.pending, id)
	h.phone.mu.Unlock()
	url := strings.TrimSuffix(h.cfg.PublicURL, "/") + PhoneHomePath + id
	return map[string]any{"ferric": map[string]any{"phone_home": map[string]any{
		"url": url, "token": token, "poll_interval": pollInterval}}}, nil
}

// PhoneHome is the handler of the phone-home URLs. It does its own
// authentication (the server's token): mount it without the API's.
func (h *Handler) PhoneHome() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PhoneHomePath+"{id}", h.phoneGet)
	mux.HandleFunc("POST "+PhoneHomePath+"{id}", h.phonePost)
	return mux
}

// PhoneHomeRoutes lists the phone-home's routes (":param" form).
func (h *Handler) PhoneHomeRoutes() []ironichttp.Route {
	return []ironichttp.Route{{Method: http.MethodGet, Path: PhoneHomePath + ":id"},
		{Method: http.MethodPost, Path: PhoneHomePath + ":id"}}
}

// phoneAuth checks the request's bearer token against the server's and
// returns the server. A request without credentials gets 401; other
// credentials (the API's too), a wrong token or an unknown server 403
// (alike, so that ids cannot be probed).
func (h *Handler) phoneAuth(w http.ResponseWriter, r *http.Request) (*server, phoneState, bool) {
	authz := r.Header.Get("Authorization")
	if strings.TrimSpace(authz) == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ferric phone-home"`)
		writeFault(w, http.StatusUnauthorized, "The request needs the server's phone-home token (Authorization: Bearer TOKEN, from the config drive's vendor_data2.json).")
		return nil, phoneState{}, false
	}
	id := r.PathValue("id")
	var ps phoneState
	s, err := h.server(id)
	if err == nil {
		ps = phoneStateOf(s.a)
	}
	token, bearer := strings.CutPrefix(authz, "Bearer ")
	want, _ := hex.DecodeString(ps.TokenSHA256)
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	if err != nil || !bearer || len(want) != len(got) || subtle.ConstantTimeCompare(want, got[:]) != 1 {
		writeFault(w, http.StatusForbidden, "The phone-home token is not valid for server %s.", id)
		return nil, phoneState{}, false
	}
	return s, ps, true
}

func (h *Handler) phoneGet(w http.ResponseWriter, r *http.Request) {
	s, _, ok := h.phoneAuth(w, r)
	if !ok {
		return
	}
	h.writePhone(w, s.a.UUID)
}

// writePhone answers the agent: the server's automation status and the
// actions waiting for it.
func (h *Handler) writePhone(w http.ResponseWriter, id string) {
	s, err := h.server(id)
	if err != nil {
		h.writeErr(w, err)
		return
	}
	actions := []map[string]any{}
	ps := phoneStateOf(s.a)
	h.phone.mu.Lock()
	p, ok := h.phone.pending[id]
	h.phone.mu.Unlock()
	if ok && p.id == ps.PendingID {
		actions = append(actions, map[string]any{"id": p.id, "action": "changePassword", "adminPass": p.pass})
	}
	var status any
	if v, ok := s.rec.Metadata[AutomationStatusKey]; ok {
		status = v
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "automation_status": status, "poll_interval": pollInterval, "actions": actions})
}

// phoneReport is what the agent posts.
type phoneReport struct {
	Status  *string        `json:"status"`
	Detail  *string        `json:"detail"`
	Actions []actionResult `json:"actions"`
}

type actionResult struct {
	ID     string `json:"id"`
	Result string `json:"result"`
	Detail string `json:"detail"`
}

func (h *Handler) phonePost(w http.ResponseWriter, r *http.Request) {
	s, _, ok := h.phoneAuth(w, r)
	if !ok {
		return
	}
	rep, err := readReport(w, r)
	if err != nil {
		h.writeErr(w, err)
		return
	}
	id := s.a.UUID
	now := time.Now().UTC()
	var done []actionResult
	err = h.updatePhone(r.Context(), id, func(rec *record, ps *phoneState) error {
		done = nil
		for _, a := range rep.Actions {
			if a.ID == "" || a.ID != ps.PendingID {
				return faultf(http.StatusConflict, "No action %s is waiting for server %s.", a.ID, id)
			}
			ps.PendingID, ps.PendingAt = "", nil
			if rec.Task == taskPassword {
				rec.Task = ""
			}
			done = append(done, a)
		}
		if rep.Status != nil {
			rec.Metadata[AutomationStatusKey] = *rep.Status
			if rep.Detail != nil && *rep.Detail != "" {
				rec.Metadata[AutomationDetailKey] = *rep.Detail
			} else {
				delete(rec.Metadata, AutomationDetailKey)
			}
		}
		ps.ReportedAt = &now
		return nil
	})
	if err != nil {
		h.writeErr(w, err)
		return
	}
	for _, a := range done {
		h.phone.mu.Lock()
		if h.phone.pending[id].id == a.ID {
			delete(h.phone.pending, id)
		}
		h.phone.mu.Unlock()
		if a.Result == "done" {
			h.log.Info("compute: the server's agent changed its password", "server", id)
		} else {
			h.log.Warn("compute: the server's agent could not change its password", "server", id, "detail", a.Detail)
		}
	}
	if rep.Status != nil {
		h.log.Info("compute: automation status", "server", id, "status", *rep.Status)
	}
	h.writePhone(w, id)
}

// readReport decodes and checks the agent's post (at most maxPhoneBody
// bytes).
func readReport(w http.ResponseWriter, r *http.Request) (*phoneReport, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPhoneBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, faultf(http.StatusRequestEntityTooLarge, "Request body is larger than %d bytes.", maxPhoneBody)
	}
	if err != nil {
		return nil, faultf(http.StatusBadRequest, "Malformed request body")
	}
	var rep phoneReport
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		return nil, faultf(http.StatusBadRequest, "Malformed request body: %v", err)
	}
	if dec.More() {
		return nil, faultf(http.StatusBadRequest, "Malformed request body: trailing data")
	}
	if rep.Status == nil && len(rep.Actions) == 0 {
		return nil, faultf(http.StatusBadRequest, "Invalid input: the body needs a status or actions")
	}
	if rep.Status != nil && !contains(AutomationStatuses, *rep.Status) {
		return nil, faultf(http.StatusBadRequest, "Invalid input for field/attribute status. Value: %s. '%s' is not one of %s",
			*rep.Status, *rep.Status, strings.Join(AutomationStatuses, ", "))
	}
	if rep.Detail != nil && (rep.Status == nil || len(*rep.Detail) > MaxMetaLength) {
		return nil, faultf(http.StatusBadRequest, "Invalid input for field/attribute detail. It must come with a status and be at most %d characters", MaxMetaLength)
	}
	for _, a := range rep.Actions {
		if a.Result != "done" && a.Result != "failed" {
			return nil, faultf(http.StatusBadRequest, "Invalid input for field/attribute result. Value: %s. It must be 'done' or 'failed'", a.Result)
		}
		if len(a.Detail) > MaxMetaLength {
			return nil, faultf(http.StatusBadRequest, "Invalid input for field/attribute detail. It must be at most %d characters", MaxMetaLength)
		}
	}
	return &rep, nil
}

// taskPassword is Nova's task state of a password change.
const taskPassword = "updating_password"

// changePassword hands the new password to the server's agent through
// its phone-home: the server is PASSWORD until the agent confirms.
func (h *Handler) changePassword(ctx context.Context, s *server, args map[string]any) error {
	for k := range args {
		if k != "adminPass" {
			return faultf(http.StatusBadRequest, "Invalid input for field/attribute changePassword. Value: %v. Additional properties are not allowed ('%s' was unexpected)", args, k)
		}
	}
	pass, ok := args["adminPass"].(string)
	if !ok || pass == "" || len(pass) > MaxMetaLength {
		return faultf(http.StatusBadRequest, "Invalid input for field/attribute adminPass. Value: %v. It must be a non-empty string of at most %d characters", args["adminPass"], MaxMetaLength)
	}
	id := s.a.UUID
	action := uuid.NewString()
	now := time.Now().UTC()
	err := h.updatePhone(ctx, id, func(rec *record, ps *phoneState) error {
		if ps.TokenSHA256 == "" || ps.ReportedAt == nil {
			return faultf(http.StatusConflict, "Failed to set admin password on %s because no agent has reported in from it", id)
		}
		if rec.Task != "" {
			return faultf(http.StatusConflict, "Cannot 'changePassword' instance %s while it is in task_state %s", id, rec.Task)
		}
		rec.Task, ps.PendingID, ps.PendingAt = taskPassword, action, &now
		return nil
	})
	if err != nil {
		return err
	}
	h.phone.mu.Lock()
	h.phone.pending[id] = pendingPassword{id: action, pass: pass}
	h.phone.mu.Unlock()
	wait := h.phone.timeout
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		select {
		case <-h.ctx.Done():
			return
		case <-time.After(wait):
		}
		h.dropPassword(id, action, "the server's agent did not confirm it in time")
	}()
	return nil
}

// dropPassword gives up a password change still waiting (action; any
// when empty): the server goes back to ACTIVE.
func (h *Handler) dropPassword(id, action, why string) {
	h.phone.mu.Lock()
	if p, ok := h.phone.pending[id]; ok && (action == "" || p.id == action) {
		delete(h.phone.pending, id)
	}
	h.phone.mu.Unlock()
	dropped := false
	err := h.updatePhone(h.ctx, id, func(rec *record, ps *phoneState) error {
		dropped = false
		if ps.PendingID == "" || action != "" && ps.PendingID != action {
			return nil
		}
		ps.PendingID, ps.PendingAt = "", nil
		if rec.Task == taskPassword {
			rec.Task = ""
		}
		dropped = true
		return nil
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		var f *fault
		if !errors.As(err, &f) {
			h.log.Warn("compute: dropping a password change", "server", id, "err", err)
		}
		return
	}
	if dropped {
		h.log.Warn("compute: password change dropped", "server", id, "reason", why)
	}
}

// recoverPasswords drops the password changes a previous run of the
// conductor was waiting for: their passwords were in its memory only.
func (h *Handler) recoverPasswords() {
	for _, s := range h.servers() {
		if phoneStateOf(s.a).PendingID != "" {
			h.dropPassword(s.a.UUID, "", "the conductor restarted while it waited for the server's agent")
		}
	}
}
