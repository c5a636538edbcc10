package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
)

// kvTx is one read-write transaction of a key-value backend, as the
// tables use it: named buckets of keys kept in byte order (bbolt buckets;
// key prefixes in etcd). Values returned are valid during the transaction
// only.
type kvTx interface {
	get(bucket, key string) ([]byte, error) // nil, nil when absent
	put(bucket, key string, v []byte) error
	del(bucket, key string) error
	// nextSeq returns the bucket's next sequence number (1, 2, ...).
	nextSeq(bucket string) (uint64, error)
	// nextID returns the id of a new record of table: unique, and
	// increasing for the records one conductor creates; ids may skip
	// (etcd hands them to each conductor in blocks).
	nextID(table string) (uint64, error)
	// forEach calls fn for every key of the bucket in byte order.
	forEach(bucket string, fn func(k, v []byte) error) error
	// dropBucket deletes the bucket and everything in it.
	dropBucket(bucket string) error
	// nextRev returns the revision for a write of a record whose stored
	// revision is old (0: a create): larger than old and than the
	// revision of any record deleted before this transaction began.
	nextRev(old int64) (int64, error)
}

// kvBackend is the storage under kvStore.
type kvBackend interface {
	// update runs fn in one serializable read-write transaction; fn may
	// run more than once (retries) and its writes are kept only when it
	// returns nil.
	update(ctx context.Context, fn func(kvTx) error) error
	// view runs fn in a read-only transaction.
	view(ctx context.Context, fn func(kvTx) error) error
	close() error
}

type entity interface {
	key() string
	hdr() (id, rev *int64, created *time.Time, updated **time.Time)
	uniques() map[string]string
}

func (n *Node) key() string { return n.UUID }
func (n *Node) hdr() (*int64, *int64, *time.Time, **time.Time) {
	return &n.ID, &n.Revision, &n.CreatedAt, &n.UpdatedAt
}
func (n *Node) uniques() map[string]string {
	return map[string]string{"name": deref(n.Name), "instance_uuid": deref(n.InstanceUUID)}
}

func (p *Port) key() string { return p.UUID }
func (p *Port) hdr() (*int64, *int64, *time.Time, **time.Time) {
	return &p.ID, &p.Revision, &p.CreatedAt, &p.UpdatedAt
}
func (p *Port) uniques() map[string]string {
	return map[string]string{"address": p.Address, "name": deref(p.Name)}
}

func (p *Portgroup) key() string { return p.UUID }
func (p *Portgroup) hdr() (*int64, *int64, *time.Time, **time.Time) {
	return &p.ID, &p.Revision, &p.CreatedAt, &p.UpdatedAt
}
func (p *Portgroup) uniques() map[string]string {
	return map[string]string{"name": deref(p.Name), "address": deref(p.Address)}
}

func (c *Chassis) key() string { return c.UUID }
func (c *Chassis) hdr() (*int64, *int64, *time.Time, **time.Time) {
	return &c.ID, &c.Revision, &c.CreatedAt, &c.UpdatedAt
}
func (c *Chassis) uniques() map[string]string { return nil }

func (a *Allocation) key() string { return a.UUID }
func (a *Allocation) hdr() (*int64, *int64, *time.Time, **time.Time) {
	return &a.ID, &a.Revision, &a.CreatedAt, &a.UpdatedAt
}
func (a *Allocation) uniques() map[string]string {
	return map[string]string{"name": deref(a.Name)}
}

func (v *VolumeConnector) key() string { return v.UUID }
func (v *VolumeConnector) hdr() (*int64, *int64, *time.Time, **time.Time) {
	return &v.ID, &v.Revision, &v.CreatedAt, &v.UpdatedAt
}
func (v *VolumeConnector) uniques() map[string]string {
	return map[string]string{"type_connector_id": v.Type + "\x00" + v.ConnectorID}
}
func (v *VolumeTarget) key() string { return v.UUID }
func (v *VolumeTarget) hdr() (*int64, *int64, *time.Time, **time.Time) {
	return &v.ID, &v.Revision, &v.CreatedAt, &v.UpdatedAt
}
func (v *VolumeTarget) uniques() map[string]string {
	return map[string]string{"node_boot_index": v.NodeUUID + "/" + strconv.FormatInt(v.BootIndex, 10)}
}

func (d *DeployTemplate) key() string { return d.UUID }
func (d *DeployTemplate) hdr() (*int64, *int64, *time.Time, **time.Time) {
	return &d.ID, &d.Revision, &d.CreatedAt, &d.UpdatedAt
}
func (d *DeployTemplate) uniques() map[string]string { return map[string]string{"name": d.Name} }

func (r *Runbook) key() string { return r.UUID }
func (r *Runbook) hdr() (*int64, *int64, *time.Time, **time.Time) {
	return &r.ID, &r.Revision, &r.CreatedAt, &r.UpdatedAt
}
func (r *Runbook) uniques() map[string]string { return map[string]string{"name": r.Name} }

func (c *Conductor) key() string { return c.Hostname }
func (c *Conductor) hdr() (*int64, *int64, *time.Time, **time.Time) {
	return &c.ID, &c.Revision, &c.CreatedAt, &c.UpdatedAt
}
func (c *Conductor) uniques() map[string]string { return nil }

func (r *Record) key() string { return r.Key }
func (r *Record) hdr() (*int64, *int64, *time.Time, **time.Time) {
	var c time.Time
	var u *time.Time
	return &r.ID, &r.Revision, &c, &u
}
func (r *Record) uniques() map[string]string { return nil }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// IsUUID reports whether s looks like a UUID (Ironic looks such idents up
// as UUIDs only, never as names).
func IsUUID(s string) bool {
	if len(s) != 36 && len(s) != 32 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// CanonicalUUID returns the lower-case, dashed form of a UUID-like string
// (keys are stored that way), or s unchanged when it is not UUID-like.
func CanonicalUUID(s string) string {
	if !IsUUID(s) {
		return s
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return s
	}
	return u.String()
}

const (
	tNodes       = "nodes"
	tPorts       = "ports"
	tPortgroups  = "portgroups"
	tChassis     = "chassis"
	tAllocations = "allocations"
	tTemplates   = "deploy_templates"
	tRunbooks    = "runbooks"
	tConnectors  = "volume_connectors"
	tTargets     = "volume_targets"
	tConductors  = "conductors"
	bMeta        = "_meta"
	recPrefix    = "rec:"
	histPrefix   = "history:"
	bBIOS        = "bios_settings"
	bFirmware    = "firmware_components"
)

// cache is the committed copy of one table, in id order.
type cache[P entity] struct {
	mu    sync.RWMutex
	byKey map[string]P
	order []P // sorted by id
	idx   map[string]map[string]string
	tomb  map[string]int64 // deleted key -> revision of the delete
	// sec are the secondary indexes (index.go), by field.
	sec map[string]*secIndex[P]
	// jsonCopy, when set, copies a record as a JSON round trip gives it
	// back (canon: a decoded record whose raw JSON fields it may match),
	// ok false when it cannot: the cache's copy of a write and a
	// transaction's read of a cached record without decoding.
	jsonCopy func(v, canon P) (P, bool)
}

func newCache[P entity]() *cache[P] {
	return &cache[P]{byKey: map[string]P{}, idx: map[string]map[string]string{}, tomb: map[string]int64{}}
}

func idOf(e entity) int64  { id, _, _, _ := e.hdr(); return *id }
func revOf(e entity) int64 { _, r, _, _ := e.hdr(); return *r }

// apply records a committed put (v != nil) or delete of key at revision rev.
// Changes from transactions that committed out of order are resolved by
// revision: an older change never overwrites a newer one.
func (c *cache[P]) apply(key string, v P, isDel bool, rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, had := c.byKey[key]
	if had && revOf(old) >= rev {
		return
	}
	if t, ok := c.tomb[key]; ok && t >= rev {
		return
	}
	if had {
		for f, val := range old.uniques() {
			if val != "" && c.idx[f][val] == key {
				delete(c.idx[f], val)
			}
		}
		delete(c.byKey, key)
	}
	for _, x := range c.sec {
		x.update(old, had, v, !isDel)
	}
	if isDel {
		if had {
			c.order = delOrdered(c.order, old)
		}
		c.tomb[key] = rev
		if len(c.tomb) > 4096 {
			clear(c.tomb)
			c.tomb[key] = rev
		}
		return
	}
	if had && idOf(old) != idOf(v) {
		c.order = delOrdered(c.order, old)
	}
	delete(c.tomb, key)
	c.byKey[key] = v
	for f, val := range v.uniques() {
		if val == "" {
			continue
		}
		if c.idx[f] == nil {
			c.idx[f] = map[string]string{}
		}
		c.idx[f][val] = key
	}
	// An update keeps its id: replaced in place, not moved (O(log n)).
	c.order = putOrdered(c.order, v)
}

func (c *cache[P]) get(key string) (P, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.byKey[key]
	return v, ok
}

func (c *cache[P]) getBy(field, val string) (P, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	k, ok := c.idx[field][val]
	if !ok {
		var zero P
		return zero, false
	}
	v, ok := c.byKey[k]
	return v, ok
}

func (c *cache[P]) list(filter func(P) bool) []P {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]P, 0, min(len(c.order), 1024))
	for _, v := range c.order {
		if filter == nil || filter(v) {
			out = append(out, v)
		}
	}
	return out
}

// kvStore implements Store over a kvBackend: the tables and their unique
// indexes as buckets, the committed records cached in memory.
type kvStore struct {
	kv kvBackend
	// Host is the conductor name recorded in history events.
	Host string

	nodes       *cache[*Node]
	ports       *cache[*Port]
	portgroups  *cache[*Portgroup]
	chassis     *cache[*Chassis]
	allocations *cache[*Allocation]
	templates   *cache[*DeployTemplate]
	runbooks    *cache[*Runbook]
	connectors  *cache[*VolumeConnector]
	targets     *cache[*VolumeTarget]
	conductors  *cache[*Conductor]
	// tables maps a cached table's bucket to the function that decodes a
	// committed value and applies it to the cache (isDel: raw is nil).
	tables map[string]func(key string, raw []byte, isDel bool, rev int64) error
	// sweeps maps a cached table's bucket to the function that drops the
	// cached records whose keys are not in seen (a reload).
	sweeps map[string]func(seen map[string]bool)

	// feed carries the committed changes to watchers; committed, when
	// set, is called after a transaction that logged changes committed
	// (bbolt publishes its log from there).
	feed      *hub
	committed func([]*Change)
}

// changeLogger is a kvTx that keeps the change log itself (bbolt): it
// stamps the changes' positions and writes them in the transaction.
type changeLogger interface {
	logChanges(cs []*Change) error
}

// Watch implements Feed.
func (s *kvStore) Watch(from *Position) (*Cursor, error) { return s.feed.Watch(from) }

// Head implements Feed.
func (s *kvStore) Head() Position { return s.feed.Head() }

var _ Store = (*kvStore)(nil)

func newKVStore(kv kvBackend) *kvStore {
	s := &kvStore{kv: kv,
		nodes: newCache[*Node](), ports: newCache[*Port](), portgroups: newCache[*Portgroup](),
		chassis: newCache[*Chassis](), allocations: newCache[*Allocation](), conductors: newCache[*Conductor](),
		templates: newCache[*DeployTemplate](), connectors: newCache[*VolumeConnector](), targets: newCache[*VolumeTarget](),
		runbooks: newCache[*Runbook](), feed: newHub(Position{}),
	}
	for f, of := range NodeIndexes {
		s.nodes.index(f, of)
	}
	s.nodes.jsonCopy = func(v, canon *Node) (*Node, bool) { return v.jsonCopy(canon) }
	s.tables = map[string]func(string, []byte, bool, int64) error{
		tNodes: applier(s.nodes), tPorts: applier(s.ports), tPortgroups: applier(s.portgroups),
		tChassis: applier(s.chassis), tAllocations: applier(s.allocations), tTemplates: applier(s.templates),
		tConnectors: applier(s.connectors), tTargets: applier(s.targets), tConductors: applier(s.conductors),
		tRunbooks: applier(s.runbooks),
	}
	s.sweeps = map[string]func(map[string]bool){
		tNodes: sweeper(s.nodes), tPorts: sweeper(s.ports), tPortgroups: sweeper(s.portgroups),
		tChassis: sweeper(s.chassis), tAllocations: sweeper(s.allocations), tTemplates: sweeper(s.templates),
		tConnectors: sweeper(s.connectors), tTargets: sweeper(s.targets), tConductors: sweeper(s.conductors),
		tRunbooks: sweeper(s.runbooks),
	}
	return s
}

// sweeper returns the function that deletes from c the records whose keys
// are not in seen.
func sweeper[P entity](c *cache[P]) func(map[string]bool) {
	return func(seen map[string]bool) {
		c.mu.RLock()
		var gone []P
		for k, v := range c.byKey {
			if !seen[k] {
				gone = append(gone, v)
			}
		}
		c.mu.RUnlock()
		for _, v := range gone {
			var zero P
			c.apply(v.key(), zero, true, revOf(v)+1)
		}
	}
}

// applier returns the function that applies a committed value of one
// table to its cache. A put carries its own revision; rev is that of a
// delete (0: unknown, just after the cached record's).
func applier[T any, P interface {
	*T
	entity
}](c *cache[P]) func(string, []byte, bool, int64) error {
	return func(key string, raw []byte, isDel bool, rev int64) error {
		if isDel {
			if rev == 0 { // the revision of a delete is not known: after the cached one
				old, ok := c.get(key)
				if !ok {
					return nil
				}
				rev = revOf(old) + 1
			}
			var zero P
			c.apply(key, zero, true, rev)
			return nil
		}
		p := P(new(T))
		if err := json.Unmarshal(raw, p); err != nil {
			return fmt.Errorf("store: %s: %w", key, err)
		}
		c.apply(key, p, false, revOf(p))
		return nil
	}
}

// load fills the caches from the backend.
func (s *kvStore) load(ctx context.Context) error {
	return s.kv.view(ctx, func(tx kvTx) error {
		for table, apply := range s.tables {
			if err := tx.forEach(table, func(k, v []byte) error {
				if err := apply(string(k), v, false, 0); err != nil {
					return fmt.Errorf("%s: %w", table, err)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
}

// Close closes the backend.
func (s *kvStore) Close() error { return s.kv.close() }

type change struct {
	apply func()
}

type kvTxn struct {
	s       *kvStore
	tx      kvTx
	changes []change
	now     time.Time
	// undo restores the header fields Put stamped on the caller's records.
	undo []func()
	// feed holds the changes of watched tables, for the change log.
	feed []*Change
}

// Update runs fn in one backend transaction and, once it committed,
// applies its changes to the caches.
func (s *kvStore) Update(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var t *kvTxn
	err := s.kv.update(ctx, func(tx kvTx) error {
		if t != nil {
			// A retry: the records the last run stamped (id, revision,
			// timestamps) get their values back, so that fn finds them
			// as it did the first time.
			for i := len(t.undo) - 1; i >= 0; i-- {
				t.undo[i]()
			}
		}
		t = &kvTxn{s: s, tx: tx, now: time.Now().UTC()}
		if err := fn(t); err != nil {
			return err
		}
		if l, ok := tx.(changeLogger); ok && len(t.feed) > 0 {
			return l.logChanges(t.feed)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, c := range t.changes {
		c.apply()
	}
	if s.committed != nil && len(t.feed) > 0 {
		s.committed(t.feed)
	}
	return nil
}

func idxBucket(table, field string) string { return "idx:" + table + ":" + field }

func txGetKey[T any, P interface {
	*T
	entity
}](t *kvTxn, table, key string) (P, error) {
	v, err := t.tx.get(table, key)
	if err != nil {
		return nil, fmt.Errorf("store: %s %s: %w", table, key, err)
	}
	if v == nil {
		return nil, fmt.Errorf("store: %s %s: %w", table, key, ErrNotFound)
	}
	p := P(new(T))
	if err := json.Unmarshal(v, p); err != nil {
		return nil, fmt.Errorf("store: %s %s: %w", table, key, err)
	}
	return p, nil
}

// txGet resolves ident as a key when it looks like a UUID (or always, when
// byField is empty) and otherwise through the unique index byField.
func txGet[T any, P interface {
	*T
	entity
}](t *kvTxn, table, byField, ident string) (P, error) {
	if byField == "" || IsUUID(ident) {
		return txGetKey[T, P](t, table, CanonicalUUID(ident))
	}
	k, err := t.tx.get(idxBucket(table, byField), ident)
	if err != nil {
		return nil, fmt.Errorf("store: %s %s: %w", table, ident, err)
	}
	if k == nil {
		return nil, fmt.Errorf("store: %s %s: %w", table, ident, ErrNotFound)
	}
	return txGetKey[T, P](t, table, string(k))
}

// txPut writes v: a create when its revision is 0, else a compare-and-swap
// on the stored revision.
func txPut[T any, P interface {
	*T
	entity
}](t *kvTxn, table string, c *cache[P], v P) error {
	_, err := txPutOld(t, table, c, v)
	return err
}

// txPutOld is txPut returning the record it replaced (nil for a create).
func txPutOld[T any, P interface {
	*T
	entity
}](t *kvTxn, table string, c *cache[P], v P) (P, error) {
	return txPutWith(t, table, c, v, nil)
}

// txPutWith is txPutOld; cacheCopy, when set, makes the cache's copy of
// v (stamped, given the record it replaces) instead of the table's
// jsonCopy.
func txPutWith[T any, P interface {
	*T
	entity
}](t *kvTxn, table string, c *cache[P], v P, cacheCopy func(old P) (P, bool)) (P, error) {
	key := v.key()
	if key == "" {
		return nil, fmt.Errorf("store: %s: empty key", table)
	}
	id, rev, created, updated := v.hdr()
	id0, rev0, created0, updated0 := *id, *rev, *created, *updated
	t.undo = append(t.undo, func() { *id, *rev, *created, *updated = id0, rev0, created0, updated0 })
	var old P
	raw, err := t.tx.get(table, key)
	oldRaw := raw
	if err != nil {
		return nil, fmt.Errorf("store: %s %s: %w", table, key, err)
	}
	if raw != nil {
		// The committed copy in memory, when it is the stored revision,
		// saves decoding the record (a heartbeat's write costs a third
		// less); it is only read here.
		if c != nil {
			if cached, ok := c.get(key); ok && revOf(cached) == quickRevision(raw) {
				old = cached
			}
		}
		if old == nil {
			old = P(new(T))
			if err := json.Unmarshal(raw, old); err != nil {
				return nil, fmt.Errorf("store: %s %s: %w", table, key, err)
			}
		}
		if *rev == 0 {
			return nil, &DuplicateError{Table: table, Value: key}
		}
		if revOf(old) != *rev {
			return nil, fmt.Errorf("store: %s %s: stored revision %d, writer had %d: %w", table, key, revOf(old), *rev, ErrConflict)
		}
		*id = idOf(old)
		_, _, oc, _ := old.hdr()
		*created = *oc
		now := t.now
		*updated = &now
	} else {
		if *rev != 0 {
			return nil, fmt.Errorf("store: %s %s: %w", table, key, ErrNotFound)
		}
		seq, err := t.tx.nextID(table)
		if err != nil {
			return nil, err
		}
		*id = int64(seq)
		if created.IsZero() {
			*created = t.now
		}
		*updated = nil
	}
	var oldU map[string]string
	if old != nil {
		oldU = old.uniques()
	}
	for f, val := range v.uniques() {
		if val == oldU[f] {
			continue
		}
		ib := idxBucket(table, f)
		if val != "" {
			other, err := t.tx.get(ib, val)
			if err != nil {
				return nil, err
			}
			if other != nil && string(other) != key {
				return nil, &DuplicateError{Table: table, Field: f, Value: val}
			}
			if err := t.tx.put(ib, val, []byte(key)); err != nil {
				return nil, err
			}
		}
		if o := oldU[f]; o != "" {
			if err := t.tx.del(ib, o); err != nil {
				return nil, err
			}
		}
	}
	var oldRev int64
	if old != nil {
		oldRev = revOf(old)
	}
	r, err := t.tx.nextRev(oldRev)
	if err != nil {
		return nil, err
	}
	*rev = r
	raw, err = json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("store: %s %s: %w", table, key, err)
	}
	if err := t.tx.put(table, key, raw); err != nil {
		return nil, err
	}
	if c != nil {
		// The cache gets its own copy so the caller may keep changing v:
		// a JSON copy of v now, when the table has one (the decoded
		// record, without decoding), else decoded once the transaction
		// has committed, by the writer: concurrent writers share one
		// commit, which runs their transactions one after the other, so
		// what can wait for the commit is kept out of it.
		var cp P
		ok := false
		switch {
		case cacheCopy != nil:
			cp, ok = cacheCopy(old)
		case c.jsonCopy != nil:
			cp, ok = c.jsonCopy(v, old)
		}
		t.changes = append(t.changes, change{func() {
			if !ok {
				cp = P(new(T))
				if err := json.Unmarshal(raw, cp); err != nil {
					return
				}
			}
			c.apply(key, cp, false, r)
		}})
		if feedTables[table] {
			ch := &Change{Table: table, Key: key, Op: OpCreate, Revision: r, Value: raw, Time: t.now}
			if oldRaw != nil {
				ch.Op, ch.Old = OpUpdate, diffFields(oldRaw, raw)
			}
			t.feed = append(t.feed, ch)
		}
	}
	return old, nil
}

func txDelete[T any, P interface {
	*T
	entity
}](t *kvTxn, table string, c *cache[P], key string) error {
	old, err := txGetKey[T, P](t, table, key)
	if err != nil {
		return err
	}
	for f, val := range old.uniques() {
		if val == "" {
			continue
		}
		if err := t.tx.del(idxBucket(table, f), val); err != nil {
			return err
		}
	}
	if err := t.tx.del(table, key); err != nil {
		return err
	}
	r, err := t.tx.nextRev(revOf(old))
	if err != nil {
		return err
	}
	if c != nil {
		t.changes = append(t.changes, change{func() { var zero P; c.apply(key, zero, true, r) }})
		if feedTables[table] {
			if raw, err := json.Marshal(old); err == nil {
				t.feed = append(t.feed, &Change{Table: table, Key: key, Op: OpDelete, Revision: r, Value: raw, Time: t.now})
			}
		}
	}
	return nil
}

func (t *kvTxn) Node(ident string) (*Node, error) {
	return txGetCached[Node](t, tNodes, t.s.nodes, "name", ident)
}

// txGetCached is txGet that copies the cached record instead of decoding
// the stored one when the cache holds the stored revision (a heartbeat's
// read-modify-write decodes no node).
func txGetCached[T any, P interface {
	*T
	entity
}](t *kvTxn, table string, c *cache[P], byField, ident string) (P, error) {
	key := CanonicalUUID(ident)
	if byField != "" && !IsUUID(ident) {
		k, err := t.tx.get(idxBucket(table, byField), ident)
		if err != nil {
			return nil, fmt.Errorf("store: %s %s: %w", table, ident, err)
		}
		if k == nil {
			return nil, fmt.Errorf("store: %s %s: %w", table, ident, ErrNotFound)
		}
		key = string(k)
	}
	v, err := t.tx.get(table, key)
	if err != nil {
		return nil, fmt.Errorf("store: %s %s: %w", table, key, err)
	}
	if v == nil {
		return nil, fmt.Errorf("store: %s %s: %w", table, key, ErrNotFound)
	}
	if cached, ok := c.get(key); ok && revOf(cached) == quickRevision(v) {
		if c.jsonCopy != nil {
			if cp, ok := c.jsonCopy(cached, cached); ok {
				return cp, nil
			}
		}
		return deepCopy(cached), nil
	}
	p := P(new(T))
	if err := json.Unmarshal(v, p); err != nil {
		return nil, fmt.Errorf("store: %s %s: %w", table, key, err)
	}
	return p, nil
}

// PutNode writes n; when it sets a new last_error, the error is also
// journaled in the node's history in the same transaction.
func (t *kvTxn) PutNode(n *Node) error {
	old, err := txPutOld(t, tNodes, t.s.nodes, n)
	if err != nil {
		return err
	}
	return t.nodeHistory(n, old)
}

// UpdateNodeInfo implements Tx: the node as committed is read without a
// copy (when the cache holds the stored revision) and written with a new
// driver_internal_info, the rest shared with the cached node.
func (t *kvTxn) UpdateNodeInfo(ident string, fn func(n *Node, info Object) error) error {
	key := CanonicalUUID(ident)
	if !IsUUID(ident) {
		k, err := t.tx.get(idxBucket(tNodes, "name"), ident)
		if err != nil {
			return fmt.Errorf("store: %s %s: %w", tNodes, ident, err)
		}
		if k == nil {
			return fmt.Errorf("store: %s %s: %w", tNodes, ident, ErrNotFound)
		}
		key = string(k)
	}
	raw, err := t.tx.get(tNodes, key)
	if err != nil {
		return fmt.Errorf("store: %s %s: %w", tNodes, key, err)
	}
	if raw == nil {
		return fmt.Errorf("store: %s %s: %w", tNodes, key, ErrNotFound)
	}
	cached, ok := t.s.nodes.get(key)
	if !ok || revOf(cached) != quickRevision(raw) {
		// Not in memory as stored: a node of its own.
		n, err := t.Node(key)
		if err != nil {
			return err
		}
		if n.DriverInternalInfo == nil {
			n.DriverInternalInfo = Object{}
		}
		if err := fn(n, n.DriverInternalInfo); err != nil {
			return err
		}
		return t.PutNode(n)
	}
	info := make(Object, len(cached.DriverInternalInfo)+4)
	for k, v := range cached.DriverInternalInfo {
		info[k] = v
	}
	if err := fn(cached, info); err != nil {
		return err
	}
	n := *cached
	n.DriverInternalInfo = info
	old, err := txPutWith(t, tNodes, t.s.nodes, &n, func(old *Node) (*Node, bool) {
		if old != cached {
			return nil, false // a node that changed under the reader: decoded
		}
		c := jcopy{ok: true}
		cp := n
		cp.DriverInternalInfo = c.obj(n.DriverInternalInfo)
		cp.UpdatedAt = c.timep(n.UpdatedAt)
		cp.CreatedAt = c.time(n.CreatedAt)
		return &cp, c.ok
	})
	if err != nil {
		return err
	}
	return t.nodeHistory(&n, old)
}

// nodeHistory journals n's last_error in its history when it is new (old:
// the record n replaced, nil for a create).
func (t *kvTxn) nodeHistory(n, old *Node) error {
	var oldErr *string
	oldState := n.ProvisionState
	if old != nil {
		oldErr, oldState = old.LastError, old.ProvisionState
	}
	if e := deref(n.LastError); e != "" && e != deref(oldErr) {
		return t.addHistory(n.UUID, HistoryEvent{Severity: "ERROR", EventType: HistoryEventType(oldState, n.ProvisionState), Event: e})
	}
	return nil
}

// DeleteNode deletes the node and its history.
func (t *kvTxn) DeleteNode(u string) error {
	if err := txDelete[Node](t, tNodes, t.s.nodes, u); err != nil {
		return err
	}
	if err := t.tx.dropBucket(histPrefix + CanonicalUUID(u)); err != nil {
		return err
	}
	for _, name := range []string{bBIOS, bFirmware} {
		if err := t.tx.del(name, CanonicalUUID(u)); err != nil {
			return err
		}
	}
	return nil
}

// nodeValue decodes node's value in the bucket name (a per-node cache:
// BIOS settings, firmware components) into out, left as it is when there
// is none.
func nodeValue(tx kvTx, name, node string, out any) error {
	v, err := tx.get(name, CanonicalUUID(node))
	if err != nil {
		return fmt.Errorf("store: %s of node %s: %w", name, node, err)
	}
	if v != nil {
		if err := json.Unmarshal(v, out); err != nil {
			return fmt.Errorf("store: %s of node %s: %w", name, node, err)
		}
	}
	return nil
}

// putNodeValue stores v as node's value in the bucket name.
func putNodeValue(tx kvTx, name, node string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.put(name, CanonicalUUID(node), raw)
}

// SyncFirmwareComponents implements Tx (one value per node in the
// firmware_components bucket).
func (t *kvTxn) SyncFirmwareComponents(node string, versions map[string]string) error {
	var list []FirmwareComponent
	if err := nodeValue(t.tx, bFirmware, node, &list); err != nil {
		return err
	}
	for comp, ver := range versions {
		i := slices.IndexFunc(list, func(c FirmwareComponent) bool { return c.Component == comp })
		switch {
		case i < 0:
			list = append(list, FirmwareComponent{Component: comp, InitialVersion: ver, CurrentVersion: ver, CreatedAt: t.now})
		case list[i].CurrentVersion != ver:
			now := t.now
			list[i].CurrentVersion, list[i].UpdatedAt = ver, &now
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Component < list[j].Component })
	return putNodeValue(t.tx, bFirmware, node, list)
}

// SyncBIOSSettings implements Tx: a node's settings are one value of the
// bios_settings bucket, keyed by the node's UUID.
func (t *kvTxn) SyncBIOSSettings(node string, settings []BIOSSetting) (created, updated, deleted int, err error) {
	var old []BIOSSetting
	if err := nodeValue(t.tx, bBIOS, node, &old); err != nil {
		return 0, 0, 0, err
	}
	known := make(map[string]BIOSSetting, len(old))
	for _, s := range old {
		known[s.Name] = s
	}
	out := make([]BIOSSetting, 0, len(settings))
	for _, s := range settings {
		prev, ok := known[s.Name]
		delete(known, s.Name)
		switch {
		case !ok:
			s.CreatedAt, s.UpdatedAt = t.now, nil
			created++
		case biosChanged(prev, s):
			now := t.now
			s.CreatedAt, s.UpdatedAt = prev.CreatedAt, &now
			updated++
		default:
			s.CreatedAt, s.UpdatedAt = prev.CreatedAt, prev.UpdatedAt
		}
		out = append(out, s)
	}
	deleted = len(known)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return created, updated, deleted, putNodeValue(t.tx, bBIOS, node, out)
}

// biosChanged reports whether a setting's value or description differs
// (timestamps aside).
func biosChanged(a, b BIOSSetting) bool {
	a.CreatedAt, a.UpdatedAt, b.CreatedAt, b.UpdatedAt = time.Time{}, nil, time.Time{}, nil
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return !bytes.Equal(x, y)
}

// AddHistory implements Tx.
func (t *kvTxn) AddHistory(node string, ev HistoryEvent) error { return t.addHistory(node, ev) }

// addHistory appends ev to the node's history (a bucket per node, keyed
// by sequence: chronological), dropping the entry that falls out of the
// last MaxHistory.
func (t *kvTxn) addHistory(node string, ev HistoryEvent) error {
	bucket := histPrefix + CanonicalUUID(node)
	seq, err := t.tx.nextSeq(bucket)
	if err != nil {
		return err
	}
	ev.ID, ev.UUID, ev.CreatedAt, ev.Conductor = int64(seq), uuid.NewString(), t.now, t.s.Host
	raw, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if err := t.tx.put(bucket, string(binary.BigEndian.AppendUint64(nil, seq)), raw); err != nil {
		return err
	}
	if seq > MaxHistory {
		return t.tx.del(bucket, string(binary.BigEndian.AppendUint64(nil, seq-MaxHistory)))
	}
	return nil
}
func (t *kvTxn) Port(ident string) (*Port, error) { return txGet[Port](t, tPorts, "", ident) }
func (t *kvTxn) PutPort(p *Port) error            { return txPut(t, tPorts, t.s.ports, p) }
func (t *kvTxn) DeletePort(u string) error        { return txDelete[Port](t, tPorts, t.s.ports, u) }
func (t *kvTxn) Portgroup(ident string) (*Portgroup, error) {
	return txGet[Portgroup](t, tPortgroups, "name", ident)
}
func (t *kvTxn) PutPortgroup(p *Portgroup) error { return txPut(t, tPortgroups, t.s.portgroups, p) }
func (t *kvTxn) DeletePortgroup(u string) error {
	return txDelete[Portgroup](t, tPortgroups, t.s.portgroups, u)
}
func (t *kvTxn) Chassis(u string) (*Chassis, error) { return txGet[Chassis](t, tChassis, "", u) }
func (t *kvTxn) PutChassis(c *Chassis) error        { return txPut(t, tChassis, t.s.chassis, c) }
func (t *kvTxn) DeleteChassis(u string) error       { return txDelete[Chassis](t, tChassis, t.s.chassis, u) }
func (t *kvTxn) Allocation(ident string) (*Allocation, error) {
	return txGet[Allocation](t, tAllocations, "name", ident)
}
func (t *kvTxn) PutAllocation(a *Allocation) error {
	return txPut(t, tAllocations, t.s.allocations, a)
}
func (t *kvTxn) DeleteAllocation(u string) error {
	return txDelete[Allocation](t, tAllocations, t.s.allocations, u)
}
func (t *kvTxn) VolumeConnector(u string) (*VolumeConnector, error) {
	return txGet[VolumeConnector](t, tConnectors, "", u)
}
func (t *kvTxn) PutVolumeConnector(v *VolumeConnector) error {
	return txPut(t, tConnectors, t.s.connectors, v)
}
func (t *kvTxn) DeleteVolumeConnector(u string) error {
	return txDelete[VolumeConnector](t, tConnectors, t.s.connectors, u)
}
func (t *kvTxn) VolumeTarget(u string) (*VolumeTarget, error) {
	return txGet[VolumeTarget](t, tTargets, "", u)
}
func (t *kvTxn) PutVolumeTarget(v *VolumeTarget) error { return txPut(t, tTargets, t.s.targets, v) }
func (t *kvTxn) DeleteVolumeTarget(u string) error {
	return txDelete[VolumeTarget](t, tTargets, t.s.targets, u)
}
func (t *kvTxn) DeployTemplate(ident string) (*DeployTemplate, error) {
	return txGet[DeployTemplate](t, tTemplates, "name", ident)
}
func (t *kvTxn) PutDeployTemplate(d *DeployTemplate) error {
	return txPut(t, tTemplates, t.s.templates, d)
}
func (t *kvTxn) DeleteDeployTemplate(u string) error {
	return txDelete[DeployTemplate](t, tTemplates, t.s.templates, u)
}
func (t *kvTxn) Runbook(ident string) (*Runbook, error) {
	return txGet[Runbook](t, tRunbooks, "name", ident)
}
func (t *kvTxn) PutRunbook(r *Runbook) error { return txPut(t, tRunbooks, t.s.runbooks, r) }
func (t *kvTxn) DeleteRunbook(u string) error {
	return txDelete[Runbook](t, tRunbooks, t.s.runbooks, u)
}
func (t *kvTxn) Conductor(h string) (*Conductor, error) {
	return txGet[Conductor](t, tConductors, "", h)
}
func (t *kvTxn) PutConductor(c *Conductor) error { return txPut(t, tConductors, t.s.conductors, c) }
func (t *kvTxn) DeleteConductor(h string) error {
	return txDelete[Conductor](t, tConductors, t.s.conductors, h)
}
func (t *kvTxn) Record(table, key string) (*Record, error) {
	return txGetKey[Record](t, recPrefix+table, key)
}
func (t *kvTxn) PutRecord(table string, r *Record) error {
	return txPut[Record](t, recPrefix+table, nil, r)
}
func (t *kvTxn) DeleteRecord(table, key string) error {
	return txDelete[Record](t, recPrefix+table, nil, key)
}

func cacheGet[P entity](c *cache[P], table, byField, ident string) (P, error) {
	var v P
	var ok bool
	if byField == "" || IsUUID(ident) {
		v, ok = c.get(CanonicalUUID(ident))
	} else {
		v, ok = c.getBy(byField, ident)
	}
	if !ok {
		return v, fmt.Errorf("store: %s %s: %w", table, ident, ErrNotFound)
	}
	return v, nil
}

func (s *kvStore) Node(ident string) (*Node, error) { return cacheGet(s.nodes, tNodes, "name", ident) }
func (s *kvStore) Nodes(f func(*Node) bool) []*Node { return s.nodes.list(f) }
func (s *kvStore) Port(u string) (*Port, error)     { return cacheGet(s.ports, tPorts, "", u) }
func (s *kvStore) PortByAddress(mac string) (*Port, error) {
	v, ok := s.ports.getBy("address", mac)
	if !ok {
		return nil, fmt.Errorf("store: port with address %s: %w", mac, ErrNotFound)
	}
	return v, nil
}
func (s *kvStore) Ports(f func(*Port) bool) []*Port { return s.ports.list(f) }
func (s *kvStore) Portgroup(ident string) (*Portgroup, error) {
	return cacheGet(s.portgroups, tPortgroups, "name", ident)
}
func (s *kvStore) Portgroups(f func(*Portgroup) bool) []*Portgroup { return s.portgroups.list(f) }
func (s *kvStore) Chassis(u string) (*Chassis, error)              { return cacheGet(s.chassis, tChassis, "", u) }
func (s *kvStore) ChassisList(f func(*Chassis) bool) []*Chassis    { return s.chassis.list(f) }
func (s *kvStore) Allocation(ident string) (*Allocation, error) {
	return cacheGet(s.allocations, tAllocations, "name", ident)
}
func (s *kvStore) Allocations(f func(*Allocation) bool) []*Allocation { return s.allocations.list(f) }
func (s *kvStore) VolumeConnector(u string) (*VolumeConnector, error) {
	return cacheGet(s.connectors, tConnectors, "", u)
}
func (s *kvStore) VolumeConnectors(f func(*VolumeConnector) bool) []*VolumeConnector {
	return s.connectors.list(f)
}
func (s *kvStore) VolumeTarget(u string) (*VolumeTarget, error) {
	return cacheGet(s.targets, tTargets, "", u)
}
func (s *kvStore) VolumeTargets(f func(*VolumeTarget) bool) []*VolumeTarget {
	return s.targets.list(f)
}
func (s *kvStore) DeployTemplate(ident string) (*DeployTemplate, error) {
	return cacheGet(s.templates, tTemplates, "name", ident)
}
func (s *kvStore) DeployTemplates(f func(*DeployTemplate) bool) []*DeployTemplate {
	return s.templates.list(f)
}
func (s *kvStore) Runbook(ident string) (*Runbook, error) {
	return cacheGet(s.runbooks, tRunbooks, "name", ident)
}
func (s *kvStore) Runbooks(f func(*Runbook) bool) []*Runbook { return s.runbooks.list(f) }
func (s *kvStore) Conductor(h string) (*Conductor, error) {
	v, ok := s.conductors.get(h)
	if !ok {
		return nil, fmt.Errorf("store: conductor %s: %w", h, ErrNotFound)
	}
	return v, nil
}
func (s *kvStore) Conductors() []*Conductor { return s.conductors.list(nil) }

// NodeHistory returns a node's history, oldest first (nil when it has
// none).
func (s *kvStore) NodeHistory(node string) ([]*HistoryEvent, error) {
	var out []*HistoryEvent
	err := s.kv.view(context.Background(), func(tx kvTx) error {
		out = nil
		return tx.forEach(histPrefix+CanonicalUUID(node), func(_, v []byte) error {
			ev := new(HistoryEvent)
			if err := json.Unmarshal(v, ev); err != nil {
				return fmt.Errorf("store: history of node %s: %w", node, err)
			}
			out = append(out, ev)
			return nil
		})
	})
	return out, err
}

// FirmwareComponents implements Store.
func (s *kvStore) FirmwareComponents(node string) ([]FirmwareComponent, error) {
	var out []FirmwareComponent
	err := s.kv.view(context.Background(), func(tx kvTx) error { return nodeValue(tx, bFirmware, node, &out) })
	return out, err
}

// BIOSSettings implements Store.
func (s *kvStore) BIOSSettings(node string) ([]BIOSSetting, error) {
	var out []BIOSSetting
	err := s.kv.view(context.Background(), func(tx kvTx) error { return nodeValue(tx, bBIOS, node, &out) })
	return out, err
}

// Records lists a record table (read from the backend, not cached), in
// id order.
func (s *kvStore) Records(table string) ([]*Record, error) {
	var out []*Record
	err := s.kv.view(context.Background(), func(tx kvTx) error {
		out = nil
		return tx.forEach(recPrefix+table, func(k, v []byte) error {
			r := new(Record)
			if err := json.Unmarshal(v, r); err != nil {
				return fmt.Errorf("store: %s %s: %w", table, k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}
