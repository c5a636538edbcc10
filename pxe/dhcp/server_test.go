package dhcp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// fakeHosts knows the MACs in known; lookups of macs in fail error out.
type fakeHosts struct {
	mu    sync.Mutex
	known map[string]bool
	fail  map[string]bool
}

func (f *fakeHosts) PXEEnabled(_ context.Context, mac net.HardwareAddr) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail[mac.String()] {
		return false, errors.New("conductor unavailable")
	}
	return f.known[mac.String()], nil
}

func hosts(macs ...net.HardwareAddr) *fakeHosts {
	h := &fakeHosts{known: map[string]bool{}, fail: map[string]bool{}}
	for _, m := range macs {
		h.known[m.String()] = true
	}
	return h
}

func mac(last byte) net.HardwareAddr { return net.HardwareAddr{0x52, 0x54, 0, 0, 0, last} }

var (
	srvIP   = netip.MustParseAddr("10.78.0.1")
	biosPXE = []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(vcBIOS)),
	}
)

func openLeases(t *testing.T, path string) *BoltLeases {
	t.Helper()
	l, err := OpenBoltLeases(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// fullServer prepares a full-mode server without sockets.
func fullServer(t *testing.T, h Hosts, leases Leases, mutate func(*Config)) *Server {
	t.Helper()
	cfg := Config{
		Mode: ModeFull, Interface: "test0", ServerIP: srvIP, Subnet: netip.MustParsePrefix("10.78.0.0/24"),
		RangeStart: netip.MustParseAddr("10.78.0.100"), RangeEnd: netip.MustParseAddr("10.78.0.102"),
		Boot: testBoot, Hosts: h, Leases: leases, Logger: slog.New(slog.DiscardHandler),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := prepare(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func discover(t *testing.T, hw net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.NewDiscovery(hw, mods...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func request(t *testing.T, hw net.HardwareAddr, ip string, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	mods = append([]dhcpv4.Modifier{
		dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(ip))),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IP(srvIP.AsSlice()))),
	}, mods...)
	m, err := dhcpv4.NewDiscovery(hw, mods...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestHandleFull(t *testing.T) {
	ctx := context.Background()
	a, b, c, d, stranger := mac(1), mac(2), mac(3), mac(4), mac(99)
	h := hosts(a, b, c, d)
	h.fail[mac(98).String()] = true
	s := fullServer(t, h, openLeases(t, filepath.Join(t.TempDir(), "l.db")), func(c *Config) {
		c.Reservations = []Reservation{{MAC: d, IP: netip.MustParseAddr("10.78.0.50")}}
	})
	bcast := &net.UDPAddr{IP: net.IPv4bcast, Port: 68}

	// BIOS PXE DISCOVER: an address from the range plus boot information.
	offer, dst := s.handle(ctx, discover(t, a, biosPXE...), 67, nil)
	if offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatalf("DISCOVER from %v: got %v, want OFFER", a, offer)
	}
	if got := offer.YourIPAddr.String(); got != "10.78.0.100" {
		t.Errorf("OFFER yiaddr = %s, want 10.78.0.100", got)
	}
	if offer.BootFileName != "undionly.kpxe" || offer.ServerIPAddr.String() != "10.78.0.1" ||
		offer.ClassIdentifier() != "PXEClient" || string(offer.GetOneOption(dhcpv4.OptionVendorSpecificInformation)) != string(pxeVendorOptions) {
		t.Errorf("OFFER boot fields: file %q siaddr %v vci %q opt43 %x", offer.BootFileName, offer.ServerIPAddr, offer.ClassIdentifier(), offer.GetOneOption(dhcpv4.OptionVendorSpecificInformation))
	}
	if dst.String() != bcast.String() {
		t.Errorf("OFFER destination = %v, want %v", dst, bcast)
	}

	// REQUEST it: ACK. Another MAC asking for the same address: NAK.
	if ack, _ := s.handle(ctx, request(t, a, "10.78.0.100", biosPXE...), 67, nil); ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("REQUEST 10.78.0.100 from %v: got %v, want ACK", a, ack)
	}
	if nak, _ := s.handle(ctx, request(t, b, "10.78.0.100"), 67, nil); nak == nil || nak.MessageType() != dhcpv4.MessageTypeNak {
		t.Fatalf("REQUEST 10.78.0.100 from %v: got %v, want NAK", b, nak)
	}
	// Out of subnet: NAK. Other server chosen: silence.
	if nak, _ := s.handle(ctx, request(t, b, "192.168.1.5"), 67, nil); nak == nil || nak.MessageType() != dhcpv4.MessageTypeNak {
		t.Fatalf("REQUEST outside subnet: got %v, want NAK", nak)
	}
	other := request(t, b, "10.78.0.101", dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 78, 0, 254))))
	if r, _ := s.handle(ctx, other, 67, nil); r != nil {
		t.Fatalf("REQUEST for another server: got %v, want no reply", r)
	}
	// Relayed DISCOVER: reply to the relay on port 67; no boot info for a
	// client that is not a boot client.
	relayed := discover(t, b, dhcpv4.WithGatewayIP(net.IPv4(10, 78, 0, 2)))
	offer, dst = s.handle(ctx, relayed, 67, nil)
	if offer == nil || dst.String() != "10.78.0.2:67" || offer.BootFileName != "" {
		t.Fatalf("relayed DISCOVER: reply %v to %v, want OFFER without boot file to 10.78.0.2:67", offer, dst)
	}
	// Renewal with ciaddr: unicast ACK.
	renew := request(t, a, "0.0.0.0", dhcpv4.WithClientIP(net.IPv4(10, 78, 0, 100)))
	renew.Options.Del(dhcpv4.OptionRequestedIPAddress)
	renew.Options.Del(dhcpv4.OptionServerIdentifier)
	if ack, dst := s.handle(ctx, renew, 67, nil); ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || dst.String() != "10.78.0.100:68" {
		t.Fatalf("renewal: reply %v to %v, want ACK to 10.78.0.100:68", ack, dst)
	}
	// Reservation.
	if offer, _ := s.handle(ctx, discover(t, d), 67, nil); offer == nil || offer.YourIPAddr.String() != "10.78.0.50" {
		t.Fatalf("DISCOVER from reserved %v: got %v, want yiaddr 10.78.0.50", d, offer)
	}
	// Unknown MAC and failing lookup: no reply, counted.
	if r, _ := s.handle(ctx, discover(t, stranger, biosPXE...), 67, nil); r != nil {
		t.Fatalf("DISCOVER from unknown MAC: got %v, want no reply", r)
	}
	if r, _ := s.handle(ctx, discover(t, mac(98)), 67, nil); r != nil {
		t.Fatalf("DISCOVER with failing lookup: got %v, want no reply", r)
	}
	// Not a request: malformed.
	bad := discover(t, a)
	bad.OpCode = dhcpv4.OpcodeBootReply
	if r, _ := s.handle(ctx, bad, 67, nil); r != nil {
		t.Fatalf("BOOTREPLY: got %v, want no reply", r)
	}
	// Pool of three: a has .100, b was offered .101, c gets .102, the
	// stranger (now allowed) finds the pool exhausted.
	if offer, _ := s.handle(ctx, discover(t, c), 67, nil); offer == nil || offer.YourIPAddr.String() != "10.78.0.102" {
		t.Fatalf("DISCOVER from %v: got %v, want yiaddr 10.78.0.102", c, offer)
	}
	s.cfg.AllowUnknown = true
	if r, _ := s.handle(ctx, discover(t, stranger), 67, nil); r != nil {
		t.Fatalf("DISCOVER with exhausted pool: got %v, want no reply", r)
	}
	// RELEASE by a frees .100 for the stranger.
	rel := discover(t, a, dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease), dhcpv4.WithClientIP(net.IPv4(10, 78, 0, 100)))
	s.handle(ctx, rel, 67, nil)
	if offer, _ := s.handle(ctx, discover(t, stranger), 67, nil); offer == nil || offer.YourIPAddr.String() != "10.78.0.100" {
		t.Fatalf("DISCOVER after RELEASE: got %v, want yiaddr 10.78.0.100", offer)
	}

	want := Stats{Malformed: 1, Unknown: 1, Offers: 5, Acks: 2, Naks: 2, Ignored: 1, Releases: 1, Errors: 2}
	if got := s.Stats(); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestHandleProxy(t *testing.T) {
	ctx := context.Background()
	a := mac(1)
	s, err := prepare(ctx, Config{Mode: ModeProxy, Interface: "test0", ServerIP: srvIP,
		Subnet: netip.MustParsePrefix("10.78.0.0/24"), Boot: testBoot, Hosts: hosts(a), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	offer, _ := s.handle(ctx, discover(t, a, biosPXE...), 67, nil)
	if offer == nil || !offer.YourIPAddr.IsUnspecified() || offer.BootFileName != "undionly.kpxe" || offer.ServerIdentifier().String() != "10.78.0.1" {
		t.Fatalf("proxy DISCOVER: got %v, want OFFER with no address and undionly.kpxe", offer)
	}
	if r, _ := s.handle(ctx, discover(t, a), 67, nil); r != nil {
		t.Fatalf("proxy DISCOVER from non-PXE client: got %v, want no reply", r)
	}
	if r, _ := s.handle(ctx, request(t, a, "10.78.0.7", biosPXE...), 67, nil); r != nil {
		t.Fatalf("proxy REQUEST on 67: got %v, want no reply (the site's server answers)", r)
	}
	peer := &net.UDPAddr{IP: net.IPv4(10, 78, 0, 7), Port: 68}
	ack, dst := s.handle(ctx, request(t, a, "10.78.0.7", biosPXE...), 4011, peer)
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || dst != peer || ack.BootFileName != "undionly.kpxe" {
		t.Fatalf("proxy REQUEST on 4011: reply %v to %v, want ACK with boot file to %v", ack, dst, peer)
	}
}

// TestLeasesSurviveRestart binds addresses, "restarts" by preparing a new
// server over the same database, and checks that no bound address is
// offered to anyone else.
func TestLeasesSurviveRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "leases.db")
	h := hosts(mac(1), mac(2), mac(3), mac(4))
	l1, err := OpenBoltLeases(path)
	if err != nil {
		t.Fatal(err)
	}
	s1 := fullServer(t, h, l1, nil)
	for i, ip := range []string{"10.78.0.100", "10.78.0.101"} {
		m := mac(byte(i + 1))
		if offer, _ := s1.handle(ctx, discover(t, m), 67, nil); offer == nil || offer.YourIPAddr.String() != ip {
			t.Fatalf("DISCOVER %v: got %v, want %s", m, offer, ip)
		}
		if ack, _ := s1.handle(ctx, request(t, m, ip), 67, nil); ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
			t.Fatalf("REQUEST %v %s: got %v, want ACK", m, ip, ack)
		}
	}
	// Offered but never requested: not persisted, free after restart.
	s1.handle(ctx, discover(t, mac(3)), 67, nil)
	if err := l1.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := fullServer(t, h, openLeases(t, path), nil)
	offer, _ := s2.handle(ctx, discover(t, mac(4)), 67, nil)
	if offer == nil || offer.YourIPAddr.String() != "10.78.0.102" {
		t.Fatalf("after restart, DISCOVER from new MAC: got %v, want 10.78.0.102 (100 and 101 are bound)", offer)
	}
	if offer, _ := s2.handle(ctx, discover(t, mac(2)), 67, nil); offer == nil || offer.YourIPAddr.String() != "10.78.0.101" {
		t.Fatalf("after restart, DISCOVER from %v: got %v, want its lease 10.78.0.101", mac(2), offer)
	}
	if nak, _ := s2.handle(ctx, request(t, mac(3), "10.78.0.100"), 67, nil); nak == nil || nak.MessageType() != dhcpv4.MessageTypeNak {
		t.Fatalf("after restart, REQUEST for %v's address: got %v, want NAK", mac(1), nak)
	}
}

func TestLeaseExpiryReclaims(t *testing.T) {
	ctx := context.Background()
	s := fullServer(t, hosts(mac(1), mac(2)), openLeases(t, filepath.Join(t.TempDir(), "l.db")), func(c *Config) {
		c.RangeEnd = c.RangeStart
	})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	s.handle(ctx, discover(t, mac(1)), 67, nil)
	if ack, _ := s.handle(ctx, request(t, mac(1), "10.78.0.100"), 67, nil); ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("REQUEST: got %v, want ACK", ack)
	}
	if r, _ := s.handle(ctx, discover(t, mac(2)), 67, nil); r != nil {
		t.Fatalf("DISCOVER while the only address is bound: got %v, want no reply", r)
	}
	now = now.Add(DefaultLeaseTime + time.Second)
	if offer, _ := s.handle(ctx, discover(t, mac(2)), 67, nil); offer == nil || offer.YourIPAddr.String() != "10.78.0.100" {
		t.Fatalf("DISCOVER after expiry: got %v, want 10.78.0.100", offer)
	}
}

// FuzzHandle drives random bytes through the whole request path of a
// full-mode server: no panic, and every reply parses.
func FuzzHandle(f *testing.F) {
	for _, m := range []func() (*dhcpv4.DHCPv4, error){
		func() (*dhcpv4.DHCPv4, error) { return dhcpv4.NewDiscovery(mac(1), biosPXE...) },
		func() (*dhcpv4.DHCPv4, error) {
			return dhcpv4.NewDiscovery(mac(1), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
				dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 78, 0, 100))))
		},
	} {
		p, err := m()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p.ToBytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h := hosts()
		s := fullServer(t, h, openLeases(t, filepath.Join(t.TempDir(), "l.db")), func(c *Config) { c.AllowUnknown = true })
		m, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		reply, dst := s.handle(context.Background(), m, 67, nil)
		if reply == nil {
			return
		}
		if dst == nil {
			t.Fatal("reply without destination")
		}
		if _, err := dhcpv4.FromBytes(reply.ToBytes()); err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
	})
}
