package dhcp6

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/ferric-metal/ferric/pxe/dhcp"
)

// memLeases is a dhcp.Leases in memory, for fuzzing.
type memLeases struct {
	mu sync.Mutex
	m  map[netip.Addr]dhcp.Lease
}

func (l *memLeases) Load(context.Context) ([]dhcp.Lease, error) { return nil, nil }
func (l *memLeases) Store(_ context.Context, x dhcp.Lease) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[x.IP] = x
	return nil
}
func (l *memLeases) Remove(_ context.Context, ip netip.Addr) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, ip)
	return nil
}

// FuzzHandle feeds arbitrary datagrams to the server: it must never
// panic, answer only with messages that parse, and never hand out an
// address outside its range.
func FuzzHandle(f *testing.F) {
	hw := mac(1)
	sol, _ := dhcpv6.NewSolicit(hw, dhcpv6.WithUserClass([]byte("iPXE")), dhcpv6.WithArchType(iana.EFI_X86_64))
	f.Add(sol.ToBytes())
	rc, _ := dhcpv6.NewSolicit(hw, dhcpv6.WithRapidCommit)
	f.Add(rc.ToBytes())
	fw, _ := dhcpv6.EncapsulateRelay(sol, dhcpv6.MessageTypeRelayForward, net.ParseIP("fd00::1"), net.ParseIP("fe80::1"))
	f.Add(fw.ToBytes())
	info, _ := dhcpv6.NewMessage()
	info.MessageType = dhcpv6.MessageTypeInformationRequest
	f.Add(info.ToBytes())
	f.Add([]byte{})
	f.Add([]byte{12, 0, 0, 0})
	// Leases in memory: a bbolt fsync per bound address would leave
	// the fuzzer a few hundred inputs a second.
	s := testServer(f, hosts(hw), &memLeases{m: map[netip.Addr]dhcp.Lease{}}, func(c *Config) { c.AllowUnknown = true })
	peer := &net.UDPAddr{IP: eui64(hw), Port: 546}
	f.Fuzz(func(t *testing.T, b []byte) {
		out, _ := s.handle(context.Background(), b, peer)
		if out == nil {
			return
		}
		p, err := dhcpv6.FromBytes(out)
		if err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
		m, err := dhcpv6.DHCPv6(p).GetInnerMessage()
		if err != nil {
			t.Fatalf("reply has no message: %v", err)
		}
		for _, ia := range m.Options.IANA() {
			for _, a := range ia.Options.Addresses() {
				ip, _ := netip.AddrFromSlice(a.IPv6Addr)
				if !s.pool.inRange(ip) {
					t.Fatalf("handed out %v outside the range", ip)
				}
			}
		}
	})
}

// FuzzParseSolicitation: any bytes are accepted or refused without a
// panic, and an accepted solicitation's link-layer address is 6 bytes.
func FuzzParseSolicitation(f *testing.F) {
	f.Add([]byte{133, 0, 0, 0, 0, 0, 0, 0}, false)
	f.Add([]byte{133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 0, 0, 0, 9}, false)
	f.Add([]byte{133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 0, 0, 0, 9}, true)
	f.Add([]byte{133, 0, 0, 0, 0, 0, 0, 0, 14, 3, 0}, false)
	f.Fuzz(func(t *testing.T, b []byte, unspecified bool) {
		src := netip.MustParseAddr("fe80::1")
		if unspecified {
			src = netip.IPv6Unspecified()
		}
		lla, err := ParseSolicitation(b, src)
		if err == nil && lla != nil && len(lla) != 6 {
			t.Fatalf("lla %v is not 6 bytes", lla)
		}
	})
}

// FuzzBuildRA: any prefix and lifetimes give an advertisement the
// solicitation parser's option walk accepts, or a clear error.
func FuzzBuildRA(f *testing.F) {
	f.Add([]byte{0xfd, 0, 0, 0x78, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 64, int64(0), true, true)
	f.Add([]byte{0xfd, 0, 0, 0x78, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 129, int64(-5), false, true)
	f.Fuzz(func(t *testing.T, addr []byte, bits int, lifetime int64, managed, auto bool) {
		a, ok := netip.AddrFromSlice(addr)
		if !ok {
			return
		}
		p := netip.PrefixFrom(a, bits)
		b, err := BuildRA(RAConfig{Prefix: p, Managed: managed, Autonomous: auto, RouterLifetime: durationOf(lifetime)},
			net.HardwareAddr{2, 0, 0, 0, 0, 1})
		if err != nil {
			return
		}
		// Walk the options as a receiver does.
		b[0] = 133 // reuse the RS option walk over the RA's options
		opts := b[16:]
		for len(opts) > 0 {
			if len(opts) < 2 || opts[1] == 0 || int(opts[1])*8 > len(opts) {
				t.Fatalf("malformed option list % x", b[16:])
			}
			opts = opts[int(opts[1])*8:]
		}
	})
}

func durationOf(n int64) time.Duration { return time.Duration(n) }
