package e2e

// The lab parts every QEMU e2e child sets up the same way inside the
// network namespace: the QEMU machine, the lab's Redfish emulator in
// front of it, servers on the bridge, and the ferric-conductor binary on
// the bridge's address.

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/harness"
	"github.com/ferric-metal/ferric/test/lab"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// The credentials of the lab BMCs (the Redfish emulator and ipmi_sim).
const labBMCUser, labBMCPassword = "admin", "password"

// newLabQEMU creates the lab machine mc and saves its configuration in
// its directory; the machine is powered off when the test ends.
func newLabQEMU(t *testing.T, mc lab.MachineConfig) *lab.QEMU {
	t.Helper()
	q, err := lab.NewQEMU(mc)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Save(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.PowerOff(context.Background()) })
	return q
}

// serveRedfish serves the lab's Redfish emulator for machines (by system
// id) on loopback until the test ends, with virtual media files in
// mediaDir ("" for none), and returns its URL.
func serveRedfish(t *testing.T, machines map[string]redfish.Machine, mediaDir string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second,
		Handler: redfish.New(redfish.Config{Username: labBMCUser, Password: labBMCPassword, Machines: machines, MediaDir: mediaDir,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// startRedfishMachine creates m's QEMU machine from mc (named and
// addressed as m) behind a Redfish emulator of its own, and sets m's
// driver, machine and BMC URL. enrollUEFIRedfish or redfishDriverInfo
// enroll it.
func startRedfishMachine(t *testing.T, m *qemuMachine, mc lab.MachineConfig) {
	t.Helper()
	mc.Name, mc.MAC = m.name, m.mac
	m.q = newLabQEMU(t, mc)
	m.driver = "redfish"
	m.redfish = serveRedfish(t, map[string]redfish.Machine{m.name: m.q}, "")
}

// redfishDriverInfo is the driver_info of the machine name behind the
// lab's Redfish emulator at bmc, booting the deploy ramdisk of the boot
// dir.
func redfishDriverInfo(bmc, name string) map[string]any {
	return map[string]any{"redfish_address": bmc, "redfish_system_id": "/redfish/v1/Systems/" + name,
		"redfish_username": labBMCUser, "redfish_password": labBMCPassword,
		"deploy_kernel": "ferric-deploy.kernel", "deploy_ramdisk": "ferric-deploy.initramfs"}
}

// serveOnBridge serves h on the bridge's address, where the machines
// reach it, until the test ends, and returns its URL.
func serveOnBridge(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", qemuBridgeIP+":0")
	if err != nil {
		t.Fatalf("listen on the bridge (are we in the namespace?): %v", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// startQEMUConductor starts c, the ferric-conductor binary of dir with
// its state in dir, on a free port of host (the bridge's IPv4 or IPv6
// address), and stops it when the test ends. It returns the API's URL;
// the address stays the same when the test restarts c.
func startQEMUConductor(t *testing.T, dir, host string, c *qemuConductor) string {
	t.Helper()
	c.t, c.bin, c.dir = t, filepath.Join(dir, "ferric-conductor"), dir
	c.addr = harness.FreeAddr(t, host)
	if c.events == nil {
		c.events = &qemuEvents{}
	}
	c.start()
	t.Cleanup(func() { c.stop(syscall.SIGTERM) })
	return "http://" + c.addr
}

// enrollUEFIRedfish enrolls m behind its Redfish emulator as a UEFI
// machine booting iPXE and inspected by the agent, with its port, and
// brings it to manageable.
func enrollUEFIRedfish(c client, m *qemuMachine) {
	node := c.do("POST", "/v1/nodes", map[string]any{"name": m.name, "driver": "redfish", "boot_interface": "ipxe",
		"inspect_interface": "agent", "properties": map[string]any{"capabilities": "boot_mode:uefi"},
		"driver_info": redfishDriverInfo(m.redfish, m.name)}, 201)
	m.uuid = node["uuid"].(string)
	c.do("POST", "/v1/ports", map[string]any{"address": m.mac, "node_uuid": m.uuid}, 201)
	c.do("PUT", "/v1/nodes/"+m.name+"/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState(m.name, "manageable", time.Minute)
}

// serialText is a machine's serial console so far, without terminal
// escape sequences.
func serialText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`).ReplaceAllString(string(b), "")
}

// inspectUEFIRedfish enrolls m (enrollUEFIRedfish), inspects it in band
// within limit, logs the phase as what and checks the node inspection
// left (qemuInspected).
func inspectUEFIRedfish(t *testing.T, c client, m *qemuMachine, limit time.Duration, what string) {
	t.Helper()
	enrollUEFIRedfish(c, m)
	t0 := time.Now()
	c.do("PUT", "/v1/nodes/"+m.name+"/states/provision", map[string]any{"target": "inspect"}, 202)
	n := c.waitState(m.name, "manageable", limit)
	t.Logf("phase inspect over %s: %.1fs", what, time.Since(t0).Seconds())
	qemuInspected(t, c, m, n)
}

// firmwareChainedIPXE checks that m's serial console shows the
// firmware's line start and then iPXE's banner, and never the line not
// (another boot path), and returns the console's text.
func firmwareChainedIPXE(t *testing.T, m *qemuMachine, start, not string) string {
	t.Helper()
	serial := serialText(t, m.q.SerialLog())
	startAt := strings.Index(serial, start)
	ipxeAt := strings.Index(serial, "iPXE")
	if startAt < 0 || ipxeAt < startAt || strings.Contains(serial, not) {
		t.Errorf("serial console does not show %q (at %d) starting iPXE (at %d), or shows %q:\n%s",
			start, startAt, ipxeAt, not, tail([]byte(serial), 4000))
	}
	return serial
}

// waitSerial waits up to limit for q's serial console to show every
// one of want, and returns the console. A console without them fails
// the test, naming what was awaited and showing the console's tail.
func waitSerial(t *testing.T, q *lab.QEMU, limit time.Duration, what string, want ...string) []byte {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		b, _ := os.ReadFile(q.SerialLog())
		missing := ""
		for _, w := range want {
			if !bytes.Contains(b, []byte(w)) {
				missing = w
				break
			}
		}
		if missing == "" {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q on the serial console in %s; serial console (tail):\n%s", what, missing, limit, tail(b, 4000))
		}
		time.Sleep(time.Second)
	}
}

// waitPoweredOff waits up to a minute for m's deployed test OS, which
// powers itself off after its report, to be off.
func waitPoweredOff(t *testing.T, m *qemuMachine) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if on, _ := m.q.Running(context.Background()); !on {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the deployed OS did not power off within 1 min of its report", m.name)
		}
	}
}

// workDir is a new directory with a short path (QMP sockets live under
// it: unix socket paths are at most 108 bytes), removed when the test
// passes and kept, with a log line naming it and what it holds (hint),
// when it fails.
func workDir(t *testing.T, prefix, hint string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("work directory kept for inspection: %s%s", dir, hint)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}
