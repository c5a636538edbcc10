package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/pxe/dhcp"
	"github.com/ferric-metal/ferric/pxe/dhcp6"
)

// lease6Table is the store's record table of DHCPv6 leases (key: the
// IPv6 address), beside the DHCPv4 leases and with the same records.
const lease6Table = "dhcp6_leases"

// startDHCP6 runs the DHCPv6 server and its router advertisements (M and
// O flags, the prefix on-link) on the DHCP interface when a DHCPv6 range
// is configured. With several conductors on one etcd store, one of them
// serves a range at a time, as for DHCPv4.
func startDHCP6(ctx context.Context, g *errgroup.Group, cfg Config, st store.Store, hosts *bootHosts) error {
	if cfg.DHCP6Range == "" {
		return nil
	}
	if cfg.DHCPInterface == "" {
		return errors.New("conductor: --dhcp6-range needs --dhcp-interface")
	}
	if cfg.RouterAdvertisements {
		return errors.New("conductor: --dhcp-router-advertisements sends empty advertisements for IPv4 networks; " +
			"with --dhcp6-range the DHCPv6 server sends its own (managed flag, prefix)")
	}
	first, last, ok := strings.Cut(cfg.DHCP6Range, "-")
	start, err1 := netip.ParseAddr(strings.TrimSpace(first))
	end, err2 := netip.ParseAddr(strings.TrimSpace(last))
	if !ok || err1 != nil || err2 != nil || !start.Is6() || !end.Is6() || start.Is4In6() || end.Is4In6() {
		return fmt.Errorf("conductor: --dhcp6-range must be FIRST-LAST IPv6 addresses, not %q", cfg.DHCP6Range)
	}
	dc := dhcp6.Config{Interface: cfg.DHCPInterface, RangeStart: start, RangeEnd: end, Hosts: hosts,
		AllowUnknown: cfg.AllowUnknownMACs, Leases: storeLeases6{st}, RouterAdvertisements: true, Logger: cfg.Log,
		Boot: dhcp.BootConfig{ScriptURL: cfg.PublicURL + "/boot/boot.ipxe"}}
	if cfg.FirmwareDir != "" {
		dc.Boot.HTTPBootURL = cfg.PublicURL + "/boot/firmware/snponly.efi"
	}
	if sh, ok := st.(sharedStore); ok {
		key := sh.Prefix() + "/elections/dhcp6/" + start.String() + "-" + end.String()
		g.Go(func() error {
			return serveAsLeader(ctx, sh, key, cfg.Hostname, cfg.Log, func(lctx context.Context) error {
				ds, err := dhcp6.New(lctx, dc)
				if err != nil {
					return err
				}
				return ds.Serve(lctx)
			})
		})
		return nil
	}
	ds, err := dhcp6.New(ctx, dc)
	if err != nil {
		return fmt.Errorf("conductor: %w", err)
	}
	g.Go(func() error { return ds.Serve(ctx) })
	cfg.Log.Info("dhcp6 serving", "interface", cfg.DHCPInterface, "range", cfg.DHCP6Range, "prefix", ds.Prefix().String())
	return nil
}

// storeLeases6 keeps the DHCPv6 leases in the conductor store.
type storeLeases6 struct{ st store.Store }

var _ dhcp.Leases = storeLeases6{}

func (l storeLeases6) Load(context.Context) ([]dhcp.Lease, error) {
	recs, err := l.st.Records(lease6Table)
	if err != nil {
		return nil, fmt.Errorf("dhcp6: load leases: %w", err)
	}
	var out []dhcp.Lease
	for _, r := range recs {
		var lr leaseRecord
		ip, err := netip.ParseAddr(r.Key)
		if err != nil || !ip.Is6() || json.Unmarshal(r.Data, &lr) != nil {
			continue // not a lease this version wrote: leave it alone
		}
		mac, err := net.ParseMAC(lr.MAC)
		if err != nil {
			continue
		}
		out = append(out, dhcp.Lease{IP: ip, MAC: mac, Expiry: lr.Expiry})
	}
	return out, nil
}

func (l storeLeases6) Store(ctx context.Context, lease dhcp.Lease) error {
	if !lease.IP.Is6() || lease.IP.Is4In6() || len(lease.MAC) != 6 {
		return fmt.Errorf("dhcp6: store lease: need IPv6 and Ethernet MAC, got %v %v", lease.IP, lease.MAC)
	}
	data, err := json.Marshal(leaseRecord{MAC: lease.MAC.String(), Expiry: lease.Expiry.UTC()})
	if err != nil {
		return err
	}
	key := lease.IP.String()
	if err := l.st.Update(ctx, func(tx store.Tx) error {
		r, err := tx.Record(lease6Table, key)
		if errors.Is(err, store.ErrNotFound) {
			r, err = &store.Record{Key: key}, nil
		}
		if err != nil {
			return err
		}
		r.Data = data
		return tx.PutRecord(lease6Table, r)
	}); err != nil {
		return fmt.Errorf("dhcp6: store lease %v: %w", lease.IP, err)
	}
	return nil
}

func (l storeLeases6) Remove(ctx context.Context, ip netip.Addr) error {
	if err := l.st.Update(ctx, func(tx store.Tx) error {
		err := tx.DeleteRecord(lease6Table, ip.String())
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}); err != nil {
		return fmt.Errorf("dhcp6: remove lease %v: %w", ip, err)
	}
	return nil
}
