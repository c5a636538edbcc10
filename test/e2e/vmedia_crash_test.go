package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/harness"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// mediaMachine is a fake machine (redfish_test.go's) with a CD drive for
// the Redfish emulator's virtual media. With a gate, an insert blocks until
// the gate is closed and then completes whatever happened to the request,
// as a BMC that finishes an insert its client gave up on.
type mediaMachine struct {
	machine
	gate    chan struct{} // nil: inserts complete at once
	entered chan struct{} // receives once an insert waits at the gate
	dmu     sync.Mutex
	image   string // the file in the drive, "" when empty
	inserts int
	ejects  int
}

func (m *mediaMachine) InsertMedia(_ context.Context, path string) error {
	if m.gate != nil {
		select {
		case m.entered <- struct{}{}:
		default:
		}
		<-m.gate
	}
	m.dmu.Lock()
	defer m.dmu.Unlock()
	m.image = path
	m.inserts++
	return nil
}

func (m *mediaMachine) EjectMedia(context.Context) error {
	m.dmu.Lock()
	defer m.dmu.Unlock()
	m.image = ""
	m.ejects++
	return nil
}

func (m *mediaMachine) drive() (image string, inserts, ejects int) {
	m.dmu.Lock()
	defer m.dmu.Unlock()
	return m.image, m.inserts, m.ejects
}

// mediaConductor runs the ferric-conductor binary (so that it can be
// SIGKILLed) with a boot directory for virtual media boots.
type mediaConductor struct {
	t                      *testing.T
	bin, addr, state, boot string
	logs                   *lockedLog
	proc                   *harness.Process
}

func (c *mediaConductor) start(waitTimeout time.Duration) {
	t := c.t
	t.Helper()
	cmd := exec.Command(c.bin, "--api-listen", c.addr, "--state-dir", c.state, "--hostname", "vmedia-crash",
		"--boot-dir", c.boot, "--inspector-listen", "", "--wait-timeout", waitTimeout.String(), "--log-level", "debug")
	p, err := harness.StartBinary(cmd, c.logs.add)
	if err != nil {
		t.Fatalf("%v:\n%s", err, c.logs)
	}
	c.proc = p
}

func (c *mediaConductor) stop(sig syscall.Signal) {
	if c.proc == nil {
		return
	}
	_ = c.proc.Stop(sig, 20*time.Second)
	c.proc = nil
}

// isos lists the image files in the conductor's virtual media directory.
func (c *mediaConductor) isos() []string {
	l, _ := filepath.Glob(filepath.Join(c.state, "vmedia", "*.iso"))
	return l
}

// TestKillWithMediaInserted SIGKILLs the conductor while virtual media is
// in use, against the Redfish emulator's VirtualMedia: node "inserting" is
// locked in cleaning with its ISO insert under way (the BMC completes it
// after the conductor died), node "waiting" is in clean wait with its ISO
// inserted. On restart the ISO files are gone at once; "inserting" is
// failed (clean failed, the restart named) and its media ejected;
// "waiting" keeps waiting for its agent (it may still call back, as in
// Ironic) until its step ends, here by the wait timeout, which ejects its
// media. Nothing is left inserted, locked or on disk.
func TestKillWithMediaInserted(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: builds the conductor and waits for a wait timeout (~1 min)")
	}
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Skip("skipping: xorriso is not installed (Debian package xorriso; .ci/deps.sh)")
	}
	// Any files do for the ISO (nothing boots it): the builder only copies
	// them.
	boot := t.TempDir()
	for _, f := range []string{"vmlinuz", "initrd"} {
		if err := os.WriteFile(filepath.Join(boot, f), []byte("not a real "+f+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	inserting := &mediaMachine{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	waiting := &mediaMachine{}
	emu := redfish.New(redfish.Config{Username: "admin", Password: "pw", MediaDir: t.TempDir(), Logger: quiet,
		Machines: map[string]redfish.Machine{"m1": inserting, "m2": waiting}})
	bmc := httptest.NewServer(emu)
	defer bmc.Close()
	released := false
	release := func() {
		if !released {
			released = true
			close(inserting.gate)
		}
	}
	defer release()

	c := &mediaConductor{t: t, bin: harness.Build(t), addr: harness.FreeAddr(t, "127.0.0.1"),
		state: t.TempDir(), boot: boot, logs: &lockedLog{}}
	c.start(30 * time.Minute)
	defer func() { c.stop(syscall.SIGTERM) }()
	api := client{t, "http://" + c.addr}
	netData := map[string]any{
		"links":    []any{map[string]any{"id": "nic0", "type": "phy", "ethernet_mac_address": "52:54:00:aa:bb:01"}},
		"networks": []any{map[string]any{"id": "n0", "type": "ipv4", "link": "nic0", "network_id": "n0", "ip_address": "192.0.2.50", "netmask": "255.255.255.0"}},
		// Ironic's network-data schema requires all three lists.
		"services": []any{},
	}
	for name, sys := range map[string]string{"inserting": "m1", "waiting": "m2"} {
		body := map[string]any{"driver": "redfish", "name": name, "boot_interface": "redfish-virtual-media",
			"driver_info": map[string]any{"redfish_address": bmc.URL, "redfish_username": "admin", "redfish_password": "pw",
				"redfish_system_id": "/redfish/v1/Systems/" + sys, "deploy_kernel": "vmlinuz", "deploy_ramdisk": "initrd"}}
		if name == "inserting" {
			// Its own ISO (network data), removed when its boot ends.
			body["network_data"] = netData
		}
		api.doVersion("1.66", "POST", "/v1/nodes", body, 201)
		api.do("PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "manage"}, 202)
		api.waitState(name, "manageable", 30*time.Second)
	}

	// "waiting": cleaning boots its ramdisk from the CD; no agent comes.
	api.do("PUT", "/v1/nodes/waiting/states/provision", map[string]any{"target": "provide"}, 202)
	n := qemuWaitNode(t, api, "waiting", "in clean wait", time.Minute, func(n map[string]any) bool {
		return n["provision_state"] == "clean wait" && n["reservation"] == nil
	})
	if img, in := emu.Media("m2"); img == "" || !in {
		t.Fatalf("waiting in clean wait: BMC media %q inserted %v, want its ISO inserted", img, in)
	}
	if on, booted, _, _ := waiting.state(); !on || booted != "cdrom" {
		t.Errorf("waiting in clean wait: machine on %v booted %q, want on from the CD", on, booted)
	}
	if n["driver_internal_info"].(map[string]any)["vmedia_boot_interface"] == nil {
		t.Errorf("waiting: driver_internal_info has no vmedia_boot_interface: %v", n["driver_internal_info"])
	}

	// "inserting": killed while the BMC inserts its ISO.
	api.do("PUT", "/v1/nodes/inserting/states/provision", map[string]any{"target": "provide"}, 202)
	select {
	case <-inserting.entered:
	case <-time.After(time.Minute):
		t.Fatalf("inserting: no insert reached the BMC in 1 min: %v", api.do("GET", "/v1/nodes/inserting", nil, 200)["last_error"])
	}
	n = api.do("GET", "/v1/nodes/inserting", nil, 200)
	if n["provision_state"] != "cleaning" || n["reservation"] == nil {
		t.Fatalf("inserting during the insert: %v, reservation %v; want cleaning, locked", n["provision_state"], n["reservation"])
	}
	before := c.isos()
	if len(before) != 2 {
		t.Errorf("ISOs before the kill: %v, want 2 (the shared one and inserting's own)", before)
	}
	c.stop(syscall.SIGKILL)
	release() // the BMC finishes the insert nobody waits for any more
	deadline := time.Now().Add(10 * time.Second)
	for _, inserts, _ := inserting.drive(); inserts == 0; _, inserts, _ = inserting.drive() {
		if time.Now().After(deadline) {
			t.Fatal("the BMC did not finish the insert")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if img, in := emu.Media("m1"); img == "" || !in {
		t.Fatalf("after the kill: m1's BMC media %q inserted %v, want inserted (the insert completed)", img, in)
	}

	tRestart := time.Now()
	c.start(20 * time.Second)
	if left := c.isos(); len(left) != 0 {
		t.Errorf("ISO files after the restart: %v, want none (before the kill: %v)", left, before)
	}
	// "waiting" is still waiting for its agent, media in, after the
	// restart (its wait timeout is checked every 10 s).
	n = api.do("GET", "/v1/nodes/waiting", nil, 200)
	if img, in := emu.Media("m2"); n["provision_state"] != "clean wait" || img == "" || !in {
		t.Errorf("waiting right after the restart: %v, BMC media %q inserted %v; want clean wait with its media inserted",
			n["provision_state"], img, in)
	}
	n = api.waitSettledNode("inserting", time.Minute)
	if n["provision_state"] != "clean failed" || !strings.Contains(fmt.Sprint(n["last_error"]), "restarted") {
		t.Errorf("inserting after the restart: %v with last_error %v; want clean failed naming the restart", n["provision_state"], n["last_error"])
	}
	api.waitMediaEjected(emu, "m1", "inserting", inserting, time.Minute)
	t.Logf("inserting: %v (%v), media ejected %.1fs after the restart", n["provision_state"], n["last_error"], time.Since(tRestart).Seconds())

	n = api.waitSettledNode("waiting", 2*time.Minute)
	if n["provision_state"] != "clean failed" || n["last_error"] == nil {
		t.Errorf("waiting after its wait timeout: %v with last_error %v; want clean failed", n["provision_state"], n["last_error"])
	}
	api.waitMediaEjected(emu, "m2", "waiting", waiting, time.Minute)
	t.Logf("waiting: %v (%v), media ejected %.1fs after the restart", n["provision_state"], n["last_error"], time.Since(tRestart).Seconds())

	if left := c.isos(); len(left) != 0 {
		t.Errorf("ISO files at the end: %v", left)
	}
	// Both nodes can be worked on again.
	for _, name := range []string{"inserting", "waiting"} {
		api.do("PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "manage"}, 202)
		api.waitState(name, "manageable", 30*time.Second)
	}
}

// waitSettledNode polls a node until it is unlocked and in a stable or
// failed state.
func (c client) waitSettledNode(node string, timeout time.Duration) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := c.do("GET", "/v1/nodes/"+node, nil, 200)
		st, _ := n["provision_state"].(string)
		if n["reservation"] == nil && (n["target_provision_state"] == nil || strings.HasSuffix(st, "failed")) {
			return n
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node %s not settled after %s: %v target %v reservation %v", node, timeout,
				n["provision_state"], n["target_provision_state"], n["reservation"])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitMediaEjected waits until the BMC's system sys has no media, the
// machine's drive is empty and the node no longer records inserted media.
func (c client) waitMediaEjected(emu *redfish.Server, sys, node string, m *mediaMachine, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		img, in := emu.Media(sys)
		drive, _, ejects := m.drive()
		n := c.do("GET", "/v1/nodes/"+node, nil, 200)
		dii, _ := n["driver_internal_info"].(map[string]any)
		if img == "" && !in && drive == "" && ejects > 0 && dii["vmedia_boot_interface"] == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: media not ejected after %s: BMC image %q inserted %v, drive %q (%d ejects), vmedia_boot_interface %v",
				node, timeout, img, in, drive, ejects, dii["vmedia_boot_interface"])
		}
		time.Sleep(100 * time.Millisecond)
	}
}
