// Package etcdtest runs a real etcd server (go.etcd.io/etcd/server/v3's
// embed) inside a test process, on 127.0.0.1 ports the kernel picks, with
// its data in a temporary directory. Only tests import it.
package etcdtest

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// Server is a running etcd.
type Server struct {
	Etcd     *embed.Etcd
	Endpoint string // client URL
}

// freeURL returns an http URL on a free loopback port.
func freeURL() (url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return url.URL{}, err
	}
	addr := l.Addr().String()
	l.Close()
	return url.URL{Scheme: "http", Host: addr}, nil
}

// StartServer starts an etcd server keeping its data in dir; Close stops
// it.
func StartServer(dir string) (*Server, error) {
	var lastErr error
	for range 3 { // a port taken between freeURL and the listen: retry
		cfg := embed.NewConfig()
		cfg.Name = "ferric-test"
		cfg.Dir = dir
		cu, err := freeURL()
		if err != nil {
			return nil, err
		}
		pu, err := freeURL()
		if err != nil {
			return nil, err
		}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
		cfg.LogLevel = "error"
		cfg.LogOutputs = []string{filepath.Join(dir, "etcd.log")} // closing logs harmless errors
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			lastErr = err
			continue
		}
		select {
		case <-e.Server.ReadyNotify():
		case <-time.After(30 * time.Second):
			e.Close()
			return nil, fmt.Errorf("etcdtest: server not ready after 30 s")
		}
		return &Server{Etcd: e, Endpoint: cu.String()}, nil
	}
	return nil, fmt.Errorf("etcdtest: %w", lastErr)
}

// Close stops the server.
func (s *Server) Close() { s.Etcd.Close() }

// Start starts an etcd server that stops when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := StartServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Client returns a client of the server, closed when the test ends.
func (s *Server) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.Endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(fmt.Errorf("etcdtest: %w", err))
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}
