// Package neutron tests Ironic's neutron network interface against a real
// Neutron: Debian's neutron-server (ML2, flat and vlan type drivers, no
// mechanism driver, sqlite, no message bus, auth_strategy noauth) started
// by the test on loopback, and a conductor configured with it.
//
// The commands come from the environment: NEUTRON_SERVER and
// NEUTRON_DB_MANAGE (default Debian's /usr/bin/neutron-server and
// /usr/bin/neutron-db-manage), and NEUTRON_PYTHON (default /usr/bin/python3)
// with NEUTRON_PYTHONPATH for the Python that builds the schema from
// Neutron's models when sqlite refuses a migration. run-upstream.sh sets
// them to run upstream Neutron from source, at Debian 12's versions.
// NEUTRON_LOG_DIR, if set, receives each test's neutron-server log.
//
// .ci/deps.sh installs neutron-server in a step of its own that may fail;
// the tests then skip, naming the missing package. When neutron-server is
// there but does not start they fail, as they do (with CI=true) when dpkg
// has the package installed but its commands are missing.
package neutron

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/artifacts"
	"github.com/ferric-metal/ferric/test/harness"
)

// command is the path in the environment variable env, or def.
func command(env, def string) string {
	if p := os.Getenv(env); p != "" {
		return p
	}
	return def
}

// debInstalled reports whether dpkg has the Debian package installed.
func debInstalled(pkg string) bool {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", pkg).Output()
	return err == nil && strings.HasSuffix(strings.TrimSpace(string(out)), " installed")
}

// startNeutron runs Debian's neutron-server on loopback and returns its
// endpoint.
func startNeutron(t *testing.T) string {
	t.Helper()
	neutronServer := command("NEUTRON_SERVER", "/usr/bin/neutron-server")
	neutronDB := command("NEUTRON_DB_MANAGE", "/usr/bin/neutron-db-manage")
	for _, p := range []string{neutronServer, neutronDB} {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("CI") == "true" && debInstalled("neutron-server") {
				t.Fatalf("Debian's neutron-server is installed but %s is missing: %v", p, err)
			}
			t.Skipf("neutron-server is not installed: Debian's package neutron-server (its install step in .ci/deps.sh may have failed), "+
				"or set NEUTRON_SERVER and NEUTRON_DB_MANAGE (test/neutron/run-upstream.sh runs Neutron from source): %v", err)
		}
	}
	dir := t.TempDir()
	port := harness.FreePort(t)
	conf := filepath.Join(dir, "neutron.conf")
	ml2 := filepath.Join(dir, "ml2_conf.ini")
	write := func(path, body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(conf, fmt.Sprintf(`[DEFAULT]
core_plugin = ml2
service_plugins =
auth_strategy = noauth
transport_url = fake://
bind_host = 127.0.0.1
bind_port = %d
state_path = %s
api_workers = 1
rpc_workers = 0
rpc_state_report_workers = 0
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
use_stderr = true
[database]
connection = sqlite:///%s/neutron.db
[oslo_concurrency]
lock_path = %s/lock
[agent]
report_interval = 0
`, port, dir, dir, dir))
	write(ml2, `[ml2]
type_drivers = flat,vlan
tenant_network_types =
mechanism_drivers =
extension_drivers =
[ml2_type_flat]
flat_networks = *
[ml2_type_vlan]
network_vlan_ranges = physnet1:100:200,physnet2:100:200
`)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, neutronDB, "--config-file", conf, "--config-file", ml2, "upgrade", "heads").CombinedOutput()
	if err != nil {
		// Some of Neutron's migrations alter tables in ways sqlite may
		// refuse: then the schema of its models, as Neutron's own tests
		// make it, stamped as the heads.
		t.Logf("neutron-db-manage upgrade heads: %v (%s); creating the schema from Neutron's models", err, harness.LastLines(string(out), 3))
		_ = os.Remove(filepath.Join(dir, "neutron.db"))
		py := "import sys, sqlalchemy\nfrom neutron.db.migration.models import head\n" +
			"head.get_metadata().create_all(sqlalchemy.create_engine('sqlite:///' + sys.argv[1]))\n"
		schema := exec.CommandContext(ctx, command("NEUTRON_PYTHON", "/usr/bin/python3"), "-c", py, filepath.Join(dir, "neutron.db"))
		if pp := os.Getenv("NEUTRON_PYTHONPATH"); pp != "" {
			schema.Env = append(os.Environ(), "PYTHONPATH="+pp)
		}
		if out, err := schema.CombinedOutput(); err != nil {
			t.Fatalf("neutron schema: %v\n%s", err, harness.LastLines(string(out), 30))
		}
		if out, err := exec.CommandContext(ctx, neutronDB, "--config-file", conf, "--config-file", ml2, "stamp", "heads").CombinedOutput(); err != nil {
			t.Fatalf("neutron-db-manage stamp heads: %v\n%s", err, harness.LastLines(string(out), 30))
		}
	}
	var logBuf syncBuffer
	cmd := exec.Command(neutronServer, "--config-file", conf, "--config-file", ml2)
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("neutron-server log:\n%s", harness.LastLines(logBuf.String(), 60))
		}
		if d := os.Getenv("NEUTRON_LOG_DIR"); d != "" {
			_ = os.WriteFile(filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_")+".neutron.log"), []byte(logBuf.String()), 0o644)
		}
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	// Up when it lists networks; an exit before that fails the test (an
	// installed neutron-server that does not start is a failure, not a
	// skip).
	for deadline := time.Now().Add(4 * time.Minute); ; {
		if res, err := http.Get(url + "v2.0/networks"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("neutron-server exited before answering: %v\n%s", err, harness.LastLines(logBuf.String(), 40))
		case <-time.After(250 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("neutron-server did not list networks within 4m:\n%s", harness.LastLines(logBuf.String(), 40))
		}
	}
	t.Logf("neutron-server ready at %s in %.1fs", url, time.Since(start).Seconds())
	return url
}

// syncBuffer is a bytes.Buffer safe for a process's output and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// call sends a JSON request and checks the status; it returns the
// decoded answer (raw text under "_raw" when not an object).
func call(t *testing.T, method, url string, hdr map[string]string, body any, want int) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if want != 0 && res.StatusCode != want {
		t.Fatalf("%s %s = %d %s, want %d", method, url, res.StatusCode, raw, want)
	}
	out := map[string]any{"_status": res.StatusCode, "_raw": string(raw)}
	_ = json.Unmarshal(raw, &out)
	return out
}

// neutronAPI is the test's own view of Neutron.
type neutronAPI struct {
	t   *testing.T
	url string
}

func (n neutronAPI) network(name, typ, physnet string) string {
	net := map[string]any{"name": name, "provider:network_type": typ, "provider:physical_network": physnet}
	out := call(n.t, "POST", n.url+"v2.0/networks", nil, map[string]any{"network": net}, 201)
	return out["network"].(map[string]any)["id"].(string)
}

func (n neutronAPI) port(netID, name string) string {
	out := call(n.t, "POST", n.url+"v2.0/ports", nil, map[string]any{"port": map[string]any{"network_id": netID, "name": name}}, 201)
	return out["port"].(map[string]any)["id"].(string)
}

func (n neutronAPI) get(id string) map[string]any {
	return call(n.t, "GET", n.url+"v2.0/ports/"+id, nil, nil, 200)["port"].(map[string]any)
}

// portsOn lists the ports on a network.
func (n neutronAPI) portsOn(netID string) []map[string]any {
	out := call(n.t, "GET", n.url+"v2.0/ports?network_id="+netID, nil, nil, 200)
	var ps []map[string]any
	for _, p := range out["ports"].([]any) {
		ps = append(ps, p.(map[string]any))
	}
	return ps
}

// ironic is the conductor's API.
type ironic struct {
	t   *testing.T
	url string
}

func (c ironic) do(method, path string, body any, want int) map[string]any {
	c.t.Helper()
	return call(c.t, method, c.url+path, map[string]string{"X-OpenStack-Ironic-API-Version": "1.78"}, body, want)
}

// errMsg is the faultstring of an Ironic error answer.
func errMsg(out map[string]any) string {
	var fault struct {
		Faultstring string `json:"faultstring"`
	}
	s, _ := out["error_message"].(string)
	_ = json.Unmarshal([]byte(s), &fault)
	return fault.Faultstring
}

func vifIDs(out map[string]any) []string {
	ids := []string{}
	for _, v := range out["vifs"].([]any) {
		ids = append(ids, v.(map[string]any)["id"].(string))
	}
	return ids
}

// TestVIFSemantics walks the VIF calls Nova makes on a node with one port
// (on physnet1) with each network interface, against a real Neutron:
//   - noop accepts every VIF, keeps none and lists none, and detaches
//     anything;
//   - flat keeps one VIF a port, whatever it is, and refuses to detach a
//     VIF it does not hold;
//   - neutron, as flat, but only a VIF that is a Neutron port, on a
//     network of the port's physical network, and the Neutron port gets
//     the node as its host (vnic_type baremetal) and the port's MAC.
func TestVIFSemantics(t *testing.T) {
	nURL := startNeutron(t)
	nt := neutronAPI{t, nURL}
	prov := nt.network("provision", "flat", "physnet1")
	tenantA := nt.network("tenant-a", "vlan", "physnet1")
	tenantB := nt.network("tenant-b", "vlan", "physnet2")
	_ = prov
	c := harness.Start(t, service.Config{Hostname: "neutron-vif", Log: harness.Logger(),
		Neutron: service.NeutronConfig{URL: nURL, ProvisioningNetwork: "provision", CleaningNetwork: "provision"}})
	ir := ironic{t, c.URL}
	drv := ir.do("GET", "/v1/drivers/fake-hardware?detail=true", nil, 200)
	if fmt.Sprint(drv["enabled_network_interfaces"]) != "[noop flat neutron]" {
		t.Fatalf("enabled_network_interfaces = %v, want [noop flat neutron]", drv["enabled_network_interfaces"])
	}

	const bogus = "6f2d3d50-4c1d-4f5e-9b8e-0c7a2a6b1d11"
	for i, iface := range []string{"noop", "flat", "neutron"} {
		t.Run(iface, func(t *testing.T) {
			ir := ironic{t, c.URL}
			nt := neutronAPI{t, nURL}
			mac := fmt.Sprintf("52:54:00:19:00:%02x", i+1)
			node := ir.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "vif-" + iface, "network_interface": iface}, 201)
			uuid := node["uuid"].(string)
			ir.do("POST", "/v1/ports", map[string]any{"address": mac, "node_uuid": uuid, "physical_network": "physnet1",
				"local_link_connection": map[string]any{"switch_id": "0a:1b:2c:3d:4e:5f", "port_id": fmt.Sprintf("Ethernet1/%d", i+1), "switch_info": "tor-1"}}, 201)
			vifA := nt.port(tenantA, iface+"-a")
			vifA2 := nt.port(tenantA, iface+"-a2")
			vifB := nt.port(tenantB, iface+"-b")
			vifs := "/v1/nodes/" + uuid + "/vifs"
			attach := func(vif string) map[string]any {
				return ir.do("POST", vifs, map[string]any{"id": vif}, 0)
			}
			check := func(what string, out map[string]any, want int, msg string) {
				t.Helper()
				if out["_status"] != want {
					t.Errorf("%s: %s = %v %v, want %d", iface, what, out["_status"], out["_raw"], want)
				} else if msg != "" && !strings.Contains(errMsg(out), msg) {
					t.Errorf("%s: %s message %q, want it to contain %q", iface, what, errMsg(out), msg)
				}
			}
			list := func(want ...string) {
				t.Helper()
				got := vifIDs(ir.do("GET", vifs, nil, 200))
				if fmt.Sprint(got) != fmt.Sprint(append([]string{}, want...)) {
					t.Errorf("%s: GET vifs = %v, want %v", iface, got, want)
				}
			}
			byIface := func(noop, flat, neutron int) int {
				return map[string]int{"noop": noop, "flat": flat, "neutron": neutron}[iface]
			}

			// A VIF that is not a Neutron port.
			out := attach(bogus)
			msg := ""
			if iface == "neutron" {
				msg = "Neutron port " + bogus + " was not found"
			}
			check("attach of a VIF that is no Neutron port", out, byIface(204, 204, 400), msg)
			if iface == "flat" {
				ir.do("DELETE", vifs+"/"+bogus, nil, 204)
			}
			list()
			// A VIF on another physical network.
			check("attach of a physnet2 VIF", attach(vifB), byIface(204, 204, 400),
				map[string]string{"neutron": "Unable to attach VIF " + vifB + ", not enough free physical ports."}[iface])
			if iface == "flat" {
				ir.do("DELETE", vifs+"/"+vifB, nil, 204)
			}
			// The VIF on the port's physical network.
			check("attach of a physnet1 VIF", attach(vifA), 204, "")
			if iface == "noop" {
				list()
			} else {
				list(vifA)
			}
			// The same again, and a second one.
			check("second attach of the same VIF", attach(vifA), byIface(204, 409, 409), "")
			check("attach of a second VIF", attach(vifA2), byIface(204, 400, 400),
				map[string]string{"flat": "not enough free physical ports", "neutron": "not enough free physical ports"}[iface])
			if iface == "neutron" {
				p := nt.get(vifA)
				prof, _ := json.Marshal(p["binding:profile"])
				if p["binding:host_id"] != uuid || p["binding:vnic_type"] != "baremetal" || p["mac_address"] != mac || string(prof) != "{}" {
					t.Errorf("neutron port after attach: host %v vnic %v mac %v profile %s, want %s baremetal %s {}",
						p["binding:host_id"], p["binding:vnic_type"], p["mac_address"], prof, uuid, mac)
				}
				if p2 := nt.get(vifA2); p2["binding:host_id"] != "" {
					t.Errorf("refused VIF %s was bound to %v", vifA2, p2["binding:host_id"])
				}
			}
			// Detach of a VIF not attached, then of the attached one.
			check("detach of an unattached VIF", ir.do("DELETE", vifs+"/"+vifA2, nil, 0), byIface(204, 400, 400), "")
			check("detach", ir.do("DELETE", vifs+"/"+vifA, nil, 0), 204, "")
			list()
			port := ir.do("GET", "/v1/ports?node_uuid="+uuid+"&fields=internal_info", nil, 200)["ports"].([]any)[0].(map[string]any)
			if ii := port["internal_info"].(map[string]any); ii["tenant_vif_port_id"] != nil {
				t.Errorf("%s: tenant_vif_port_id still set after detach: %v", iface, ii)
			}
		})
	}
}

// startAgent runs the ramdisk agent as the machine with MAC mac (its
// disk a file, extra its further flags) until stop is called or the test
// ends.
func startAgent(t *testing.T, base, disk, mac string, extra ...string) (stop func()) {
	t.Helper()
	bin, err := artifacts.Agent()
	if err != nil {
		t.Fatal(err)
	}
	port := harness.FreePort(t)
	cmd := exec.Command(bin, "--api-url", base, "--disk", disk, "--mac", mac,
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--advertise-host", "127.0.0.1",
		"--advertise-port", fmt.Sprint(port), "--heartbeat-interval", "1s", "--lookup-max", "1s",
		"--forced-heartbeat-gap", "100ms", "--min-root-size", "1048576")
	cmd.Args = append(cmd.Args, extra...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("agent log:\n%s", harness.LastLines(log.String(), 40))
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitState polls a node until it rests in state.
func (c ironic) waitState(node, state string, timeout time.Duration) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var n map[string]any
	for time.Now().Before(deadline) {
		n = c.do("GET", "/v1/nodes/"+node, nil, 200)
		if n["provision_state"] == state && n["reservation"] == nil {
			return n
		}
		time.Sleep(300 * time.Millisecond)
	}
	c.t.Fatalf("node %s: provision_state %v (last_error %v), want %s", node, n["provision_state"], n["last_error"], state)
	return nil
}

// portInternal is the internal_info of the node's only port.
func (c ironic) portInternal(node string) map[string]any {
	c.t.Helper()
	ps := c.do("GET", "/v1/ports?node_uuid="+node+"&fields=internal_info", nil, 200)["ports"].([]any)
	return ps[0].(map[string]any)["internal_info"].(map[string]any)
}

func asJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestDeployBinding takes a node with the neutron network interface
// through cleaning, deploy and tear-down with the ramdisk agent (a
// process, a file as its disk), and checks at each stop what Neutron
// holds: the node's own port on the cleaning and provisioning networks
// while the ramdisk runs (bound to the node with the port's MAC and
// local_link_connection), gone after; the tenant VIF unbound during the
// deploy, bound to the node once active (binding:host_id, vnic_type
// baremetal, binding:profile with the local link), and unbound on
// tear-down. On the way, a rescue: refused without a rescuing network,
// then the tenant VIF unbound and the node's port on the rescuing network
// while the rescue ramdisk boots, and the tenant VIF bound again once the
// agent finalized the rescue and after the unrescue. No mechanism driver
// binds baremetal ports here: Neutron
// marks the binding failed, and the node goes active all the same, as
// Ironic's default (fail_on_binding_failure false).
func TestDeployBinding(t *testing.T) {
	nURL := startNeutron(t)
	nt := neutronAPI{t, nURL}
	provNet := nt.network("provision", "flat", "physnet1")
	cleanNet := nt.network("clean", "flat", "physnet2")
	rescueNet := nt.network("rescue", "vlan", "physnet1") // one flat network a physnet: Neutron answers 409 FlatNetworkInUse
	tenant := nt.network("tenant-a", "vlan", "physnet1")
	c := harness.Start(t, service.Config{Hostname: "neutron-deploy", Log: harness.Logger(), AutomatedClean: true,
		Neutron: service.NeutronConfig{URL: nURL, ProvisioningNetwork: "provision", CleaningNetwork: cleanNet}})
	ir := ironic{t, c.URL}

	// A disk image: an MBR with one Linux partition (1 MiB at 1 MiB).
	image := make([]byte, 2<<20)
	copy(image[440:], []byte{0x19, 0x19, 0x19, 0x19}) // disk signature
	image[446+4] = 0x83
	binary.LittleEndian.PutUint32(image[446+8:], 2048)
	binary.LittleEndian.PutUint32(image[446+12:], 2048)
	image[510], image[511] = 0x55, 0xAA
	sum := sha256.Sum256(image)
	imgSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "image.raw", time.Now(), bytes.NewReader(image))
	}))
	defer imgSrv.Close()
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 64<<20); err != nil {
		t.Fatal(err)
	}

	const mac = "52:54:00:19:01:01"
	llc := map[string]any{"switch_id": "0a:1b:2c:3d:4e:5f", "port_id": "Ethernet1/7", "switch_info": "tor-1"}
	node := ir.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "bind-node",
		"deploy_interface": "direct", "network_interface": "neutron", "rescue_interface": "agent",
		"driver_info": map[string]any{"deploy_kernel": "http://example.invalid/k", "deploy_ramdisk": "http://example.invalid/r"}}, 201)
	uuid := node["uuid"].(string)
	ir.do("POST", "/v1/ports", map[string]any{"address": mac, "node_uuid": uuid, "physical_network": "physnet1",
		"pxe_enabled": true, "local_link_connection": llc}, 201)
	ir.do("PUT", "/v1/nodes/bind-node/states/provision", map[string]any{"target": "manage"}, 202)
	ir.waitState("bind-node", "manageable", 30*time.Second)

	// checkRamdiskPort: the node's one port on the network, bound to the
	// node, and recorded under key.
	checkRamdiskPort := func(stage, netID, key, physnet string) {
		t.Helper()
		ps := nt.portsOn(netID)
		if len(ps) != 1 {
			t.Fatalf("%s: %d ports on the network, want 1: %s", stage, len(ps), asJSON(ps))
		}
		p := ps[0]
		wantProfile := asJSON(map[string]any{"local_link_information": []any{llc}, "physical_network": physnet})
		if p["mac_address"] != mac || p["binding:host_id"] != uuid || p["binding:vnic_type"] != "baremetal" ||
			p["device_owner"] != "baremetal:none" || p["device_id"] == "" || asJSON(p["binding:profile"]) != wantProfile {
			t.Errorf("%s: port %s, want mac %s host %s vnic baremetal owner baremetal:none profile %s", stage, asJSON(p), mac, uuid, wantProfile)
		}
		if got := ir.portInternal(uuid)[key]; got != p["id"] {
			t.Errorf("%s: internal_info %s = %v, want %v", stage, key, got, p["id"])
		}
	}
	checkGone := func(stage, netID, key string) {
		t.Helper()
		if ps := nt.portsOn(netID); len(ps) != 0 {
			t.Errorf("%s: ports left on the network: %s", stage, asJSON(ps))
		}
		if got, ok := ir.portInternal(uuid)[key]; ok {
			t.Errorf("%s: internal_info %s still %v", stage, key, got)
		}
	}

	// Cleaning: on the cleaning network (named by UUID) while the
	// ramdisk runs; the port's physical network goes in the profile.
	ir.do("PUT", "/v1/nodes/bind-node/states/provision", map[string]any{"target": "provide"}, 202)
	ir.waitState("bind-node", "clean wait", 30*time.Second)
	checkRamdiskPort("clean wait", cleanNet, "cleaning_vif_port_id", "physnet1")
	stop := startAgent(t, c.URL, disk, mac)
	ir.waitState("bind-node", "available", 120*time.Second)
	stop()
	checkGone("after cleaning", cleanNet, "cleaning_vif_port_id")

	// The tenant VIF, attached while available: only its host is set.
	vif := nt.port(tenant, "instance-port")
	ir.do("POST", "/v1/nodes/bind-node/vifs", map[string]any{"id": vif}, 204)
	if p := nt.get(vif); p["binding:host_id"] != uuid || p["mac_address"] != mac || asJSON(p["binding:profile"]) != "{}" {
		t.Errorf("VIF after attach: %s, want host %s mac %s profile {}", asJSON(p), uuid, mac)
	}

	// Deploy: the tenant VIF unbound and the node on the provisioning
	// network (named by name) while the ramdisk runs.
	ir.do("PATCH", "/v1/nodes/bind-node", []map[string]any{
		{"op": "add", "path": "/instance_info/image_source", "value": imgSrv.URL + "/image.raw"},
		{"op": "add", "path": "/instance_info/image_os_hash_algo", "value": "sha256"},
		{"op": "add", "path": "/instance_info/image_os_hash_value", "value": hex.EncodeToString(sum[:])},
	}, 200)
	ir.do("PUT", "/v1/nodes/bind-node/states/provision", map[string]any{"target": "active"}, 202)
	ir.waitState("bind-node", "wait call-back", 30*time.Second)
	checkRamdiskPort("wait call-back", provNet, "provisioning_vif_port_id", "physnet1")
	if p := nt.get(vif); p["binding:host_id"] != "" || p["mac_address"] == mac {
		t.Errorf("VIF during the deploy: host %v mac %v, want unbound with its MAC reset", p["binding:host_id"], p["mac_address"])
	}
	stop = startAgent(t, c.URL, disk, mac)
	ir.waitState("bind-node", "active", 120*time.Second)
	stop()
	checkGone("active", provNet, "provisioning_vif_port_id")
	p := nt.get(vif)
	wantProfile := asJSON(map[string]any{"local_link_information": []any{llc}, "physical_network": "physnet1"})
	if p["binding:host_id"] != uuid || p["binding:vnic_type"] != "baremetal" || p["mac_address"] != mac || asJSON(p["binding:profile"]) != wantProfile {
		t.Errorf("VIF once active: %s, want host %s vnic baremetal mac %s profile %s", asJSON(p), uuid, mac, wantProfile)
	}
	t.Logf("tenant VIF once active: binding:vif_type %v, status %v", p["binding:vif_type"], p["status"])
	if p["binding:vif_type"] != "binding_failed" {
		t.Errorf("binding:vif_type = %v, want binding_failed (no mechanism driver binds baremetal ports here)", p["binding:vif_type"])
	}
	checkTenantBound := func(stage string) {
		t.Helper()
		if p := nt.get(vif); p["binding:host_id"] != uuid || p["mac_address"] != mac || asJSON(p["binding:profile"]) != wantProfile {
			t.Errorf("%s: VIF %s, want host %s mac %s profile %s", stage, asJSON(p), uuid, mac, wantProfile)
		}
	}

	// Rescue: refused without a rescuing network (none configured on
	// the conductor, none in driver_info), as Ironic.
	rescue := map[string]any{"target": "rescue", "rescue_password": "neutron-rescue"}
	out := ir.do("PUT", "/v1/nodes/bind-node/states/provision", rescue, 400)
	if want := "UUID or name of rescuing network is not set in configuration"; !strings.Contains(errMsg(out), want) {
		t.Errorf("rescue without a rescuing network: %q, want it to contain %q", errMsg(out), want)
	}
	v := ir.do("GET", "/v1/nodes/bind-node/validate", nil, 200)
	if r := v["rescue"].(map[string]any); r["result"] != false {
		t.Errorf("validate rescue without a rescuing network: %v", r)
	}
	ir.do("PATCH", "/v1/nodes/bind-node", []map[string]any{
		{"op": "add", "path": "/driver_info/rescuing_network", "value": rescueNet},
		{"op": "add", "path": "/driver_info/rescue_kernel", "value": "http://example.invalid/rk"},
		{"op": "add", "path": "/driver_info/rescue_ramdisk", "value": "http://example.invalid/rr"}}, 200)
	ir.do("PUT", "/v1/nodes/bind-node/states/provision", rescue, 202)
	ir.waitState("bind-node", "rescue wait", 30*time.Second)
	checkRamdiskPort("rescue wait", rescueNet, "rescuing_vif_port_id", "physnet1")
	if p := nt.get(vif); p["binding:host_id"] != "" || p["mac_address"] == mac {
		t.Errorf("VIF in rescue wait: host %v mac %v, want unbound with its MAC reset", p["binding:host_id"], p["mac_address"])
	}
	etc := t.TempDir()
	for f, body := range map[string]string{"passwd": "root:x:0:0:root:/root:/bin/sh\n", "shadow": "root:*:19000:0:99999:7:::\n"} {
		if err := os.WriteFile(filepath.Join(etc, f), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	stop = startAgent(t, c.URL, disk, mac, "--etc-dir", etc)
	ir.waitState("bind-node", "rescue", 60*time.Second)
	stop()
	if sh, _ := os.ReadFile(filepath.Join(etc, "shadow")); !strings.Contains(string(sh), "rescue:$6$") {
		t.Errorf("the agent did not set the rescue password: shadow %q", sh)
	}
	checkGone("rescued", rescueNet, "rescuing_vif_port_id")
	checkTenantBound("rescued")
	ir.do("PUT", "/v1/nodes/bind-node/states/provision", map[string]any{"target": "unrescue"}, 202)
	ir.waitState("bind-node", "active", 30*time.Second)
	checkGone("unrescued", rescueNet, "rescuing_vif_port_id")
	checkTenantBound("unrescued")

	// Tear-down: the tenant VIF unbound, the node on the cleaning
	// network again.
	ir.do("PUT", "/v1/nodes/bind-node/states/provision", map[string]any{"target": "deleted"}, 202)
	ir.waitState("bind-node", "clean wait", 30*time.Second)
	if p := nt.get(vif); p["binding:host_id"] != "" || asJSON(p["binding:profile"]) != "{}" {
		t.Errorf("VIF after tear-down: host %v profile %s, want unbound", p["binding:host_id"], asJSON(p["binding:profile"]))
	}
	checkRamdiskPort("clean wait after tear-down", cleanNet, "cleaning_vif_port_id", "physnet1")
	// The VIF stays attached (Nova detaches it), as in Ironic.
	if got := vifIDs(ir.do("GET", "/v1/nodes/bind-node/vifs", nil, 200)); fmt.Sprint(got) != "["+vif+"]" {
		t.Errorf("vifs after tear-down = %v, want [%s]", got, vif)
	}
}
