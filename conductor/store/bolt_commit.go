package store

import (
	"errors"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// groupCommit runs concurrent bbolt updates in shared transactions (one
// commit, one fsync for many), as bbolt's DB.Batch does, but without its
// timer: a batch is every update that arrived while the previous commit
// ran, so its size follows the load (hundreds of heartbeats at once under
// a storm) and a lone update waits for nothing. bbolt's Batch seals a
// batch MaxBatchDelay after its first update; when commits take longer
// than that, sealed batches queue for the writer lock one small batch
// each, and the store commits at the rate of its fsyncs.
type groupCommit struct {
	db *bolt.DB

	mu      sync.Mutex
	pending []*commitCall
	running bool
}

type commitCall struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// maxGroup bounds one shared transaction (bbolt's MaxBatchSize default).
const maxGroup = 1000

// errSolo tells a caller whose function failed in a shared transaction to
// run it alone: its error (or panic) is then its own.
var errSolo = errors.New("store: run alone")

// update runs fn in a shared read-write transaction; fn may run more than
// once (when another update of its group fails, the group is run again
// without it).
func (g *groupCommit) update(fn func(*bolt.Tx) error) error {
	c := &commitCall{fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, c)
	if !g.running {
		g.running = true
		go g.loop()
	}
	g.mu.Unlock()
	err := <-c.done
	if err == errSolo {
		return g.db.Update(fn)
	}
	return err
}

// loop commits the pending updates, a group at a time, until none is left.
func (g *groupCommit) loop() {
	for {
		g.mu.Lock()
		n := min(len(g.pending), maxGroup)
		if n == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		calls := g.pending[:n:n]
		g.pending = append([]*commitCall(nil), g.pending[n:]...)
		g.mu.Unlock()
		g.run(calls)
	}
}

// run commits calls in one transaction; a call that fails is taken out
// (to run alone) and the others are run again.
func (g *groupCommit) run(calls []*commitCall) {
	for len(calls) > 0 {
		failed := -1
		err := g.db.Update(func(tx *bolt.Tx) error {
			for i, c := range calls {
				if err := callSafely(c.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			calls[failed].done <- errSolo
			calls = append(calls[:failed], calls[failed+1:]...)
			continue
		}
		for _, c := range calls {
			c.done <- err
		}
		return
	}
}

// callSafely runs fn, turning a panic into an error (the caller then runs
// fn alone, where the panic is its own).
func callSafely(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: update panicked: %v", p)
		}
	}()
	return fn(tx)
}
