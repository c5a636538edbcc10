package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/store"
)

func TestMetrics(t *testing.T) {
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
	reg := New(st, Func("ferric_tasks_running", "tasks", func() float64 { return 3 }))
	e := echo.New()
	e.Use(reg.Middleware)
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
