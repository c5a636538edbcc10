package store

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ferric-metal/ferric/conductor/store/etcdtest"
)

// opener opens a store for a test and returns a function that opens the
// same data again (a restarted conductor; for etcd, a fresh cache).
type opener func(t *testing.T) (Store, func() (Store, error))

// forEachBackend runs test against bbolt and against a real etcd server.
func forEachBackend(t *testing.T, test func(*testing.T, opener)) {
	t.Run("bolt", func(t *testing.T) {
		test(t, func(t *testing.T) (Store, func() (Store, error)) {
			path := filepath.Join(t.TempDir(), "ferric.db")
			s, err := OpenBolt(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s, func() (Store, error) { return OpenBolt(path) }
		})
	})
	t.Run("etcd", func(t *testing.T) {
		cli := sharedEtcd(t)
		test(t, func(t *testing.T) (Store, func() (Store, error)) {
			prefix := "/test/" + t.Name()
			if _, err := cli.Delete(context.Background(), prefix+"/", clientv3.WithPrefix()); err != nil {
				t.Fatal(err)
			}
			s, err := NewEtcd(context.Background(), cli, prefix, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s, func() (Store, error) { return NewEtcd(context.Background(), cli, prefix, nil) }
		})
	})
}

var (
	etcdOnce sync.Once
	etcdCli  *clientv3.Client
	etcdErr  error
)

// sharedEtcd starts one etcd server for the package's tests (each test
// uses its own key prefix); TestMain stops it.
func sharedEtcd(t *testing.T) *clientv3.Client {
	etcdOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ferric-etcd-")
		if err != nil {
			etcdErr = err
			return
		}
		srv, err := etcdtest.StartServer(dir)
		if err != nil {
			etcdErr = err
			return
		}
		stopEtcd = func() { etcdCli.Close(); srv.Close(); os.RemoveAll(dir) }
		etcdCli, etcdErr = clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint}})
	})
	if etcdErr != nil {
		t.Fatal(etcdErr)
	}
	return etcdCli
}

var stopEtcd = func() {}

func TestMain(m *testing.M) {
	code := m.Run()
	stopEtcd()
	os.Exit(code)
}
