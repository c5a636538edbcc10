package e2e

// TestQEMUVirtualMediaNoDHCP: TestQEMUVirtualMediaDeploy on a network
// with no DHCP server at all (the conductor runs with --dhcp-mode none, no
// TFTP, no router advertisements). Each node has a static network_data
// (OpenStack network_data.json: its NIC by MAC, an IPv4 address on the
// bridge's /24); the conductor puts it on the node's own virtual media ISO
// (labelled config-2), where the agent finds it before lookup, and the
// deploy's config drive carries it too, for the deployed test OS.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/lab"
)

// qemuEnvNoDHCP is set in the child of TestQEMUVirtualMediaNoDHCP.
const qemuEnvNoDHCP = "FERRIC_E2E_QEMU_NODHCP"

// TestQEMUVirtualMediaNoDHCP inspects, cleans, deploys and undeploys vm0
// (SeaBIOS) and vm1 (OVMF) through virtual media with static addresses
// from their network_data and no DHCP server on their network; each boots
// the deployed test OS, which reports in from its static address.
func TestQEMUVirtualMediaNoDHCP(t *testing.T) {
	if dir := os.Getenv(qemuEnvChild); dir != "" {
		qemuDeployChild(t, dir)
		return
	}
	qemuParent(t, "TestQEMUVirtualMediaNoDHCP", qemuEnvVMedia+"=1", qemuEnvNoDHCP+"=1")
}

// qemuNoDHCP reports whether the child runs without DHCP.
func qemuNoDHCP() bool { return os.Getenv(qemuEnvNoDHCP) != "" }

// qemuStaticIP is machine i's static address on the bridge's /24, outside
// the DHCP pool the other variants use (10.99.0.100-199).
func qemuStaticIP(i int) string { return fmt.Sprintf("10.99.0.%d", 50+i) }

// qemuNetworkData is machine m's network_data.json: its NIC by MAC with
// the static address ip/24, and a DNS server (the bridge's address; nothing
// answers, but the agent writes it to resolv.conf).
func qemuNetworkData(m *qemuMachine, ip string) map[string]any {
	return map[string]any{
		"links": []any{map[string]any{"id": "nic0", "type": "phy", "ethernet_mac_address": m.mac, "mtu": 1500}},
		"networks": []any{map[string]any{"id": "provisioning", "type": "ipv4", "link": "nic0",
			"ip_address": ip, "netmask": "255.255.255.0", "network_id": "provisioning", "routes": []any{}}},
		"services": []any{map[string]any{"type": "dns", "address": qemuBridgeIP}},
	}
}

// qemuISOWatch records the virtual media ISOs found in the conductor's
// vmedia directory while the machines run (name and size), so that the
// test can check what was built and that the per-node ISOs (network data)
// are gone at the end.
type qemuISOWatch struct {
	mu   sync.Mutex
	seen map[string]int64
	stop chan struct{}
	done chan struct{}
}

func watchISOs(dir string) *qemuISOWatch {
	w := &qemuISOWatch{seen: map[string]int64{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tk := time.NewTicker(500 * time.Millisecond)
		defer tk.Stop()
		for {
			isos, _ := filepath.Glob(filepath.Join(dir, "*.iso"))
			w.mu.Lock()
			for _, p := range isos {
				if fi, err := os.Stat(p); err == nil {
					w.seen[filepath.Base(p)] = fi.Size()
				}
			}
			w.mu.Unlock()
			select {
			case <-w.stop:
				return
			case <-tk.C:
			}
		}
	}()
	return w
}

// Stop ends the watch and returns what it saw.
func (w *qemuISOWatch) Stop() map[string]int64 {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}

// qemuNoDHCPChecks checks, after the DHCP-less run (no DHCP server: the
// test holds its port, probeDHCP), that each machine reached the
// conductor from its static address (the inventory's interface, the
// deployed OS's report), that every per-node ISO was built (inspection,
// and the rest: two per machine) and removed, and that no medium is left
// inserted.
func qemuNoDHCPChecks(t *testing.T, dir string, machines []*qemuMachine, isos map[string]int64,
	reportFrom map[string]string, inventoryIPs map[string][]string, addPhase func(name, format string, args ...any)) {
	log, _ := os.ReadFile(filepath.Join(dir, "conductor.log"))
	for i, m := range machines {
		ip := qemuStaticIP(i)
		_, boots := powerOns(m.q)
		if slices.Contains(boots, lab.BootPXE) {
			t.Errorf("%s booted from the network: %v", m.name, boots)
		}
		if med := m.q.Media(); med != "" {
			t.Errorf("%s: %s left in the CD drive", m.name, med)
		}
		if got := reportFrom[m.name]; got != ip {
			t.Errorf("%s: the deployed OS reported from %q, want its static address %s", m.name, got, ip)
		}
		if !slices.Contains(inventoryIPs[m.name], ip) {
			t.Errorf("%s: inventory interface addresses %v, want the static %s among them", m.name, inventoryIPs[m.name], ip)
		}
		serial, _ := os.ReadFile(m.q.SerialLog())
		if !strings.Contains(string(serial), ip) {
			t.Errorf("%s: the static address %s is not on the serial console", m.name, ip)
		}
		for _, l := range strings.Split(string(serial), "\n") {
			if strings.Contains(l, "ferric-testos: ") && strings.Contains(l, " static ") {
				t.Logf("%s console: %s", m.name, strings.TrimSpace(l))
				break
			}
		}
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range isos {
			if !yield(k) {
				return
			}
		}
	})
	for _, n := range names {
		addPhase(machines[0].name, "virtual media ISO %s (with network_data): %.1f MiB", n[:12], float64(isos[n])/(1<<20))
	}
	if want := 2 * len(machines); len(isos) != want {
		t.Errorf("%d per-node ISOs seen, want %d (inspection and the rest, for each machine): %v", len(isos), want, names)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "state", "vmedia", "*.iso")); len(left) != 0 {
		t.Errorf("ISOs left after the run: %v", left)
	}
	ins, ej := strings.Count(string(log), `msg="vmedia: boot ISO inserted"`), strings.Count(string(log), `msg="vmedia: boot ISO ejected"`)
	t.Logf("virtual media: %d inserts, %d ejects", ins, ej)
	if ins == 0 || ej < ins {
		t.Errorf("virtual media: %d inserts, %d ejects", ins, ej)
	}
}

// remoteIP is the host part of an http.Request's RemoteAddr.
func remoteIP(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// qemuInventoryIPs returns the IPv4 addresses of the interfaces in the
// node's stored inventory (what the agent had when it inspected).
func qemuInventoryIPs(c client, node string) []string {
	inv := c.doVersion("1.81", "GET", "/v1/nodes/"+node+"/inventory", nil, 200)
	var ips []string
	if x, ok := inv["inventory"].(map[string]any); ok {
		ifs, _ := x["interfaces"].([]any)
		for _, i := range ifs {
			if i, ok := i.(map[string]any); ok {
				if ip, _ := i["ipv4_address"].(string); ip != "" {
					ips = append(ips, ip)
				}
			}
		}
	}
	return ips
}

// qemuDHCPProbe holds the DHCP server port (UDP 67) of the namespace for
// the whole run, which proves no DHCP server runs there, and counts the
// requests machines send to it (none is answered).
type qemuDHCPProbe struct {
	conn net.PacketConn
	mu   sync.Mutex
	n    int
	done chan struct{}
}

func probeDHCP(t *testing.T) *qemuDHCPProbe {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "0.0.0.0:67")
	if err != nil {
		t.Fatalf("binding the DHCP server port (something serves DHCP here?): %v", err)
	}
	p := &qemuDHCPProbe{conn: conn, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		buf := make([]byte, 1500)
		for {
			if _, _, err := conn.ReadFrom(buf); err != nil {
				return
			}
			p.mu.Lock()
			p.n++
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return p
}

// Stop releases the port and returns how many requests arrived.
func (p *qemuDHCPProbe) Stop() int {
	p.conn.Close()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}
