package multiconductor

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/conductor/store/etcdtest"
	"github.com/ferric-metal/ferric/test/harness"
	"github.com/ferric-metal/ferric/test/netnstest"
)

// dhcpRequest runs a DHCP exchange (DORA) for hw from ns's veth0 and
// returns the address it was given.
func dhcpRequest(t *testing.T, ns *netnstest.NS, hw net.HardwareAddr) (string, error) {
	t.Helper()
	var c *nclient4.Client
	if err := ns.Do(func() error {
		var err error
		c, err = nclient4.New("veth0", nclient4.WithHWAddr(hw), nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(3))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lease, err := c.Request(ctx)
	if err != nil {
		return "", err
	}
	return lease.ACK.YourIPAddr.String(), nil
}

// Two conductors configured for full DHCP on one segment: one serves at a
// time (etcd election), the leases are shared, and when the serving
// conductor stops the other takes over and keeps every address bound to
// its machine. Real DHCP packets over a veth pair; the client (nclient4,
// raw sockets) lives in its own network namespace.
func TestDHCPFailover(t *testing.T) {
	netnstest.Skip(t)
	srv := etcdtest.Start(t)
	hostIf, clientNS := netnstest.HostPair(t, "10.79.0.1/24", "")
	states := map[string]string{"dhcp-a": t.TempDir(), "dhcp-b": t.TempDir()}
	dhcpOn := func(name string) func(c *service.Config) {
		return func(c *service.Config) {
			c.EtcdPrefix, c.DHCPMode, c.DHCPInterface, c.DHCPRange, c.AllowUnknownMACs = "/dhcp", "full", hostIf, "10.79.0.100-10.79.0.110", true
			c.StateDir = states[name]
		}
	}
	conductors := map[string]*conductor{
		"dhcp-a": startConductorWith(t, "dhcp-a", srv.Endpoint, dhcpOn("dhcp-a")),
		"dhcp-b": startConductorWith(t, "dhcp-b", srv.Endpoint, dhcpOn("dhcp-b")),
	}
	cli := srv.Client(t)
	leader := func() string {
		sess, err := concurrency.NewSession(cli)
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := concurrency.NewElection(sess, "/dhcp/elections/dhcp/10.79.0.100-10.79.0.110").Leader(ctx)
		if err != nil {
			return ""
		}
		return string(resp.Kvs[0].Value)
	}
	request := func(hw net.HardwareAddr) (string, error) { return dhcpRequest(t, clientNS, hw) }
	mac1 := net.HardwareAddr{0x52, 0x54, 0, 0x79, 0, 1}
	mac2 := net.HardwareAddr{0x52, 0x54, 0, 0x79, 0, 2}

	var first string
	eventually(t, "a DHCP leader", func() bool { first = leader(); return first != "" })
	ip1, err := request(mac1)
	if err != nil {
		t.Fatalf("DORA through %s: %v", first, err)
	}

	conductors[first].Stop()
	var second string
	eventually(t, "the other conductor leads DHCP", func() bool { second = leader(); return second != "" && second != first })
	again, err := request(mac1)
	if err != nil {
		t.Fatalf("DORA through %s after %s stopped: %v", second, first, err)
	}
	if again != ip1 {
		t.Fatalf("%v got %s from %s, had %s from %s: the lease was not shared", mac1, again, second, ip1, first)
	}
	ip2, err := request(mac2)
	if err != nil {
		t.Fatal(err)
	}
	if ip2 == ip1 {
		t.Fatalf("%s handed to both %v and %v", ip1, mac1, mac2)
	}
	// On etcd the leases are shared through the store, never in a
	// conductor's own lease log (--dhcp-leases auto).
	for name, dir := range states {
		if _, err := os.Stat(filepath.Join(dir, service.DHCPLeaseLogName)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s on etcd has a lease log (%v); its leases must stay in the shared store", name, err)
		}
	}
}

// The lease log is one conductor's: on etcd, where another conductor may
// take DHCP over, asking for it is refused at start with what to use
// instead, and nothing is served.
func TestDHCPLeaseLogRefusedOnEtcd(t *testing.T) {
	srv := etcdtest.Start(t)
	cfg := service.Config{Hostname: "dhcp-log", EtcdEndpoints: []string{srv.Endpoint}, EtcdPrefix: "/dhcp-log",
		StateDir: t.TempDir(), InspectorListen: "", Log: harness.Logger("conductor", "dhcp-log"),
		DHCPMode: "full", DHCPInterface: "lo", DHCPRange: "10.70.0.100-10.70.0.110", DHCPLeases: service.DHCPLeasesLog}
	c, err := harness.Launch(cfg)
	if err == nil {
		c.Stop()
		t.Fatal("a conductor on etcd started with --dhcp-leases log")
	}
	if want := "use --dhcp-leases store (or auto) with etcd"; !strings.Contains(err.Error(), want) {
		t.Fatalf("start on etcd with --dhcp-leases log: %v; want an error saying %q", err, want)
	}
	if _, err := os.Stat(filepath.Join(cfg.StateDir, service.DHCPLeaseLogName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused start left a lease log: %v", err)
	}
}

// One conductor on bbolt with full DHCP keeps its leases in its lease log
// (as one on etcd keeps them in the shared store): restarted on the same
// state directory, it does not
// hand a bound address to another machine, and gives the bound machine
// its address again.
func TestDHCPLeasesSurviveRestart(t *testing.T) {
	netnstest.Skip(t)
	hostIf, clientNS := netnstest.HostPair(t, "10.78.0.1/24", "")
	dir := t.TempDir()
	start := func() *conductor {
		return startConductorWith(t, "dhcp-bolt", "", func(c *service.Config) {
			c.EtcdEndpoints, c.StateDir = nil, dir
			c.DHCPMode, c.DHCPInterface, c.DHCPRange, c.AllowUnknownMACs = "full", hostIf, "10.78.0.100-10.78.0.110", true
		})
	}
	mac1 := net.HardwareAddr{0x52, 0x54, 0, 0x78, 0, 1}
	mac2 := net.HardwareAddr{0x52, 0x54, 0, 0x78, 0, 2}
	c := start()
	ip1, err := dhcpRequest(t, clientNS, mac1)
	if err != nil {
		t.Fatal(err)
	}
	c.Stop()
	start()
	ip2, err := dhcpRequest(t, clientNS, mac2)
	if err != nil {
		t.Fatal(err)
	}
	if ip2 == ip1 {
		t.Fatalf("after the restart %s went to %v: %v's lease was lost", ip1, mac2, mac1)
	}
	if again, err := dhcpRequest(t, clientNS, mac1); err != nil || again != ip1 {
		t.Fatalf("%v after the restart: %s, %v; had %s", mac1, again, err, ip1)
	}
}
