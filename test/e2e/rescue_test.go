package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/ipa/shacrypt"
	"github.com/ferric-metal/ferric/test/harness"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// startRescueAgent runs the ferric-agent binary as the machine with MAC
// mac, with its /etc in a temporary directory (holding a passwd and a
// shadow with root only), and returns that directory, the agent's
// command API address and where it serves SSH once rescued.
func startRescueAgent(t *testing.T, base, disk, mac string) (etc, addr, sshAddr string) {
	t.Helper()
	etc = t.TempDir()
	os.WriteFile(filepath.Join(etc, "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(etc, "shadow"), []byte("root:*:19000:0:99999:7:::\n"), 0o600)
	port := harness.FreePort(t)
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	sshAddr = harness.FreeAddr(t, "127.0.0.1")
	startAgent(t, buildAgent(t), "--api-url", base, "--disk", disk, "--mac", mac, "--etc-dir", etc, "--rescue-ssh-listen", sshAddr,
		"--listen", addr, "--advertise-host", "127.0.0.1", "--advertise-port", fmt.Sprint(port),
		"--heartbeat-interval", "1s", "--lookup-max", "1s", "--forced-heartbeat-gap", "100ms", "--min-root-size", "1048576")
	return etc, addr, sshAddr
}

// rescueHash is the rescue user's password hash in etc's shadow.
func rescueHash(etc string) string {
	b, _ := os.ReadFile(filepath.Join(etc, "shadow"))
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Split(l, ":"); len(f) > 1 && f[0] == "rescue" {
			return f[1]
		}
	}
	return ""
}

// checkRescued checks that the agent set pw as the rescue user's password
// and stopped serving its command API.
func checkRescued(t *testing.T, etc, addr, pw string) {
	t.Helper()
	h := rescueHash(etc)
	if again, err := shacrypt.Crypt(pw, h); err != nil || again != h || !strings.HasPrefix(h, "$6$") {
		t.Fatalf("the agent's shadow has rescue hash %q, which does not verify the rescue password", h)
	}
	if b, _ := os.ReadFile(filepath.Join(etc, "shadow")); !strings.HasPrefix(string(b), "root:*:") {
		t.Errorf("root's shadow entry changed: %q", b)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("the rescued agent still serves its command API at %s", addr)
		}
	}
}

// TestRescueThroughAgent takes a node whose machine is a ferric-agent
// process through deploy, rescue (the agent sets the rescue user's
// password in its /etc and stops), unrescue and rescue again, as
// Ironic's agent rescue; the password never shows through the API, and a
// rescue with no rescue ramdisk is refused with Ironic's message.
func TestRescueThroughAgent(t *testing.T) {
	base := startConductor(t)
	c := client{t, base}
	disk := newDisk(t, make([]byte, 1<<20), 64<<20)
	const mac = "52:54:00:12:34:79"
	node := c.do("POST", "/v1/nodes", map[string]any{
		"driver": "fake-hardware", "name": "rescuee", "deploy_interface": "custom-agent", "rescue_interface": "agent",
		"boot_interface": "pxe", "driver_info": agentDeployImages(),
	}, 201)
	c.do("POST", "/v1/ports", map[string]any{"address": mac, "node_uuid": node["uuid"]}, 201)
	etc, addr, sshAddr := startRescueAgent(t, base, disk, mac)
	c.do("PUT", "/v1/nodes/rescuee/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState("rescuee", "manageable", 30*time.Second)
	c.do("PUT", "/v1/nodes/rescuee/states/provision", map[string]any{"target": "provide"}, 202)
	c.waitState("rescuee", "available", 90*time.Second)
	c.do("PUT", "/v1/nodes/rescuee/states/provision", map[string]any{"target": "active"}, 202)
	c.waitState("rescuee", "active", 90*time.Second)

	// No rescue ramdisk: refused, nothing changed.
	e := c.do("PUT", "/v1/nodes/rescuee/states/provision", map[string]any{"target": "rescue", "rescue_password": "pw"}, 400)
	if !strings.Contains(fmt.Sprint(e), "Missing are: ['rescue_kernel', 'rescue_ramdisk']") {
		t.Fatalf("rescue without rescue ramdisk: %v", e)
	}
	c.do("PATCH", "/v1/nodes/rescuee", []map[string]any{
		{"op": "add", "path": "/driver_info/rescue_kernel", "value": "http://example.invalid/rk"},
		{"op": "add", "path": "/driver_info/rescue_ramdisk", "value": "http://example.invalid/rr"}}, 200)

	const pw = "Resc-ue pw!"
	c.do("PUT", "/v1/nodes/rescuee/states/provision", map[string]any{"target": "rescue", "rescue_password": pw}, 202)
	n := c.do("GET", "/v1/nodes/rescuee", nil, 200)
	ii, _ := n["instance_info"].(map[string]any)
	if strings.Contains(fmt.Sprint(n), pw) || (ii["hashed_rescue_password"] != nil && ii["hashed_rescue_password"] != "******") {
		t.Fatalf("the rescue password shows through the API: instance_info %v", ii)
	}
	n = c.waitState("rescuee", "rescue", 60*time.Second)
	checkRescued(t, etc, addr, pw)
	// The rescued agent serves SSH: the rescue user logs in with the
	// password and runs a command; a wrong password is refused.
	if out, err := sshRun(sshAddr, "rescue", pw, `echo "rescued as $USER"`); err != nil || out != "rescued as rescue\n" {
		t.Errorf("ssh rescue@%s: %q, %v; want the command's output", sshAddr, out, err)
	}
	if _, err := sshRun(sshAddr, "rescue", "not-"+pw, "true"); err == nil {
		t.Errorf("ssh with a wrong password logged in")
	}
	if ii, _ := n["instance_info"].(map[string]any); ii["hashed_rescue_password"] != nil || ii["rescue_password"] != nil {
		t.Errorf("rescued node keeps its password: %v", ii)
	}
	c.do("PUT", "/v1/nodes/rescuee/states/provision", map[string]any{"target": "unrescue"}, 202)
	n = c.waitState("rescuee", "active", 60*time.Second)
	if n["power_state"] != "power on" || n["last_error"] != nil {
		t.Errorf("unrescued: power %v last_error %v", n["power_state"], n["last_error"])
	}
}

// rescueMachine is a mediaMachine that keeps the contents of each ISO
// inserted (the BMC's copy is removed with the eject).
type rescueMachine struct {
	mediaMachine
	mu   sync.Mutex
	isos [][]byte
}

func (m *rescueMachine) InsertMedia(ctx context.Context, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.isos = append(m.isos, b)
	m.mu.Unlock()
	return m.mediaMachine.InsertMedia(ctx, path)
}

// TestRescueVirtualMedia rescues a redfish node with the
// redfish-virtual-media boot interface against the lab's Redfish
// emulator: the rescue ISO, built from the rescue kernel and ramdisk (not
// the deploy ones), is inserted while the node waits for its agent and
// ejected once the agent finalized the rescue; unrescue leaves nothing
// inserted.
func TestRescueVirtualMedia(t *testing.T) {
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Skip("skipping: xorriso is not installed (Debian package xorriso; .ci/deps.sh)")
	}
	boot := t.TempDir()
	for f, body := range map[string]string{"vmlinuz": "DEPLOY-KERNEL", "initrd": "DEPLOY-RAMDISK",
		"rescue-vmlinuz": "RESCUE-KERNEL-0123456789", "rescue-initrd": "RESCUE-RAMDISK-0123456789"} {
		if err := os.WriteFile(filepath.Join(boot, f), []byte(body+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := &rescueMachine{}
	emu := redfish.New(redfish.Config{Username: "admin", Password: "pw", MediaDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Machines: map[string]redfish.Machine{"m1": m}})
	bmc := httptest.NewServer(emu)
	defer bmc.Close()
	base := harness.Start(t, service.Config{Hostname: "e2e-rescue", BootDir: boot}).URL
	c := client{t, base}
	node := c.doVersion("1.96", "POST", "/v1/nodes", map[string]any{
		"driver": "redfish", "name": "vm-rescue", "boot_interface": "redfish-virtual-media", "deploy_interface": "fake",
		"rescue_interface": "agent", "automated_clean": false,
		"driver_info": map[string]any{"redfish_address": bmc.URL, "redfish_username": "admin", "redfish_password": "pw",
			"redfish_system_id": "/redfish/v1/Systems/m1", "deploy_kernel": "vmlinuz", "deploy_ramdisk": "initrd",
			"rescue_kernel": "rescue-vmlinuz", "rescue_ramdisk": "rescue-initrd"},
	}, 201)
	const mac = "52:54:00:12:34:7a"
	c.do("POST", "/v1/ports", map[string]any{"address": mac, "node_uuid": node["uuid"]}, 201)
	for _, s := range [][2]string{{"manage", "manageable"}, {"provide", "available"}, {"active", "active"}} {
		c.do("PUT", "/v1/nodes/vm-rescue/states/provision", map[string]any{"target": s[0]}, 202)
		c.waitState("vm-rescue", s[1], 30*time.Second)
	}

	// Rescue wait: the rescue ISO is in the drive and the machine
	// started from it; no agent yet.
	const pw = "vmedia-rescue"
	c.do("PUT", "/v1/nodes/vm-rescue/states/provision", map[string]any{"target": "rescue", "rescue_password": pw}, 202)
	qemuWaitNode(t, c, "vm-rescue", "in rescue wait", 60*time.Second, func(n map[string]any) bool {
		return n["provision_state"] == "rescue wait" && n["reservation"] == nil
	})
	img, in := emu.Media("m1")
	if img == "" || !in {
		t.Fatalf("rescue wait: BMC media %q inserted %v, want the rescue ISO", img, in)
	}
	if on, booted, _, _ := m.state(); !on || booted != "cdrom" {
		t.Errorf("rescue wait: machine on %v booted from %q, want on from the CD", on, booted)
	}
	m.mu.Lock()
	iso := m.isos[len(m.isos)-1]
	m.mu.Unlock()
	if !bytes.Contains(iso, []byte("RESCUE-KERNEL-0123456789")) || !bytes.Contains(iso, []byte("RESCUE-RAMDISK-0123456789")) ||
		bytes.Contains(iso, []byte("DEPLOY-KERNEL")) {
		t.Fatalf("the inserted ISO (%d bytes) is not built from the rescue kernel and ramdisk", len(iso))
	}

	// The agent comes up, finalizes the rescue; the media is ejected.
	disk := filepath.Join(t.TempDir(), "disk.img")
	os.WriteFile(disk, make([]byte, 1<<20), 0o600)
	etc, addr, _ := startRescueAgent(t, base, disk, mac)
	c.waitState("vm-rescue", "rescue", 60*time.Second)
	checkRescued(t, etc, addr, pw)
	c.waitMediaEjected(emu, "m1", "vm-rescue", &m.mediaMachine, 30*time.Second)

	c.do("PUT", "/v1/nodes/vm-rescue/states/provision", map[string]any{"target": "unrescue"}, 202)
	n := c.waitState("vm-rescue", "active", 60*time.Second)
	if img, in := emu.Media("m1"); img != "" || in || n["power_state"] != "power on" {
		t.Errorf("unrescued: BMC media %q inserted %v, power %v", img, in, n["power_state"])
	}
}

// sshRun logs into addr as user with password pw (retrying for 20 s while
// the server is not up) and runs cmd, returning its standard output.
func sshRun(addr, user, pw, cmd string) (string, error) {
	cfg := &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.Password(pw)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second}
	var cl *ssh.Client
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		cl, err = ssh.Dial("tcp", addr, cfg)
		var op *net.OpError
		if err == nil || !errors.As(err, &op) || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return "", err
	}
	defer cl.Close()
	sess, err := cl.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	var out, errb bytes.Buffer
	sess.Stdout, sess.Stderr = &out, &errb
	if err := sess.Run(cmd); err != nil {
		return out.String(), fmt.Errorf("%w (stderr %q)", err, errb.String())
	}
	return out.String(), nil
}
