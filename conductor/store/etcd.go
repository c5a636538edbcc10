package store

import (
	"context"
	"crypto/tls"
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
// revision at its start) and commits only if the guard has not moved
// since: writes are serializable, as in bbolt, and a transaction that
// lost the race runs again. Each transaction is one etcd Txn, so it must
// stay under the cluster's --max-txn-ops (128 by default); dropping a
// bucket is one range delete.
type Etcd struct {
	*kvStore
	cli    *clientv3.Client
	ekv    *etcdKV
	owns   bool
	cancel context.CancelFunc
	done   chan struct{}
	log    *slog.Logger
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
	ekv := &etcdKV{cli: cli, prefix: strings.TrimSuffix(prefix, "/")}
	s := &Etcd{kvStore: newKVStore(ekv), cli: cli, ekv: ekv, done: make(chan struct{}), log: log}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rev, err := s.loadAt(cctx)
	if err != nil {
		return nil, fmt.Errorf("store: etcd load: %w", err)
	}
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
func (s *Etcd) loadAt(ctx context.Context) (int64, error) {
	tx, err := s.ekv.begin(ctx)
	if err != nil {
		return 0, err
	}
	for table, apply := range s.tables {
		if err := tx.forEach(table, func(k, v []byte) error { return apply(string(k), v, false, 0) }); err != nil {
			return 0, fmt.Errorf("%s: %w", table, err)
		}
	}
	return tx.rev, nil
}

// follow applies the changes committed after rev to the caches until ctx
// ends. A delete is applied at the store revision its transaction reached
// (the _meta sequence written with it), so a later re-create wins over it.
func (s *Etcd) follow(ctx context.Context, rev int64) {
	defer close(s.done)
	tablePrefix := s.ekv.prefix + "/b/"
	metaKey := s.ekv.seqKey(bMeta)
	for ctx.Err() == nil {
		wch := s.cli.Watch(clientv3.WithRequireLeader(ctx), s.ekv.prefix+"/", clientv3.WithPrefix(), clientv3.WithRev(rev+1))
		for resp := range wch {
			if err := resp.Err(); err != nil {
				if errors.Is(err, rpctypes.ErrCompacted) {
					// Changes were lost to compaction: start again from a
					// fresh snapshot.
					s.log.Warn("store: etcd watch compacted, reloading", "revision", rev)
					if r, err := s.loadAt(ctx); err == nil {
						rev = r
					}
				} else {
					s.log.Warn("store: etcd watch", "err", err)
				}
				break
			}
			evs := resp.Events
			for i := 0; i < len(evs); {
				j := i
				for j < len(evs) && evs[j].Kv.ModRevision == evs[i].Kv.ModRevision {
					j++
				}
				var storeRev int64
				for _, ev := range evs[i:j] {
					if string(ev.Kv.Key) == metaKey && ev.Type == clientv3.EventTypePut {
						storeRev, _ = strconv.ParseInt(string(ev.Kv.Value), 10, 64)
					}
				}
				for _, ev := range evs[i:j] {
					k := string(ev.Kv.Key)
					if !strings.HasPrefix(k, tablePrefix) {
						continue
					}
					bucket, key, ok := strings.Cut(k[len(tablePrefix):], "/")
					if !ok {
						continue
					}
					bucket, _ = url.PathUnescape(bucket)
					apply := s.tables[bucket]
					if apply == nil {
						continue
					}
					isDel := ev.Type == clientv3.EventTypeDelete
					if err := apply(key, ev.Kv.Value, isDel, storeRev); err != nil {
						s.log.Warn("store: etcd watch: bad record", "key", k, "err", err)
					}
				}
				rev = evs[i].Kv.ModRevision
				i = j
			}
		}
		if ctx.Err() == nil {
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// etcdKV is the kvBackend over an etcd cluster.
type etcdKV struct {
	cli    *clientv3.Client
	prefix string
}

// maxAttempts bounds the runs of one transaction that keeps losing races.
const maxAttempts = 100

func (e *etcdKV) bucketPrefix(bucket string) string {
	return e.prefix + "/b/" + url.PathEscape(bucket) + "/"
}
func (e *etcdKV) key(bucket, key string) string { return e.bucketPrefix(bucket) + key }
func (e *etcdKV) seqKey(bucket string) string   { return e.prefix + "/s/" + url.PathEscape(bucket) }
func (e *etcdKV) guardKey() string              { return e.prefix + "/guard" }

// begin starts a transaction at the current revision.
func (e *etcdKV) begin(ctx context.Context) (*etcdTx, error) {
	resp, err := e.cli.Get(ctx, e.guardKey())
	if err != nil {
		return nil, err
	}
	t := &etcdTx{ctx: ctx, kv: e, rev: resp.Header.Revision, writes: map[string]etcdWrite{}}
	if len(resp.Kvs) > 0 {
		t.guard = resp.Kvs[0].ModRevision
	}
	return t, nil
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

// etcdTx reads the snapshot at rev through its own pending writes.
type etcdTx struct {
	ctx      context.Context
	kv       *etcdKV
	rev      int64
	guard    int64 // ModRevision of the guard key at rev (0: none yet)
	readOnly bool
	mu       sync.Mutex
	writes   map[string]etcdWrite
	dropped  []string // bucket prefixes removed with one range delete
}

func (t *etcdTx) isDropped(k string) bool {
	for _, p := range t.dropped {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

func (t *etcdTx) getKey(k string) ([]byte, error) {
	t.mu.Lock()
	w, ok := t.writes[k]
	dropped := t.isDropped(k)
	t.mu.Unlock()
	if ok {
		if w.del {
			return nil, nil
		}
		return w.v, nil
	}
	if dropped {
		return nil, nil
	}
	resp, err := t.kv.cli.Get(t.ctx, k, clientv3.WithRev(t.rev))
	if err != nil {
		return nil, err
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	return resp.Kvs[0].Value, nil
}

func (t *etcdTx) setKey(k string, w etcdWrite) error {
	if t.readOnly {
		return errors.New("store: etcd: write in a read-only transaction")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
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

func (t *etcdTx) nextSeq(bucket string) (uint64, error) {
	k := t.kv.seqKey(bucket)
	raw, err := t.getKey(k)
	if err != nil {
		return 0, err
	}
	var n uint64
	if raw != nil {
		if n, err = strconv.ParseUint(string(raw), 10, 64); err != nil {
			return 0, fmt.Errorf("store: etcd: sequence %s: %w", k, err)
		}
	}
	n++
	return n, t.setKey(k, etcdWrite{v: []byte(strconv.FormatUint(n, 10))})
}

func (t *etcdTx) forEach(bucket string, fn func(k, v []byte) error) error {
	p := t.kv.bucketPrefix(bucket)
	vals := map[string][]byte{}
	t.mu.Lock()
	dropped := t.isDropped(p)
	t.mu.Unlock()
	if !dropped {
		resp, err := t.kv.cli.Get(t.ctx, p, clientv3.WithPrefix(), clientv3.WithRev(t.rev))
		if err != nil {
			return err
		}
		for _, kv := range resp.Kvs {
			vals[string(kv.Key)] = kv.Value
		}
	}
	t.mu.Lock()
	for k, w := range t.writes {
		if strings.HasPrefix(k, p) {
			if w.del {
				delete(vals, k)
			} else {
				vals[k] = w.v
			}
		}
	}
	t.mu.Unlock()
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
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.writes {
		if strings.HasPrefix(k, p) {
			delete(t.writes, k)
		}
	}
	t.dropped = append(t.dropped, p)
	t.writes[t.kv.seqKey(bucket)] = etcdWrite{del: true}
	return nil
}

// commit writes the transaction if no other one committed since its
// snapshot (errRetry otherwise).
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
	cmp := clientv3.Compare(clientv3.ModRevision(t.kv.guardKey()), "=", t.guard)
	if t.guard == 0 {
		cmp = clientv3.Compare(clientv3.CreateRevision(t.kv.guardKey()), "=", 0)
	}
	resp, err := t.kv.cli.Txn(t.ctx).If(cmp).Then(ops...).Commit()
	if err != nil {
		return fmt.Errorf("store: etcd commit: %w", err)
	}
	if !resp.Succeeded {
		return errRetry
	}
	return nil
}
