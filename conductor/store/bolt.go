package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Bolt is the embedded Store: one bbolt file, for one conductor.
type Bolt struct {
	*kvStore
	db *bolt.DB

	// pumpMu serializes publishing the change log; pumpWant asks the
	// publisher running to read again.
	pumpMu   sync.Mutex
	pumping  bool
	pumpWant bool
	// fresh holds the changes of committed transactions by log sequence,
	// so that publishing them decodes none it has in memory. A shared
	// commit's changes are all in it once the commit is done, before any
	// of its writers publishes (the first to publish reads them all).
	fresh map[uint64]*Change
	// readBack counts the changes publish decoded from the log (none
	// when every committed change was in fresh).
	readBack atomic.Int64
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens (creating if needed) the store at path and loads the
// committed records into memory.
func OpenBolt(path string) (*Bolt, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Bolt{db: db}
	s.kvStore = newKVStore(boltKV{db: db, group: &groupCommit{db: db}, logged: s.keepFresh})
	if err := s.load(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: load %s: %w", path, err)
	}
	if err := s.loadFeed(); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: load %s: %w", path, err)
	}
	s.committed = s.publish
	return s, nil
}

// bFeed is the change log's bucket: changes keyed by their big-endian
// sequence, the last FeedLogSize of them.
const bFeed = "_feed"

// loadFeed puts the change log into the feed.
func (s *Bolt) loadFeed() error {
	var floor uint64
	var cs []*Change
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bFeed))
		if b == nil {
			return nil
		}
		floor = b.Sequence()
		if k, _ := b.Cursor().First(); k != nil {
			floor = binary.BigEndian.Uint64(k) - 1
		}
		var err error
		cs, err = readFeed(b, floor, nil)
		return err
	})
	if err != nil {
		return err
	}
	s.feed = newHub(Position{Rev: int64(floor)})
	s.feed.publish(cs)
	return nil
}

// readFeed decodes the logged changes after seq (those known takes from
// memory instead, when it has them).
func readFeed(b *bolt.Bucket, seq uint64, known func(uint64) *Change) ([]*Change, error) {
	var out []*Change
	c := b.Cursor()
	for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, seq+1)); k != nil; k, v = c.Next() {
		if known != nil {
			if ch := known(binary.BigEndian.Uint64(k)); ch != nil {
				out = append(out, ch)
				continue
			}
		}
		ch := new(Change)
		if err := json.Unmarshal(v, ch); err != nil {
			return nil, fmt.Errorf("change log %d: %w", binary.BigEndian.Uint64(k), err)
		}
		out = append(out, ch)
	}
	return out, nil
}

// publish hands the changes committed since the last call to the feed, in
// the log's order (transactions committed in one batch finish in any
// order; the log has them in commit order).
func (s *Bolt) publish([]*Change) {
	s.pumpMu.Lock()
	if s.pumping {
		s.pumpWant = true
		s.pumpMu.Unlock()
		return
	}
	s.pumping = true
	for {
		s.pumpWant = false
		s.pumpMu.Unlock()
		var cs []*Change
		head := s.feed.Head()
		err := s.db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(bFeed))
			if b == nil {
				return nil
			}
			var err error
			cs, err = readFeed(b, uint64(head.Rev), s.takeFresh)
			return err
		})
		s.pumpMu.Lock()
		for seq := range s.fresh {
			if int64(seq) <= head.Rev {
				delete(s.fresh, seq) // published before (by a read of the log)
			}
		}
		s.pumpMu.Unlock()
		if err == nil {
			s.feed.publish(cs)
		}
		s.pumpMu.Lock()
		if !s.pumpWant {
			s.pumping = false
			s.pumpMu.Unlock()
			return
		}
	}
}

// keepFresh keeps the changes of a committed transaction for publish.
func (s *Bolt) keepFresh(cs []*Change) {
	s.pumpMu.Lock()
	defer s.pumpMu.Unlock()
	if s.fresh == nil {
		s.fresh = map[uint64]*Change{}
	}
	for _, c := range cs {
		s.fresh[uint64(c.Pos.Rev)] = c
	}
}

// takeFresh returns (and forgets) the committed change at log sequence
// seq, when it is in memory.
func (s *Bolt) takeFresh(seq uint64) *Change {
	s.pumpMu.Lock()
	defer s.pumpMu.Unlock()
	c := s.fresh[seq]
	if c != nil {
		delete(s.fresh, seq)
	} else {
		s.readBack.Add(1)
	}
	return c
}

// boltKV is the kvBackend of a bbolt file: a bucket per kvTx bucket.
type boltKV struct {
	db    *bolt.DB
	group *groupCommit
	// logged, when set, gets the changes a transaction logged once it
	// has committed (the commit shared with others included).
	logged func([]*Change)
}

// update runs fn in a group transaction: concurrent updates are
// committed together (one fsync), each still atomic and isolated.
func (b boltKV) update(_ context.Context, fn func(kvTx) error) error {
	return b.group.update(func(tx *bolt.Tx) error { return fn(boltTx{tx, b.logged}) })
}

func (b boltKV) view(_ context.Context, fn func(kvTx) error) error {
	return b.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx, nil}) })
}

func (b boltKV) close() error { return b.db.Close() }

type boltTx struct {
	tx     *bolt.Tx
	logged func([]*Change)
}

func (t boltTx) get(bucket, key string) ([]byte, error) {
	if b := t.tx.Bucket([]byte(bucket)); b != nil {
		return b.Get([]byte(key)), nil
	}
	return nil, nil
}

func (t boltTx) bucket(name string) (*bolt.Bucket, error) {
	if !t.tx.Writable() {
		return t.tx.Bucket([]byte(name)), nil
	}
	return t.tx.CreateBucketIfNotExists([]byte(name))
}

func (t boltTx) put(bucket, key string, v []byte) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), v)
}

func (t boltTx) del(bucket, key string) error {
	if b := t.tx.Bucket([]byte(bucket)); b != nil {
		return b.Delete([]byte(key))
	}
	return nil
}

func (t boltTx) nextID(table string) (uint64, error) { return t.nextSeq(table) }

func (t boltTx) nextSeq(bucket string) (uint64, error) {
	b, err := t.bucket(bucket)
	if err != nil {
		return 0, err
	}
	return b.NextSequence()
}

// nextRev takes the next number of one store-wide sequence.
func (t boltTx) nextRev(int64) (int64, error) {
	seq, err := t.nextSeq(bMeta)
	return int64(seq), err
}

// logChanges implements changeLogger: each change gets the log's next
// sequence as its position and is written with the records; the entry
// that falls out of the last FeedLogSize is deleted.
func (t boltTx) logChanges(cs []*Change) error {
	b, err := t.bucket(bFeed)
	if err != nil {
		return err
	}
	for _, c := range cs {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		c.Pos = Position{Rev: int64(seq)}
		raw, err := encodeChange(c)
		if err != nil {
			return err
		}
		if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), raw); err != nil {
			return err
		}
		if seq > FeedLogSize {
			if err := b.Delete(binary.BigEndian.AppendUint64(nil, seq-FeedLogSize)); err != nil {
				return err
			}
		}
	}
	if t.logged != nil {
		t.tx.OnCommit(func() { t.logged(cs) })
	}
	return nil
}

func (t boltTx) forEach(bucket string, fn func(k, v []byte) error) error {
	if b := t.tx.Bucket([]byte(bucket)); b != nil {
		return b.ForEach(fn)
	}
	return nil
}

func (t boltTx) dropBucket(bucket string) error {
	if err := t.tx.DeleteBucket([]byte(bucket)); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
		return err
	}
	return nil
}
