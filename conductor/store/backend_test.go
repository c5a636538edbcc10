package store

import (
	"context"
	"fmt"
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
func sharedEtcd(t testing.TB) *clientv3.Client {
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

// BenchmarkNodeCreate is one node create (what a POST /v1/nodes costs the
// store), serially and from 8 goroutines, on each backend.
func BenchmarkNodeCreate(b *testing.B) {
	storeBench(b, nil, func(s Store, w, i int) error {
		n := &Node{UUID: fmt.Sprintf("44444444-%04d-4444-4444-%012d", w, i), Extra: Object{}}
		return s.Update(context.Background(), func(tx Tx) error { return tx.PutNode(n) })
	})
}

// BenchmarkNodeUpdate is one read-modify-write of a node (what a PATCH
// or a state change costs the store), serially and from 8 goroutines on
// distinct nodes, on each backend. etcd runs in this process (its disk
// writes and raft included, no network hop but loopback gRPC).
func BenchmarkNodeUpdate(b *testing.B) {
	id := func(w int) string { return fmt.Sprintf("77777777-7777-7777-7777-%012d", w) }
	storeBench(b, func(s Store, par int) error {
		for w := range par {
			n := &Node{UUID: id(w), Extra: Object{}}
			if err := s.Update(context.Background(), func(tx Tx) error { return tx.PutNode(n) }); err != nil {
				return err
			}
		}
		return nil
	}, func(s Store, w, i int) error {
		return s.Update(context.Background(), func(tx Tx) error {
			n, err := tx.Node(id(w))
			if err != nil {
				return err
			}
			n.Extra["i"] = i
			return tx.PutNode(n)
		})
	})
}

// storeBench runs op b.N times on each backend, serially and from 8
// goroutines (w is the goroutine, i the call), after prepare (when set)
// on the fresh store.
func storeBench(b *testing.B, prepare func(s Store, par int) error, op func(s Store, w, i int) error) {
	for _, backend := range []string{"bolt", "etcd"} {
		for _, par := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/parallel=%d", backend, par), func(b *testing.B) {
				s := benchStore(b, backend)
				defer s.Close()
				if prepare != nil {
					if err := prepare(s, par); err != nil {
						b.Fatal(err)
					}
				}
				b.ResetTimer()
				var wg sync.WaitGroup
				per := b.N/par + 1
				for w := range par {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range per {
							if err := op(s, w, i); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
			})
		}
	}
}

// benchStore opens an empty store of the backend for a benchmark.
func benchStore(b *testing.B, backend string) Store {
	if backend == "bolt" {
		bs, err := OpenBolt(filepath.Join(b.TempDir(), "db"))
		if err != nil {
			b.Fatal(err)
		}
		return bs
	}
	cli := sharedEtcd(b)
	prefix := "/bench/" + b.Name()
	cli.Delete(context.Background(), prefix+"/", clientv3.WithPrefix())
	es, err := NewEtcd(context.Background(), cli, prefix, nil)
	if err != nil {
		b.Fatal(err)
	}
	return es
}
