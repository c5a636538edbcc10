package agent

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/ferric-metal/ferric/ipa/protocol"
)

// command is one entry of the command log.
type command struct {
	mu       sync.Mutex
	res      protocol.CommandResult
	progress *protocol.Progress
	done     chan struct{}
}

func (c *command) snapshot() protocol.CommandResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.res
	if r.CommandStatus == protocol.StatusRunning && c.progress != nil {
		b, _ := json.Marshal(protocol.ProgressResult{Progress: *c.progress})
		r.CommandResult = b
	}
	return r
}

func (c *command) setProgress(p protocol.Progress) {
	c.mu.Lock()
	c.progress = &p
	c.mu.Unlock()
}

type commandLog struct {
	mu   sync.Mutex
	list []*command
	byID map[string]*command
}

func newCommandLog() *commandLog { return &commandLog{byID: map[string]*command{}} }

func (l *commandLog) reset() {
	l.mu.Lock()
	l.list, l.byID = nil, map[string]*command{}
	l.mu.Unlock()
}

// start appends a RUNNING command unless the last one still runs.
func (l *commandLog) start(name string) (*command, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.list); n > 0 {
		last := l.list[n-1].snapshot()
		if last.CommandStatus == protocol.StatusRunning {
			return nil, last.CommandName
		}
	}
	c := &command{res: protocol.CommandResult{ID: newUUID(), CommandName: name, CommandStatus: protocol.StatusRunning}, done: make(chan struct{})}
	l.list = append(l.list, c)
	l.byID[c.res.ID] = c
	return c, ""
}

func (l *commandLog) all() []protocol.CommandResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]protocol.CommandResult, 0, len(l.list))
	for _, c := range l.list {
		out = append(out, c.snapshot())
	}
	return out
}

func (l *commandLog) get(id string) *command {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byID[id]
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"faultcode":"Server","faultstring":"encoding error","debuginfo":null}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

func fault(w http.ResponseWriter, status int, msg string) {
	code := "Client"
	if status >= 500 {
		code = "Server"
	}
	writeJSON(w, status, protocol.Fault{Faultcode: code, Faultstring: msg})
}

// Handler returns the command API. ctx bounds the commands it starts.
func (a *Agent) Handler(ctx context.Context) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimSuffix(r.URL.Path, "/")
		if p != "" && p != "/v1" && !strings.HasPrefix(p, "/v1/") {
			p = "/v1" + p // routes also work without the /v1 prefix
		}
		host := a.CallbackURL()
		link := func(path string) []map[string]string {
			return []map[string]string{{"href": host + path, "rel": "self"}}
		}
		switch {
		case p == "" && r.Method == http.MethodGet:
			v1 := map[string]any{"id": "v1", "links": link("/v1/")}
			writeJSON(w, 200, map[string]any{"name": "ferric agent", "description": "ferric in-ramdisk agent (IPA-compatible command API)",
				"versions": []any{v1}, "default_version": v1})
		case p == "/v1" && r.Method == http.MethodGet:
			writeJSON(w, 200, map[string]any{"id": "v1", "links": link("/v1/"), "commands": link("/v1/commands/"), "status": link("/v1/status/"),
				"media_types": []any{map[string]string{"base": "application/json", "type": "application/vnd.openstack.ironic-python-agent.v1+json"}}})
		case p == "/v1/status" && r.Method == http.MethodGet:
			writeJSON(w, 200, protocol.StatusResponse{StartedAt: float64(a.started.UnixNano()) / 1e9, Version: Version})
		case p == "/v1/commands" && r.Method == http.MethodGet:
			if !a.tokenOK(r, false) {
				fault(w, 401, "Token invalid.")
				return
			}
			writeJSON(w, 200, protocol.CommandList{Commands: a.cmds.all()})
		case strings.HasPrefix(p, "/v1/commands/") && r.Method == http.MethodGet:
			if !a.tokenOK(r, false) {
				fault(w, 401, "Token invalid.")
				return
			}
			c := a.cmds.get(strings.TrimPrefix(p, "/v1/commands/"))
			if c == nil {
				fault(w, 404, "Command not found.")
				return
			}
			if r.URL.Query().Get("wait") == "true" {
				select {
				case <-c.done:
				case <-r.Context().Done():
					return
				}
			}
			writeJSON(w, 200, c.snapshot())
		case p == "/v1/commands" && r.Method == http.MethodPost:
			if !a.tokenOK(r, true) {
				fault(w, 401, "Token invalid.")
				return
			}
			a.post(ctx, w, r)
		default:
			fault(w, 404, "The resource could not be found.")
		}
	})
}

// tokenOK checks agent_token. POST requires it; GET accepts its absence
// (Ironic 21.x reads /v1/commands/ without a token) but not a wrong one.
func (a *Agent) tokenOK(r *http.Request, required bool) bool {
	given, present := r.URL.Query()["agent_token"]
	a.mu.Lock()
	tok := a.token
	a.mu.Unlock()
	if !present {
		return !required
	}
	return tok != "" && len(given) == 1 && subtle.ConstantTimeCompare([]byte(given[0]), []byte(tok)) == 1
}

// cmdError is an error with IPA's serialized error fields.
type cmdError struct {
	typ     string
	code    int
	message string
	err     error
	status  protocol.CommandStatus // FAILED unless set
}

func (e *cmdError) Error() string { return e.message + ": " + e.err.Error() }
func (e *cmdError) Unwrap() error { return e.err }

func (a *Agent) post(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		fault(w, 400, "Invalid request body")
		return
	}
	var req protocol.CommandRequest
	if err := json.Unmarshal(body, &req); err != nil || req.Name == "" {
		fault(w, 400, "Invalid command body: want {\"name\": \"<extension>.<command>\", \"params\": {...}}")
		return
	}
	if len(req.Params) == 0 || string(req.Params) == "null" {
		req.Params = json.RawMessage("{}")
	}
	if req.Params[0] != '{' {
		fault(w, 400, "Invalid command: params must be an object")
		return
	}
	ext, name, ok := req.SplitName()
	if !ok {
		fault(w, 400, "Invalid command name: "+req.Name)
		return
	}
	table := a.commands()
	h, found := table[req.Name]
	if !found {
		for k := range table {
			if strings.HasPrefix(k, ext+".") {
				fault(w, 400, "Unknown command: "+req.Name)
				return
			}
		}
		fault(w, 404, "Extension "+ext+" not found.")
		return
	}
	if h.validate != nil {
		if err := h.validate(req.Params); err != nil {
			fault(w, 400, "Invalid params for "+req.Name+": "+err.Error())
			return
		}
	}
	c, busy := a.cmds.start(name)
	if c == nil {
		fault(w, 409, "Agent is busy: executing command "+busy)
		return
	}
	a.mu.Lock()
	gen := a.generation
	a.mu.Unlock()
	a.log.Info("command started", "command", req.Name, "id", c.res.ID, "async", h.async)
	run := func() {
		res, err := h.fn(ctx, req.Params, c)
		c.mu.Lock()
		switch {
		case err == nil:
			c.res.CommandStatus = protocol.StatusSucceeded
			if s, ok := res.(string); ok {
				if h.async {
					s = name + ": " + s
				}
				res = protocol.StringResult{Result: s}
			}
			if res != nil {
				b, merr := json.Marshal(res)
				if merr != nil {
					c.res.CommandStatus = protocol.StatusFailed
					c.res.CommandError = &protocol.CommandError{Type: "SerializationError", Code: 500, Message: "result encoding failed", Details: merr.Error()}
				} else {
					c.res.CommandResult = b
				}
			}
		default:
			ce := &cmdError{}
			if !errors.As(err, &ce) {
				ce = &cmdError{typ: "CommandExecutionError", code: 500, message: "Command execution failed", err: err}
			}
			c.res.CommandStatus = protocol.StatusFailed
			if ce.status != "" {
				c.res.CommandStatus = ce.status
			}
			c.res.CommandError = &protocol.CommandError{Type: ce.typ, Code: ce.code, Message: ce.message, Details: ce.err.Error()}
		}
		st := c.res.CommandStatus
		c.mu.Unlock()
		close(c.done)
		lvl := a.log.Info
		if st != protocol.StatusSucceeded {
			lvl = a.log.Warn
		}
		lvl("command finished", "command", req.Name, "id", c.res.ID, "status", st, "error", errString(err))
		if h.async {
			a.mu.Lock()
			same := a.generation == gen
			a.mu.Unlock()
			if same {
				a.kick()
			}
		}
		if h.after != nil {
			h.after(ctx, gen)
		}
	}
	if !h.async {
		run()
	} else {
		go run()
		if r.URL.Query().Get("wait") == "true" {
			select {
			case <-c.done:
			case <-r.Context().Done():
				return
			}
		}
	}
	writeJSON(w, 200, c.snapshot())
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
