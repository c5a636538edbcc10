package store

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Etcd is the Store that several conductors share: the tables live in an
// etcd cluster under a key prefix, each conductor keeps the committed
// records in memory as Bolt does, and a watch on the prefix brings the
// other conductors' writes into that copy.
//
// Keys: <prefix>/b/<bucket>/<key> for records and indexes,
// <prefix>/s/<bucket> for sequences and <prefix>/guard, which every
// write transaction changes. A transaction reads one snapshot (the
// revision at its start) and commits only if none of the keys it read has
// changed since (optimistic concurrency, checked by etcd in the same Txn
// that writes): transactions on different nodes commit side by side,
// those that touched the same keys are serialized, and one that lost the
// race runs again. A transaction that listed a bucket is checked against
// the guard (no write at all since its snapshot). Sequences (history
// entries, and table ids, which each conductor takes idBlockSize at a
// time) are taken outside the transaction with their own
// compare-and-swap, so they never make two transactions conflict; a
// retried transaction leaves a gap. Each transaction is one etcd Txn, so
// it must stay under the cluster's --max-txn-ops (128 by default);
// dropping a bucket is one range delete.
type Etcd struct {
	*kvStore
	cli    *clientv3.Client
	ekv    *etcdKV
	owns   bool
	cancel context.CancelFunc
	done   chan struct{}
	log    *slog.Logger
	// applied is how far the watch has brought the cache; revs reads
	// the last commit's revision for Sync (etcd_sync.go).
	applied *applied
	revs    revReader
}

var _ Store = (*Etcd)(nil)

// EtcdConfig says how to reach the cluster.
type EtcdConfig struct {
	Endpoints []string
	// Prefix of every key (default "/ferric"); conductors sharing a store
	// use the same one.
	Prefix      string
	DialTimeout time.Duration
	TLS         *tls.Config
	Username    string
	Password    string
	Log         *slog.Logger
}

// OpenEtcd connects to the cluster, loads the committed records and
// starts following the changes.
func OpenEtcd(ctx context.Context, cfg EtcdConfig) (*Etcd, error) {
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: cfg.Endpoints, DialTimeout: cfg.DialTimeout, TLS: cfg.TLS,
		Username: cfg.Username, Password: cfg.Password, Context: ctx,
		Logger: zap.NewNop(), // errors reach the callers, which log them
	})
	if err != nil {
		return nil, fmt.Errorf("store: etcd %v: %w", cfg.Endpoints, err)
	}
	// Fail at once (not after the load's deadline) when the cluster does
	// not answer: wrong address, TLS refused, bad credentials.
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	_, err = cli.Get(pctx, "/", clientv3.WithCountOnly(), clientv3.WithLimit(1))
	cancel()
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("store: etcd %v does not answer within %s (address, TLS, credentials?): %w", cfg.Endpoints, cfg.DialTimeout, err)
	}
	s, err := NewEtcd(ctx, cli, cfg.Prefix, cfg.Log)
	if err != nil {
		cli.Close()
		return nil, err
	}
	s.owns = true
	return s, nil
}

// NewEtcd is OpenEtcd over a client the caller made (and closes after
// Close).
func NewEtcd(ctx context.Context, cli *clientv3.Client, prefix string, log *slog.Logger) (*Etcd, error) {
	if prefix == "" {
		prefix = "/ferric"
	}
	if log == nil {
		log = slog.Default()
	}
	ekv := &etcdKV{cli: cli, prefix: strings.TrimSuffix(prefix, "/"), ids: map[string]*idBlock{}}
	s := &Etcd{kvStore: newKVStore(ekv), cli: cli, ekv: ekv, done: make(chan struct{}), log: log}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rev, err := s.loadAt(cctx)
	if err != nil {
		return nil, fmt.Errorf("store: etcd load: %w", err)
	}
	s.applied = newApplied(rev)
	s.revs.read = s.lastCommit
	s.feed = newHub(Position{Rev: rev})
	s.feed.history = s.history
	s.feed.held = s.held
	wctx, stop := context.WithCancel(context.Background())
	s.cancel = stop
	go s.follow(wctx, rev)
	return s, nil
}

// Client returns the etcd client (for leases and elections).
func (s *Etcd) Client() *clientv3.Client { return s.cli }

// Prefix returns the key prefix of the store.
func (s *Etcd) Prefix() string { return s.ekv.prefix }

// Close stops following changes and closes the client if OpenEtcd made it.
func (s *Etcd) Close() error {
	s.cancel()
	<-s.done
	if s.owns {
		return s.cli.Close()
	}
	return nil
}

// loadAt fills the caches from one snapshot and returns its revision.
// Cached records the snapshot does not hold any more are dropped (a
// reload after the watch lost changes).
func (s *Etcd) loadAt(ctx context.Context) (int64, error) {
	tx, err := s.ekv.begin(ctx)
	if err != nil {
		return 0, err
	}
	for table, apply := range s.tables {
		seen := map[string]bool{}
		if err := tx.forEach(table, func(k, v []byte) error {
			seen[string(k)] = true
			return apply(string(k), v, false, 0)
		}); err != nil {
			return 0, fmt.Errorf("%s: %w", table, err)
		}
		s.sweeps[table](seen)
	}
	return tx.rev, nil
}

// follow applies the changes committed after rev to the caches, and
// hands those of watched tables to the feed, until ctx ends.
func (s *Etcd) follow(ctx context.Context, rev int64) {
	defer close(s.done)
	var sub int32 // index of the next change in revision rev
	for ctx.Err() == nil {
		wch := s.cli.Watch(clientv3.WithRequireLeader(ctx), s.ekv.prefix+"/", clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithPrevKV())
		for resp := range wch {
			if err := resp.Err(); err != nil {
				if errors.Is(err, rpctypes.ErrCompacted) {
					// Changes were lost to compaction: start again from a
					// fresh snapshot; the feed's readers must list again.
					s.log.Warn("store: etcd watch compacted, reloading", "revision", rev)
					if r, err := s.loadAt(ctx); err == nil {
						rev, sub = r, 0
						s.feed.reset(Position{Rev: r})
						s.applied.advance(r)
					}
				} else {
					s.log.Warn("store: etcd watch", "err", err)
				}
				break
			}
			if resp.IsProgressNotify() {
				// Every change up to the header's revision was sent.
				s.applied.advance(resp.Header.Revision)
				continue
			}
			var cs []*Change
			for _, ev := range resp.Events {
				if ev.Kv.ModRevision != rev {
					rev, sub = ev.Kv.ModRevision, 0
				}
				bucket, key, ok := s.ekv.splitKey(string(ev.Kv.Key))
				if !ok {
					continue
				}
				apply := s.tables[bucket]
				if apply == nil {
					continue
				}
				// A delete carries no store revision: rev 0 deletes the
				// cached record whatever its revision.
				if err := apply(key, ev.Kv.Value, ev.Type == clientv3.EventTypeDelete, 0); err != nil {
					s.log.Warn("store: etcd watch: bad record", "key", string(ev.Kv.Key), "err", err)
				}
				if c := etcdChange(bucket, key, ev); c != nil {
					c.Pos = Position{Rev: rev, Sub: sub}
					sub++
					cs = append(cs, c)
				}
			}
			s.feed.publish(cs)
			s.applied.advance(rev)
		}
		if ctx.Err() == nil {
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// splitKey returns the bucket and key of a record's etcd key.
func (e *etcdKV) splitKey(k string) (bucket, key string, ok bool) {
	tablePrefix := e.prefix + "/b/"
	if !strings.HasPrefix(k, tablePrefix) {
		return "", "", false
	}
	bucket, key, ok = strings.Cut(k[len(tablePrefix):], "/")
	if !ok {
		return "", "", false
	}
	bucket, err := url.PathUnescape(bucket)
	return bucket, key, err == nil
}

// etcdChange is the feed's change for a watch event (nil when the table
// is not watched); its position is the caller's.
func etcdChange(bucket, key string, ev *clientv3.Event) *Change {
	if !feedTables[bucket] {
		return nil
	}
	c := &Change{Table: bucket, Key: key, Op: OpUpdate, Value: ev.Kv.Value}
	var prev []byte
	if ev.PrevKv != nil {
		prev = ev.PrevKv.Value
	}
	switch {
	case ev.Type == clientv3.EventTypeDelete:
		if prev == nil {
			return nil
		}
		c.Op, c.Value, c.Revision = OpDelete, prev, revisionOf(prev)+1
	case prev == nil:
		c.Op, c.Revision = OpCreate, revisionOf(ev.Kv.Value)
	default:
		c.Old, c.Revision = diffFields(prev, ev.Kv.Value), revisionOf(ev.Kv.Value)
	}
	c.Time = recordTime(c.Value)
	return c
}

// recordTime is the updated_at (else created_at) of a record's JSON.
func recordTime(raw []byte) time.Time {
	var h struct {
		CreatedAt time.Time  `json:"created_at"`
		UpdatedAt *time.Time `json:"updated_at"`
	}
	_ = json.Unmarshal(raw, &h)
	if h.UpdatedAt != nil {
		return *h.UpdatedAt
	}
	return h.CreatedAt
}

// history reads the watched tables' changes after from up to to from
// etcd's own history (ErrTooOld once compacted).
func (s *Etcd) history(from, to Position) ([]*Change, error) {
	if !from.Less(to) {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wch := s.cli.Watch(ctx, s.ekv.prefix+"/b/", clientv3.WithPrefix(), clientv3.WithRev(from.Rev), clientv3.WithPrevKV())
	var out []*Change
	rev, sub := int64(0), int32(0)
	// A progress report says when the watch has caught up past to even
	// if no watched key changed since.
	_ = s.cli.RequestProgress(ctx)
	for resp := range wch {
		if resp.IsProgressNotify() {
			if resp.Header.Revision >= to.Rev {
				return out, nil
			}
			_ = s.cli.RequestProgress(ctx)
			continue
		}
		if err := resp.Err(); err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				return nil, fmt.Errorf("%w: position %s was compacted out of etcd's history", ErrTooOld, from)
			}
			return nil, fmt.Errorf("store: etcd history: %w", err)
		}
		for _, ev := range resp.Events {
			if ev.Kv.ModRevision != rev {
				rev, sub = ev.Kv.ModRevision, 0
			}
			if to.Less(Position{Rev: rev}) {
				return out, nil
			}
			bucket, key, ok := s.ekv.splitKey(string(ev.Kv.Key))
			if !ok {
				continue
			}
			if c := etcdChange(bucket, key, ev); c != nil {
				c.Pos = Position{Rev: rev, Sub: sub}
				sub++
				if from.Less(c.Pos) && !to.Less(c.Pos) {
					out = append(out, c)
				}
			}
		}
		if rev >= to.Rev {
			// etcd sends the events of one revision in one response.
			return out, nil
		}
		_ = s.cli.RequestProgress(ctx)
	}
	return out, ctx.Err()
}

// etcdKV is the kvBackend over an etcd cluster.
type etcdKV struct {
	cli    *clientv3.Client
	prefix string

	// idMu guards ids: the blocks of table ids this conductor holds.
	idMu sync.Mutex
	ids  map[string]*idBlock
}

// idBlock is a run of ids taken from a table's sequence at once: next up
// to last are this conductor's to hand out.
type idBlock struct{ next, last uint64 }

// idBlockSize is how many ids a conductor takes from a table's sequence
// at a time: a create then costs no sequence round trip but once in that
// many, and concurrent creates do not race on the sequence key. Ids stay
// unique and increase with each conductor's creates; across conductors,
// and after a restart (the rest of a block is never used), they skip.
const idBlockSize = 64

// maxAttempts bounds the runs of one transaction that keeps losing races.
const maxAttempts = 100

func (e *etcdKV) bucketPrefix(bucket string) string {
	return e.prefix + "/b/" + url.PathEscape(bucket) + "/"
}
func (e *etcdKV) key(bucket, key string) string { return e.bucketPrefix(bucket) + key }
func (e *etcdKV) seqKey(bucket string) string   { return e.prefix + "/s/" + url.PathEscape(bucket) }
func (e *etcdKV) guardKey() string              { return e.prefix + "/guard" }

// begin starts a transaction; its snapshot is the revision its first read
// sees.
func (e *etcdKV) begin(ctx context.Context) (*etcdTx, error) {
	return &etcdTx{ctx: ctx, kv: e, writes: map[string]etcdWrite{}, reads: map[string]int64{}, guard: -1}, nil
}

func (e *etcdKV) update(ctx context.Context, fn func(kvTx) error) error {
	for attempt := 1; ; attempt++ {
		t, err := e.begin(ctx)
		if err != nil {
			return fmt.Errorf("store: etcd: %w", err)
		}
		err = fn(t)
		if errors.Is(err, rpctypes.ErrCompacted) {
			err = errRetry
		}
		if err == nil {
			err = t.commit()
		}
		if !errors.Is(err, errRetry) {
			return err
		}
		if attempt == maxAttempts {
			return fmt.Errorf("store: etcd: transaction lost %d races: %w", attempt, ErrConflict)
		}
		d := time.Duration(rand.Int64N(int64(min(attempt, 20))*int64(time.Millisecond))) + time.Millisecond
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (e *etcdKV) view(ctx context.Context, fn func(kvTx) error) error {
	t, err := e.begin(ctx)
	if err != nil {
		return fmt.Errorf("store: etcd: %w", err)
	}
	t.readOnly = true
	return fn(t)
}

func (e *etcdKV) close() error { return nil }

// errRetry: another transaction committed first; run again.
var errRetry = errors.New("store: etcd: transaction raced")

type etcdWrite struct {
	v   []byte
	del bool
}

// etcdTx reads the snapshot at rev through its own pending writes. Like a
// bbolt transaction, it is used by one goroutine at a time.
type etcdTx struct {
	ctx      context.Context
	kv       *etcdKV
	rev      int64 // the snapshot (0: no read yet)
	guard    int64 // ModRevision of the guard key at rev (0: none; -1: not read)
	readOnly bool
	writes   map[string]etcdWrite
	dropped  []string // bucket prefixes removed with one range delete
	// reads holds the ModRevision (0: absent) of every key read from the
	// snapshot; the commit requires them unchanged.
	reads map[string]int64
	// listed is set when a bucket was listed: the commit then requires no
	// write at all since the snapshot (the guard).
	listed bool
}

func (t *etcdTx) isDropped(k string) bool {
	for _, p := range t.dropped {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// snapshotGet reads at the transaction's snapshot; the first read fixes
// it.
func (t *etcdTx) snapshotGet(k string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	if t.rev != 0 {
		opts = append(opts, clientv3.WithRev(t.rev))
	}
	resp, err := t.kv.cli.Get(t.ctx, k, opts...)
	if err != nil {
		return nil, err
	}
	if t.rev == 0 {
		t.rev = resp.Header.Revision
	}
	return resp, nil
}

// nextRev implements kvTx: past the stored revision and past the
// snapshot's etcd revision. A record's revision is then at most the etcd
// revision its write commits at, so one written after a delete (whose
// snapshot saw the delete) is past the deleted record's and past the
// delete's own.
func (t *etcdTx) nextRev(old int64) (int64, error) {
	if t.rev == 0 {
		if _, err := t.snapshotGet(t.kv.guardKey()); err != nil {
			return 0, err
		}
	}
	return max(old, t.rev) + 1, nil
}

func (t *etcdTx) getKey(k string) ([]byte, error) {
	if w, ok := t.writes[k]; ok {
		if w.del {
			return nil, nil
		}
		return w.v, nil
	}
	if t.isDropped(k) {
		return nil, nil
	}
	resp, err := t.snapshotGet(k)
	if err != nil {
		return nil, err
	}
	var mod int64
	var v []byte
	if len(resp.Kvs) > 0 {
		mod, v = resp.Kvs[0].ModRevision, resp.Kvs[0].Value
	}
	if _, seen := t.reads[k]; !seen {
		t.reads[k] = mod
	}
	return v, nil
}

func (t *etcdTx) setKey(k string, w etcdWrite) error {
	if t.readOnly {
		return errors.New("store: etcd: write in a read-only transaction")
	}
	if t.isDropped(k) {
		if w.del { // gone with the bucket (one range delete)
			return nil
		}
		return fmt.Errorf("store: etcd: %s: write to a bucket dropped in the same transaction", k)
	}
	t.writes[k] = w
	return nil
}

func (t *etcdTx) get(bucket, key string) ([]byte, error) { return t.getKey(t.kv.key(bucket, key)) }

func (t *etcdTx) put(bucket, key string, v []byte) error {
	return t.setKey(t.kv.key(bucket, key), etcdWrite{v: slices.Clone(v)})
}

func (t *etcdTx) del(bucket, key string) error {
	return t.setKey(t.kv.key(bucket, key), etcdWrite{del: true})
}

// nextID hands out the next id of the conductor's block for table,
// taking a new block from the table's sequence when it is used up.
func (t *etcdTx) nextID(table string) (uint64, error) {
	if t.readOnly {
		return 0, errors.New("store: etcd: write in a read-only transaction")
	}
	e := t.kv
	e.idMu.Lock()
	defer e.idMu.Unlock()
	b := e.ids[table]
	if b == nil || b.next > b.last {
		last, err := t.addSeq(table, idBlockSize)
		if err != nil {
			return 0, err
		}
		b = &idBlock{next: last - idBlockSize + 1, last: last}
		e.ids[table] = b
	}
	id := b.next
	b.next++
	return id, nil
}

// nextSeq takes the next number of the bucket's sequence at once, with a
// compare-and-swap of its own, outside the transaction.
func (t *etcdTx) nextSeq(bucket string) (uint64, error) {
	if t.readOnly {
		return 0, errors.New("store: etcd: write in a read-only transaction")
	}
	return t.addSeq(bucket, 1)
}

// addSeq adds n to the bucket's sequence with a compare-and-swap and
// returns its new value.
func (t *etcdTx) addSeq(bucket string, n uint64) (uint64, error) {
	k := t.kv.seqKey(bucket)
	for {
		resp, err := t.kv.cli.Get(t.ctx, k)
		if err != nil {
			return 0, err
		}
		var cur uint64
		var mod int64
		if len(resp.Kvs) > 0 {
			mod = resp.Kvs[0].ModRevision
			if cur, err = strconv.ParseUint(string(resp.Kvs[0].Value), 10, 64); err != nil {
				return 0, fmt.Errorf("store: etcd: sequence %s: %w", k, err)
			}
		}
		cur += n
		txn, err := t.kv.cli.Txn(t.ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", mod)).
			Then(clientv3.OpPut(k, strconv.FormatUint(cur, 10))).Commit()
		if err != nil {
			return 0, err
		}
		if txn.Succeeded {
			return cur, nil
		}
	}
}

func (t *etcdTx) forEach(bucket string, fn func(k, v []byte) error) error {
	t.listed = true
	p := t.kv.bucketPrefix(bucket)
	vals := map[string][]byte{}
	if t.guard < 0 {
		resp, err := t.snapshotGet(t.kv.guardKey())
		if err != nil {
			return err
		}
		t.guard = 0
		if len(resp.Kvs) > 0 {
			t.guard = resp.Kvs[0].ModRevision
		}
	}
	if !t.isDropped(p) {
		resp, err := t.snapshotGet(p, clientv3.WithPrefix())
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			vals[string(kv.Key)] = kv.Value
		}
	}
	for k, w := range t.writes {
		if strings.HasPrefix(k, p) {
			if w.del {
				delete(vals, k)
			} else {
				vals[k] = w.v
			}
		}
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := fn([]byte(k[len(p):]), vals[k]); err != nil {
			return err
		}
	}
	return nil
}

func (t *etcdTx) dropBucket(bucket string) error {
	if t.readOnly {
		return errors.New("store: etcd: write in a read-only transaction")
	}
	p := t.kv.bucketPrefix(bucket)
	for k := range t.writes {
		if strings.HasPrefix(k, p) {
			delete(t.writes, k)
		}
	}
	t.dropped = append(t.dropped, p)
	t.writes[t.kv.seqKey(bucket)] = etcdWrite{del: true}
	return nil
}

// etcdCommitTimeout bounds a commit that no longer follows its caller's
// context.
const etcdCommitTimeout = 30 * time.Second

// commit writes the transaction if the keys it read are as it read them
// (errRetry otherwise).
func (t *etcdTx) commit() error {
	if len(t.writes) == 0 && len(t.dropped) == 0 {
		return nil
	}
	ops := make([]clientv3.Op, 0, len(t.writes)+len(t.dropped)+1)
	for _, p := range t.dropped {
		ops = append(ops, clientv3.OpDelete(p, clientv3.WithPrefix()))
	}
	keys := make([]string, 0, len(t.writes))
	for k := range t.writes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if w := t.writes[k]; w.del {
			ops = append(ops, clientv3.OpDelete(k))
		} else {
			ops = append(ops, clientv3.OpPut(k, string(w.v)))
		}
	}
	ops = append(ops, clientv3.OpPut(t.kv.guardKey(), strconv.FormatInt(t.rev, 10)))
	cmp := make([]clientv3.Cmp, 0, len(t.reads)+1)
	for k, mod := range t.reads {
		cmp = append(cmp, clientv3.Compare(clientv3.ModRevision(k), "=", mod))
	}
	if t.listed {
		cmp = append(cmp, clientv3.Compare(clientv3.ModRevision(t.kv.guardKey()), "=", t.guard))
	}
	// Once sent, the commit is seen through even when the caller's context
	// ends (a client that went away): a cancelled Txn may still have been
	// applied, and the caller, told it failed, would leave what it wrote
	// behind, such as a node's lock that nobody releases.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), etcdCommitTimeout)
	defer cancel()
	resp, err := t.kv.cli.Txn(ctx).If(cmp...).Then(ops...).Commit()
	if err != nil {
		return fmt.Errorf("store: etcd commit: %w", err)
	}
	if !resp.Succeeded {
		return errRetry
	}
	return nil
}
