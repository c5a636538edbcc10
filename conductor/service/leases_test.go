package service

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/conductor/store/etcdtest"
	"github.com/ferric-metal/ferric/pxe/dhcp"
)

// The DHCP leases take one path over the store interface, on either
// backend: stored, updated, removed, and found again by a conductor that
// opens the store anew (a restart, or the next DHCP leader).
func TestStoreLeases(t *testing.T) {
	ctx := context.Background()
	backends := []struct {
		name string
		open func(t *testing.T) func() store.Store // returns an opener of the same store
	}{
		{"bolt", func(t *testing.T) func() store.Store {
			path := filepath.Join(t.TempDir(), "ferric.db")
			return func() store.Store {
				st, err := store.OpenBolt(path)
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
		}},
		{"etcd", func(t *testing.T) func() store.Store {
			srv := etcdtest.Start(t)
			return func() store.Store {
				st, err := store.OpenEtcd(ctx, store.EtcdConfig{Endpoints: []string{srv.Endpoint}, Prefix: "/leases-test"})
				if err != nil {
					t.Fatal(err)
				}
				return st
			}
		}},
	}
	mac := func(s string) net.HardwareAddr {
		m, err := net.ParseMAC(s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	exp := time.Date(2026, 12, 5, 23, 0, 0, 0, time.UTC)
	a := dhcp.Lease{IP: netip.MustParseAddr("192.0.2.10"), MAC: mac("52:54:00:00:00:01"), Expiry: exp}
	b := dhcp.Lease{IP: netip.MustParseAddr("192.0.2.11"), MAC: mac("52:54:00:00:00:02"), Expiry: exp}
	renewed := a
	renewed.Expiry = exp.Add(time.Hour)
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			open := be.open(t)
			st := open()
			l := storeLeases{st: st}
			for _, lease := range []dhcp.Lease{a, b, renewed} {
				if err := l.Store(ctx, lease); err != nil {
					t.Fatalf("Store(%v): %v", lease.IP, err)
				}
			}
			if err := l.Remove(ctx, b.IP); err != nil {
				t.Fatal(err)
			}
			if err := l.Remove(ctx, b.IP); err != nil {
				t.Errorf("Remove of a removed lease: %v", err)
			}
			if err := l.Store(ctx, dhcp.Lease{IP: netip.MustParseAddr("2001:db8::1"), MAC: a.MAC}); err == nil {
				t.Error("Store of an IPv6 lease succeeded")
			}
			st.Close()
			st = open() // a restarted conductor
			defer st.Close()
			got, err := storeLeases{st: st}.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]dhcp.Lease{renewed}, got, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
				t.Errorf("Load() after a restart (-want +got):\n%s", diff)
			}
		})
	}
}
