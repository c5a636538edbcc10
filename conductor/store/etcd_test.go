package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// twoConductors opens two stores on one etcd prefix, as two conductors do.
func twoConductors(t *testing.T) (*Etcd, *Etcd) {
	cli := sharedEtcd(t)
	prefix := "/test/" + t.Name()
	if _, err := cli.Delete(context.Background(), prefix+"/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	var out [2]*Etcd
	for i := range out {
		s, err := NewEtcd(context.Background(), cli, prefix, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out[i] = s
	}
	return out[0], out[1]
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("after 10 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// What one conductor writes, the other reads from its cache (through the
// watch), unique indexes hold across them, and their concurrent writes to
// one node never lose each other's changes.
func TestEtcdSharedBetweenConductors(t *testing.T) {
	ctx := context.Background()
	a, b := twoConductors(t)
	const id = "44444444-4444-4444-4444-444444444444"
	if err := a.Update(ctx, func(tx Tx) error {
		return tx.PutNode(&Node{UUID: id, Name: strp("shared"), Extra: Object{}})
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "conductor b sees the node by name", func() bool { n, err := b.Node("shared"); return err == nil && n.UUID == id })

	err := b.Update(ctx, func(tx Tx) error {
		return tx.PutNode(&Node{UUID: "55555555-5555-5555-5555-555555555555", Name: strp("shared")})
	})
	var de *DuplicateError
	if !errors.As(err, &de) || de.Field != "name" {
		t.Fatalf("b creating a second node named shared = %v, want DuplicateError on name", err)
	}

	updateExtraConcurrently(t, id, 20, a, b)
	for _, s := range []*Etcd{a, b} {
		eventually(t, "both conductors see the 20 updates", func() bool { n, err := s.Node(id); return err == nil && len(n.Extra) == 20 })
	}

	// A delete reaches the other cache, and a record re-created under the
	// same key after it is not hidden by the delete.
	if err := a.Update(ctx, func(tx Tx) error { return tx.PutConductor(&Conductor{Hostname: "c1"}) }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b sees conductor c1", func() bool { _, err := b.Conductor("c1"); return err == nil })
	if err := a.Update(ctx, func(tx Tx) error { return tx.DeleteConductor("c1") }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b sees c1 deleted", func() bool { _, err := b.Conductor("c1"); return errors.Is(err, ErrNotFound) })
	if err := b.Update(ctx, func(tx Tx) error { return tx.PutConductor(&Conductor{Hostname: "c1", Drivers: []string{"ipmi"}}) }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a sees c1 again", func() bool { c, err := a.Conductor("c1"); return err == nil && len(c.Drivers) == 1 })

	// Deleting the node drops its history with one range delete.
	if err := b.Update(ctx, func(tx Tx) error {
		n, err := tx.Node(id)
		if err != nil {
			return err
		}
		n.LastError = strp("boom")
		return tx.PutNode(n)
	}); err != nil {
		t.Fatal(err)
	}
	if h, err := a.NodeHistory(id); err != nil || len(h) != 1 {
		t.Fatalf("history through a = %v, %v; want the one event b wrote", h, err)
	}
	if err := a.Update(ctx, func(tx Tx) error { return tx.DeleteNode(id) }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b sees the node deleted", func() bool { return len(b.Nodes(nil)) == 0 })
	if h, err := b.NodeHistory(id); err != nil || len(h) != 0 {
		t.Fatalf("history after delete = %v, %v; want none", h, err)
	}
}

// Transactions that lose the race run again: creates made at once through
// two conductors all land, each once, with distinct ids (a retried create
// must not look like an update of the record the lost run stamped).
func TestEtcdRetriedCreates(t *testing.T) {
	ctx := context.Background()
	a, b := twoConductors(t)
	var wg sync.WaitGroup
	for i := range 30 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := &Node{UUID: fmt.Sprintf("66666666-6666-6666-6666-%012d", i), Name: strp(fmt.Sprint("node-", i))}
			if err := s.Update(ctx, func(tx Tx) error { return tx.PutNode(n) }); err != nil {
				t.Errorf("create %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	eventually(t, "both conductors list the 30 nodes with distinct ids", func() bool {
		for _, s := range []*Etcd{a, b} {
			ids := map[int64]bool{}
			for _, n := range s.Nodes(nil) {
				ids[n.ID] = true
			}
			if len(ids) != 30 {
				return false
			}
		}
		return true
	})
}

// A conductor whose watch lost changes (compacted away while it was cut
// off) reloads: records deleted meanwhile leave its cache, changed ones
// are updated.
func TestEtcdReloadDropsDeleted(t *testing.T) {
	ctx := context.Background()
	a, b := twoConductors(t)
	for _, id := range []string{"88888888-8888-8888-8888-000000000001", "88888888-8888-8888-8888-000000000002"} {
		if err := a.Update(ctx, func(tx Tx) error { return tx.PutNode(&Node{UUID: id}) }); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "b sees both nodes", func() bool { return len(b.Nodes(nil)) == 2 })
	b.cancel() // b stops following
	<-b.done
	if err := a.Update(ctx, func(tx Tx) error { return tx.DeleteNode("88888888-8888-8888-8888-000000000001") }); err != nil {
		t.Fatal(err)
	}
	if err := a.Update(ctx, func(tx Tx) error {
		n, err := tx.Node("88888888-8888-8888-8888-000000000002")
		if err != nil {
			return err
		}
		n.Name = strp("renamed")
		return tx.PutNode(n)
	}); err != nil {
		t.Fatal(err)
	}
	if len(b.Nodes(nil)) != 2 {
		t.Fatal("b's cache changed without a watch")
	}
	if _, err := b.loadAt(ctx); err != nil {
		t.Fatal(err)
	}
	nodes := b.Nodes(nil)
	if len(nodes) != 1 || deref(nodes[0].Name) != "renamed" {
		t.Fatalf("after reload b has %d nodes (%v), want the renamed one only", len(nodes), nodes)
	}
	if _, err := b.Node("renamed"); err != nil {
		t.Fatalf("name index after reload: %v", err)
	}
}

// Table ids come in blocks per conductor: unique across conductors,
// increasing with each conductor's creates (also past a block's end), and
// a restarted conductor's ids are above every id handed out before.
func TestEtcdIDBlocks(t *testing.T) {
	ctx := context.Background()
	a, b := twoConductors(t)
	create := func(s *Etcd, i int) int64 {
		t.Helper()
		n := &Node{UUID: fmt.Sprintf("55555555-5555-5555-5555-%012d", i)}
		if err := s.Update(ctx, func(tx Tx) error { return tx.PutNode(n) }); err != nil {
			t.Fatal(err)
		}
		return n.ID
	}
	seen := map[int64]bool{}
	last := map[*Etcd]int64{}
	var highest int64
	for i := range idBlockSize + 10 {
		for _, s := range []*Etcd{a, b} {
			id := create(s, 2*i+map[*Etcd]int{a: 0, b: 1}[s])
			if seen[id] || id <= last[s] {
				t.Fatalf("create %d: id %d (seen before: %v, this conductor's last: %d)", i, id, seen[id], last[s])
			}
			seen[id], last[s] = true, id
			highest = max(highest, id)
		}
	}
	c, err := NewEtcd(ctx, a.cli, a.ekv.prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if id := create(c, 1000); id <= highest {
		t.Errorf("a restarted conductor's first id %d, want above %d", id, highest)
	}
}
