// Package dhcplease tests where a conductor's full-mode DHCP keeps its
// leases, through the conductor itself: the lease log survives a kill -9
// under DHCP load, leases an older version kept in the store are served
// the same after an upgrade, and a benchmark reads the conductor's own
// REQUEST→ACK time from /metrics for each lease backend. The DHCP clients
// are a relay agent (pxe/dhcp/dhcpload) in a network namespace; the
// conductor serves on the host end of a veth pair.
package dhcplease

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/pxe/dhcp/dhcpload"
	"github.com/ferric-metal/ferric/test/harness"
	"github.com/ferric-metal/ferric/test/netnstest"
)

// segment is a provisioning network for one test: the conductor's end of
// a veth pair and a relay agent's namespace on the other.
type segment struct {
	hostIf string
	ns     *netnstest.NS
	server *net.UDPAddr // the conductor's DHCP address
	relay  net.IP       // the relay's address
}

// newSegment makes a /16 (a.b.0.0/16): the conductor on a.b.0.1, the
// relay on a.b.0.2, the pool a.b.1.0 to a.b.255.254.
func newSegment(t testing.TB, a, b byte) *segment {
	t.Helper()
	netnstest.Skip(t)
	pfx := fmt.Sprintf("%d.%d.0.", a, b)
	hostIf, ns := netnstest.HostPair(t, pfx+"1/16", pfx+"2/16")
	return &segment{hostIf: hostIf, ns: ns, server: &net.UDPAddr{IP: net.IPv4(a, b, 0, 1), Port: 67}, relay: net.IPv4(a, b, 0, 2)}
}

func (s *segment) pool() string {
	v4 := s.server.IP.To4()
	return fmt.Sprintf("%d.%d.1.0-%d.%d.255.254", v4[0], v4[1], v4[0], v4[1])
}

// newRelay opens the relay's socket (its address, port 67) in the
// segment's namespace.
func (s *segment) newRelay(t testing.TB, prefix byte) *dhcpload.Relay {
	t.Helper()
	var conn *net.UDPConn
	if err := s.ns.Do(func() error {
		var err error
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: s.relay, Port: 67})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	r := dhcpload.NewRelay(conn, s.server, prefix)
	t.Cleanup(r.Close)
	return r
}

// conductor is a ferric-conductor process serving full DHCP on seg.
type conductor struct {
	p   *harness.Process
	api string // http://host:port
}

// startConductor runs the binary on state with full DHCP on seg and the
// extra flags.
func startConductor(t testing.TB, bin, state string, seg *segment, extra ...string) *conductor {
	t.Helper()
	return startConductorWith(t, bin, state, append([]string{
		"--dhcp-mode", "full", "--dhcp-interface", seg.hostIf, "--dhcp-range", seg.pool(), "--allow-unknown-macs"}, extra...)...)
}

// startConductorWith runs the binary on state with the DHCP flags.
func startConductorWith(t testing.TB, bin, state string, dhcpFlags ...string) *conductor {
	t.Helper()
	args := append([]string{"--api-listen", "127.0.0.1:0", "--state-dir", state, "--hostname", "dhcp-lease",
		"--inspector-listen", ""}, dhcpFlags...)
	c := &conductor{}
	apiAt := make(chan string, 1)
	p, err := harness.StartBinary(exec.Command(bin, args...), func(l string) {
		if strings.Contains(l, "ferric-conductor ready") {
			if _, after, ok := strings.Cut(l, "api="); ok {
				apiAt <- strings.Fields(after)[0]
			}
			return
		}
		if strings.Contains(l, "level=ERROR") {
			t.Log(l)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	c.p = p
	t.Cleanup(func() { _ = p.Stop(syscall.SIGTERM, 10*time.Second) })
	select {
	case c.api = <-apiAt:
	case <-time.After(5 * time.Second):
		t.Fatal("no API address in the ready line")
	}
	return c
}

// ackLatency reads the conductor's REQUEST→ACK quantiles and ACK count
// from /metrics.
func (c *conductor) ackLatency(t testing.TB) (q map[string]time.Duration, acks float64) {
	t.Helper()
	resp, err := http.Get(c.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	q = map[string]time.Duration{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		name, val, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(name, `ferric_dhcp_ack_latency_seconds{quantile="`):
			q[strings.TrimSuffix(strings.TrimPrefix(name, `ferric_dhcp_ack_latency_seconds{quantile="`), `"}`)] =
				time.Duration(f * float64(time.Second))
		case name == `ferric_dhcp_packets_total{kind="ack"}`:
			acks = f
		}
	}
	return q, acks
}

// asker asks a server, for one MAC, which address it would get (a
// DISCOVER or a Solicit) and knows whether an answer came.
type asker interface {
	ask(mac net.HardwareAddr) error
	answered(mac string) bool
}

// offers asks through a DHCPv4 relay that records OFFERs only.
type offers struct{ *dhcpload.Relay }

func (o offers) ask(mac net.HardwareAddr) error { return o.Discover(mac) }
func (o offers) answered(mac string) bool {
	_, ok := o.Offered(mac)
	return ok
}

// askAll asks for each of macs and waits for the answers, asking again,
// a few times, for the MACs without one: datagrams may be lost on a
// loaded machine.
func askAll(t *testing.T, a asker, macs []net.HardwareAddr) {
	t.Helper()
	for round := 0; round < 5; round++ {
		var missing []net.HardwareAddr
		for _, mac := range macs {
			if !a.answered(mac.String()) {
				missing = append(missing, mac)
			}
		}
		if len(missing) == 0 {
			return
		}
		for i, mac := range missing {
			if err := a.ask(mac); err != nil {
				t.Fatal(err)
			}
			if i%50 == 49 {
				time.Sleep(10 * time.Millisecond)
			}
		}
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			all := true
			for _, mac := range missing {
				if !a.answered(mac.String()) {
					all = false
					break
				}
			}
			if all {
				break
			}
		}
	}
}

// A conductor whose DHCP hands out leases as fast as a relay asks is
// killed with SIGKILL in the middle of the load. Started again on the
// same state directory, it offers every MAC it had ACKed the same
// address, and a new machine none of those addresses. Each lease backend
// a single conductor can use: the lease log (the default on bbolt), the
// lease log with the ACK waiting for fdatasync, and the store (bbolt).
func TestKill9KeepsAckedLeasesNetns(t *testing.T) {
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
			seg := newSegment(t, 10, byte(74-i))
			state := t.TempDir()
			c := startConductor(t, bin, state, seg, tc.flags...)
			load := seg.newRelay(t, 0x60)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			const want = 1000
			running := make(chan error, 1)
			lctx, stopLoad := context.WithCancel(ctx)
			go func() { running <- load.Run(lctx, 2000, 1<<20, func(int) bool { return false }) }()
			for load.AckCount() < want {
				select {
				case err := <-running:
					t.Fatalf("load ended with %d ACKs: %v", load.AckCount(), err)
				case <-ctx.Done():
					t.Fatalf("only %d ACKs in 60 s", load.AckCount())
				case <-time.After(10 * time.Millisecond):
				}
			}
			q, _ := c.ackLatency(t)
			if err := c.p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-c.p.Done()
			stopLoad()
			<-running
			time.Sleep(100 * time.Millisecond) // ACKs already on the wire
			acked := load.Acked()
			load.Close()
			t.Logf("%s: %d ACKed leases (%d DISCOVERs) before SIGKILL; REQUEST→ACK p50 %v p90 %v p99 %v",
				tc.name, len(acked), load.Sent(), q["0.5"], q["0.9"], q["0.99"])

			startConductor(t, bin, state, seg, tc.flags...)
			ask := seg.newRelay(t, 0x60)
			ask.SetRequest(false)
			var macs []net.HardwareAddr
			for _, mac := range acked {
				hw, _ := net.ParseMAC(mac)
				macs = append(macs, hw)
			}
			askAll(t, offers{ask}, macs)
			lost, unanswered := 0, 0
			for ip, mac := range acked {
				got, ok := ask.Offered(mac)
				switch {
				case !ok:
					unanswered++
				case got != ip:
					lost++
					if lost <= 5 {
						t.Errorf("%s had %v ACKed before the kill; after the restart it is offered %v", mac, ip, got)
					}
				}
			}
			if lost > 0 || unanswered > 0 {
				t.Fatalf("%d of %d ACKed leases lost by a kill -9; %d MACs got no OFFER in 5 tries", lost, len(acked), unanswered)
			}
			ask.Close() // frees the relay's port
			// New machines get none of the held addresses.
			fresh := seg.newRelay(t, 0x61)
			fresh.SetRequest(false)
			var newMACs []net.HardwareAddr
			for i := range uint32(200) {
				newMACs = append(newMACs, fresh.MAC(i))
			}
			askAll(t, offers{fresh}, newMACs)
			for i := range uint32(200) {
				if ip, ok := fresh.Offered(fresh.MAC(i).String()); ok && acked[ip] != "" {
					t.Errorf("new machine %v offered %v, held by %s", fresh.MAC(i), ip, acked[ip])
				}
			}
			if fresh.OfferCount() == 0 {
				t.Error("no offer to a new machine after the restart")
			}
		})
	}
}

// A conductor upgraded from the version that kept DHCP leases in its
// store (bbolt): the leases written the old way (records of the
// dhcp4_leases table) are moved into the lease log on the first start,
// and each machine gets its address again; a new machine gets another.
func TestUpgradeKeepsStoredLeasesNetns(t *testing.T) {
	seg := newSegment(t, 10, 71)
	state := t.TempDir()
	st, err := store.OpenBolt(filepath.Join(state, "ferric.db"))
	if err != nil {
		t.Fatal(err)
	}
	// What the conductor wrote before the lease log, as it wrote it.
	old := map[string]string{
		"52:54:00:71:00:01": "10.71.1.7",
		"52:54:00:71:00:02": "10.71.1.3",
		"52:54:00:71:00:03": "10.71.9.9",
	}
	expiry := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	if err := st.Update(context.Background(), func(tx store.Tx) error {
		for mac, ip := range old {
			rec := &store.Record{Key: ip, Data: []byte(`{"mac":"` + mac + `","expiry":"` + expiry + `"}`)}
			if err := tx.PutRecord("dhcp4_leases", rec); err != nil {
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

	cfg := service.Config{Hostname: "dhcp-upgrade", StateDir: state, InspectorListen: "",
		DHCPMode: "full", DHCPInterface: seg.hostIf, DHCPRange: seg.pool(), AllowUnknownMACs: true,
		Log: harness.Logger("conductor", "dhcp-upgrade")}
	c := harness.Start(t, cfg)
	r := seg.newRelay(t, 0x62)
	newMAC := r.MAC(1)
	macs := []net.HardwareAddr{newMAC}
	for mac := range old {
		hw, _ := net.ParseMAC(mac)
		macs = append(macs, hw)
	}
	// DORA for each, asked again (a few times) while one has no ACK:
	// datagrams may be lost on a loaded machine.
	for round := 0; round < 5 && r.AckCount() < len(macs); round++ {
		ackedMACs := map[string]bool{}
		for _, mac := range r.Acked() {
			ackedMACs[mac] = true
		}
		for _, hw := range macs {
			if !ackedMACs[hw.String()] {
				if err := r.Discover(hw); err != nil {
					t.Fatal(err)
				}
			}
		}
		for end := time.Now().Add(5 * time.Second); r.AckCount() < len(macs) && time.Now().Before(end); {
			time.Sleep(20 * time.Millisecond)
		}
	}
	acked := r.Acked()
	for mac, ip := range old {
		if got := acked[netip.MustParseAddr(ip)]; got != mac {
			t.Errorf("%s stored for %s before the upgrade; ACKed to %q after it", ip, mac, got)
		}
	}
	if ip, ok := r.Offered(newMAC.String()); !ok || acked[ip] != newMAC.String() {
		t.Errorf("new machine %v: offered %v (%v), ACKed to %q; want an address of its own", newMAC, ip, ok, acked[ip])
	}
	if len(acked) != len(old)+1 {
		t.Errorf("%d addresses ACKed, want %d: %v", len(acked), len(old)+1, acked)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	// Moved, not copied: the store's table is empty, the log holds them.
	st, err = store.OpenBolt(filepath.Join(state, "ferric.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if recs, err := st.Records("dhcp4_leases"); err != nil || len(recs) != 0 {
		t.Errorf("store leases after the upgrade: %d, %v; want none (moved into the lease log)", len(recs), err)
	}
	if fi, err := os.Stat(filepath.Join(state, service.DHCPLeaseLogName)); err != nil || fi.Size() < int64(len(old)+1)*24 {
		t.Errorf("lease log: %v, %v; want at least %d records", fi, err, len(old)+1)
	}
}

// benchRate is the DORA rate of BenchmarkConductorDHCPAck: modest, so
// that the figures are the lease write's cost, not a queue's.
const benchRate = 300

// BenchmarkConductorDHCPAck runs b.N full exchanges (new MACs, about
// benchRate a second, through a relay agent) against a conductor for
// each lease backend a single conductor can use, and reports the
// conductor's own REQUEST→ACK quantiles (ferric_dhcp_ack_latency_seconds
// on /metrics) in milliseconds. "store" is the path before the lease
// log (bbolt, batched transactions).
//
//	go test -run '^$' -bench ConductorDHCPAck -benchtime 3000x -count 3 ./test/dhcplease/
func BenchmarkConductorDHCPAck(b *testing.B) {
	bin := harness.Build(b)
	for i, tc := range []struct {
		name  string
		flags []string
	}{
		{"store", []string{"--dhcp-leases", "store"}},
		{"log", nil},
		{"log-sync", []string{"--dhcp-lease-sync"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			seg := newSegment(b, 10, byte(69-i))
			c := startConductor(b, bin, b.TempDir(), seg, tc.flags...)
			r := seg.newRelay(b, 0x63)
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(b.N/benchRate+60)*time.Second)
			defer cancel()
			b.ResetTimer()
			if err := r.Run(ctx, benchRate, uint32(b.N), func(int) bool { return false }); err != nil {
				b.Fatal(err)
			}
			for r.AckCount() < b.N && ctx.Err() == nil {
				time.Sleep(10 * time.Millisecond)
			}
			b.StopTimer()
			q, acks := c.ackLatency(b)
			if acks < float64(b.N) {
				b.Fatalf("%v ACKs of %d exchanges", acks, b.N)
			}
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(ms(q["0.5"]), "p50-ms")
			b.ReportMetric(ms(q["0.9"]), "p90-ms")
			b.ReportMetric(ms(q["0.99"]), "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
