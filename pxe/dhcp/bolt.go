package dhcp

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	bolt "go.etcd.io/bbolt"
)

// leaseBucket holds one key per leased address: the 4-byte IPv4 address
// maps to version byte 1, the 6-byte MAC and the expiry in Unix
// nanoseconds (big-endian int64).
var leaseBucket = []byte("dhcp4_leases")

const leaseRecordLen = 1 + 6 + 8

// BoltLeases is a Leases store in a bbolt database. Concurrent Store calls
// are merged into one transaction (bbolt Batch), so one fsync covers many
// ACKs.
type BoltLeases struct {
	db   *bolt.DB
	owns bool
}

// NewBoltLeases uses an open database (for example the conductor's) and
// creates the lease bucket if needed. Close does not close db.
func NewBoltLeases(db *bolt.DB) (*BoltLeases, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(leaseBucket)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dhcp: create lease bucket: %w", err)
	}
	return &BoltLeases{db: db}, nil
}

// OpenBoltLeases opens (or creates) a database file of its own.
func OpenBoltLeases(path string) (*BoltLeases, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("dhcp: open lease database %s: %w", path, err)
	}
	l, err := NewBoltLeases(db)
	if err != nil {
		db.Close()
		return nil, err
	}
	l.owns = true
	return l, nil
}

// Close closes the database if OpenBoltLeases opened it.
func (b *BoltLeases) Close() error {
	if b.owns {
		return b.db.Close()
	}
	return nil
}

// Load implements Leases.
func (b *BoltLeases) Load(ctx context.Context) ([]Lease, error) {
	var out []Lease
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(leaseBucket).ForEach(func(k, v []byte) error {
			if len(k) != 4 || len(v) != leaseRecordLen || v[0] != 1 {
				return nil // unknown record version: leave it alone
			}
			out = append(out, Lease{
				IP:     netip.AddrFrom4([4]byte(k)),
				MAC:    append(net.HardwareAddr(nil), v[1:7]...),
				Expiry: time.Unix(0, int64(binary.BigEndian.Uint64(v[7:]))),
			})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("dhcp: load leases: %w", err)
	}
	return out, ctx.Err()
}

// Store implements Leases.
func (b *BoltLeases) Store(ctx context.Context, l Lease) error {
	if !l.IP.Is4() || len(l.MAC) != 6 {
		return fmt.Errorf("dhcp: store lease: need IPv4 and Ethernet MAC, got %v %v", l.IP, l.MAC)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	k := l.IP.As4()
	v := make([]byte, leaseRecordLen)
	v[0] = 1
	copy(v[1:7], l.MAC)
	binary.BigEndian.PutUint64(v[7:], uint64(l.Expiry.UnixNano()))
	if err := b.db.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(leaseBucket).Put(k[:], v)
	}); err != nil {
		return fmt.Errorf("dhcp: store lease %v: %w", l.IP, err)
	}
	return nil
}

// Remove implements Leases.
func (b *BoltLeases) Remove(ctx context.Context, ip netip.Addr) error {
	if !ip.Is4() {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	k := ip.As4()
	if err := b.db.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(leaseBucket).Delete(k[:])
	}); err != nil {
		return fmt.Errorf("dhcp: remove lease %v: %w", ip, err)
	}
	return nil
}
