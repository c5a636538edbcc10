package store

import (
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
