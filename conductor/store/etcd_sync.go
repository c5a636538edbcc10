package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Reads from the cache and what other conductors wrote.
//
// A conductor's cache learns the other conductors' writes through its
// watch, a little after etcd acknowledged them; a read served from it at
// once could miss a write another conductor has already answered for
// (a client that PUTs through one conductor and GETs through another,
// or whose load balancer moved it after a conductor died). Sync closes
// that gap: it reads the revision of the last committed transaction
// from etcd (every transaction writes the guard key; the read is
// linearizable) and waits until the watch has applied it. Reads that
// start while one such etcd read is in flight share the next one, so
// a burst of requests costs one round trip, not one each.

// syncTimeout bounds one wait for the cache (etcd read and watch).
const syncTimeout = 10 * time.Second

// applied is the revision up to which the watch has applied the
// changes, with the waiters for a later one.
type applied struct {
	mu  sync.Mutex
	rev int64
	// wake is closed (and replaced) when rev advances.
	wake chan struct{}
}

func newApplied(rev int64) *applied { return &applied{rev: rev, wake: make(chan struct{})} }

// advance records that every change up to rev is in the cache.
func (a *applied) advance(rev int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if rev <= a.rev {
		return
	}
	a.rev = rev
	close(a.wake)
	a.wake = make(chan struct{})
}

// wait returns once rev is applied, or with ctx's error.
func (a *applied) wait(ctx context.Context, rev int64) error {
	for {
		a.mu.Lock()
		cur, wake := a.rev, a.wake
		a.mu.Unlock()
		if cur >= rev {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("store: etcd: the cache is at revision %d, waiting for %d: %w", cur, rev, ctx.Err())
		}
	}
}

// Applied returns the revision up to which this conductor's cache holds
// etcd's changes.
func (s *Etcd) Applied() int64 {
	s.applied.mu.Lock()
	defer s.applied.mu.Unlock()
	return s.applied.rev
}

// revRound is one linearizable read of the last commit's revision,
// shared by the readers that joined it before it started.
type revRound struct {
	done chan struct{}
	rev  int64
	err  error
}

// revReader coalesces the reads of the last commit's revision.
type revReader struct {
	mu      sync.Mutex
	next    *revRound // joined by new readers; started after the running one
	running bool
	read    func(context.Context) (int64, error)
}

// get returns a revision at least that of every transaction committed
// before get was called.
func (r *revReader) get(ctx context.Context) (int64, error) {
	r.mu.Lock()
	if r.next == nil {
		r.next = &revRound{done: make(chan struct{})}
	}
	round := r.next
	if !r.running {
		r.running, r.next = true, nil
		go r.run(round)
	}
	r.mu.Unlock()
	select {
	case <-round.done:
		return round.rev, round.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// run serves round, then the rounds readers joined meanwhile, one at a
// time: a round starts after each of its readers asked.
func (r *revReader) run(round *revRound) {
	for round != nil {
		ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
		round.rev, round.err = r.read(ctx)
		cancel()
		close(round.done)
		r.mu.Lock()
		round, r.next = r.next, nil
		if round == nil {
			r.running = false
		}
		r.mu.Unlock()
	}
}

// lastCommit reads the revision of the last committed transaction: the
// guard key's (linearizable; every transaction writes it).
func (s *Etcd) lastCommit(ctx context.Context) (int64, error) {
	resp, err := s.cli.Get(ctx, s.ekv.guardKey(), clientv3.WithKeysOnly())
	if err != nil {
		return 0, fmt.Errorf("store: etcd: read the last commit's revision: %w", err)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	return resp.Kvs[0].ModRevision, nil
}

// Sync returns once the cache holds every transaction committed (by any
// conductor) before Sync was called: reads after it see them. Its cost
// is one linearizable etcd read, shared by concurrent callers, and the
// watch's delay.
func (s *Etcd) Sync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	rev, err := s.revs.get(ctx)
	if err != nil {
		return err
	}
	return s.applied.wait(ctx, rev)
}
