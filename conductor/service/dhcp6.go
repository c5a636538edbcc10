package service

import (
	"context"
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
// is configured. Its leases are where DHCPv4's are (--dhcp-leases, see
// openDHCPLeases): the lease log DHCP6LeaseLogName on bbolt, the store on
// etcd. With several conductors on one etcd store, one of them serves a
// range at a time, as for DHCPv4.
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
	// A missing interface is reported before the lease log is opened
	// (or the store's leases imported into it).
	if _, err := net.InterfaceByName(cfg.DHCPInterface); err != nil {
		return fmt.Errorf("conductor: --dhcp-interface %q for DHCPv6: %w", cfg.DHCPInterface, err)
	}
	leases, closeLeases, err := openDHCPLeases(ctx, cfg, st, true)
	if err != nil {
		return err
	}
	dc := dhcp6.Config{Interface: cfg.DHCPInterface, RangeStart: start, RangeEnd: end, Hosts: hosts,
		AllowUnknown: cfg.AllowUnknownMACs, Leases: leases, RouterAdvertisements: true, Logger: cfg.Log,
		Boot: dhcp.BootConfig{ScriptURL: cfg.PublicURL + "/boot/boot.ipxe"}}
	if cfg.FirmwareDir != "" {
		dc.Boot.HTTPBootURL = cfg.PublicURL + "/boot/firmware/snponly.efi"
	}
	if sh, ok := st.(sharedStore); ok {
		// The leases are in the shared store (openDHCPLeases refuses the
		// local log there): nothing to close.
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
		closeLeases()
		return fmt.Errorf("conductor: %w", err)
	}
	g.Go(func() error {
		err := ds.Serve(ctx)
		// Serve has answered its last message: the log can close.
		if cerr := closeLeases(); err == nil {
			err = cerr
		}
		return err
	})
	cfg.Log.Info("dhcp6 serving", "interface", cfg.DHCPInterface, "range", cfg.DHCP6Range, "prefix", ds.Prefix().String())
	return nil
}
