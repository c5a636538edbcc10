package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Bolt is the embedded Store: one bbolt file, for one conductor.
type Bolt struct {
	*kvStore
	db *bolt.DB
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
	// Concurrent updates wait this long to share a commit (one fsync); the
	// default 10 ms would be the latency of every lone write.
	db.MaxBatchDelay = time.Millisecond
	s := &Bolt{kvStore: newKVStore(boltKV{db}), db: db}
	if err := s.load(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: load %s: %w", path, err)
	}
	return s, nil
}

// boltKV is the kvBackend of a bbolt file: a bucket per kvTx bucket.
type boltKV struct{ db *bolt.DB }

// update runs fn in a bbolt batch transaction: concurrent updates are
// committed together (one fsync), each still atomic and isolated.
func (b boltKV) update(_ context.Context, fn func(kvTx) error) error {
	return b.db.Batch(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (b boltKV) view(_ context.Context, fn func(kvTx) error) error {
	return b.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (b boltKV) close() error { return b.db.Close() }

type boltTx struct{ tx *bolt.Tx }

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
