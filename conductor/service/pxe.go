package service

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/ferric-metal/ferric/conductor/metrics"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/pxe/dhcp"
	"github.com/ferric-metal/ferric/pxe/tftp"
)

// startPXE starts the DHCP and TFTP services the configuration asks for.
func startPXE(ctx context.Context, g *errgroup.Group, cfg Config, st store.Store, hosts *bootHosts, now *servingDHCP) error {
	if cfg.TFTPListen != "" {
		ts, err := tftp.New(tftp.Config{Root: cfg.TFTPRoot, Addr: cfg.TFTPListen, Logger: cfg.Log})
		if err != nil {
			return fmt.Errorf("conductor: %w", err)
		}
		g.Go(func() error { return ts.Serve(ctx) })
		cfg.Log.Info("tftp serving", "addr", ts.Addr(), "root", cfg.TFTPRoot)
	}
	if err := startDHCP6(ctx, g, cfg, st, hosts); err != nil {
		return err
	}
	switch cfg.DHCPMode {
	case "", "none":
		return nil
	case "proxy", "full":
	default:
		return fmt.Errorf("conductor: --dhcp-mode must be none, proxy or full, not %q", cfg.DHCPMode)
	}
	dc := dhcp.Config{Mode: dhcp.ModeProxy, Interface: cfg.DHCPInterface, Hosts: hosts, AllowUnknown: cfg.AllowUnknownMACs,
		RouterAdvertisements: cfg.RouterAdvertisements,
		Boot:                 dhcp.BootConfig{ScriptURL: cfg.PublicURL + "/boot/boot.ipxe"}, Logger: cfg.Log}
	if cfg.FirmwareDir != "" {
		dc.Boot.HTTPBootURL = cfg.PublicURL + "/boot/firmware/snponly.efi"
	}
	if cfg.DHCPMode == "full" {
		dc.Mode = dhcp.ModeFull
		first, last, ok := strings.Cut(cfg.DHCPRange, "-")
		var err1, err2 error
		dc.RangeStart, err1 = netip.ParseAddr(strings.TrimSpace(first))
		dc.RangeEnd, err2 = netip.ParseAddr(strings.TrimSpace(last))
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("conductor: --dhcp-range must be FIRST-LAST IPv4 addresses, not %q", cfg.DHCPRange)
		}
		leases, closeLeases, err := openDHCPLeases(ctx, cfg, st, false)
		if err != nil {
			return err
		}
		dc.Leases = leases
		if sh, ok := st.(sharedStore); ok {
			// Several conductors: one per address range serves at a time,
			// and the leases are in the shared store (openDHCPLeases
			// refuses the local log there), so the next leader knows
			// every address handed out.
			key := sh.Prefix() + "/elections/dhcp/" + dc.RangeStart.String() + "-" + dc.RangeEnd.String()
			g.Go(func() error {
				return serveAsLeader(ctx, sh, key, cfg.Hostname, cfg.Log, func(lctx context.Context) error {
					ds, err := dhcp.New(lctx, dc)
					if err != nil {
						return err
					}
					now.set(ds)
					defer now.set(nil)
					cfg.Log.Info("dhcp serving", "mode", cfg.DHCPMode, "interface", cfg.DHCPInterface)
					return ds.Serve(lctx)
				})
			})
			return nil
		}
		ds, err := dhcp.New(ctx, dc)
		if err != nil {
			closeLeases()
			return fmt.Errorf("conductor: %w", err)
		}
		now.set(ds)
		g.Go(func() error {
			err := ds.Serve(ctx)
			// Serve has answered its last packet: the log can close.
			if cerr := closeLeases(); err == nil {
				err = cerr
			}
			return err
		})
		cfg.Log.Info("dhcp serving", "mode", cfg.DHCPMode, "interface", cfg.DHCPInterface, "range", cfg.DHCPRange)
		return nil
	}
	ds, err := dhcp.New(ctx, dc)
	if err != nil {
		return fmt.Errorf("conductor: %w", err)
	}
	now.set(ds)
	g.Go(func() error { return ds.Serve(ctx) })
	cfg.Log.Info("dhcp serving", "mode", cfg.DHCPMode, "interface", cfg.DHCPInterface)
	return nil
}

// servingDHCP holds the DHCPv4 server this conductor runs now (none while
// another conductor leads DHCP), for the metrics.
type servingDHCP struct{ s atomic.Pointer[dhcp.Server] }

func (d *servingDHCP) set(s *dhcp.Server) { d.s.Store(s) }

func (d *servingDHCP) current() metrics.DHCPServer {
	if s := d.s.Load(); s != nil {
		return s
	}
	return nil
}
