// Package conformance drives an in-process ferric conductor (service.Run
// on 127.0.0.1:0, fresh state dir) with real Ironic clients: gophercloud,
// the openstack CLI, and the recorded exchanges of a real Ironic 21.4.
package conformance

import (
	"fmt"
	"net/http"
	"os"
	"testing"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/harness"
)

// baseURL is the conductor's API, e.g. http://127.0.0.1:41234.
var baseURL string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ferric-conformance-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// FERRIC_TEST_STORE=etcd runs the suite against a conductor whose
	// store is a real etcd server (make test runs it both ways).
	endpoints, stopStore, err := harness.StoreFromEnv(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stopStore()
	if endpoints != nil {
		fmt.Fprintln(os.Stderr, "conformance: store on etcd", endpoints[0])
	}
	c, err := harness.Launch(service.Config{StateDir: dir, Hostname: "conformance",
		EtcdEndpoints: endpoints, Log: harness.Logger()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	baseURL = c.URL
	code := m.Run()
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "conductor:", err)
	}
	return code
}

// call sends one JSON request at microversion ver ("" = none).
func call(t testing.TB, method, path, ver string, body any) (int, http.Header, map[string]any) {
	t.Helper()
	hdr := map[string]string{}
	if ver != "" {
		hdr["X-OpenStack-Ironic-API-Version"] = ver
	}
	code, h, raw := harness.API{Base: baseURL, Header: hdr}.Call(t, method, path, body)
	return code, h, harness.Object(raw)
}
