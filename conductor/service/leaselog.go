package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/pxe/dhcp"
)

// Where full-mode DHCPv4 and DHCPv6 keep their leases (Config.DHCPLeases,
// --dhcp-leases), each family apart:
//
//   - DHCPLeasesLog: the crash-safe lease log (dhcp.LogLeases) in the
//     state directory, DHCPLeaseLogName for DHCPv4 (24-byte records) and
//     DHCP6LeaseLogName for DHCPv6 (36-byte records). The ACK (the REPLY
//     of DHCPv6) waits for one write(2) of a record, not for a store
//     commit; fdatasync runs in group
//     commits in the background (Config.DHCPLeaseSync makes the ACK wait
//     for it). Only for a conductor with its own store (bbolt): the log
//     is local to one machine.
//   - DHCPLeasesStore: the conductor's store (a record table, leaseTable
//     or lease6Table);
//     a lease log left in the state directory by an earlier run is moved
//     into it first (and kept, renamed with importedSuffix).
//     On etcd this is the only choice: several conductors may be
//     configured for the same range, one serves at a time (an election),
//     and the next one must know every address the last one ACKed, so the
//     ACK waits for the etcd commit. A local log in front of etcd would
//     ACK leases a new leader cannot see, and two machines could get the
//     same address.
//   - DHCPLeasesAuto (the default): the log on bbolt, the store on etcd.
const (
	DHCPLeasesAuto  = "auto"
	DHCPLeasesLog   = "log"
	DHCPLeasesStore = "store"
)

// DHCPLeaseLogName and DHCP6LeaseLogName are the lease logs' files in
// the state directory.
const (
	DHCPLeaseLogName  = "dhcp4-leases.log"
	DHCP6LeaseLogName = "dhcp6-leases.log"
)

// leasePlaces are where one family's leases may be: its store table and
// its lease log.
type leasePlaces struct {
	store   storeLeases
	logName string
	family  dhcp.LeaseFamily
}

// leasesOf returns DHCPv4's places, or DHCPv6's with v6.
func leasesOf(st store.Store, v6 bool) leasePlaces {
	if v6 {
		return leasePlaces{storeLeases{st: st, v6: true}, DHCP6LeaseLogName, dhcp.IPv6Leases}
	}
	return leasePlaces{storeLeases{st: st}, DHCPLeaseLogName, dhcp.IPv4Leases}
}

// dhcpLeaseBackend resolves cfg's --dhcp-leases for a store that is
// shared by several conductors (etcd) or not, and refuses what is unsafe.
func dhcpLeaseBackend(cfg Config, shared bool) (string, error) {
	switch cfg.DHCPLeases {
	case "", DHCPLeasesAuto:
		if shared {
			return DHCPLeasesStore, nil
		}
		return DHCPLeasesLog, nil
	case DHCPLeasesStore:
		return DHCPLeasesStore, nil
	case DHCPLeasesLog:
		if shared {
			return "", errors.New("conductor: --dhcp-leases log keeps leases in this conductor's state directory, " +
				"but with --etcd-endpoints another conductor may take DHCP over and must see every lease: " +
				"use --dhcp-leases store (or auto) with etcd")
		}
		return DHCPLeasesLog, nil
	}
	return "", fmt.Errorf("conductor: --dhcp-leases must be auto, log or store, not %q", cfg.DHCPLeases)
}

// openDHCPLeases opens the lease store cfg asks for, of DHCPv4 or (v6)
// DHCPv6. With the log, leases an earlier version kept in the store are
// moved into it first; the caller calls close once the server is done
// (it closes the log; nothing for the store).
func openDHCPLeases(ctx context.Context, cfg Config, st store.Store, v6 bool) (dhcp.Leases, func() error, error) {
	_, shared := st.(sharedStore)
	backend, err := dhcpLeaseBackend(cfg, shared)
	if err != nil {
		return nil, nil, err
	}
	pl := leasesOf(st, v6)
	path := filepath.Join(cfg.StateDir, pl.logName)
	if backend == DHCPLeasesStore {
		if cfg.DHCPLeaseSync {
			cfg.Log.Warn("dhcp: --dhcp-lease-sync is for the lease log; with the leases in the store every ACK waits for the store's commit anyway")
		}
		n, err := importLogLeases(ctx, path, pl, cfg.Log)
		if err != nil {
			return nil, nil, fmt.Errorf("conductor: %w", err)
		}
		if n > 0 {
			cfg.Log.Info("dhcp: leases moved from the lease log into the store", "leases", n, "path", path, "kept_as", path+importedSuffix)
		}
		return pl.store, func() error { return nil }, nil
	}
	ll, err := dhcp.OpenLogLeases(path, dhcp.LogOptions{SyncOnStore: cfg.DHCPLeaseSync, Logger: cfg.Log, Family: pl.family})
	if err != nil {
		return nil, nil, fmt.Errorf("conductor: %w", err)
	}
	n, err := importStoreLeases(ctx, pl.store, ll)
	if err != nil {
		ll.Close()
		return nil, nil, fmt.Errorf("conductor: %w", err)
	}
	if n > 0 {
		cfg.Log.Info("dhcp: leases moved from the store into the lease log", "leases", n, "path", path)
	}
	cfg.Log.Info("dhcp: leases in the lease log", "path", path, "ack_waits_for_fdatasync", cfg.DHCPLeaseSync)
	return ll, ll.Close, nil
}

// leaseDeleteBatch is how many store leases one transaction writes or
// removes.
const leaseDeleteBatch = 100

// importedSuffix is added to a lease log's name once its leases are moved
// into the store.
const importedSuffix = ".imported"

// importLogLeases moves the leases of the lease log at path (left by a run
// with the log, before --dhcp-leases store) into st, where they are not
// already, and renames the log with importedSuffix so that it is neither
// imported again nor mistaken for current later. No log: nothing to do.
func importLogLeases(ctx context.Context, path string, pl leasePlaces, log *slog.Logger) (int, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	ll, err := dhcp.OpenLogLeases(path, dhcp.LogOptions{Logger: log, Family: pl.family})
	if err != nil {
		return 0, err
	}
	leases, err := ll.Load(ctx)
	if cerr := ll.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	have, err := pl.store.Load(ctx)
	if err != nil {
		return 0, err
	}
	inStore := make(map[netip.Addr]bool, len(have))
	for _, l := range have {
		inStore[l.IP] = true
	}
	var move []dhcp.Lease
	for _, l := range leases {
		if !inStore[l.IP] {
			move = append(move, l)
		}
	}
	for i := 0; i < len(move); i += leaseDeleteBatch {
		batch := move[i:min(i+leaseDeleteBatch, len(move))]
		err := pl.store.st.Update(ctx, func(tx store.Tx) error {
			for _, l := range batch {
				data, err := json.Marshal(leaseRecord{MAC: l.MAC.String(), Expiry: l.Expiry.UTC()})
				if err != nil {
					return err
				}
				if err := tx.PutRecord(pl.store.table(), &store.Record{Key: l.IP.String(), Data: data}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("dhcp: move the lease log's leases into the store: %w", err)
		}
	}
	if err := os.Rename(path, path+importedSuffix); err != nil {
		return 0, fmt.Errorf("dhcp: lease log moved into the store: %w", err)
	}
	return len(move), nil
}

// importStoreLeases moves the leases kept in sl's table (by a conductor
// before the lease log, or one run with --dhcp-leases store) into ll, and
// returns how many it moved. Addresses ll already holds keep
// their log record (newer than the store's, if the import was cut short).
// The records are synced to disk before they leave the store, so a crash
// at any point loses none: the next start imports what is left.
func importStoreLeases(ctx context.Context, sl storeLeases, ll *dhcp.LogLeases) (int, error) {
	old, err := sl.Load(ctx)
	if err != nil || len(old) == 0 {
		return 0, err
	}
	have, err := ll.Load(ctx)
	if err != nil {
		return 0, err
	}
	inLog := make(map[netip.Addr]bool, len(have))
	for _, l := range have {
		inLog[l.IP] = true
	}
	moved := 0
	for _, l := range old {
		if inLog[l.IP] {
			continue
		}
		if err := ll.Store(ctx, l); err != nil {
			return moved, fmt.Errorf("dhcp: import stored leases into the lease log: %w", err)
		}
		moved++
	}
	if err := ll.Sync(); err != nil {
		return moved, fmt.Errorf("dhcp: import stored leases into the lease log: %w", err)
	}
	for i := 0; i < len(old); i += leaseDeleteBatch {
		batch := old[i:min(i+leaseDeleteBatch, len(old))]
		err := sl.st.Update(ctx, func(tx store.Tx) error {
			for _, l := range batch {
				if err := tx.DeleteRecord(sl.table(), l.IP.String()); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return moved, fmt.Errorf("dhcp: remove imported leases from the store: %w", err)
		}
	}
	return moved, nil
}
