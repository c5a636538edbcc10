package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/harness"
	"github.com/ferric-metal/ferric/test/lab"
)

// qemuEnvCompute is set in the child of TestQEMUCompute.
const qemuEnvCompute = "FERRIC_E2E_QEMU_COMPUTE"

// TestQEMUCompute (issue 22): a server built through the Compute servers
// API on a lab machine, with Debian's openstack CLI. One QEMU machine
// (SeaBIOS, PXE, behind the Redfish emulator) enrolled with resource class
// "baremetal", a static address in its network_data and no automated
// cleaning; then `openstack keypair create`, `openstack server create
// --flavor --image --key-name --property --user-data --wait`, which must
// end ACTIVE. The test OS's in-server agent reports (to the user data's
// URL) root's shadow entry, which must be the admin password's SHA-512
// crypt hash (checked with openssl), the key in authorized_keys and the
// metadata, from the static address of network_data; the server's
// ferric_automation_status reads DEPLOYED. Then `openstack server set
// --password`: the agent fetches it from its phone-home, the shadow entry
// it reports again matches the new password, and the server is ACTIVE
// again; finally `openstack server delete --wait`. It logs the time from
// create to ACTIVE and from the password change to the agent's report.
func TestQEMUCompute(t *testing.T) {
	if dir := os.Getenv(qemuEnvChild); dir != "" {
		qemuComputeChild(t, dir)
		return
	}
	harness.NeedOpenStackCLI(t)
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("skipping: openssl not installed (it checks the password hashes)")
	}
	qemuParent(t, "TestQEMUCompute", qemuEnvCompute+"=1")
}

// computeReport is one report of the test OS, with its source address.
type computeReport struct {
	body map[string]string
	from string
}

func qemuComputeChild(t *testing.T, dir string) {
	m := &qemuMachine{name: "vm0", mac: "52:54:00:e2:c0:01"}
	startRedfishMachine(t, m, lab.MachineConfig{Dir: filepath.Join(dir, "vm"), Net: "tap:tap0", DiskSizeMiB: qemuDiskMiB, Firmware: "bios"})
	q := m.q

	// The report server, on the bridge.
	reports := make(chan computeReport, 8)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /report", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		_ = json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body)
		select {
		case reports <- computeReport{body, remoteIP(r.RemoteAddr)}:
		default:
		}
	})
	files := serveOnBridge(t, mux)

	base := startQEMUConductor(t, dir, qemuBridgeIP, &qemuConductor{})
	image := qemuUpload(t, base, "testos", "raw", filepath.Join(dir, "testos.raw"))

	// The operator enrolls the machine for the servers API: a resource
	// class (the flavor), a static address for the instance.
	c := client{t, base}
	staticIP := qemuStaticIP(0)
	c.do("POST", "/v1/nodes", map[string]any{"name": m.name, "driver": "redfish", "deploy_interface": "direct",
		"resource_class": "baremetal", "automated_clean": false, "network_data": qemuNetworkData(m, staticIP),
		"driver_info": redfishDriverInfo(m.redfish, m.name)}, 201)
	c.do("POST", "/v1/ports", map[string]any{"node_uuid": c.do("GET", "/v1/nodes/"+m.name, nil, 200)["uuid"], "address": m.mac}, 201)
	c.do("PUT", "/v1/nodes/"+m.name+"/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState(m.name, "manageable", time.Minute)
	c.do("PUT", "/v1/nodes/"+m.name+"/states/provision", map[string]any{"target": "provide"}, 202)
	c.waitState(m.name, "available", time.Minute)

	// The tenant, with the openstack CLI.
	home := t.TempDir()
	osc := func(timeout time.Duration, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		full := append([]string{"--os-auth-type", "none", "--os-endpoint", base + "/compute/v2.1"}, args...)
		cmd := exec.CommandContext(ctx, harness.OpenStackCLI, full...)
		cmd.Env = append(os.Environ(), "PYTHONWARNINGS=ignore", "HOME="+home)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("openstack %s (%.1fs)", strings.Join(args, " "), time.Since(start).Seconds())
		return string(out)
	}
	oscJSON := func(timeout time.Duration, args ...string) map[string]any {
		t.Helper()
		out := osc(timeout, append(args, "-f", "json")...)
		var v map[string]any
		if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &v); err != nil {
			t.Fatalf("openstack %s: not JSON: %v\n%s", strings.Join(args, " "), err, out)
		}
		return v
	}
	const pubKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc0GfG6cB0p3hHhH1r9y9eW3RxHqm8m2l8r6Yq8Pq0V lab@e2e"
	pubFile, userData := filepath.Join(home, "k1.pub"), filepath.Join(home, "user-data")
	if err := os.WriteFile(pubFile, []byte(pubKey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(userData, []byte(files+"/report\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	osc(time.Minute, "keypair", "create", "--public-key", pubFile, "k1")

	t0 := time.Now()
	s := oscJSON(8*time.Minute, "server", "create", "--flavor", "baremetal", "--image", image, "--key-name", "k1",
		"--property", "role=lab", "--user-data", userData, "--wait", "web1")
	tActive := time.Now()
	adminPass, _ := s["adminPass"].(string)
	if s["status"] != "ACTIVE" || adminPass == "" {
		t.Fatalf("server create --wait: %v", s)
	}
	t.Logf("server create → ACTIVE: %.1fs", tActive.Sub(t0).Seconds())

	waitReport := func(event string) computeReport {
		t.Helper()
		for {
			select {
			case r := <-reports:
				if r.body["event"] == event {
					return r
				}
				t.Logf("report %q while waiting for %q", r.body["event"], event)
			case <-time.After(3 * time.Minute):
				serial, _ := os.ReadFile(q.SerialLog())
				if len(serial) > 4000 {
					serial = serial[len(serial)-4000:]
				}
				t.Fatalf("no %q report from the test OS in 3 min; serial tail:\n%s", event, serial)
			}
		}
	}
	rep := waitReport("boot")
	t.Logf("server create → the test OS's report: %.1fs", time.Since(t0).Seconds())
	if rep.body["uuid"] != s["id"] || rep.body["hostname"] != "web1" {
		t.Errorf("report %v, want uuid %v hostname web1", rep.body, s["id"])
	}
	checkShadow(t, rep.body["root_shadow"], adminPass)
	if !strings.Contains(rep.body["authorized_keys"], pubKey) {
		t.Errorf("authorized_keys %q, want the key k1", rep.body["authorized_keys"])
	}
	var meta map[string]string
	if err := json.Unmarshal([]byte(rep.body["meta"]), &meta); err != nil || meta["role"] != "lab" {
		t.Errorf("the test OS's metadata %q, want role=lab", rep.body["meta"])
	}
	if rep.from != staticIP {
		t.Errorf("the report came from %s, want the network_data address %s", rep.from, staticIP)
	}
	// The agent posted DEPLOYED before its report.
	show := oscJSON(time.Minute, "server", "show", "web1")
	props, _ := show["properties"].(map[string]any)
	if props["ferric_automation_status"] != "DEPLOYED" || props["role"] != "lab" {
		t.Fatalf("server show properties %v, want ferric_automation_status DEPLOYED and role lab", show["properties"])
	}

	// changePassword, passed to the agent through its phone-home.
	const newPass = "n3w-Lab-pass"
	t1 := time.Now()
	osc(time.Minute, "server", "set", "--password", newPass, "web1")
	rep = waitReport("password")
	t.Logf("changePassword → the test OS's report: %.1fs", time.Since(t1).Seconds())
	checkShadow(t, rep.body["root_shadow"], newPass)
	deadline := time.Now().Add(time.Minute)
	for {
		show = oscJSON(time.Minute, "server", "show", "web1")
		if show["status"] == "ACTIVE" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server status %v a minute after the agent changed the password, want ACTIVE", show["status"])
		}
		time.Sleep(2 * time.Second)
	}
	serial, _ := os.ReadFile(q.SerialLog())
	for _, want := range []string{"ferric-testos: phone-home status DEPLOYING", "ferric-testos: phone-home status DEPLOYED",
		"ferric-testos: root password changed: root:$6$"} {
		if !strings.Contains(string(serial), want) {
			t.Errorf("the serial console does not show %q", want)
		}
	}

	osc(4*time.Minute, "server", "delete", "--wait", "web1")
	if n := c.do("GET", "/v1/nodes/"+m.name, nil, 200); n["provision_state"] != "available" || n["instance_uuid"] != nil {
		t.Errorf("node after server delete: %v, instance %v", n["provision_state"], n["instance_uuid"])
	}
	t.Logf("phases: create→ACTIVE %.1fs", tActive.Sub(t0).Seconds())
}

// checkShadow checks that root's /etc/shadow entry holds pass's SHA-512
// crypt hash, as openssl computes it with the entry's salt.
func checkShadow(t *testing.T, entry, pass string) {
	t.Helper()
	f := strings.Split(entry, ":")
	if len(f) < 3 || f[0] != "root" || !strings.HasPrefix(f[1], "$6$") {
		t.Fatalf("root's shadow entry %q: not a SHA-512 crypt hash", entry)
	}
	parts := strings.Split(f[1], "$") // "", "6", salt, hash
	if len(parts) != 4 {
		t.Fatalf("root's shadow entry %q: not $6$salt$hash", entry)
	}
	out, err := exec.Command("openssl", "passwd", "-6", "-salt", parts[2], pass).Output()
	if err != nil {
		t.Fatalf("openssl passwd: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != f[1] {
		t.Fatalf("root's password hash %s is not the hash of the expected password (%s)", f[1], got)
	}
}
