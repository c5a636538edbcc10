package dhcp6

import (
	bolt "go.etcd.io/bbolt"

	"github.com/ferric-metal/ferric/pxe/dhcp"
)

// BoltLeases is a dhcp.Leases store of IPv6 leases in a bbolt database
// (bucket dhcp6_leases): dhcp's store, for the IPv6 family.
type BoltLeases = dhcp.BoltLeases

// NewBoltLeases uses an open database and creates the lease bucket if
// needed. Close does not close db.
func NewBoltLeases(db *bolt.DB) (*BoltLeases, error) {
	return dhcp.NewBoltLeasesOf(db, dhcp.IPv6Leases)
}

// OpenBoltLeases opens (or creates) a database file of its own.
func OpenBoltLeases(path string) (*BoltLeases, error) {
	return dhcp.OpenBoltLeasesOf(path, dhcp.IPv6Leases)
}
