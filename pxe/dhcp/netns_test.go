package dhcp

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/netnstest"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/iana"
)

// startInNS creates the server inside ns and serves until the test ends.
func startInNS(t *testing.T, ns *netnstest.NS, cfg Config) *Server {
	t.Helper()
	var s *Server
	if err := ns.Do(func() error {
		var err error
		s, err = New(context.Background(), cfg)
		return err
	}); err != nil {
		t.Fatalf("New in %s: %v", ns.Name, err)
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
	return s
}

func clientInNS(t *testing.T, ns *netnstest.NS, hw net.HardwareAddr) *nclient4.Client {
	t.Helper()
	var c *nclient4.Client
	if err := ns.Do(func() error {
		var err error
		c, err = nclient4.New("veth0", nclient4.WithHWAddr(hw), nclient4.WithTimeout(3*time.Second), nclient4.WithRetry(2))
		return err
	}); err != nil {
		t.Fatalf("nclient4 in %s: %v", ns.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var exchangeCases = []struct {
	name     string
	mods     []dhcpv4.Modifier
	wantFile string
	wantVCI  string
}{
	{"bios", biosPXE, "undionly.kpxe", "PXEClient"},
	{"uefi", []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(vcUEFI)),
	}, "snponly.efi", "PXEClient"},
	{"http", []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64_HTTP)),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(vcHTTP)),
	}, testBoot.HTTPBootURL, "HTTPClient"},
	{"ipxe", append([]dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionUserClassInformation, []byte("iPXE"))),
	}, biosPXE...), testBoot.ScriptURL, "PXEClient"},
}

func checkBoot(t *testing.T, what string, m *dhcpv4.DHCPv4, file, vci string) {
	t.Helper()
	if got := m.BootFileNameOption(); got != file {
		t.Errorf("%s option 67 = %q, want %q", what, got, file)
	}
	if got := m.ClassIdentifier(); got != vci {
		t.Errorf("%s option 60 = %q, want %q", what, got, vci)
	}
	if got := m.ServerIPAddr.String(); got != "10.78.0.1" {
		t.Errorf("%s siaddr = %s, want 10.78.0.1", what, got)
	}
}

// TestExchangeFullNetns runs DISCOVER/OFFER/REQUEST/ACK over a veth pair
// between two network namespaces, with nclient4 (raw sockets) as client.
func TestExchangeFullNetns(t *testing.T) {
	netnstest.Skip(t)
	srvNS, cliNS := netnstest.Pair(t, "10.78.0.1/24", "")
	var macs []net.HardwareAddr
	for i := range exchangeCases {
		macs = append(macs, mac(byte(i+1)))
	}
	s := startInNS(t, srvNS, Config{
		Mode: ModeFull, Interface: "veth0",
		RangeStart: netip.MustParseAddr("10.78.0.100"), RangeEnd: netip.MustParseAddr("10.78.0.200"),
		Reservations: []Reservation{{MAC: macs[0], IP: netip.MustParseAddr("10.78.0.10")}},
		Router:       netip.MustParseAddr("10.78.0.1"),
		Boot:         testBoot, Hosts: hosts(macs...), Leases: openLeases(t, filepath.Join(t.TempDir(), "l.db")),
		RouterAdvertisements: true, Logger: slog.New(slog.DiscardHandler),
	})
	seen := map[string]string{}
	for i, tc := range exchangeCases {
		t.Run(tc.name, func(t *testing.T) {
			c := clientInNS(t, cliNS, macs[i])
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			lease, err := c.Request(ctx, tc.mods...)
			if err != nil {
				t.Fatalf("DORA for %v: %v", macs[i], err)
			}
			ip := lease.ACK.YourIPAddr.String()
			if !lease.Offer.YourIPAddr.Equal(lease.ACK.YourIPAddr) {
				t.Errorf("OFFER yiaddr %v != ACK yiaddr %v", lease.Offer.YourIPAddr, lease.ACK.YourIPAddr)
			}
			if i == 0 && ip != "10.78.0.10" {
				t.Errorf("reserved MAC got %s, want 10.78.0.10", ip)
			}
			if owner, dup := seen[ip]; dup {
				t.Errorf("%s handed to %v and %s", ip, macs[i], owner)
			}
			seen[ip] = macs[i].String()
			checkBoot(t, "OFFER", lease.Offer, tc.wantFile, tc.wantVCI)
			checkBoot(t, "ACK", lease.ACK, tc.wantFile, tc.wantVCI)
		})
	}
	t.Run("unknown mac", func(t *testing.T) {
		c := clientInNS(t, cliNS, mac(0x77))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if offer, err := c.DiscoverOffer(ctx, biosPXE...); err == nil {
			t.Fatalf("DISCOVER from unknown MAC answered: %v", offer.Summary())
		}
	})
	// A REQUEST sent again under load is ACKed again: at least one ACK
	// an exchange.
	if st := s.Stats(); st.Acks < uint64(len(exchangeCases)) || st.Unknown == 0 {
		t.Errorf("Stats() = %+v, want at least %d ACKs and unknown MACs counted", st, len(exchangeCases))
	}
}

// TestExchangeProxyNetns: DISCOVER/OFFER on port 67 (no address), then
// REQUEST/ACK with the PXE boot server on port 4011.
func TestExchangeProxyNetns(t *testing.T) {
	netnstest.Skip(t)
	srvNS, cliNS := netnstest.Pair(t, "10.78.0.1/24", "10.78.0.2/24")
	var macs []net.HardwareAddr
	for i := range exchangeCases {
		macs = append(macs, mac(byte(i+1)))
	}
	s := startInNS(t, srvNS, Config{Mode: ModeProxy, Interface: "veth0", Boot: testBoot, Hosts: hosts(macs...),
		Logger: slog.New(slog.DiscardHandler)})
	var udp net.PacketConn
	if err := cliNS.Do(func() error {
		var err error
		udp, err = net.ListenPacket("udp4", "10.78.0.2:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	for i, tc := range exchangeCases {
		t.Run(tc.name, func(t *testing.T) {
			c := clientInNS(t, cliNS, macs[i])
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			offer, err := c.DiscoverOffer(ctx, tc.mods...)
			if err != nil {
				t.Fatalf("DISCOVER for %v: %v", macs[i], err)
			}
			if !offer.YourIPAddr.IsUnspecified() {
				t.Errorf("proxy OFFER yiaddr = %v, want 0.0.0.0", offer.YourIPAddr)
			}
			checkBoot(t, "proxy OFFER", offer, tc.wantFile, tc.wantVCI)
			req, err := dhcpv4.NewRequestFromOffer(offer, append(tc.mods, dhcpv4.WithClientIP(net.IPv4(10, 78, 0, 2)))...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := udp.WriteTo(req.ToBytes(), &net.UDPAddr{IP: net.IPv4(10, 78, 0, 1), Port: DefaultProxyPort}); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
			udp.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err := udp.ReadFrom(buf)
			if err != nil {
				t.Fatalf("no ACK from port 4011: %v", err)
			}
			ack, err := dhcpv4.FromBytes(buf[:n])
			if err != nil || ack.MessageType() != dhcpv4.MessageTypeAck || ack.TransactionID != req.TransactionID {
				t.Fatalf("port 4011 reply = %v, %v; want ACK for xid %v", ack, err, req.TransactionID)
			}
			checkBoot(t, "proxy ACK", ack, tc.wantFile, tc.wantVCI)
		})
	}
	// Garbage to port 67 is counted and does not stop the server.
	if _, err := udp.WriteTo([]byte("not dhcp"), &net.UDPAddr{IP: net.IPv4(10, 78, 0, 1), Port: 67}); err != nil {
		t.Fatal(err)
	}
	c := clientInNS(t, cliNS, macs[0])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.DiscoverOffer(ctx, biosPXE...); err != nil {
		t.Fatalf("DISCOVER after garbage: %v", err)
	}
	// A loaded machine can make the client send a DISCOVER again before
	// the OFFER reaches it; each is answered, so offers are counted
	// against what was received, not against the exchanges.
	st := s.Stats()
	if st.Malformed != 1 || st.Acks != uint64(len(exchangeCases)) || st.Offers < uint64(len(exchangeCases)+1) ||
		st.Offers+st.Acks+st.Malformed != st.Received {
		t.Errorf("Stats() = %+v, want 1 malformed, %d ACKs, at least %d offers, every DISCOVER answered",
			st, len(exchangeCases), len(exchangeCases)+1)
	}
}
