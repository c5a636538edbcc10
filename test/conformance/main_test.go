// Package conformance drives an in-process ferric conductor (service.Run
// on 127.0.0.1:0, fresh state dir) with real Ironic clients: gophercloud,
// the openstack CLI, and the recorded exchanges of a real Ironic 21.4.
package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/conductor/store/etcdtest"
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
	lvl := slog.LevelWarn
	if os.Getenv("FERRIC_TEST_LOG") != "" {
		lvl = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	ready := make(chan string, 1)
	cfg := service.Config{APIListen: "127.0.0.1:0", StateDir: dir, Hostname: "conformance",
		Log: log, Ready: func(addr string) { ready <- addr }}
	// FERRIC_TEST_STORE=etcd runs the suite against a conductor whose
	// store is a real etcd server (make test runs it both ways).
	if os.Getenv("FERRIC_TEST_STORE") == "etcd" {
		srv, err := etcdtest.StartServer(filepath.Join(dir, "etcd"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "etcd:", err)
			return 1
		}
		defer srv.Close()
		cfg.EtcdEndpoints = []string{srv.Endpoint}
		fmt.Fprintln(os.Stderr, "conformance: store on etcd", srv.Endpoint)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service.Run(ctx, cfg) }()
	select {
	case addr := <-ready:
		baseURL = "http://" + addr
	case err := <-done:
		fmt.Fprintln(os.Stderr, "conductor failed to start:", err)
		cancel()
		return 1
	case <-time.After(30 * time.Second):
		fmt.Fprintln(os.Stderr, "conductor did not start")
		cancel()
		return 1
	}
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
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
