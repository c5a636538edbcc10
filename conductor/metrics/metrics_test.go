package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/store"
)

// TestObserveLabels: routes and codes become labels as given, made-up
// methods count as "other", a missing route as "unmatched" and an
// impossible code as 0, read back over a real scrape.
func TestObserveLabels(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg := New(st)
	reg.Observe("GET", "/v1/nodes/:node", 404, time.Millisecond)
	reg.Observe("XGET", "/v1/nodes/:node", 200, time.Millisecond)
	reg.Observe("GET", "", 404, time.Millisecond)
	reg.Observe("GET", "/v1", 42, time.Millisecond)
	srv := httptest.NewServer(reg.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`ferric_api_requests_total{code="404",method="GET",route="/v1/nodes/:node"} 1`,
		`ferric_api_requests_total{code="200",method="other",route="/v1/nodes/:node"} 1`,
		`ferric_api_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`ferric_api_requests_total{code="0",method="GET",route="/v1"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
