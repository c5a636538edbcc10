// Package ipv6 tests a conductor on an IPv6-only provisioning network with
// real packets: its DHCPv6 server and router advertisements on one end of
// a veth pair, and in a network namespace on the other end a machine's
// steps as iPXE and the agent take them over IPv6 only.
package ipv6

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/nclient6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/harness"
	"github.com/ferric-metal/ferric/test/netnstest"
)

// nsClient is an HTTP client whose connections are made inside ns.
func nsClient(ns *netnstest.NS) *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := ns.Do(func() error {
				var err error
				c, err = (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		}}}
}

type api struct {
	t    *testing.T
	base string
	http *http.Client
}

func (a api) do(method, path string, body any, want int) map[string]any {
	a.t.Helper()
	return harness.API{Base: a.base, Header: map[string]string{"X-OpenStack-Ironic-API-Version": "1.80"}, Client: a.http}.
		Do(a.t, method, path, body, want)
}

func (a api) get(url string) string {
	a.t.Helper()
	resp, err := a.http.Get(url)
	if err != nil {
		a.t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		a.t.Fatalf("GET %s = %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// TestIPv6OnlyProvisioningNetns: a conductor whose API listens on an IPv6
// address only, with --dhcp6-range on its provisioning interface. From a
// machine's namespace (no IPv4 at all): the kernel takes the RA (managed
// flag), an iPXE-like DHCPv6 client gets an address and the boot script
// URL with a bracketed address, the chain script, the node's script (its
// ipa-api-url and kernel URLs bracketed) and the deploy kernel come over
// IPv6, and the agent's lookup and heartbeat (callback URL with a
// bracketed address) reach the node.
func TestIPv6OnlyProvisioningNetns(t *testing.T) {
	netnstest.Skip(t)
	hostIf, machine := netnstest.HostPair(t, "", "")
	// nodad: the API binds the address at once.
	netnstest.IP(t, "addr", "add", "fd00:7c::1/64", "dev", hostIf, "nodad")
	var hw net.HardwareAddr
	if err := machine.Do(func() error {
		i, err := net.InterfaceByName("veth0")
		if err == nil {
			hw = i.HardwareAddr
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	bootDir := t.TempDir()
	kernel := []byte("not really a kernel, served over IPv6")
	for name, b := range map[string][]byte{"k": kernel, "r": []byte("initramfs")} {
		if err := os.WriteFile(filepath.Join(bootDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := harness.Start(t, service.Config{Hostname: "v6", APIListen: "[fd00:7c::1]:0", BootDir: bootDir,
		DHCPInterface: hostIf, DHCP6Range: "fd00:7c::100-fd00:7c::1ff", InspectorListen: "", Log: harness.Logger()})
	if !strings.HasPrefix(c.URL, "http://[fd00:7c::1]:") {
		t.Fatalf("conductor URL %s, want http://[fd00:7c::1]:port", c.URL)
	}
	// The operator's requests come from the conductor's side; the
	// machine's, once it has its route and address, from its namespace.
	a := api{t, c.URL, &http.Client{Timeout: 20 * time.Second}}

	node := a.do("POST", "/v1/nodes", map[string]any{"name": "v6", "driver": "fake-hardware", "boot_interface": "ipxe",
		"inspect_interface": "agent", "driver_info": map[string]any{"deploy_kernel": "k", "deploy_ramdisk": "r"}}, 201)
	uuid := node["uuid"].(string)
	a.do("POST", "/v1/ports", map[string]any{"address": hw.String(), "node_uuid": uuid}, 201)
	a.do("PUT", "/v1/nodes/v6/states/provision", map[string]any{"target": "manage"}, 202)
	waitState(t, a, "manageable")
	a.do("PUT", "/v1/nodes/v6/states/provision", map[string]any{"target": "inspect"}, 202)
	waitState(t, a, "inspect wait")

	// The machine's kernel takes the RA: managed, prefix on-link, route.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := execOut("ip", "-n", machine.Name, "-6", "route", "show", "dev", "veth0")
		if strings.Contains(out, "fd00:7c::/64") && strings.Contains(out, "expires") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no RA prefix route in the machine's namespace:\n%s", out)
		}
		time.Sleep(300 * time.Millisecond)
	}

	// iPXE's DHCPv6: Solicit/Request with user class iPXE.
	var cl *nclient6.Client
	deadline = time.Now().Add(15 * time.Second)
	for {
		err := machine.Do(func() error {
			var err error
			cl, err = nclient6.New("veth0", nclient6.WithTimeout(3*time.Second), nclient6.WithRetry(3))
			return err
		})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // link-local still tentative
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mods := []dhcpv6.Modifier{dhcpv6.WithUserClass([]byte("iPXE")), dhcpv6.WithArchType(iana.EFI_X86_64)}
	adv, err := cl.Solicit(ctx, mods...)
	if err != nil {
		t.Fatalf("DHCPv6 Solicit: %v", err)
	}
	rep, err := cl.Request(ctx, adv, mods...)
	if err != nil {
		t.Fatalf("DHCPv6 Request: %v", err)
	}
	script := rep.Options.BootFileURL()
	if script != c.URL+"/boot/boot.ipxe" {
		t.Fatalf("boot-file URL %q, want %q", script, c.URL+"/boot/boot.ipxe")
	}
	ia := rep.Options.OneIANA()
	if ia == nil || ia.Options.OneAddress() == nil || !strings.HasPrefix(ia.Options.OneAddress().IPv6Addr.String(), "fd00:7c::1") {
		t.Fatalf("Reply IA_NA %v, want an address of fd00:7c::100-1ff", ia)
	}
	leased := ia.Options.OneAddress().IPv6Addr.String()
	netnstest.IP(t, "-n", machine.Name, "addr", "add", leased+"/128", "dev", "veth0", "nodad")
	m := api{t, c.URL, nsClient(machine)}

	// iPXE's HTTP over IPv6: the chain script, the node's script, the kernel.
	chain := m.get(script)
	if !strings.Contains(chain, c.URL+"/boot/nodes/${net0/mac}.ipxe") {
		t.Errorf("chain script does not chain to the node's script on %s:\n%s", c.URL, chain)
	}
	nodeScript := m.get(c.URL + "/boot/nodes/" + hw.String() + ".ipxe")
	for _, want := range []string{"ipa-api-url=" + c.URL, "ipa-inspection-callback-url=" + c.URL + "/v1/continue_inspection",
		"kernel " + c.URL + "/boot/files/k", c.URL + "/boot/files/r"} {
		if !strings.Contains(nodeScript, want) {
			t.Errorf("node script lacks %q:\n%s", want, nodeScript)
		}
	}
	if got := m.get(c.URL + "/boot/files/k"); got != string(kernel) {
		t.Errorf("kernel over IPv6 = %q", got)
	}

	// The agent: lookup and heartbeat with a bracketed callback URL.
	lk := m.do("GET", "/v1/lookup?addresses="+hw.String(), nil, 200)
	cfg, _ := lk["config"].(map[string]any)
	token, _ := cfg["agent_token"].(string)
	if token == "" {
		t.Fatalf("lookup gave no agent token: %v", lk)
	}
	callback := "http://" + net.JoinHostPort(leased, "9999")
	m.do("POST", "/v1/heartbeat/"+uuid, map[string]any{"callback_url": callback, "agent_token": token, "agent_version": "ferric"}, 202)
	n := a.do("GET", "/v1/nodes/"+uuid, nil, 200)
	if got := n["driver_internal_info"].(map[string]any)["agent_url"]; got != callback {
		t.Errorf("agent_url = %v, want %s", got, callback)
	}
}

func waitState(t *testing.T, a api, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := a.do("GET", "/v1/nodes/v6", nil, 200)
		if n["provision_state"] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node is %v (%v), want %s", n["provision_state"], n["last_error"], want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func execOut(name string, args ...string) (string, error) {
	out, err := execCommand(name, args...)
	return string(out), err
}

func execCommand(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}
