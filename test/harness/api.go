package harness

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// API is an HTTP API a test calls with JSON: ferric's (Ironic's, the
// image and compute APIs) or another service's (Keystone's).
type API struct {
	Base   string            // what request paths are relative to
	Header map[string]string // set on every request (a microversion, a token)
	Client *http.Client      // nil: http.DefaultClient
}

// Call sends method Base+path with body: nil for none, []byte as it is
// (application/octet-stream), anything else as JSON (application/json);
// a Content-Type in Header comes first. It returns the answer's status,
// headers and body; a request without an answer fails the test.
func (a API) Call(t testing.TB, method, path string, body any) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, ctype = bytes.NewReader(b), "application/octet-stream"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, a.Base+path, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range a.Header {
		req.Header.Set(k, v)
	}
	hc := a.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, raw
}

// Do is Call wanting the status want: another fails the test, showing
// the answer. It returns the answer's JSON object (nil if it is none).
func (a API) Do(t testing.TB, method, path string, body any, want int) map[string]any {
	t.Helper()
	code, _, raw := a.Call(t, method, path, body)
	if code != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, code, raw, want)
	}
	return Object(raw)
}

// Object is raw's JSON object, nil if raw is none.
func Object(raw []byte) map[string]any {
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out
}
