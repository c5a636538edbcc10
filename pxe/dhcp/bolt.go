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

// A LeaseFamily is the address family a BoltLeases or a LogLeases keeps.
// BoltLeases keeps each in a bucket of its own: one key per leased
// address (its 4 or 16 bytes) mapping to version byte 1, the 6-byte MAC
// and the expiry in Unix nanoseconds (big-endian int64). A LogLeases
// writes the family's record kinds (see encodeRecord).
type LeaseFamily struct {
	name                  string
	bucket                []byte
	addrLen               int
	storeKind, removeKind byte // lease log record kinds
}

// The families: DHCPv4's leases and DHCPv6's (pxe/dhcp6).
var (
	IPv4Leases = LeaseFamily{"IPv4", []byte("dhcp4_leases"), 4, 1, 2}
	IPv6Leases = LeaseFamily{"IPv6", []byte("dhcp6_leases"), 16, 3, 4}
)

// holds reports whether ip belongs to the family.
func (f LeaseFamily) holds(ip netip.Addr) bool {
	if f.addrLen == 4 {
		return ip.Is4()
	}
	return ip.Is6() && !ip.Is4In6()
}

const leaseRecordLen = 1 + 6 + 8

// BoltLeases is a Leases store in a bbolt database. Concurrent Store calls
// are merged into one transaction (bbolt Batch), so one fsync covers many
// ACKs.
type BoltLeases struct {
	db   *bolt.DB
	fam  LeaseFamily
	owns bool
}

// NewBoltLeases uses an open database (for example the conductor's) for
// IPv4 leases and creates the lease bucket if needed. Close does not
// close db.
func NewBoltLeases(db *bolt.DB) (*BoltLeases, error) { return NewBoltLeasesOf(db, IPv4Leases) }

// NewBoltLeasesOf is NewBoltLeases for a family's leases.
func NewBoltLeasesOf(db *bolt.DB, fam LeaseFamily) (*BoltLeases, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(fam.bucket)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dhcp: create lease bucket %s: %w", fam.bucket, err)
	}
	return &BoltLeases{db: db, fam: fam}, nil
}

// OpenBoltLeases opens (or creates) a database file of its own for IPv4
// leases.
func OpenBoltLeases(path string) (*BoltLeases, error) { return OpenBoltLeasesOf(path, IPv4Leases) }

// OpenBoltLeasesOf is OpenBoltLeases for a family's leases.
func OpenBoltLeasesOf(path string, fam LeaseFamily) (*BoltLeases, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("dhcp: open lease database %s: %w", path, err)
	}
	l, err := NewBoltLeasesOf(db, fam)
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
		return tx.Bucket(b.fam.bucket).ForEach(func(k, v []byte) error {
			ip, ok := netip.AddrFromSlice(k)
			if !ok || len(k) != b.fam.addrLen || len(v) != leaseRecordLen || v[0] != 1 {
				return nil // unknown record version: leave it alone
			}
			out = append(out, Lease{
				IP:     ip,
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
	if !b.fam.holds(l.IP) || len(l.MAC) != 6 {
		return fmt.Errorf("dhcp: store lease: need an %s address and an Ethernet MAC, got %v %v", b.fam.name, l.IP, l.MAC)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	v := make([]byte, leaseRecordLen)
	v[0] = 1
	copy(v[1:7], l.MAC)
	binary.BigEndian.PutUint64(v[7:], uint64(l.Expiry.UnixNano()))
	if err := b.db.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(b.fam.bucket).Put(l.IP.AsSlice(), v)
	}); err != nil {
		return fmt.Errorf("dhcp: store lease %v: %w", l.IP, err)
	}
	return nil
}

// Remove implements Leases.
func (b *BoltLeases) Remove(ctx context.Context, ip netip.Addr) error {
	if !b.fam.holds(ip) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.db.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(b.fam.bucket).Delete(ip.AsSlice())
	}); err != nil {
		return fmt.Errorf("dhcp: remove lease %v: %w", ip, err)
	}
	return nil
}
