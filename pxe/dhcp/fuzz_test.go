package dhcp

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// seedPackets are real requests of each kind the server meets: PXE ROMs
// (BIOS, UEFI), UEFI HTTP boot, iPXE, relayed, renewing, releasing.
func seedPackets(f *testing.F) [][]byte {
	relay := dhcpv4.WithGatewayIP(net.IPv4(10, 78, 0, 2))
	ipxe := dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionUserClassInformation, []byte("iPXE")))
	req := func(ip string) dhcpv4.Modifier {
		return dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(ip)))
	}
	var out [][]byte
	for _, mods := range [][]dhcpv4.Modifier{
		biosPXE,
		{dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)), dhcpv4.WithOption(dhcpv4.OptClassIdentifier(vcUEFI))},
		{dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64_HTTP)), dhcpv4.WithOption(dhcpv4.OptClassIdentifier(vcHTTP))},
		append([]dhcpv4.Modifier{ipxe}, biosPXE...),
		append([]dhcpv4.Modifier{relay}, biosPXE...),
		{dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), req("10.78.0.100"),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IP(srvIP.AsSlice())))},
		{dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithClientIP(net.IPv4(10, 78, 0, 100))},
		{dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease), dhcpv4.WithClientIP(net.IPv4(10, 78, 0, 100))},
		{dhcpv4.WithMessageType(dhcpv4.MessageTypeDecline), req("10.78.0.101")},
		{dhcpv4.WithMessageType(dhcpv4.MessageTypeInform), dhcpv4.WithClientIP(net.IPv4(10, 78, 0, 100))},
	} {
		m, err := dhcpv4.NewDiscovery(mac(1), mods...)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, m.ToBytes())
	}
	return out
}

// FuzzPacket feeds random datagrams to the packet path of a full-mode and
// a proxy-mode server (ports 67 and 4011): parsing, the boot decision,
// address allocation and the lease log. Nothing may panic, and every
// reply must parse and answer the request's transaction. The servers live
// across inputs, so state built by earlier inputs is exercised too. The
// seed corpus is seedPackets plus testdata/fuzz/FuzzPacket.
func FuzzPacket(f *testing.F) {
	for _, p := range seedPackets(f) {
		f.Add(p)
	}
	leases, err := OpenLogLeases(filepath.Join(f.TempDir(), "leases.log"), LogOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { leases.Close() })
	full, err := prepare(context.Background(), Config{
		Mode: ModeFull, Interface: "test0", ServerIP: srvIP, Subnet: netip.MustParsePrefix("10.78.0.0/24"),
		RangeStart: netip.MustParseAddr("10.78.0.100"), RangeEnd: netip.MustParseAddr("10.78.0.103"),
		Boot: testBoot, Hosts: hosts(), AllowUnknown: true, Leases: leases, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatal(err)
	}
	proxy, err := prepare(context.Background(), Config{
		Mode: ModeProxy, Interface: "test0", ServerIP: srvIP, Subnet: netip.MustParsePrefix("10.78.0.0/24"),
		Boot: testBoot, Hosts: hosts(), AllowUnknown: true, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatal(err)
	}
	peer := &net.UDPAddr{IP: net.IPv4(10, 78, 0, 9), Port: 68}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		Decide(ParseClient(m), testBoot)
		for _, c := range []struct {
			s    *Server
			port int
		}{{full, 67}, {proxy, 67}, {proxy, DefaultProxyPort}} {
			reply, dst := c.s.handle(context.Background(), m, c.port, peer)
			if reply == nil {
				continue
			}
			if dst == nil || dst.IP == nil {
				t.Fatalf("%v reply without a destination", c.s.cfg.Mode)
			}
			back, err := dhcpv4.FromBytes(reply.ToBytes())
			if err != nil {
				t.Fatalf("%v reply does not parse: %v", c.s.cfg.Mode, err)
			}
			if back.TransactionID != m.TransactionID || back.OpCode != dhcpv4.OpcodeBootReply {
				t.Fatalf("%v reply xid %v op %v, want xid %v BOOTREPLY", c.s.cfg.Mode, back.TransactionID, back.OpCode, m.TransactionID)
			}
		}
	})
}

// BenchmarkDORA measures one full exchange without sockets: the server's
// work (DISCOVER and REQUEST parsed, answered and encoded, the lease
// appended to a LogLeases file) plus the client's parsing of the OFFER
// and building of the REQUEST.
func BenchmarkDORA(b *testing.B) {
	leases, err := OpenLogLeases(filepath.Join(b.TempDir(), "leases.log"), LogOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer leases.Close()
	s, err := prepare(context.Background(), Config{
		Mode: ModeFull, Interface: "test0", ServerIP: srvIP, Subnet: netip.MustParsePrefix("10.78.0.0/16"),
		RangeStart: netip.MustParseAddr("10.78.1.0"), RangeEnd: netip.MustParseAddr("10.78.255.254"),
		Boot: testBoot, Hosts: hosts(), AllowUnknown: true, Leases: leases, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	const macs = 60000
	discovers := make([][]byte, macs)
	for i := range discovers {
		hw := net.HardwareAddr{0x52, 0x56, 0, byte(i >> 16), byte(i >> 8), byte(i)}
		d, err := dhcpv4.NewDiscovery(hw, append([]dhcpv4.Modifier{dhcpv4.WithGatewayIP(net.IPv4(10, 78, 0, 2))}, biosPXE...)...)
		if err != nil {
			b.Fatal(err)
		}
		discovers[i] = d.ToBytes()
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, err := dhcpv4.FromBytes(discovers[i%macs])
		if err != nil {
			b.Fatal(err)
		}
		offer, _ := s.handle(ctx, m, 67, nil)
		if offer == nil {
			b.Fatal("no OFFER")
		}
		ob := offer.ToBytes()
		o, _ := dhcpv4.FromBytes(ob)
		req, err := dhcpv4.NewRequestFromOffer(o)
		if err != nil {
			b.Fatal(err)
		}
		r, err := dhcpv4.FromBytes(req.ToBytes())
		if err != nil {
			b.Fatal(err)
		}
		ack, _ := s.handle(ctx, r, 67, nil)
		if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
			b.Fatalf("REQUEST answered %v", ack)
		}
		_ = ack.ToBytes()
	}
}

// TestNewReplyMatchesLibrary: newReply builds what NewReplyFromRequest
// builds, for plain, relayed and client-identified requests.
func TestNewReplyMatchesLibrary(t *testing.T) {
	for _, mods := range [][]dhcpv4.Modifier{
		biosPXE,
		{dhcpv4.WithGatewayIP(net.IPv4(10, 78, 0, 2)), dhcpv4.WithBroadcast(true),
			dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionRelayAgentInformation, []byte{1, 2, 0xab, 0xcd})),
			dhcpv4.WithOption(dhcpv4.OptClientIdentifier([]byte{1, 0x52, 0x54, 0, 0, 0, 1}))},
	} {
		req, err := dhcpv4.NewDiscovery(mac(9), mods...)
		if err != nil {
			t.Fatal(err)
		}
		reply := []dhcpv4.Modifier{dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer), dhcpv4.WithYourIP(net.IPv4(10, 78, 0, 100))}
		want, err := dhcpv4.NewReplyFromRequest(req, reply...)
		if err != nil {
			t.Fatal(err)
		}
		if got := newReply(req, reply...); string(got.ToBytes()) != string(want.ToBytes()) {
			t.Errorf("newReply:\n%s\nNewReplyFromRequest:\n%s", got.Summary(), want.Summary())
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	if got := h.quantiles([]float64{0.5}); got[0] != 0 {
		t.Errorf("empty histogram p50 = %v, want 0", got[0])
	}
	for i := range 1000 {
		d := 100 * time.Microsecond
		if i >= 990 {
			d = 5 * time.Millisecond
		}
		h.add(d)
	}
	q := h.quantiles([]float64{0.5, 0.99, 0.999})
	for _, c := range []struct {
		got, lo, hi time.Duration
	}{
		{q[0], 100 * time.Microsecond, 120 * time.Microsecond},
		{q[1], 100 * time.Microsecond, 120 * time.Microsecond},
		{q[2], 5 * time.Millisecond, 6 * time.Millisecond},
	} {
		if c.got < c.lo || c.got > c.hi {
			t.Errorf("quantiles %v: %v outside [%v, %v]", q, c.got, c.lo, c.hi)
		}
	}
}
