package dhcp6

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/nclient6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/ferric-metal/ferric/test/netnstest"
)

// waitLinkLocal waits until veth0 in ns has a link-local address that
// finished duplicate address detection (sockets cannot send from a
// tentative one).
func waitLinkLocal(t *testing.T, ns *netnstest.NS) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, _ := exec.Command("ip", "-n", ns.Name, "-6", "addr", "show", "dev", "veth0", "scope", "link").CombinedOutput()
		if strings.Contains(string(out), "fe80::") && !strings.Contains(string(out), "tentative") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no usable link-local address on veth0 in %s: %s", ns.Name, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ipOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// raFlags reads the kernel's IPv6 flags of ifname in ns (IFLA_INET6_FLAGS
// inside IFLA_PROTINFO): what the last router advertisement said.
func raFlags(ns *netnstest.NS, ifname string) (managed, other bool, err error) {
	err = ns.Do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		rib, err := syscall.NetlinkRIB(syscall.RTM_GETLINK, syscall.AF_INET6)
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(rib)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Type != syscall.RTM_NEWLINK || len(m.Data) < syscall.SizeofIfInfomsg {
				continue
			}
			if idx := int32(binary.NativeEndian.Uint32(m.Data[4:8])); int(idx) != ifi.Index {
				continue
			}
			attrs, err := syscall.ParseNetlinkRouteAttr(&m)
			if err != nil {
				return err
			}
			for _, a := range attrs {
				if a.Attr.Type != syscall.IFLA_PROTINFO {
					continue
				}
				for b := a.Value; len(b) >= 4; {
					l, typ := int(binary.NativeEndian.Uint16(b)), binary.NativeEndian.Uint16(b[2:])
					if l < 4 || l > len(b) {
						break
					}
					if typ == 1 && l >= 8 { // IFLA_INET6_FLAGS
						f := binary.NativeEndian.Uint32(b[4:8])
						managed, other = f&0x40 != 0, f&0x80 != 0 // IF_RA_MANAGED, IF_RA_OTHERCONF
						return nil
					}
					b = b[(l+3)&^3:]
				}
			}
		}
		return fmt.Errorf("no IFLA_INET6_FLAGS for %s", ifname)
	})
	return managed, other, err
}

// TestProvisioningNetns: a server in one namespace; in the other, a real
// kernel takes the router advertisement (M and O flags, the prefix on
// link, no SLAAC address), ISC dhclient -6 gets an address from the
// range and releases it, and firmware-like clients (nclient6) get their
// boot-file URLs.
func TestProvisioningNetns(t *testing.T) {
	netnstest.Skip(t)
	srvNS, cliNS := netnstest.Pair(t, "fd00:78::1/64", "")
	waitLinkLocal(t, srvNS)
	waitLinkLocal(t, cliNS)
	leases := openLeases(t, filepath.Join(t.TempDir(), "l6.db"))
	hwCli := net.HardwareAddr(nil)
	if err := cliNS.Do(func() error {
		ifi, err := net.InterfaceByName("veth0")
		if err == nil {
			hwCli = ifi.HardwareAddr
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ipxeMAC := mac(0x61)
	var s *Server
	if err := srvNS.Do(func() error {
		var err error
		s, err = New(context.Background(), Config{
			Interface: "veth0", RangeStart: netip.MustParseAddr("fd00:78::100"), RangeEnd: netip.MustParseAddr("fd00:78::1ff"),
			Boot: testBoot, Hosts: hosts(hwCli, ipxeMAC), Leases: leases, RouterAdvertisements: true,
			DNS: []netip.Addr{srvIP}, Logger: testLogger(t),
		})
		return err
	}); err != nil {
		t.Fatalf("New in %s: %v", srvNS.Name, err)
	}
	if s.ServerIP() != srvIP || s.Prefix().String() != "fd00:78::/64" {
		t.Errorf("server address %v prefix %v, want %v and fd00:78::/64 from the interface", s.ServerIP(), s.Prefix(), srvIP)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve() = %v, want nil after cancel", err)
		}
	})

	t.Run("router advertisement", func(t *testing.T) {
		// The first advertisement goes out when Serve starts; a kernel
		// that came up later solicits one.
		deadline := time.Now().Add(20 * time.Second)
		for {
			managed, other, err := raFlags(cliNS, "veth0")
			route := ipOut(t, "-n", cliNS.Name, "-6", "route", "show", "dev", "veth0")
			// A prefix learnt from an RA is a route that expires.
			if err == nil && managed && other && strings.Contains(route, "fd00:78::/64 proto kernel") && strings.Contains(route, "expires") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("kernel flags managed=%v other=%v (%v), routes:\n%s\nwant M and O set and fd00:78::/64 from the RA",
					managed, other, err, route)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if global := ipOut(t, "-n", cliNS.Name, "-6", "addr", "show", "dev", "veth0", "scope", "global"); strings.Contains(global, "fd00:78") {
			t.Errorf("kernel formed a SLAAC address from a non-autonomous prefix:\n%s", global)
		}
	})

	t.Run("dhclient", func(t *testing.T) {
		if _, err := exec.LookPath("dhclient"); err != nil {
			t.Skip("needs ISC dhclient (Debian package isc-dhcp-client)")
		}
		dir := t.TempDir()
		pid, lf := filepath.Join(dir, "pid"), filepath.Join(dir, "leases")
		dhclient := func(args ...string) {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", cliNS.Name, "dhclient", "-6", "-v",
				"-pf", pid, "-lf", lf}, append(args, "veth0")...)...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("dhclient %v: %v\n%s", args, err, out)
			}
		}
		t.Cleanup(func() {
			if b, err := os.ReadFile(pid); err == nil {
				var p int
				if _, err := fmt.Sscan(string(b), &p); err == nil && p > 0 {
					_ = syscall.Kill(p, syscall.SIGTERM)
				}
			}
		})
		dhclient("-1")
		global := ipOut(t, "-n", cliNS.Name, "-6", "addr", "show", "dev", "veth0", "scope", "global")
		var got netip.Addr
		for _, f := range strings.Fields(global) {
			if p, err := netip.ParsePrefix(f); err == nil && p.Addr().Is6() {
				got = p.Addr()
			}
		}
		if !s.pool.inRange(got) {
			t.Fatalf("dhclient configured %v, want an address of fd00:78::100-1ff:\n%s", got, global)
		}
		ls, err := leases.Load(context.Background())
		if err != nil || len(ls) != 1 || ls[0].IP != got || ls[0].MAC.String() != hwCli.String() {
			t.Fatalf("stored leases = %v, %v; want %v for %v", ls, err, got, hwCli)
		}
		lease, _ := os.ReadFile(lf)
		if !strings.Contains(string(lease), "fd00:78::1") {
			t.Errorf("dhclient's lease has no DNS server fd00:78::1 from option 23:\n%s", lease)
		}
		// -r sends a Release and stops the daemon: the lease is gone.
		dhclient("-r")
		deadline := time.Now().Add(10 * time.Second)
		for {
			ls, err := leases.Load(context.Background())
			if err == nil && len(ls) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("stored leases after dhclient -r = %v, %v; want none", ls, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("boot clients", func(t *testing.T) {
		vc := func(s string) dhcpv6.Modifier {
			return dhcpv6.WithOption(&dhcpv6.OptVendorClass{EnterpriseNumber: 343, Data: [][]byte{[]byte(s)}})
		}
		cases := []struct {
			name string
			mods []dhcpv6.Modifier
			want string
		}{
			{"ipxe", []dhcpv6.Modifier{dhcpv6.WithUserClass([]byte("iPXE")), dhcpv6.WithArchType(iana.EFI_X86_64)}, testBoot.ScriptURL},
			{"uefi http", []dhcpv6.Modifier{dhcpv6.WithArchType(iana.EFI_X86_64_HTTP), vc("HTTPClient:Arch:00016:UNDI:003016")}, testBoot.HTTPBootURL},
			{"uefi pxe", []dhcpv6.Modifier{dhcpv6.WithArchType(iana.EFI_X86_64), vc("PXEClient:Arch:00007:UNDI:003016")}, "tftp://[fd00:78::1]/snponly.efi"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				var c *nclient6.Client
				if err := cliNS.Do(func() error {
					var err error
					c, err = nclient6.New("veth0", nclient6.WithTimeout(3*time.Second), nclient6.WithRetry(3))
					return err
				}); err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				adv, err := c.Solicit(ctx, tc.mods...)
				if err != nil {
					t.Fatalf("Solicit: %v", err)
				}
				rep, err := c.Request(ctx, adv, tc.mods...)
				if err != nil {
					t.Fatalf("Request: %v", err)
				}
				if got := rep.Options.BootFileURL(); got != tc.want {
					t.Errorf("Reply option 59 = %q, want %q", got, tc.want)
				}
				if a := addrOf(t, rep); !s.pool.inRange(a) {
					t.Errorf("Reply address %v outside the range", a)
				}
			})
		}
	})
	if st := s.Stats(); st.Replies < 4 || st.Errors != 0 {
		t.Errorf("Stats() = %+v, want at least 4 replies and no errors", st)
	}
}

// testLogger logs through t when -v is given.
func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
