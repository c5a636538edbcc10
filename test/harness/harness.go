// Package harness starts ferric conductors for the test suites under test/:
// in-process (service.Run on a loopback port, on a bbolt or an etcd store,
// one or several at once), or as the ferric-conductor binary where a test
// must kill it (SIGKILL) and start it again on the same state.
//
// Every suite (conformance, e2e, multiconductor, metal3) starts its
// conductors here, so starting, waiting until the API serves and stopping
// are written once; the free ports a test must name before a process
// listens (PickPort, FreePort, FreeAddr) are picked here too.
package harness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/conductor/store/etcdtest"
)

// StartTimeout bounds the wait for a conductor's API to serve.
const StartTimeout = 30 * time.Second

// Conductor is a conductor running in this process.
type Conductor struct {
	// URL is the API's base URL, e.g. http://127.0.0.1:41234.
	URL string

	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
	err      error
}

// Launch runs service.Run with cfg in a goroutine (cfg.Ready is replaced)
// and returns once the API serves. cfg must name its StateDir; an empty
// APIListen means 127.0.0.1:0. The caller stops the conductor with Stop.
// Launch is for TestMain; tests use Start.
func Launch(cfg service.Config) (*Conductor, error) {
	if cfg.APIListen == "" {
		cfg.APIListen = "127.0.0.1:0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	cfg.Ready = func(addr string) { ready <- addr }
	c := &Conductor{cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- service.Run(ctx, cfg) }()
	select {
	case addr := <-ready:
		c.URL = "http://" + addr
		return c, nil
	case err := <-c.done:
		cancel()
		if err == nil {
			err = errors.New("service.Run returned before serving")
		}
		return nil, fmt.Errorf("conductor %s did not start: %w", cfg.Hostname, err)
	case <-time.After(StartTimeout):
		cancel()
		return nil, fmt.Errorf("conductor %s did not start in %s", cfg.Hostname, StartTimeout)
	}
}

// Start is Launch for a test: an empty cfg.StateDir gets a directory of
// the test's own, a conductor that does not start fails the test, and the
// conductor is stopped when the test ends (an error it returns then fails
// the test).
func Start(t testing.TB, cfg service.Config) *Conductor {
	t.Helper()
	if cfg.StateDir == "" {
		cfg.StateDir = t.TempDir()
	}
	c, err := Launch(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("conductor %s: %v", cfg.Hostname, err)
		}
	})
	return c
}

// Stop stops the conductor, waits until service.Run has returned and
// returns its error. Calling it again returns the same error.
func (c *Conductor) Stop() error {
	c.stopOnce.Do(func() {
		c.cancel()
		c.err = <-c.done
	})
	return c.err
}

// Logger is a text logger on stderr at level warn, or debug when
// FERRIC_TEST_LOG is set; args are added to every record (e.g. the
// conductor's name when a test runs several).
func Logger(args ...any) *slog.Logger {
	lvl := slog.LevelWarn
	if os.Getenv("FERRIC_TEST_LOG") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})).With(args...)
}

// StoreFromEnv chooses a suite's store from FERRIC_TEST_STORE: "etcd"
// starts a real etcd server under dir and returns its endpoints and a
// function that stops it; anything else means bbolt in the state
// directory (no endpoints, stop does nothing).
func StoreFromEnv(dir string) (endpoints []string, stop func(), err error) {
	if os.Getenv("FERRIC_TEST_STORE") != "etcd" {
		return nil, func() {}, nil
	}
	srv, err := etcdtest.StartServer(filepath.Join(dir, "etcd"))
	if err != nil {
		return nil, nil, fmt.Errorf("etcd: %w", err)
	}
	return []string{srv.Endpoint}, srv.Close, nil
}
