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

// Where full-mode DHCPv4 keeps its leases (Config.DHCPLeases,
// --dhcp-leases):
//
//   - DHCPLeasesLog: the crash-safe lease log (dhcp.LogLeases) in the
//     state directory, DHCPLeaseLogName. The ACK waits for one write(2)
//     of a 24-byte record, not for a store commit; fdatasync runs in group
//     commits in the background (Config.DHCPLeaseSync makes the ACK wait
//     for it). Only for a conductor with its own store (bbolt): the log
//     is local to one machine.
//   - DHCPLeasesStore: the conductor's store (a record table, leaseTable);
//     a lease log left in the state directory by an earlier run is moved
//     into it first (and kept, renamed with importedSuffix).
//     On etcd this is the only choice: several conductors may be
//     configured for the same range, one serves at a time (an election),
//     and the next one must know every address the last one ACKed, so the
//     ACK waits for the etcd commit. A local log in front of etcd would
//     ACK leases a new leader cannot see, and two machines could get the
//     same address.
//   - DHCPLeasesAuto (the default): the log on bbolt, the store on etcd.
//
// DHCPv6 leases stay in the store on both backends: the log's records
// hold IPv4 addresses only.
const (
	DHCPLeasesAuto  = "auto"
	DHCPLeasesLog   = "log"
	DHCPLeasesStore = "store"
)

// DHCPLeaseLogName is the lease log's file in the state directory.
const DHCPLeaseLogName = "dhcp4-leases.log"

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

// openDHCPLeases opens the DHCPv4 lease store cfg asks for. With the log,
// leases an earlier version kept in the store are moved into it first;
// the caller closes the log (close is nil for the store).
func openDHCPLeases(ctx context.Context, cfg Config, st store.Store) (dhcp.Leases, func() error, error) {
	_, shared := st.(sharedStore)
	backend, err := dhcpLeaseBackend(cfg, shared)
	if err != nil {
		return nil, nil, err
	}
	path := filepath.Join(cfg.StateDir, DHCPLeaseLogName)
	if backend == DHCPLeasesStore {
		if cfg.DHCPLeaseSync {
			cfg.Log.Warn("dhcp: --dhcp-lease-sync is for the lease log; with the leases in the store every ACK waits for the store's commit anyway")
		}
		n, err := importLogLeases(ctx, path, st, cfg.Log)
		if err != nil {
			return nil, nil, fmt.Errorf("conductor: %w", err)
		}
		if n > 0 {
			cfg.Log.Info("dhcp: leases moved from the lease log into the store", "leases", n, "path", path, "kept_as", path+importedSuffix)
		}
		return storeLeases{st: st}, func() error { return nil }, nil
	}
	ll, err := dhcp.OpenLogLeases(path, dhcp.LogOptions{SyncOnStore: cfg.DHCPLeaseSync, Logger: cfg.Log})
	if err != nil {
		return nil, nil, fmt.Errorf("conductor: %w", err)
	}
	n, err := importStoreLeases(ctx, st, ll)
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
func importLogLeases(ctx context.Context, path string, st store.Store, log *slog.Logger) (int, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	ll, err := dhcp.OpenLogLeases(path, dhcp.LogOptions{Logger: log})
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
	have, err := storeLeases{st: st}.Load(ctx)
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
		err := st.Update(ctx, func(tx store.Tx) error {
			for _, l := range batch {
				data, err := json.Marshal(leaseRecord{MAC: l.MAC.String(), Expiry: l.Expiry.UTC()})
				if err != nil {
					return err
				}
				if err := tx.PutRecord(leaseTable, &store.Record{Key: l.IP.String(), Data: data}); err != nil {
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

// importStoreLeases moves the DHCPv4 leases kept in st's lease table (by
// a conductor before the lease log, or one run with --dhcp-leases store)
// into ll, and returns how many it moved. Addresses ll already holds keep
// their log record (newer than the store's, if the import was cut short).
// The records are synced to disk before they leave the store, so a crash
// at any point loses none: the next start imports what is left.
func importStoreLeases(ctx context.Context, st store.Store, ll *dhcp.LogLeases) (int, error) {
	old, err := storeLeases{st: st}.Load(ctx)
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
		err := st.Update(ctx, func(tx store.Tx) error {
			for _, l := range batch {
				if err := tx.DeleteRecord(leaseTable, l.IP.String()); err != nil && !errors.Is(err, store.ErrNotFound) {
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
