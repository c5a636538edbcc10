package dhcp6

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ferric-metal/ferric/pxe/dhcp"
)

// leaseBucket holds one key per leased address: the 16-byte IPv6 address
// maps to version byte 1, the 6-byte MAC and the expiry in Unix
// nanoseconds (big-endian int64), as the DHCPv4 leases do.
var leaseBucket = []byte("dhcp6_leases")

const leaseRecordLen = 1 + 6 + 8

// BoltLeases is a dhcp.Leases store of IPv6 leases in a bbolt database.
// Concurrent Store calls share one transaction (bbolt Batch).
type BoltLeases struct {
	db   *bolt.DB
	owns bool
}

var _ dhcp.Leases = (*BoltLeases)(nil)

// NewBoltLeases uses an open database and creates the lease bucket if
// needed. Close does not close db.
func NewBoltLeases(db *bolt.DB) (*BoltLeases, error) {
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(leaseBucket)
		return err
	}); err != nil {
		return nil, fmt.Errorf("dhcp6: create lease bucket: %w", err)
	}
	return &BoltLeases{db: db}, nil
}

// OpenBoltLeases opens (or creates) a database file of its own.
func OpenBoltLeases(path string) (*BoltLeases, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("dhcp6: open lease database %s: %w", path, err)
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

// Load implements dhcp.Leases.
func (b *BoltLeases) Load(ctx context.Context) ([]dhcp.Lease, error) {
	var out []dhcp.Lease
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(leaseBucket).ForEach(func(k, v []byte) error {
			if len(k) != 16 || len(v) != leaseRecordLen || v[0] != 1 {
				return nil // another version's record: leave it alone
			}
			out = append(out, dhcp.Lease{
				IP:     netip.AddrFrom16([16]byte(k)),
				MAC:    append(net.HardwareAddr(nil), v[1:7]...),
				Expiry: time.Unix(0, int64(binary.BigEndian.Uint64(v[7:]))),
			})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("dhcp6: load leases: %w", err)
	}
	return out, ctx.Err()
}

// Store implements dhcp.Leases.
func (b *BoltLeases) Store(ctx context.Context, l dhcp.Lease) error {
	if !l.IP.Is6() || l.IP.Is4In6() || len(l.MAC) != 6 {
		return fmt.Errorf("dhcp6: store lease: need IPv6 and Ethernet MAC, got %v %v", l.IP, l.MAC)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	k := l.IP.As16()
	v := make([]byte, leaseRecordLen)
	v[0] = 1
	copy(v[1:7], l.MAC)
	binary.BigEndian.PutUint64(v[7:], uint64(l.Expiry.UnixNano()))
	if err := b.db.Batch(func(tx *bolt.Tx) error { return tx.Bucket(leaseBucket).Put(k[:], v) }); err != nil {
		return fmt.Errorf("dhcp6: store lease %v: %w", l.IP, err)
	}
	return nil
}

// Remove implements dhcp.Leases.
func (b *BoltLeases) Remove(ctx context.Context, ip netip.Addr) error {
	if !ip.Is6() {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	k := ip.As16()
	if err := b.db.Batch(func(tx *bolt.Tx) error { return tx.Bucket(leaseBucket).Delete(k[:]) }); err != nil {
		return fmt.Errorf("dhcp6: remove lease %v: %w", ip, err)
	}
	return nil
}
