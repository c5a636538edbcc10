package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/conductor/store/etcdtest"
	"github.com/ferric-metal/ferric/pxe/dhcp"
)

// --dhcp-leases: the log on a conductor's own store, the store on etcd
// (shared leases, so that the next DHCP leader knows every binding), and
// the log refused on etcd.
func TestDHCPLeaseBackend(t *testing.T) {
	for _, tc := range []struct {
		leases  string
		shared  bool
		want    string
		wantErr string
	}{
		{"", false, DHCPLeasesLog, ""},
		{DHCPLeasesAuto, false, DHCPLeasesLog, ""},
		{DHCPLeasesAuto, true, DHCPLeasesStore, ""},
		{"", true, DHCPLeasesStore, ""},
		{DHCPLeasesStore, false, DHCPLeasesStore, ""},
		{DHCPLeasesStore, true, DHCPLeasesStore, ""},
		{DHCPLeasesLog, false, DHCPLeasesLog, ""},
		{DHCPLeasesLog, true, "", "use --dhcp-leases store (or auto) with etcd"},
		{"memfile", false, "", `--dhcp-leases must be auto, log or store, not "memfile"`},
	} {
		t.Run(tc.leases+map[bool]string{true: "/etcd", false: "/bolt"}[tc.shared], func(t *testing.T) {
			got, err := dhcpLeaseBackend(Config{DHCPLeases: tc.leases}, tc.shared)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("dhcpLeaseBackend(%q, shared %v) = %q, %v; want an error with %q", tc.leases, tc.shared, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("dhcpLeaseBackend(%q, shared %v) = %q, %v; want %q", tc.leases, tc.shared, got, err, tc.want)
			}
		})
	}
}

// A conductor upgraded from the version that kept DHCPv4 or DHCPv6 leases
// in its store moves them into the family's lease log on its first start,
// once: the log then serves them, the store's table is empty, and a
// second start finds nothing to import. An address the log already holds
// (an import cut short by a crash, then served) keeps its log record.
// --dhcp-leases store moves them back, and log again into the log. The
// other family's table and log are left alone.
func TestImportStoreLeases(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "IPv4", true: "IPv6"}[v6], func(t *testing.T) { testImportStoreLeases(t, v6) })
	}
}

func testImportStoreLeases(t *testing.T, v6 bool) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenBolt(filepath.Join(dir, "ferric.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	exp := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	pl, other := leasesOf(st, v6), leasesOf(st, !v6)
	addr := func(i int) netip.Addr {
		if v6 {
			return netip.AddrFrom16([16]byte{0xfd, 0, 15: byte(i % 200), 14: byte(i / 200)})
		}
		return netip.AddrFrom4([4]byte{10, 0, byte(i / 200), byte(i%200 + 1)})
	}
	var old []dhcp.Lease
	for i := range 250 { // more than one delete batch
		old = append(old, dhcp.Lease{IP: addr(i),
			MAC: net.HardwareAddr{0x52, 0x54, 0, 0, byte(i >> 8), byte(i)}, Expiry: exp})
	}
	for _, l := range old {
		if err := pl.store.Store(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	// A lease of the other family stays where it is.
	otherLease := dhcp.Lease{IP: netip.MustParseAddr("10.9.9.9"), MAC: net.HardwareAddr{0x52, 0x54, 0, 9, 9, 9}, Expiry: exp}
	if !v6 {
		otherLease.IP = netip.MustParseAddr("fd00:9::9")
	}
	if err := other.store.Store(ctx, otherLease); err != nil {
		t.Fatal(err)
	}
	// The log already has a newer lease for the first address.
	logPath := filepath.Join(dir, pl.logName)
	pre, err := dhcp.OpenLogLeases(logPath, dhcp.LogOptions{Family: pl.family})
	if err != nil {
		t.Fatal(err)
	}
	newer := dhcp.Lease{IP: old[0].IP, MAC: net.HardwareAddr{0x52, 0x54, 0, 0xff, 0xff, 0xff}, Expiry: exp.Add(time.Hour)}
	if err := pre.Store(ctx, newer); err != nil {
		t.Fatal(err)
	}
	if err := pre.Close(); err != nil {
		t.Fatal(err)
	}

	cfg := Config{StateDir: dir, Log: slog.New(slog.DiscardHandler)}
	want := map[netip.Addr]string{}
	for _, l := range old[1:] {
		want[l.IP] = l.MAC.String()
	}
	want[newer.IP] = newer.MAC.String()
	for start := range 2 {
		leases, closeLeases, err := openDHCPLeases(ctx, cfg, st, v6)
		if err != nil {
			t.Fatalf("start %d: %v", start, err)
		}
		if _, ok := leases.(*dhcp.LogLeases); !ok {
			t.Fatalf("start %d: leases in %T, want the lease log", start, leases)
		}
		got, err := leases.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Errorf("start %d: %d leases in the log, want %d", start, len(got), len(want))
		}
		for _, l := range got {
			if want[l.IP] != l.MAC.String() {
				t.Errorf("start %d: log has %v -> %v, want %q", start, l.IP, l.MAC, want[l.IP])
			}
			if w := exp; l.IP != newer.IP && !l.Expiry.Equal(w) {
				t.Errorf("start %d: %v expires %v, want %v", start, l.IP, l.Expiry, w)
			}
		}
		left, err := st.Records(pl.store.table())
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 0 {
			keys := []string{}
			for _, r := range left {
				keys = append(keys, r.Key)
			}
			sort.Strings(keys)
			t.Errorf("start %d: %d leases left in the store after the import: %v", start, len(left), keys[:min(5, len(keys))])
		}
		if err := closeLeases(); err != nil {
			t.Fatal(err)
		}
	}
	recLen := map[bool]int64{false: 24, true: 36}[v6]
	if fi, err := os.Stat(logPath); err != nil || fi.Size() != int64(len(want))*recLen {
		t.Errorf("lease log after two starts: %v, %v; want %d records of %d bytes (no second import)", fi, err, len(want), recLen)
	}
	if got, err := other.store.Load(ctx); err != nil || len(got) != 1 || got[0].IP != otherLease.IP {
		t.Errorf("the other family's store leases: %v, %v; want %v alone", got, err, otherLease.IP)
	}
	if _, err := os.Stat(filepath.Join(dir, other.logName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the other family's lease log: %v; want none (not opened)", err)
	}

	// Back to --dhcp-leases store: the log's leases move into the store
	// and the log is set aside; then to the log again.
	for _, backend := range []string{DHCPLeasesStore, DHCPLeasesStore, DHCPLeasesLog} {
		cfg.DHCPLeases = backend
		leases, closeLeases, err := openDHCPLeases(ctx, cfg, st, v6)
		if err != nil {
			t.Fatalf("%s: %v", backend, err)
		}
		got, err := leases.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d leases, want %d", backend, len(got), len(want))
		}
		for _, l := range got {
			if want[l.IP] != l.MAC.String() {
				t.Errorf("%s: %v -> %v, want %q", backend, l.IP, l.MAC, want[l.IP])
			}
		}
		if err := closeLeases(); err != nil {
			t.Fatal(err)
		}
		_, logErr := os.Stat(logPath)
		if backend == DHCPLeasesStore && !errors.Is(logErr, os.ErrNotExist) {
			t.Errorf("store: the lease log is still in place (%v), want it renamed", logErr)
		}
		if _, err := os.Stat(logPath + importedSuffix); err != nil {
			t.Errorf("%s: the imported log is not kept: %v", backend, err)
		}
	}
}

// On etcd (a store several conductors share), DHCPv4's and DHCPv6's
// leases both stay in the store's tables (auto and store), no lease log
// is created, and --dhcp-leases log is refused before anything is opened.
func TestDHCPLeasesOnEtcd(t *testing.T) {
	ctx := context.Background()
	srv := etcdtest.Start(t)
	for _, v6 := range []bool{false, true} {
		dir := t.TempDir()
		st, err := store.OpenEtcd(ctx, store.EtcdConfig{Endpoints: []string{srv.Endpoint}, Prefix: fmt.Sprintf("/leases-on-etcd-%v", v6)})
		if err != nil {
			t.Fatal(err)
		}
		pl := leasesOf(st, v6)
		for _, backend := range []string{DHCPLeasesAuto, DHCPLeasesStore} {
			cfg := Config{StateDir: dir, DHCPLeases: backend, Log: slog.New(slog.DiscardHandler)}
			leases, closeLeases, err := openDHCPLeases(ctx, cfg, st, v6)
			if err != nil {
				t.Fatalf("v6 %v, %s: %v", v6, backend, err)
			}
			if sl, ok := leases.(storeLeases); !ok || sl.table() != pl.store.table() {
				t.Errorf("v6 %v, %s: leases in %#v, want the store's %s", v6, backend, leases, pl.store.table())
			}
			if err := closeLeases(); err != nil {
				t.Fatal(err)
			}
		}
		cfg := Config{StateDir: dir, DHCPLeases: DHCPLeasesLog, Log: slog.New(slog.DiscardHandler)}
		if _, _, err := openDHCPLeases(ctx, cfg, st, v6); err == nil || !strings.Contains(err.Error(), "with etcd") {
			t.Errorf("v6 %v: --dhcp-leases log on a shared store: %v, want refused", v6, err)
		}
		for _, name := range []string{DHCPLeaseLogName, DHCP6LeaseLogName} {
			if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("v6 %v: %s in the state directory of a shared store: %v", v6, name, err)
			}
		}
		st.Close()
	}
}
