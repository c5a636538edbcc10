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
	"syscall"

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
	db := fs.String("leases", "leases.db", "dhcp: bbolt lease file")
	root := fs.String("root", tftp.DefaultRoot, "tftp: root directory")
	addr := fs.String("addr", tftp.DefaultAddr, "tftp: listen address")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	switch args[0] {
	case "dhcp":
		rs, err := netip.ParseAddr(*start)
		if err != nil {
			return fmt.Errorf("-range-start: %w", err)
		}
		re, err := netip.ParseAddr(*end)
		if err != nil {
			return fmt.Errorf("-range-end: %w", err)
		}
		leases, err := dhcp.OpenBoltLeases(*db)
		if err != nil {
			return err
		}
		defer leases.Close()
		s, err := dhcp.New(ctx, dhcp.Config{
			Mode: dhcp.ModeFull, Interface: *iface, RangeStart: rs, RangeEnd: re,
			Boot:  dhcp.BootConfig{ScriptURL: "http://127.0.0.1/boot/boot.ipxe"},
			Hosts: anyHost{}, AllowUnknown: true, Leases: leases, Logger: log,
		})
		if err != nil {
			return err
		}
		err = s.Serve(ctx)
		fmt.Fprintf(stdout, "%+v\n", s.Stats())
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
