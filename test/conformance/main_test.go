// Package conformance drives an in-process ferric conductor (service.Run
// on 127.0.0.1:0, fresh state dir) with real Ironic clients: gophercloud,
// the openstack CLI, and the recorded exchanges of a real Ironic 21.4.
package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, baseURL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if ver != "" {
		req.Header.Set("X-OpenStack-Ironic-API-Version", ver)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return res.StatusCode, res.Header, m
}
