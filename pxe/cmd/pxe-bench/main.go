// Command pxe-bench runs ferric's DHCP (full mode, bbolt leases) or TFTP
// server on its own, for load tests with perfdhcp and atftp (see
// pxe/README.md). It answers every MAC; run it only inside a test network
// namespace.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/ferric-metal/ferric/pxe/dhcp"
	"github.com/ferric-metal/ferric/pxe/tftp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "pxe-bench:", err)
		os.Exit(1)
	}
}

// anyHost answers every MAC as unknown; AllowUnknown makes the server serve it.
type anyHost struct{}

func (anyHost) PXEEnabled(context.Context, net.HardwareAddr) (bool, error) { return false, nil }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: pxe-bench dhcp|tftp [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	iface := fs.String("iface", "", "dhcp: interface")
	start := fs.String("range-start", "", "dhcp: first pool address")
	end := fs.String("range-end", "", "dhcp: last pool address")
	db := fs.String("leases", "leases.log", "dhcp: lease file")
	store := fs.String("store", "log", "dhcp: lease store: log (append-only log, ACK after write(2), fdatasync in group commits), log-sync (ACK after fdatasync) or bolt (bbolt, batched transactions)")
	mode := fs.String("mode", "full", "dhcp: full or proxy")
	workers := fs.Int("workers", 0, "dhcp: packets handled at once (0: the server's default)")
	root := fs.String("root", tftp.DefaultRoot, "tftp: root directory")
	addr := fs.String("addr", tftp.DefaultAddr, "tftp: listen address")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	switch args[0] {
	case "dhcp":
		cfg := dhcp.Config{
			Mode: dhcp.ModeProxy, Interface: *iface, Workers: *workers,
			Boot:  dhcp.BootConfig{ScriptURL: "http://127.0.0.1/boot/boot.ipxe"},
			Hosts: anyHost{}, AllowUnknown: true, Logger: log,
		}
		if *mode == "full" {
			var err error
			cfg.Mode = dhcp.ModeFull
			if cfg.RangeStart, err = netip.ParseAddr(*start); err != nil {
				return fmt.Errorf("-range-start: %w", err)
			}
			if cfg.RangeEnd, err = netip.ParseAddr(*end); err != nil {
				return fmt.Errorf("-range-end: %w", err)
			}
			leases, err := openLeases(*store, *db, log)
			if err != nil {
				return err
			}
			defer leases.Close()
			cfg.Leases = leases
		} else if *mode != "proxy" {
			return fmt.Errorf("-mode %q: full or proxy", *mode)
		}
		s, err := dhcp.New(ctx, cfg)
		if err != nil {
			return err
		}
		err = s.Serve(ctx)
		fmt.Fprintf(stdout, "%+v\n", s.Stats())
		q := s.AckLatency(0.5, 0.99)
		fmt.Fprintf(stdout, "server REQUEST->ACK: p50=%.3fms p99=%.3fms\n", ms(q[0]), ms(q[1]))
		return err
	case "tftp":
		s, err := tftp.New(tftp.Config{Root: *root, Addr: *addr, Logger: log})
		if err != nil {
			return err
		}
		err = s.Serve(ctx)
		fmt.Fprintf(stdout, "%+v\n", s.Stats())
		return err
	default:
		return fmt.Errorf("unknown mode %q (dhcp or tftp)", args[0])
	}
}

type closingLeases interface {
	dhcp.Leases
	Close() error
}

func openLeases(kind, path string, log *slog.Logger) (closingLeases, error) {
	switch kind {
	case "log":
		return dhcp.OpenLogLeases(path, dhcp.LogOptions{Logger: log})
	case "log-sync":
		return dhcp.OpenLogLeases(path, dhcp.LogOptions{Logger: log, SyncOnStore: true})
	case "bolt":
		return dhcp.OpenBoltLeases(path)
	default:
		return nil, fmt.Errorf("-store %q: log, log-sync or bolt", kind)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
