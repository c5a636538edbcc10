package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestGroupCommit: concurrent updates share transactions; one that fails
// gets its own error and leaves nothing, one that panics panics in its
// caller, and every other update is committed exactly once.
func TestGroupCommit(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "g.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	g := &groupCommit{db: db}
	bad := errors.New("bad")
	const n = 400
	errs := make([]error, n)
	panicked := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { panicked[i] = recover() != nil }()
			errs[i] = g.update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucketIfNotExists([]byte("b"))
				if err != nil {
					return err
				}
				k := []byte(fmt.Sprint(i))
				if err := b.Put(k, []byte("v")); err != nil {
					return err
				}
				// Counts how many times the update committed.
				c, _ := tx.CreateBucketIfNotExists([]byte("count"))
				if v := c.Get(k); v != nil {
					return fmt.Errorf("%d committed twice", i)
				}
				_ = c.Put(k, []byte{1})
				switch {
				case i%50 == 7:
					return bad
				case i == 99:
					panic("boom")
				}
				return nil
			})
		}()
	}
	wg.Wait()
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("b"))
		for i := range n {
			failing := i%50 == 7 || i == 99
			got := b.Get([]byte(fmt.Sprint(i))) != nil
			switch {
			case i == 99 && !panicked[i]:
				return fmt.Errorf("update %d: no panic", i)
			case i%50 == 7 && !errors.Is(errs[i], bad):
				return fmt.Errorf("update %d: %v, want %v", i, errs[i], bad)
			case !failing && errs[i] != nil:
				return fmt.Errorf("update %d: %v", i, errs[i])
			case got == failing:
				return fmt.Errorf("update %d: stored %v", i, got)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Writers sharing commits (one of them failing, so that its group runs
// again without it) publish every committed change, in the log's order,
// from memory: the first writer of a shared commit to publish finds the
// others' changes there too, and decodes none from the log.
func TestSharedCommitPublishesFromMemory(t *testing.T) {
	s, err := OpenBolt(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cur, err := s.Watch(nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	bad := errors.New("bad")
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Update(context.Background(), func(tx Tx) error {
				if err := tx.PutNode(&Node{UUID: fmt.Sprintf("55555555-5555-5555-5555-%012d", i), Extra: Object{"i": i}}); err != nil {
					return err
				}
				if i%97 == 5 {
					return bad
				}
				return nil
			})
			if (i%97 == 5) != errors.Is(err, bad) {
				t.Errorf("update %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	want := n - 4 // i = 5, 102, 199, 296 failed
	cs := next(t, cur, want)
	seen := map[string]bool{}
	for i, c := range cs {
		if i > 0 && c.Pos.Rev != cs[i-1].Pos.Rev+1 {
			t.Fatalf("change %d at %d after %d: out of order", i, c.Pos.Rev, cs[i-1].Pos.Rev)
		}
		var x Node
		if err := json.Unmarshal(c.Value, &x); err != nil || c.Op != OpCreate || seen[x.UUID] {
			t.Fatalf("change %d: %s %s %v (seen %v)", i, c.Op, c.Value, err, seen[x.UUID])
		}
		seen[x.UUID] = true
	}
	if got := s.readBack.Load(); got != 0 {
		t.Errorf("%d changes decoded from the log, want 0", got)
	}
	s.pumpMu.Lock()
	left := len(s.fresh)
	s.pumpMu.Unlock()
	if left != 0 {
		t.Errorf("%d changes left in memory after publishing", left)
	}
}
