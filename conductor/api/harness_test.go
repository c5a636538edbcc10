package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
)

// testEnv is a real API server on a loopback listener, backed by a bbolt
// store in a temp dir and the real task manager (fake-hardware).
type testEnv struct {
	t       *testing.T
	url     string
	st      *store.Bolt
	mgr     *manager.Manager
	srv     *Server
	version string // default X-OpenStack-Ironic-API-Version ("" = none)

	mu      sync.Mutex
	secrets []string // values that must never appear in a response body
}

type resp struct {
	code int
	h    http.Header
	raw  []byte
	j    map[string]any
}

func newTestEnv(t testing.TB, mut func(*Config)) *testEnv {
	t.Helper()
	dir := t.TempDir()
	st, err := store.OpenBolt(dir + "/ferric.db")
	if err != nil {
		t.Fatal(err)
	}
	st.Host = "test-conductor" // as the service does
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mgr := manager.New(manager.Config{Store: st, Log: log, Hostname: st.Host})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Run(ctx) }()
	cfg := Config{Store: st, Manager: mgr, Log: log}
	if mut != nil {
		mut(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		cancel()
		<-done
		st.Close()
	})
	// Wait for conductor registration.
	deadline := time.Now().Add(5 * time.Second)
	for len(st.Conductors()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	tt, _ := t.(*testing.T)
	return &testEnv{t: tt, url: hs.URL, st: st, mgr: mgr, srv: srv, version: "1.78"}
}

func (e *testEnv) addSecret(s string) {
	e.mu.Lock()
	e.secrets = append(e.secrets, s)
	e.mu.Unlock()
}

// do sends a request; body may be nil, a string (sent raw) or any value
// (JSON-encoded). hdr are name/value pairs; "X-OpenStack-Ironic-API-Version"
// overrides the default, an empty value removes it.
func (e *testEnv) do(method, path string, body any, hdr ...string) *resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, _ := json.Marshal(b)
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if e.version != "" {
		req.Header.Set(hdrLegacyVersion, e.version)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := &resp{code: res.StatusCode, h: res.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.j)
	e.mu.Lock()
	for _, s := range e.secrets {
		if bytes.Contains(raw, []byte(s)) {
			e.t.Errorf("%s %s: response leaks secret %q: %s", method, path, s, raw)
		}
	}
	e.mu.Unlock()
	return r
}

// must checks the status code.
func (e *testEnv) must(code int, r *resp, what string) *resp {
	e.t.Helper()
	if r.code != code {
		e.t.Fatalf("%s: status %d, want %d: %s", what, r.code, code, r.raw)
	}
	return r
}

// fault returns the inner error message of an Ironic error body.
func (r *resp) fault() string {
	em, _ := r.j["error_message"].(string)
	var inner map[string]any
	_ = json.Unmarshal([]byte(em), &inner)
	if s, ok := inner["faultstring"].(string); ok {
		return s
	}
	if s, ok := inner["description"].(string); ok {
		return s
	}
	return em
}

func (r *resp) str(k string) string { s, _ := r.j[k].(string); return s }

func (e *testEnv) createNode(body map[string]any) *resp {
	e.t.Helper()
	if body["driver"] == nil {
		body["driver"] = "fake-hardware"
	}
	return e.must(201, e.do("POST", "/v1/nodes", body), "create node")
}

// waitNode polls a node until cond holds.
func (e *testEnv) waitNode(ident string, what string, cond func(map[string]any) bool) map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := e.do("GET", "/v1/nodes/"+ident, nil)
		if r.code == 200 && cond(r.j) {
			return r.j
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("node %s: timeout waiting for %s: %s", ident, what, r.raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *testEnv) waitProvision(ident, state string) map[string]any {
	e.t.Helper()
	return e.waitNode(ident, state, func(n map[string]any) bool {
		return n["provision_state"] == state && n["target_provision_state"] == nil && n["reservation"] == nil
	})
}

func (e *testEnv) provision(ident, target string, wait string) {
	e.t.Helper()
	e.must(202, e.do("PUT", "/v1/nodes/"+ident+"/states/provision", map[string]any{"target": target}), "provision "+target)
	if wait != "" {
		e.waitProvision(ident, wait)
	}
}

// toAvailable takes an enroll node to available with a known power state.
func (e *testEnv) toAvailable(ident string) {
	e.t.Helper()
	e.provision(ident, "manage", "manageable")
	e.provision(ident, "provide", "available")
	e.must(202, e.do("PUT", "/v1/nodes/"+ident+"/states/power", map[string]any{"target": "power off"}), "power off")
	e.waitNode(ident, "power off", func(n map[string]any) bool { return n["power_state"] == "power off" })
}

func sleep() { time.Sleep(20 * time.Millisecond) }

// setTransit puts a node in a transient state directly in the store.
func (e *testEnv) setTransit(uuid, state, target string) {
	e.t.Helper()
	err := e.st.Update(context.Background(), func(tx store.Tx) error {
		n, err := tx.Node(uuid)
		if err != nil {
			return err
		}
		n.ProvisionState = state
		n.TargetProvisionState = &target
		return tx.PutNode(n)
	})
	if err != nil {
		e.t.Fatal(err)
	}
}
