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

// BenchmarkNodeUpdate is one read-modify-write of a node (what a PATCH
// or a state change costs the store), serially and from 8 goroutines on
// distinct nodes, on each backend. etcd runs in this process (its disk
// writes and raft included, no network hop but loopback gRPC).
func BenchmarkNodeUpdate(b *testing.B) {
	for _, backend := range []string{"bolt", "etcd"} {
		for _, par := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/parallel=%d", backend, par), func(b *testing.B) {
				var s Store
				if backend == "bolt" {
					bs, err := OpenBolt(filepath.Join(b.TempDir(), "db"))
					if err != nil {
						b.Fatal(err)
					}
					s = bs
				} else {
					cli := sharedEtcd(b)
					prefix := "/bench/" + b.Name()
					cli.Delete(context.Background(), prefix+"/", clientv3.WithPrefix())
					es, err := NewEtcd(context.Background(), cli, prefix, nil)
					if err != nil {
						b.Fatal(err)
					}
					s = es
				}
				defer s.Close()
				ctx := context.Background()
				ids := make([]string, par)
				for i := range ids {
					ids[i] = fmt.Sprintf("77777777-7777-7777-7777-%012d", i)
					n := &Node{UUID: ids[i], Extra: Object{}}
					if err := s.Update(ctx, func(tx Tx) error { return tx.PutNode(n) }); err != nil {
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
							err := s.Update(ctx, func(tx Tx) error {
								n, err := tx.Node(ids[w])
								if err != nil {
									return err
								}
								n.Extra["i"] = i
								return tx.PutNode(n)
							})
							if err != nil {
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
