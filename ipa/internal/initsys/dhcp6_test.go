package initsys

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pxedhcp "github.com/ferric-metal/ferric/pxe/dhcp"
	pxedhcp6 "github.com/ferric-metal/ferric/pxe/dhcp6"
	"github.com/ferric-metal/ferric/test/netnstest"
)

type anyHost struct{}

func (anyHost) PXEEnabled(context.Context, net.HardwareAddr) (bool, error) { return true, nil }

// TestDHCP6Netns: the ramdisk's DHCPv6 client against ferric's DHCPv6
// server and RA over a veth pair: the address lands on the link, and the
// kernel's route to the prefix (from the RA) makes the server reachable.
func TestDHCP6Netns(t *testing.T) {
	netnstest.Skip(t)
	srvNS, cliNS := netnstest.Pair(t, "fd00:7b::1/64", "")
	leases, err := pxedhcp6.OpenBoltLeases(filepath.Join(t.TempDir(), "l.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer leases.Close()
	var s *pxedhcp6.Server
	deadline := time.Now().Add(15 * time.Second)
	for {
		// New fails until the server's link-local address left DAD (the
		// RA cannot be sent from a tentative address).
		err = srvNS.Do(func() error {
			var err error
			s, err = pxedhcp6.New(context.Background(), pxedhcp6.Config{Interface: "veth0",
				RangeStart: netip.MustParseAddr("fd00:7b::10"), RangeEnd: netip.MustParseAddr("fd00:7b::20"),
				Boot: pxedhcp.BootConfig{ScriptURL: "http://[fd00:7b::1]:6385/boot/boot.ipxe"}, Hosts: anyHost{}, Leases: leases,
				RouterAdvertisements: true, Logger: testLogger()})
			return err
		})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	var l Lease
	if err := cliNS.Do(func() error {
		i, err := net.InterfaceByName("veth0")
		if err != nil {
			return err
		}
		l, err = dhcpv6Lease(context.Background(), *i)
		return err
	}); err != nil {
		t.Fatalf("dhcp6: %v", err)
	}
	if !strings.HasPrefix(l.Addr.String(), "fd00:7b::") || !strings.HasSuffix(l.Addr.String(), "/128") {
		t.Errorf("lease address %s, want fd00:7b::10-20/128", l.Addr.String())
	}
	out, _ := exec.Command("ip", "-n", cliNS.Name, "-6", "addr", "show", "dev", "veth0", "scope", "global").CombinedOutput()
	if !strings.Contains(string(out), l.Addr.String()) {
		t.Errorf("address %s not on veth0:\n%s", l.Addr.String(), out)
	}
	// The server is reachable on its global address once the RA's prefix
	// route is there: a TCP connection from the leased address.
	var ln net.Listener
	if err := srvNS.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", "[fd00:7b::1]:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline = time.Now().Add(20 * time.Second)
	for {
		err := cliNS.Do(func() error {
			c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			routes, _ := exec.Command("ip", "-n", cliNS.Name, "-6", "route").CombinedOutput()
			t.Fatalf("%s unreachable from the client: %v\nroutes:\n%s", ln.Addr(), err, routes)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// testLogger shows the server's log with -v.
func testLogger() *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
