package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The change feed: every committed write of a watched table (nodes, ports,
// portgroups, allocations, conductors) is a Change at a Position, in commit
// order, and watchers read them through a Cursor.
//
// Positions are the store's own: on bbolt a sequence kept with the records
// (the change log, a bucket of the last FeedLogSize changes written in the
// transaction that made them, so the feed survives a restart); on etcd the
// cluster's revision of the commit and the change's index in it (the
// watch that keeps the in-memory copy feeds the log, and older changes are
// read back from etcd's own history until it is compacted), the same on
// every conductor of the cluster.
//
// The feed keeps the last FeedLogSize changes in memory. Publishing a
// change wakes every waiting cursor at once (a closed channel) and never
// waits for any of them: a cursor that falls behind the log's start gets
// ErrTooOld and its reader must list again.

// FeedLogSize is how many changes the feed keeps (in memory, and on bbolt
// on disk).
const FeedLogSize = 10000

// ErrTooOld: the position asked for is older than the oldest change the
// feed still holds (the client must list again), or belongs to another
// store.
var ErrTooOld = errors.New("store: feed position too old")

// Position is a place in the change feed: the commit's revision (bbolt:
// the change's sequence; etcd: the cluster revision) and the change's index
// in the commit (always 0 on bbolt).
type Position struct {
	Rev int64
	Sub int32
}

// String renders the position as an SSE event id: "rev" or "rev.sub".
func (p Position) String() string {
	if p.Sub == 0 {
		return strconv.FormatInt(p.Rev, 10)
	}
	return strconv.FormatInt(p.Rev, 10) + "." + strconv.FormatInt(int64(p.Sub), 10)
}

// Less orders positions.
func (p Position) Less(q Position) bool {
	return p.Rev < q.Rev || (p.Rev == q.Rev && p.Sub < q.Sub)
}

// ParsePosition reads a position written by String.
func ParsePosition(s string) (Position, error) {
	r, sub, _ := strings.Cut(strings.TrimSpace(s), ".")
	rev, err := strconv.ParseInt(r, 10, 64)
	if err != nil || rev < 0 {
		return Position{}, fmt.Errorf("store: bad feed position %q", s)
	}
	var n int64
	if sub != "" {
		if n, err = strconv.ParseInt(sub, 10, 32); err != nil || n < 0 {
			return Position{}, fmt.Errorf("store: bad feed position %q", s)
		}
	}
	return Position{Rev: rev, Sub: int32(n)}, nil
}

// Change operations.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
)

// Change is one committed write of a watched record. Changes handed out by
// the feed are shared: read them, never modify them.
type Change struct {
	Pos   Position `json:"pos"`
	Table string   `json:"table"` // "nodes", "ports", ...
	Key   string   `json:"key"`   // UUID (hostname for conductors)
	Op    string   `json:"op"`
	// Revision is the record's revision after the write (for a delete,
	// one past the deleted record's).
	Revision int64 `json:"revision"`
	// Value is the record as written (for a delete: as it was).
	Value json.RawMessage `json:"value"`
	// Old holds the previous value of every top-level field an update
	// changed (store JSON names); nil for creates and deletes.
	Old  map[string]json.RawMessage `json:"old,omitempty"`
	Time time.Time                  `json:"time"`

	// memo holds what readers derived from the change (Memo).
	memo sync.Map
}

// Memo returns the value readers keep for key on this change, made by
// mk the first time (once, even when many readers ask at once): a
// rendering shared by every watcher. The readers that ask while it is
// being made wait on a channel closed once it is there, so a thousand of
// them are released together (a sync.Once would hand its lock on from
// one waiter to the next, a thousand wake-ups in a row).
func (c *Change) Memo(key any, mk func() any) any {
	if v, ok := c.memo.Load(key); ok {
		return v.(*memoEntry).get(mk)
	}
	v, _ := c.memo.LoadOrStore(key, &memoEntry{done: make(chan struct{})})
	return v.(*memoEntry).get(mk)
}

type memoEntry struct {
	started atomic.Bool
	done    chan struct{} // closed once v is set
	v       any
}

func (e *memoEntry) get(mk func() any) any {
	if e.started.CompareAndSwap(false, true) {
		defer close(e.done)
		e.v = mk()
		return e.v
	}
	<-e.done
	return e.v
}

// Fields lists the top-level fields the change touched (store JSON
// names), sorted; every field for a create or delete.
func (c *Change) Fields() []string {
	if c.Op == OpUpdate {
		out := make([]string, 0, len(c.Old))
		for k := range c.Old {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	var m map[string]json.RawMessage
	_ = json.Unmarshal(c.Value, &m)
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Before returns the record as it was before an update (Value with the
// changed fields set back), or Value for a create or delete.
func (c *Change) Before() json.RawMessage {
	if c.Op != OpUpdate || len(c.Old) == 0 {
		return c.Value
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(c.Value, &m); err != nil {
		return c.Value
	}
	for k, v := range c.Old {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		return c.Value
	}
	return out
}

// feedTables are the tables whose changes the feed carries.
var feedTables = map[string]bool{tNodes: true, tPorts: true, tPortgroups: true, tAllocations: true, tConductors: true}

// diffFields returns the previous value of every top-level field that
// differs between old and new (nil for a field old lacks). The values are
// copies: old may be the database's memory, valid only in its
// transaction.
func diffFields(old, new []byte) map[string]json.RawMessage {
	if d, ok := diffTop(old, new); ok {
		return d
	}
	var a, b map[string]json.RawMessage
	if json.Unmarshal(old, &a) != nil || json.Unmarshal(new, &b) != nil {
		return nil
	}
	out := map[string]json.RawMessage{}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			out[k] = bytes.Clone(v)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out[k] = nil
		}
	}
	return out
}

// encodeChange is json.Marshal(c) without compacting the record again:
// c.Value and the values of c.Old are json.Marshal's output already (or
// pieces of it), and encoding/json rescans every json.RawMessage, which
// cost a heartbeat's write a tenth of its CPU.
func encodeChange(c *Change) ([]byte, error) {
	head, err := json.Marshal(struct {
		Pos      Position  `json:"pos"`
		Table    string    `json:"table"`
		Key      string    `json:"key"`
		Op       string    `json:"op"`
		Revision int64     `json:"revision"`
		Time     time.Time `json:"time"`
	}{c.Pos, c.Table, c.Key, c.Op, c.Revision, c.Time})
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(head)+len(c.Value)+64)
	out = append(out, head[:len(head)-1]...)
	out = append(out, `,"value":`...)
	out = appendRaw(out, c.Value)
	if len(c.Old) > 0 {
		out = append(out, `,"old":{`...)
		keys := make([]string, 0, len(c.Old))
		for k := range c.Old {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				out = append(out, ',')
			}
			kb, err := json.Marshal(k)
			if err != nil {
				return nil, err
			}
			out = append(out, kb...)
			out = append(out, ':')
			out = appendRaw(out, c.Old[k])
		}
		out = append(out, '}')
	}
	return append(out, '}'), nil
}

func appendRaw(out []byte, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return append(out, "null"...)
	}
	return append(out, raw...)
}

// quickRevision is revisionOf for a record written by the store, which
// starts {"id":N,"revision":N (the fields' order in every table's struct),
// read without decoding the rest; other JSON is decoded.
func quickRevision(raw []byte) int64 {
	const idKey, revKey = `{"id":`, `,"revision":`
	if !bytes.HasPrefix(raw, []byte(idKey)) {
		return revisionOf(raw)
	}
	i := len(idKey)
	for i < len(raw) && raw[i] >= '0' && raw[i] <= '9' {
		i++
	}
	if !bytes.HasPrefix(raw[i:], []byte(revKey)) {
		return revisionOf(raw)
	}
	i += len(revKey)
	j := i
	for j < len(raw) && raw[j] >= '0' && raw[j] <= '9' {
		j++
	}
	if j == i || j-i > 18 || j == len(raw) || (raw[j] != ',' && raw[j] != '}') {
		return revisionOf(raw)
	}
	var r int64
	for _, d := range raw[i:j] {
		r = r*10 + int64(d-'0')
	}
	return r
}

// revisionOf reads the "revision" field of a record's JSON.
func revisionOf(raw []byte) int64 {
	var h struct {
		Revision int64 `json:"revision"`
	}
	_ = json.Unmarshal(raw, &h)
	return h.Revision
}

// Feed is the change feed of a store (Bolt and Etcd have one).
type Feed interface {
	// Watch returns a cursor positioned after from; nil: after the last
	// change committed now. ErrTooOld when from is no longer held.
	Watch(from *Position) (*Cursor, error)
	// Head is the position of the last change published.
	Head() Position
}

// hub holds the recent changes and wakes the cursors. Readers take no
// lock: the log is an immutable view swapped atomically by publish (the
// only writer, under mu), so a thousand cursors reading at once never
// hold up a commit.
type hub struct {
	mu    sync.Mutex // publishers
	state atomic.Pointer[hubState]
	// history, when set, reads the changes after from up to (and
	// including) to from the backend, for positions older than the log
	// (etcd's history). Set before the hub is used.
	history func(from, to Position) ([]*Change, error)
	// held, when set, says at once whether the backend's history still
	// holds the changes after from (ErrTooOld when compacted), so that
	// a resume from a lost position is refused up front rather than
	// after the stream started.
	held func(from Position) error
}

// hubState is one published view of the log.
type hubState struct {
	// log holds the changes after floor, in order; at most FeedLogSize.
	// Publishing appends past this view's length (readers never look
	// there) or copies.
	log   []*Change
	floor Position
	// wake is closed when a newer view is published.
	wake chan struct{}
	// epoch is bumped by reset: cursors of an older epoch are told to
	// start again.
	epoch int64
}

func newHub(floor Position) *hub {
	h := &hub{}
	h.state.Store(&hubState{floor: floor, wake: make(chan struct{})})
	return h
}

// publish appends changes (positions after the last one) and wakes the
// cursors.
func (h *hub) publish(cs []*Change) {
	if len(cs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.state.Load()
	next := &hubState{log: old.log, floor: old.floor, epoch: old.epoch, wake: make(chan struct{})}
	for _, c := range cs {
		if !next.head().Less(c.Pos) {
			continue // already published
		}
		next.log = append(next.log, c)
	}
	if n := len(next.log) - FeedLogSize; n > 0 {
		next.floor = next.log[n-1].Pos
		// Copy so the dropped changes are not kept alive by the array.
		next.log = append(make([]*Change, 0, FeedLogSize+FeedLogSize/4), next.log[n:]...)
	}
	h.state.Store(next)
	close(old.wake)
}

// reset drops the log and starts again after floor: changes before it
// were lost (etcd compacted the history the watch needed). Cursors get
// ErrTooOld.
func (h *hub) reset(floor Position) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.state.Load()
	h.state.Store(&hubState{floor: floor, epoch: old.epoch + 1, wake: make(chan struct{})})
	close(old.wake)
}

// head is the last position of the view.
func (st *hubState) head() Position {
	if len(st.log) == 0 {
		return st.floor
	}
	return st.log[len(st.log)-1].Pos
}

// Head implements Feed.
func (h *hub) Head() Position { return h.state.Load().head() }

// Watch implements Feed.
func (h *hub) Watch(from *Position) (*Cursor, error) {
	st := h.state.Load()
	c := &Cursor{h: h, epoch: st.epoch}
	if from == nil {
		c.pos = st.head()
		return c, nil
	}
	if st.head().Less(*from) {
		return nil, fmt.Errorf("%w: position %s is past the last change %s (another store?)", ErrTooOld, from, st.head())
	}
	if from.Less(st.floor) {
		if h.history == nil {
			return nil, fmt.Errorf("%w: position %s, the oldest held is %s", ErrTooOld, from, st.floor)
		}
		if h.held != nil {
			if err := h.held(*from); err != nil {
				return nil, err
			}
		}
		c.replay = true
	}
	c.pos = *from
	return c, nil
}

// Cursor reads the changes after its position.
type Cursor struct {
	h      *hub
	pos    Position
	epoch  int64
	replay bool // the next read comes from the backend's history
}

// Position is the last change read (where a reader resumes).
func (c *Cursor) Position() Position { return c.pos }

// Next returns up to max changes after the cursor (waiting until there is
// one, or done is closed or tick fires: then nil, 0, nil) and the number
// still waiting after them. ErrTooOld when the changes it needs are no
// longer held.
func (c *Cursor) Next(done <-chan struct{}, tick <-chan time.Time, max int) ([]*Change, int, error) {
	if c.replay {
		h := c.h
		floor := h.state.Load().floor
		cs, err := h.history(c.pos, floor)
		if err != nil {
			return nil, 0, err
		}
		c.replay = false
		// The history holds every change up to floor; the log the rest.
		c.pos = floor
		if len(cs) > 0 {
			return cs, 0, nil
		}
	}
	for {
		st := c.h.state.Load()
		if st.epoch != c.epoch {
			return nil, 0, fmt.Errorf("%w: the feed lost changes and started again", ErrTooOld)
		}
		if c.pos.Less(st.floor) {
			return nil, 0, fmt.Errorf("%w: position %s fell behind the oldest change held (%s)", ErrTooOld, c.pos, st.floor)
		}
		log := st.log
		i := sort.Search(len(log), func(i int) bool { return c.pos.Less(log[i].Pos) })
		if i < len(log) {
			end := min(len(log), i+max)
			out := log[i:end:end]
			c.pos = out[len(out)-1].Pos
			return out, len(log) - end, nil
		}
		select {
		case <-st.wake:
		case <-done:
			return nil, 0, nil
		case <-tick:
			return nil, 0, nil
		}
	}
}
