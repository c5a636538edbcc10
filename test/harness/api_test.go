package harness

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Call sends JSON, bytes or nothing with the right Content-Type and the
// API's headers, and Do returns the answer's object.
func TestAPICall(t *testing.T) {
	type seen struct{ method, ctype, version, body string }
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method + " " + r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("X-OpenStack-Ironic-API-Version"), string(b)}
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	api := API{Base: srv.URL, Header: map[string]string{"X-OpenStack-Ironic-API-Version": "1.78"}}
	for _, tc := range []struct {
		body any
		want seen
	}{
		{nil, seen{"GET /v1/x", "", "1.78", ""}},
		{map[string]any{"a": 1}, seen{"GET /v1/x", "application/json", "1.78", `{"a":1}`}},
		{[]byte("raw"), seen{"GET /v1/x", "application/octet-stream", "1.78", "raw"}},
	} {
		out := api.Do(t, "GET", "/v1/x", tc.body, http.StatusAccepted)
		if s := <-got; s != tc.want || out["ok"] != true {
			t.Errorf("body %v: server saw %+v, want %+v; Do returned %v", tc.body, s, tc.want, out)
		}
	}
	code, hdr, raw := api.Call(t, "DELETE", "/v1/x", nil)
	<-got
	if code != http.StatusAccepted || !strings.Contains(string(raw), "ok") || hdr == nil {
		t.Errorf("Call = %d %v %s", code, hdr, raw)
	}
}
