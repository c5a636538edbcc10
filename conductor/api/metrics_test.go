package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/metrics"
	"github.com/ferric-metal/ferric/conductor/store"
)

func TestMetricsMiddleware(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	on := "power on"
	for _, u := range []string{"71111111-2222-3333-4444-555555555551", "71111111-2222-3333-4444-555555555552"} {
		n := &store.Node{UUID: u, ProvisionState: "active", PowerState: &on}
		if err := st.Update(context.Background(), func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
			t.Fatal(err)
		}
	}
	reg := metrics.New(st, metrics.Func("ferric_tasks_running", "tasks", func() float64 { return 3 }))
	e := echo.New()
	e.Use(Metrics(reg))
	e.GET("/v1/nodes/:node", func(c echo.Context) error { return c.NoContent(http.StatusNotFound) })
	e.GET("/metrics", echo.WrapHandler(reg.Handler()))
	srv := httptest.NewServer(e)
	defer srv.Close()
	http.Get(srv.URL + "/v1/nodes/x")
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`ferric_nodes{maintenance="false",power_state="power on",provision_state="active"} 2`,
		`ferric_api_requests_total{code="404",method="GET",route="/v1/nodes/:node"} 1`,
		`ferric_tasks_running 3`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestLabelsBounded: made-up methods count as "other", and unmatched or
// method-less paths use the route pattern, so the series stay few.
func TestMetricsLabelsBounded(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg := metrics.New(st)
	e := echo.New()
	e.Use(Metrics(reg))
	e.GET("/v1/nodes/:node", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	e.GET("/metrics", echo.WrapHandler(reg.Handler()))
	srv := httptest.NewServer(e)
	defer srv.Close()
	series := func() int {
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Count(string(body), "ferric_api_requests_total{")
	}
	send := func(method, path string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for _, m := range []string{"GET", "XGET"} {
		send(m, "/v1/nodes/a")
		send(m, "/nowhere/a")
	}
	series() // the scrape itself is a series
	before := series()
	for i := 0; i < 300; i++ {
		send(fmt.Sprintf("M%d", i), fmt.Sprintf("/v1/nodes/n%d", i))
		send("GET", fmt.Sprintf("/nowhere/%d", i))
		send(fmt.Sprintf("M%d", i), fmt.Sprintf("/nowhere/%d", i))
	}
	if after := series(); after != before {
		resp, _ := http.Get(srv.URL + "/metrics")
		b, _ := io.ReadAll(resp.Body)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "ferric_api_requests_total{") {
				t.Log(l)
			}
		}
		t.Errorf("request series grew from %d to %d", before, after)
	}
	for in, want := range map[string]string{"GET": "GET", "PATCH": "PATCH", "get": "other", "FOO": "other", "": "other"} {
		if got := metrics.Method(in); got != want {
			t.Errorf("Method(%q) = %q, want %q", in, got, want)
		}
	}
}
