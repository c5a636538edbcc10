package dhcp6

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/ferric-metal/ferric/pxe/dhcp"
)

type fakeHosts struct {
	mu    sync.Mutex
	known map[string]bool
}

func (f *fakeHosts) PXEEnabled(_ context.Context, mac net.HardwareAddr) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if mac.String() == "52:54:00:00:00:ee" {
		return false, errors.New("conductor unavailable")
	}
	return f.known[mac.String()], nil
}

func hosts(macs ...net.HardwareAddr) *fakeHosts {
	h := &fakeHosts{known: map[string]bool{}}
	for _, m := range macs {
		h.known[m.String()] = true
	}
	return h
}

func mac(last byte) net.HardwareAddr { return net.HardwareAddr{0x52, 0x54, 0, 0, 0, last} }

var (
	srvIP    = netip.MustParseAddr("fd00:78::1")
	srvMAC   = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	testBoot = dhcp.BootConfig{
		ScriptURL:   "http://[fd00:78::1]:6385/boot/boot.ipxe",
		HTTPBootURL: "http://[fd00:78::1]:6385/boot/firmware/snponly.efi",
	}
)

func openLeases(t testing.TB, path string) *BoltLeases {
	t.Helper()
	l, err := OpenBoltLeases(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func testServer(t testing.TB, h dhcp.Hosts, leases dhcp.Leases, mutate func(*Config)) *Server {
	t.Helper()
	cfg := Config{
		Interface: "test0", ServerIP: srvIP, Prefix: netip.MustParsePrefix("fd00:78::/64"),
		RangeStart: netip.MustParseAddr("fd00:78::100"), RangeEnd: netip.MustParseAddr("fd00:78::102"),
		Boot: testBoot, Hosts: h, Leases: leases, Logger: slog.New(slog.DiscardHandler),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := prepare(context.Background(), cfg, srvMAC)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// exchange sends m from the link-local address of hw and parses the
// answer (nil for none).
func exchange(t *testing.T, s *Server, hw net.HardwareAddr, m dhcpv6.DHCPv6) *dhcpv6.Message {
	t.Helper()
	peer := &net.UDPAddr{IP: eui64(hw), Port: 546, Zone: "test0"}
	b, dst := s.handle(context.Background(), m.ToBytes(), peer)
	if b == nil {
		return nil
	}
	if dst != peer {
		t.Errorf("reply sent to %v, want the sender %v", dst, peer)
	}
	r, err := dhcpv6.MessageFromBytes(b)
	if err != nil {
		t.Fatalf("reply does not parse: %v", err)
	}
	return r
}

// eui64 is the link-local address a firmware forms from hw.
func eui64(hw net.HardwareAddr) net.IP {
	return net.IP{0xfe, 0x80, 0, 0, 0, 0, 0, 0, hw[0] ^ 2, hw[1], hw[2], 0xff, 0xfe, hw[3], hw[4], hw[5]}
}

func solicit(t *testing.T, hw net.HardwareAddr, mods ...dhcpv6.Modifier) *dhcpv6.Message {
	t.Helper()
	m, err := dhcpv6.NewSolicit(hw, mods...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func request(t *testing.T, adv *dhcpv6.Message, mods ...dhcpv6.Modifier) *dhcpv6.Message {
	t.Helper()
	m, err := dhcpv6.NewRequestFromAdvertise(adv, mods...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func addrOf(t *testing.T, m *dhcpv6.Message) netip.Addr {
	t.Helper()
	ia := m.Options.OneIANA()
	if ia == nil {
		t.Fatalf("%s has no IA_NA: %s", m.MessageType, m.Summary())
	}
	a := ia.Options.OneAddress()
	if a == nil {
		t.Fatalf("%s IA_NA has no address (status %v)", m.MessageType, ia.Options.Status())
	}
	ip, _ := netip.AddrFromSlice(a.IPv6Addr)
	return ip
}

// uuidDUID is iPXE's kind of client identifier, with no MAC in it.
var uuidDUID = &dhcpv6.DUIDUUID{UUID: [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}}

func TestBootURL(t *testing.T) {
	vc := func(s string) dhcpv6.Modifier {
		return dhcpv6.WithOption(&dhcpv6.OptVendorClass{EnterpriseNumber: 343, Data: [][]byte{[]byte(s)}})
	}
	cases := []struct {
		name    string
		mods    []dhcpv6.Modifier
		wantURL string
		wantVC  string
	}{
		{"ipxe", []dhcpv6.Modifier{dhcpv6.WithUserClass([]byte("iPXE")), dhcpv6.WithArchType(iana.EFI_X86_64),
			dhcpv6.WithClientID(uuidDUID)}, testBoot.ScriptURL, ""},
		{"uefi http", []dhcpv6.Modifier{dhcpv6.WithArchType(iana.EFI_X86_64_HTTP), vc("HTTPClient:Arch:00016:UNDI:003016")},
			testBoot.HTTPBootURL, "HTTPClient"},
		{"uefi pxe", []dhcpv6.Modifier{dhcpv6.WithArchType(iana.EFI_X86_64), vc("PXEClient:Arch:00007:UNDI:003016")},
			"tftp://[fd00:78::1]/snponly.efi", ""},
		{"not a boot client", nil, "", ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hw := mac(byte(i + 1))
			s := testServer(t, hosts(hw), openLeases(t, filepath.Join(t.TempDir(), "l.db")), nil)
			adv := exchange(t, s, hw, solicit(t, hw, tc.mods...))
			if adv == nil || adv.MessageType != dhcpv6.MessageTypeAdvertise {
				t.Fatalf("Solicit answered with %v, want an Advertise", adv)
			}
			rep := exchange(t, s, hw, request(t, adv, tc.mods...))
			if rep == nil || rep.MessageType != dhcpv6.MessageTypeReply {
				t.Fatalf("Request answered with %v, want a Reply", rep)
			}
			for _, m := range []*dhcpv6.Message{adv, rep} {
				if got := m.Options.BootFileURL(); got != tc.wantURL {
					t.Errorf("%s option 59 = %q, want %q", m.MessageType, got, tc.wantURL)
				}
				var gotVC string
				if v := m.Options.VendorClass(343); len(v) > 0 {
					gotVC = string(v[0])
				}
				if gotVC != tc.wantVC {
					t.Errorf("%s vendor class = %q, want %q", m.MessageType, gotVC, tc.wantVC)
				}
			}
			if a, r := addrOf(t, adv), addrOf(t, rep); a != r || !s.cfg.Prefix.Contains(r) {
				t.Errorf("advertised %v, replied %v; want the same address inside %v", a, r, s.cfg.Prefix)
			}
		})
	}
}

func TestLeaseLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.db")
	a, b, c, d := mac(1), mac(2), mac(3), mac(4)
	leases := openLeases(t, path)
	s := testServer(t, hosts(a, b, c, d), leases, nil)

	bound := map[string]netip.Addr{}
	for _, hw := range []net.HardwareAddr{a, b, c} {
		adv := exchange(t, s, hw, solicit(t, hw))
		rep := exchange(t, s, hw, request(t, adv))
		ip := addrOf(t, rep)
		for other, got := range bound {
			if got == ip {
				t.Fatalf("%v handed to %v and %s", ip, hw, other)
			}
		}
		bound[hw.String()] = ip
	}
	// The pool holds three addresses: the fourth machine gets none.
	adv := exchange(t, s, d, solicit(t, d))
	if st := adv.Options.OneIANA().Options.Status(); st == nil || st.StatusCode != iana.StatusNoAddrsAvail {
		t.Errorf("Solicit on a full pool: IA status %v, want NoAddrsAvail", st)
	}

	// Renew extends; a Renew for an address the client does not hold
	// gets NoBinding.
	renew := func(hw net.HardwareAddr, ip netip.Addr) *dhcpv6.Message {
		m, _ := dhcpv6.NewMessage()
		m.MessageType = dhcpv6.MessageTypeRenew
		m.AddOption(dhcpv6.OptClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: hw}))
		m.AddOption(dhcpv6.OptServerID(s.duid))
		m.AddOption(&dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, hw[5]},
			Options: dhcpv6.IdentityOptions{Options: dhcpv6.Options{&dhcpv6.OptIAAddress{IPv6Addr: net.IP(ip.AsSlice())}}}})
		return m
	}
	if got := addrOf(t, exchange(t, s, a, renew(a, bound[a.String()]))); got != bound[a.String()] {
		t.Errorf("Renew of %v gave %v", bound[a.String()], got)
	}
	rep := exchange(t, s, a, renew(a, bound[b.String()]))
	if st := rep.Options.OneIANA().Options.Status(); st == nil || st.StatusCode != iana.StatusNoBinding {
		t.Errorf("Renew of another's address: IA status %v, want NoBinding", st)
	}

	// Leases survive a restart: the same MAC gets the same address, and
	// the others' addresses are not handed out.
	s2 := testServer(t, hosts(a, b, c, d), leases, nil)
	for _, hw := range []net.HardwareAddr{a, b, c} {
		if got := addrOf(t, exchange(t, s2, hw, solicit(t, hw))); got != bound[hw.String()] {
			t.Errorf("after restart %v was advertised %v, want its lease %v", hw, got, bound[hw.String()])
		}
	}

	// Release frees the address for the fourth machine.
	rel, _ := dhcpv6.NewMessage()
	rel.MessageType = dhcpv6.MessageTypeRelease
	rel.AddOption(dhcpv6.OptClientID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: c}))
	rel.AddOption(dhcpv6.OptServerID(s2.duid))
	rel.AddOption(&dhcpv6.OptIANA{Options: dhcpv6.IdentityOptions{Options: dhcpv6.Options{
		&dhcpv6.OptIAAddress{IPv6Addr: net.IP(bound[c.String()].AsSlice())}}}})
	if r := exchange(t, s2, c, rel); r == nil || r.Options.Status() == nil || r.Options.Status().StatusCode != iana.StatusSuccess {
		t.Fatalf("Release answered %v, want Success", r)
	}
	ls, err := leases.Load(context.Background())
	if err != nil || len(ls) != 2 {
		t.Fatalf("stored leases after a release = %v, %v; want 2", ls, err)
	}
	adv = exchange(t, s2, d, solicit(t, d))
	if got := addrOf(t, adv); got != bound[c.String()] {
		t.Errorf("fourth machine advertised %v, want the released %v", got, bound[c.String()])
	}
}

func TestIgnored(t *testing.T) {
	known := mac(1)
	s := testServer(t, hosts(known), openLeases(t, filepath.Join(t.TempDir(), "l.db")), nil)
	other := &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{2, 2, 2, 2, 2, 2}}
	adv := exchange(t, s, known, solicit(t, known))
	cases := []struct {
		name string
		from net.HardwareAddr
		msg  func() dhcpv6.DHCPv6
		want func(Stats) uint64
	}{
		{"unknown mac", mac(9), func() dhcpv6.DHCPv6 { return solicit(t, mac(9)) }, func(s Stats) uint64 { return s.Unknown }},
		{"host lookup fails", mac(0xee), func() dhcpv6.DHCPv6 { return solicit(t, mac(0xee)) }, func(s Stats) uint64 { return s.Errors }},
		{"request to another server", known, func() dhcpv6.DHCPv6 {
			r := request(t, adv)
			r.UpdateOption(dhcpv6.OptServerID(other))
			return r
		}, func(s Stats) uint64 { return s.Ignored }},
		{"advertise from a client", known, func() dhcpv6.DHCPv6 {
			m := solicit(t, known)
			m.MessageType = dhcpv6.MessageTypeAdvertise
			return m
		}, func(s Stats) uint64 { return s.Malformed }},
		{"no client id", known, func() dhcpv6.DHCPv6 {
			m := solicit(t, known)
			m.Options.Del(dhcpv6.OptionClientID)
			return m
		}, func(s Stats) uint64 { return s.Malformed }},
		{"uuid duid from a non-EUI-64 address", nil, func() dhcpv6.DHCPv6 {
			return solicit(t, known, dhcpv6.WithClientID(uuidDUID))
		}, func(s Stats) uint64 { return s.Unknown }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.want(s.Stats())
			peer := &net.UDPAddr{IP: net.ParseIP("fe80::1234:5678:9abc:def0"), Port: 546}
			if tc.from != nil {
				peer.IP = eui64(tc.from)
			}
			if b, _ := s.handle(context.Background(), tc.msg().ToBytes(), peer); b != nil {
				t.Fatalf("answered: %x", b)
			}
			if after := tc.want(s.Stats()); after != before+1 {
				t.Errorf("counter went %d -> %d, want +1 (%+v)", before, after, s.Stats())
			}
		})
	}
	for _, b := range [][]byte{nil, {1}, {1, 2, 3, 4, 0, 1, 0, 9}, []byte(strings.Repeat("\xff", 100))} {
		if r, _ := s.handle(context.Background(), b, &net.UDPAddr{IP: net.IPv6loopback}); r != nil {
			t.Errorf("garbage %x answered", b)
		}
	}
}

func TestRelay(t *testing.T) {
	hw := mac(5)
	s := testServer(t, hosts(hw), openLeases(t, filepath.Join(t.TempDir(), "l.db")), nil)
	sol := solicit(t, hw, dhcpv6.WithClientID(uuidDUID), dhcpv6.WithUserClass([]byte("iPXE")))
	fw, err := dhcpv6.EncapsulateRelay(sol, dhcpv6.MessageTypeRelayForward, net.ParseIP("fd00:99::1"), net.ParseIP("fd00:99::55"))
	if err != nil {
		t.Fatal(err)
	}
	fw.AddOption(dhcpv6.OptClientLinkLayerAddress(iana.HWTypeEthernet, hw))
	relayPeer := &net.UDPAddr{IP: net.ParseIP("fd00:99::1"), Port: 547}
	b, dst := s.handle(context.Background(), fw.ToBytes(), relayPeer)
	if b == nil || dst != relayPeer {
		t.Fatalf("relayed Solicit: reply %x to %v, want one to the relay", b, dst)
	}
	p, err := dhcpv6.FromBytes(b)
	if err != nil || p.Type() != dhcpv6.MessageTypeRelayReply {
		t.Fatalf("reply = %v, %v; want RELAY-REPL", p, err)
	}
	inner, err := p.(*dhcpv6.RelayMessage).GetInnerMessage()
	if err != nil || inner.MessageType != dhcpv6.MessageTypeAdvertise {
		t.Fatalf("inner = %v, %v; want an Advertise", inner, err)
	}
	if got := inner.Options.BootFileURL(); got != testBoot.ScriptURL {
		t.Errorf("relayed iPXE client's option 59 = %q, want %q", got, testBoot.ScriptURL)
	}
}

func TestConfig(t *testing.T) {
	leases := openLeases(t, filepath.Join(t.TempDir(), "l.db"))
	base := Config{Interface: "x", ServerIP: srvIP, Prefix: netip.MustParsePrefix("fd00:78::/64"),
		RangeStart: netip.MustParseAddr("fd00:78::100"), RangeEnd: netip.MustParseAddr("fd00:78::1ff"),
		Boot: testBoot, Hosts: hosts(), Leases: leases}
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"range outside prefix", func(c *Config) { c.RangeEnd = netip.MustParseAddr("fd00:79::1") }, "not inside prefix"},
		{"range reversed", func(c *Config) { c.RangeStart, c.RangeEnd = c.RangeEnd, c.RangeStart }, "start first"},
		{"range too large", func(c *Config) { c.RangeEnd = netip.MustParseAddr("fd00:78::ffff:ffff") }, "more than"},
		{"IPv4 range", func(c *Config) {
			c.RangeStart, c.RangeEnd = netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
		}, "not inside prefix"},
		{"no script", func(c *Config) { c.Boot.ScriptURL = "" }, "ScriptURL"},
		{"no leases", func(c *Config) { c.Leases = nil }, "Leases"},
		{"IPv4 server", func(c *Config) { c.ServerIP = netip.MustParseAddr("10.0.0.1") }, "IPv6 server"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.mutate(&cfg)
			_, err := prepare(context.Background(), cfg, srvMAC)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("prepare() = %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestPoolArithmetic(t *testing.T) {
	start := netip.MustParseAddr("fd00::ffff:fffe")
	if got := nth(start, 3); got != netip.MustParseAddr("fd00::1:0:1") {
		t.Errorf("nth(%v, 3) = %v", start, got)
	}
	if n, err := rangeSize(start, netip.MustParseAddr("fd00::1:0:1")); err != nil || n != 4 {
		t.Errorf("rangeSize = %d, %v; want 4", n, err)
	}
}

func TestClientMAC(t *testing.T) {
	hw := mac(7)
	m := solicit(t, hw, dhcpv6.WithClientID(uuidDUID))
	ll, _ := netip.AddrFromSlice(eui64(hw))
	if got := ClientMAC(m, nil, ll); got.String() != hw.String() {
		t.Errorf("MAC from EUI-64 %v = %v, want %v", ll, got, hw)
	}
	if got := ClientMAC(m, nil, netip.MustParseAddr("fe80::1")); got != nil {
		t.Errorf("MAC from a non-EUI-64 address = %v, want none", got)
	}
	if got := ClientMAC(solicit(t, hw), nil, netip.Addr{}); got.String() != hw.String() {
		t.Errorf("MAC from DUID-LLT = %v, want %v", got, hw)
	}
}
