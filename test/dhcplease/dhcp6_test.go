package dhcplease

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/test/harness"
	"github.com/ferric-metal/ferric/test/netnstest"
)

// segment6 is an IPv6 provisioning network for one test: the conductor
// on the host end of a veth pair (fd00:NN::1/64) and a DHCPv6 relay
// agent in a namespace on the other (fd00:NN::2), the pool
// fd00:NN::1:0 to fd00:NN::1:ffff.
type segment6 struct {
	hostIf string
	ns     *netnstest.NS
	server *net.UDPAddr
	relay  net.IP
	pool   string
}

func newSegment6(t testing.TB, nn byte) *segment6 {
	t.Helper()
	netnstest.Skip(t)
	hostIf, ns := netnstest.HostPair(t, "", "")
	pfx := fmt.Sprintf("fd00:%x::", nn)
	// nodad: both ends use their addresses at once.
	netnstest.IP(t, "addr", "add", pfx+"1/64", "dev", hostIf, "nodad")
	netnstest.IP(t, "-n", ns.Name, "addr", "add", pfx+"2/64", "dev", "veth0", "nodad")
	return &segment6{hostIf: hostIf, ns: ns, server: &net.UDPAddr{IP: net.ParseIP(pfx + "1"), Port: 547},
		relay: net.ParseIP(pfx + "2"), pool: pfx + "1:0-" + pfx + "1:ffff"}
}

// relay6 is a DHCPv6 relay agent full of booting machines: it forwards
// Solicits of made-up MACs (RELAY-FORW, from its own address, port 547)
// and, when asked to, a Request for every Advertise, and records what
// the server advertised to each MAC and which addresses it REPLYed.
type relay6 struct {
	seg    *segment6
	conn   *net.UDPConn
	prefix byte
	done   chan struct{}

	mu         sync.Mutex
	request    bool
	advertised map[string]netip.Addr // MAC -> address last advertised
	replied    map[netip.Addr]string // address -> MAC, bound by a Reply
	sent       int
}

func (s *segment6) newRelay(t testing.TB, prefix byte, request bool) *relay6 {
	t.Helper()
	var conn *net.UDPConn
	if err := s.ns.Do(func() error {
		var err error
		conn, err = net.ListenUDP("udp6", &net.UDPAddr{IP: s.relay, Port: 547})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	r := &relay6{seg: s, conn: conn, prefix: prefix, done: make(chan struct{}), request: request,
		advertised: map[string]netip.Addr{}, replied: map[netip.Addr]string{}}
	go r.read()
	t.Cleanup(r.close)
	return r
}

// mac is the relay's i-th machine.
func (r *relay6) mac(i uint32) net.HardwareAddr {
	return net.HardwareAddr{0x52, r.prefix, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}

// forward sends m from the machine mac (its EUI-64 link-local address as
// the peer address) through the relay.
func (r *relay6) forward(m *dhcpv6.Message, mac net.HardwareAddr) error {
	peer := net.IP{0xfe, 0x80, 14: 0, 15: 0}
	copy(peer[8:], []byte{mac[0] ^ 2, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]})
	fw, err := dhcpv6.EncapsulateRelay(m, dhcpv6.MessageTypeRelayForward, r.seg.relay, peer)
	if err != nil {
		return err
	}
	_, err = r.conn.WriteToUDP(fw.ToBytes(), r.seg.server)
	return err
}

// solicit sends a Solicit from mac.
func (r *relay6) solicit(mac net.HardwareAddr) error {
	m, err := dhcpv6.NewSolicit(mac)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.sent++
	r.mu.Unlock()
	return r.forward(m, mac)
}

func (r *relay6) read() {
	defer close(r.done)
	buf := make([]byte, 1500)
	for {
		n, _, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		p, err := dhcpv6.FromBytes(buf[:n])
		if err != nil {
			continue
		}
		rm, ok := p.(*dhcpv6.RelayMessage)
		if !ok || rm.MessageType != dhcpv6.MessageTypeRelayReply {
			continue
		}
		m, err := rm.GetInnerMessage()
		if err != nil {
			continue
		}
		duid, ok := m.Options.ClientID().(*dhcpv6.DUIDLLT)
		if !ok {
			continue
		}
		mac := duid.LinkLayerAddr
		var addr netip.Addr
		if ia := m.Options.OneIANA(); ia != nil {
			if a := ia.Options.OneAddress(); a != nil {
				addr, _ = netip.AddrFromSlice(a.IPv6Addr)
			}
		}
		if !addr.IsValid() {
			continue // a status without an address
		}
		r.mu.Lock()
		request := r.request
		switch m.MessageType {
		case dhcpv6.MessageTypeAdvertise:
			r.advertised[mac.String()] = addr
		case dhcpv6.MessageTypeReply:
			r.replied[addr] = mac.String()
		}
		r.mu.Unlock()
		if request && m.MessageType == dhcpv6.MessageTypeAdvertise {
			if req, err := dhcpv6.NewRequestFromAdvertise(m); err == nil {
				_ = r.forward(req, mac)
			}
		}
	}
}

// run sends Solicits from new MACs at about rate a second until ctx ends.
func (r *relay6) run(ctx context.Context, rate int) error {
	const tick = 10 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	for i := uint32(0); ; {
		for range max(1, rate/int(time.Second/tick)) {
			if err := r.solicit(r.mac(i)); err != nil {
				return err
			}
			i++
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (r *relay6) repliedCopy() map[netip.Addr]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.replied)
}

func (r *relay6) advertisedTo(mac string) (netip.Addr, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.advertised[mac]
	return a, ok
}

func (r *relay6) close() {
	r.conn.Close()
	<-r.done
}

// ask and answered make a relay that does not Request an asker.
func (r *relay6) ask(mac net.HardwareAddr) error { return r.solicit(mac) }
func (r *relay6) answered(mac string) bool {
	_, ok := r.advertisedTo(mac)
	return ok
}

// TestKill9KeepsRepliedLeases6Netns is TestKill9KeepsAckedLeasesNetns
// for DHCPv6: a conductor serving --dhcp6-range to a relay agent's
// stream of new machines (Solicit, Advertise, Request, Reply) is
// SIGKILLed after about 1,000 Replies. Started again on the same state
// directory, it advertises every machine whose Request it had REPLYed
// the same address, and a new machine none of those addresses. Each
// lease backend a single conductor can use: the IPv6 lease log (the
// default on bbolt), the log with the Reply waiting for fdatasync, and
// the store (bbolt).
func TestKill9KeepsRepliedLeases6Netns(t *testing.T) {
	bin := harness.Build(t)
	for i, tc := range []struct {
		name  string
		flags []string
	}{
		{"log", nil},
		{"log-sync", []string{"--dhcp-lease-sync"}},
		{"store", []string{"--dhcp-leases", "store"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seg := newSegment6(t, byte(0x75+i))
			state := t.TempDir()
			flags := append([]string{"--dhcp-interface", seg.hostIf, "--dhcp6-range", seg.pool, "--allow-unknown-macs"}, tc.flags...)
			c := startConductorWith(t, bin, state, flags...)
			load := seg.newRelay(t, 0x64, true)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			const want = 1000
			lctx, stopLoad := context.WithCancel(ctx)
			running := make(chan error, 1)
			go func() { running <- load.run(lctx, 1500) }()
			for len(load.repliedCopy()) < want {
				select {
				case err := <-running:
					t.Fatalf("load ended with %d Replies: %v", len(load.repliedCopy()), err)
				case <-ctx.Done():
					t.Fatalf("only %d Replies in 60 s", len(load.repliedCopy()))
				case <-time.After(10 * time.Millisecond):
				}
			}
			if err := c.p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-c.p.Done()
			stopLoad()
			if err := <-running; err != nil && !errors.Is(err, net.ErrClosed) {
				t.Logf("load: %v", err)
			}
			time.Sleep(100 * time.Millisecond) // Replies already on the wire
			replied := load.repliedCopy()
			load.mu.Lock()
			sent := load.sent
			load.mu.Unlock()
			load.close()
			t.Logf("%s: %d REPLYed leases (%d Solicits) before SIGKILL", tc.name, len(replied), sent)
			// The log variants wrote DHCPv6's records (36 bytes) to its log;
			// the store variant none.
			fi, err := os.Stat(filepath.Join(state, service.DHCP6LeaseLogName))
			switch {
			case tc.name == "store" && !errors.Is(err, os.ErrNotExist):
				t.Errorf("--dhcp-leases store left a DHCPv6 lease log: %v, %v", fi, err)
			case tc.name != "store" && (err != nil || fi.Size()%36 != 0 || fi.Size() < int64(len(replied))*36):
				t.Errorf("DHCPv6 lease log after %d Replies: %v, %v; want at least as many 36-byte records", len(replied), fi, err)
			}

			startConductorWith(t, bin, state, flags...)
			ask := seg.newRelay(t, 0x64, false)
			var macs []net.HardwareAddr
			for _, mac := range replied {
				hw, _ := net.ParseMAC(mac)
				macs = append(macs, hw)
			}
			askAll(t, ask, macs)
			lost, unanswered := 0, 0
			for ip, mac := range replied {
				got, ok := ask.advertisedTo(mac)
				switch {
				case !ok:
					unanswered++
				case got != ip:
					lost++
					if lost <= 5 {
						t.Errorf("%s had %v REPLYed before the kill; after the restart it is advertised %v", mac, ip, got)
					}
				}
			}
			if lost > 0 || unanswered > 0 {
				t.Fatalf("%d of %d REPLYed leases lost by a kill -9; %d MACs got no Advertise in 5 tries", lost, len(replied), unanswered)
			}
			ask.close() // frees the relay's port
			// New machines get none of the held addresses.
			fresh := seg.newRelay(t, 0x65, false)
			var newMACs []net.HardwareAddr
			for i := range uint32(200) {
				newMACs = append(newMACs, fresh.mac(i))
			}
			askAll(t, fresh, newMACs)
			got := 0
			for _, mac := range newMACs {
				ip, ok := fresh.advertisedTo(mac.String())
				if !ok {
					continue
				}
				got++
				if replied[ip] != "" {
					t.Errorf("new machine %v advertised %v, held by %s", mac, ip, replied[ip])
				}
			}
			if got == 0 {
				t.Error("no Advertise to a new machine after the restart")
			}
		})
	}
}

// A conductor upgraded from the version that kept DHCPv6 leases in its
// store (bbolt, records of the dhcp6_leases table): on the first start
// they move into the DHCPv6 lease log, each machine is advertised its
// address again and a new machine another; stopped and started with
// --dhcp-leases store, they move back into the store and are served the
// same.
func TestUpgradeKeepsStoredLeases6Netns(t *testing.T) {
	bin := harness.Build(t)
	seg := newSegment6(t, 0x7a)
	state := t.TempDir()
	st, err := store.OpenBolt(filepath.Join(state, "ferric.db"))
	if err != nil {
		t.Fatal(err)
	}
	// What the conductor wrote before the lease log, as it wrote it.
	old := map[string]string{
		"52:66:00:00:00:01": "fd00:7a::1:7",
		"52:66:00:00:00:02": "fd00:7a::1:3",
		"52:66:00:00:00:03": "fd00:7a::1:99",
	}
	expiry := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	if err := st.Update(context.Background(), func(tx store.Tx) error {
		for mac, ip := range old {
			rec := &store.Record{Key: ip, Data: []byte(`{"mac":"` + mac + `","expiry":"` + expiry + `"}`)}
			if err := tx.PutRecord("dhcp6_leases", rec); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--dhcp-interface", seg.hostIf, "--dhcp6-range", seg.pool, "--allow-unknown-macs"}
	for _, backend := range []string{"auto", "store"} {
		c := startConductorWith(t, bin, state, append(flags, "--dhcp-leases", backend)...)
		r := seg.newRelay(t, 0x66, false)
		newMAC := r.mac(0x100)
		macs := []net.HardwareAddr{newMAC}
		for mac := range old {
			hw, _ := net.ParseMAC(mac)
			macs = append(macs, hw)
		}
		askAll(t, r, macs)
		for mac, ip := range old {
			if got, ok := r.advertisedTo(mac); !ok || got.String() != ip {
				t.Errorf("%s: %s had %s in the store before the upgrade; advertised %v (%v)", backend, mac, ip, got, ok)
			}
		}
		got, ok := r.advertisedTo(newMAC.String())
		for _, ip := range old {
			if !ok || got.String() == ip {
				t.Errorf("%s: new machine advertised %v (%v); want an address of its own", backend, got, ok)
			}
		}
		r.close()
		if err := c.p.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		st, err := store.OpenBolt(filepath.Join(state, "ferric.db"))
		if err != nil {
			t.Fatal(err)
		}
		recs, err := st.Records("dhcp6_leases")
		st.Close()
		fi, ferr := os.Stat(filepath.Join(state, service.DHCP6LeaseLogName))
		switch backend {
		case "auto": // moved, not copied: the store's table is empty, the log holds them
			if err != nil || len(recs) != 0 {
				t.Errorf("store's DHCPv6 leases after the upgrade: %d, %v; want none", len(recs), err)
			}
			if ferr != nil || fi.Size() < int64(len(old))*36 {
				t.Errorf("DHCPv6 lease log: %v, %v; want at least %d records", fi, ferr, len(old))
			}
		case "store": // back in the store, the log set aside
			if err != nil || len(recs) != len(old) {
				t.Errorf("store's DHCPv6 leases with --dhcp-leases store: %d, %v; want %d", len(recs), err, len(old))
			}
			if !errors.Is(ferr, os.ErrNotExist) {
				t.Errorf("DHCPv6 lease log with --dhcp-leases store: %v, %v; want it renamed", fi, ferr)
			}
		}
	}
}
