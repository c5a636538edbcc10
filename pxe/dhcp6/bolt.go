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

// LogLeases is a dhcp.Leases store of IPv6 leases in a crash-safe lease
// log (dhcp.LogLeases with 36-byte IPv6 records): a REPLY waits for one
// write(2) of its record, fdatasync runs in group commits.
type LogLeases = dhcp.LogLeases

// OpenLogLeases opens (or creates) the IPv6 lease log at path; opts'
// Family is set to IPv6.
func OpenLogLeases(path string, opts dhcp.LogOptions) (*LogLeases, error) {
	opts.Family = dhcp.IPv6Leases
	return dhcp.OpenLogLeases(path, opts)
}
