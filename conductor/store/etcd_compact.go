package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Compaction of etcd's history.
//
// etcd keeps every revision of every key until it is compacted; a
// conductor writes several revisions a second under load, so without
// compaction the database grows until etcd's quota (2 GiB by default)
// stops all writes. One conductor at a time (an etcd election under the
// store's prefix) compacts the history to the revision that was current
// Retention ago, every Interval, and can defragment the members after.
//
// The history is also the change feed's: a client resuming the stream
// from a position older than the conductor's in-memory log is served
// from etcd's history, so Retention is how long a client can be away
// and still resume (within the in-memory log, longer); from a
// compacted position the stream answers 410 and the client lists again.
//
// Every conductor samples (time, revision of its cache) as it runs, so
// a conductor that takes over the election knows at once which revision
// was current Retention ago. A sample's revision had been applied by its
// time, so every change younger than Retention is kept.

// CompactConfig says how the conductors compact etcd.
type CompactConfig struct {
	// Retention is how long a change stays in etcd's history (0: never
	// compact).
	Retention time.Duration
	// Interval is the period of the compactions (0: Retention/2).
	Interval time.Duration
	// Defrag, when set, defragments every etcd member after a compaction
	// at most once per Defrag (a defragmentation returns the freed space
	// to the file system, and blocks the member while it runs).
	Defrag time.Duration
	// Hostname names this conductor in the election.
	Hostname string
}

// compactLeaderTTL is how long a dead conductor keeps the compaction role.
const compactLeaderTTL = 10 * time.Second

// revSample is the cache's revision at a time.
type revSample struct {
	at  time.Time
	rev int64
}

// revSamples are the samples one conductor took, oldest first.
type revSamples struct {
	mu sync.Mutex
	s  []revSample
}

// add records rev at at and drops the samples older than the newest one
// at least keep old.
func (r *revSamples) add(at time.Time, rev int64, keep time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s = append(r.s, revSample{at, rev})
	cut := at.Add(-keep)
	i := 0
	for i+1 < len(r.s) && !r.s[i+1].at.After(cut) {
		i++
	}
	r.s = r.s[i:]
}

// before is the revision of the newest sample taken at or before t (0:
// none).
func (r *revSamples) before(t time.Time) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var rev int64
	for _, x := range r.s {
		if x.at.After(t) {
			break
		}
		rev = x.rev
	}
	return rev
}

// RunCompactor compacts etcd's history as cfg says while this conductor
// holds the compaction role, campaigning for it again when it loses it,
// until ctx ends.
func (s *Etcd) RunCompactor(ctx context.Context, cfg CompactConfig) error {
	if cfg.Retention <= 0 {
		return nil
	}
	if cfg.Interval <= 0 {
		cfg.Interval = cfg.Retention / 2
	}
	step := max(min(cfg.Interval, cfg.Retention)/4, 50*time.Millisecond)
	samples := &revSamples{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(step)
		defer t.Stop()
		for {
			samples.add(time.Now(), s.Applied(), cfg.Retention)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	defer wg.Wait()
	for ctx.Err() == nil {
		err := s.compactWhileLeader(ctx, cfg, samples)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("store: etcd compaction role lost or failed, campaigning again", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// compactWhileLeader campaigns for the compaction role and compacts
// every Interval while holding it.
func (s *Etcd) compactWhileLeader(ctx context.Context, cfg CompactConfig, samples *revSamples) error {
	// The session outlives ctx so that Close can still revoke its lease.
	sess, err := concurrency.NewSession(s.cli, concurrency.WithTTL(int(compactLeaderTTL/time.Second)),
		concurrency.WithContext(context.WithoutCancel(ctx)))
	if err != nil {
		return fmt.Errorf("etcd session: %w", err)
	}
	defer sess.Close()
	el := concurrency.NewElection(sess, s.ekv.prefix+"/elections/compact")
	if err := el.Campaign(ctx, cfg.Hostname); err != nil {
		return fmt.Errorf("campaign: %w", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = el.Resign(rctx)
	}()
	s.log.Info("store: this conductor compacts etcd", "retention", cfg.Retention, "interval", cfg.Interval)
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	var lastDefrag time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sess.Done():
			return errors.New("the election's lease ended")
		case <-t.C:
		}
		rev := samples.before(time.Now().Add(-cfg.Retention))
		if rev <= 0 {
			continue
		}
		done, err := s.Compact(ctx, rev)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.Warn("store: etcd compaction", "revision", rev, "err", err)
			continue
		}
		if !done || cfg.Defrag <= 0 || time.Since(lastDefrag) < cfg.Defrag {
			continue
		}
		lastDefrag = time.Now()
		for _, ep := range s.cli.Endpoints() {
			dctx, cancel := context.WithTimeout(ctx, time.Minute)
			_, err := s.cli.Defragment(dctx, ep)
			cancel()
			if err != nil {
				s.log.Warn("store: etcd defragmentation", "endpoint", ep, "err", err)
			} else {
				s.log.Info("store: etcd defragmented", "endpoint", ep)
			}
		}
	}
}

// Compact drops etcd's history before rev (done false when it was
// already compacted that far). The keys' current values are kept; the
// change feed can no longer resume from a position before rev.
func (s *Etcd) Compact(ctx context.Context, rev int64) (done bool, err error) {
	_, err = s.cli.Compact(ctx, rev)
	if errors.Is(err, rpctypes.ErrCompacted) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: etcd compact to %d: %w", rev, err)
	}
	s.log.Info("store: etcd compacted", "revision", rev)
	return true, nil
}

// held is the feed's check that etcd's history still holds the changes
// after from (ErrTooOld once compacted).
func (s *Etcd) held(from Position) error {
	ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
	defer cancel()
	_, err := s.cli.Get(ctx, s.ekv.guardKey(), clientv3.WithRev(from.Rev), clientv3.WithCountOnly())
	if errors.Is(err, rpctypes.ErrCompacted) {
		return fmt.Errorf("%w: position %s was compacted out of etcd's history", ErrTooOld, from)
	}
	// Other errors: the history read that follows reports them.
	return nil
}
