package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/lab"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

const (
	// qemuEnvFastTrack is set in the child of TestQEMUFastTrack: "on"
	// (the conductor's --fast-track) or "off" (today's flow, to compare;
	// FERRIC_E2E_FASTTRACK=off in the parent's environment).
	qemuEnvFastTrack = "FERRIC_E2E_QEMU_FASTTRACK"
	// qemuStallLimit is the conductor's --stall-timeout in the test.
	qemuStallLimit = 15 * time.Second
	// qemuSlowImageMiB is the size of the image the stall test deploys,
	// served slowly (qemuSlowImageRate) so that the write can be cut.
	qemuSlowImageMiB  = 96
	qemuSlowImageRate = 4 << 20 // bytes per second
)

// TestQEMUFastTrack: one QEMU machine (SeaBIOS, PXE) behind the Redfish
// emulator, which records every start it is asked for, and the conductor
// with --fast-track: enroll, manage, in-band inspection, provide
// (automated cleaning) and deploy of the test OS with exactly one
// ramdisk boot (the machine is powered off only to boot its instance);
// the phases' times are logged. Then undeploy (the instance's tear-down
// boots the ramdisk for cleaning, which stays up), and a deploy of a
// slowly served image whose machine is killed mid-write: the node fails
// within the stall limit (--stall-timeout 15s), far before the wait
// timeout, and last_error names the phase, the bytes written of the
// total and when the agent was last heard.
//
// FERRIC_E2E_FASTTRACK=off runs the first part without fast-track (three
// ramdisk boots), to compare the times.
func TestQEMUFastTrack(t *testing.T) {
	if dir := os.Getenv(qemuEnvChild); dir != "" {
		qemuFastTrackChild(t, dir)
		return
	}
	mode := "on"
	if os.Getenv("FERRIC_E2E_FASTTRACK") == "off" {
		mode = "off"
	}
	qemuParent(t, "TestQEMUFastTrack", qemuEnvFastTrack+"="+mode)
}

// startCounter wraps a lab machine for the Redfish emulator and records
// each start the BMC asks for (power-on of a machine that is off, reset)
// with the boot device set at that time.
type startCounter struct {
	*lab.QEMU
	mu     sync.Mutex
	starts []string
	at     []time.Time
}

func (s *startCounter) record() {
	s.mu.Lock()
	s.starts = append(s.starts, s.BootDevice())
	s.at = append(s.at, time.Now())
	s.mu.Unlock()
}

func (s *startCounter) PowerOn(ctx context.Context) error {
	if on, _ := s.Running(ctx); !on {
		s.record()
	}
	return s.QEMU.PowerOn(ctx)
}

func (s *startCounter) Reset(ctx context.Context) error {
	s.record()
	return s.QEMU.Reset(ctx)
}

func (s *startCounter) list() ([]string, []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.starts...), append([]time.Time(nil), s.at...)
}

func qemuFastTrackChild(t *testing.T, dir string) {
	fast := os.Getenv(qemuEnvFastTrack) != "off"
	vmDir := filepath.Join(dir, "vm")
	const mac = "52:54:00:e2:f7:01"
	q := newLabQEMU(t, lab.MachineConfig{Name: "vm0", Dir: vmDir, MAC: mac, Net: "tap:tap0", DiskSizeMiB: qemuDiskMiB, Firmware: "bios"})
	// The BMC counts the machine's starts.
	m := &startCounter{QEMU: q}
	bmc := serveRedfish(t, map[string]redfish.Machine{"vm0": m}, "")

	// The slow image: a pattern that does not compress to zeroes, served
	// at qemuSlowImageRate.
	block := make([]byte, 1<<20)
	for i := range block {
		block[i] = byte(i*7 + i/4096)
	}
	h := sha256.New()
	for range qemuSlowImageMiB {
		h.Write(block)
	}
	slowSum := hex.EncodeToString(h.Sum(nil))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /slow.raw", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(qemuSlowImageMiB<<20))
		for range qemuSlowImageMiB {
			if _, err := w.Write(block); err != nil {
				return
			}
			time.Sleep(time.Second * (1 << 20) / qemuSlowImageRate)
		}
	})
	files := serveOnBridge(t, mux)

	extra := []string{"--stall-timeout", qemuStallLimit.String()}
	if fast {
		extra = append(extra, "--fast-track")
	}
	base := startQEMUConductor(t, dir, qemuBridgeIP, &qemuConductor{extra: extra})
	c := client{t, base}
	imageID := qemuUpload(t, base, "testos-raw", "raw", filepath.Join(dir, "testos.raw"))

	node := c.do("POST", "/v1/nodes", map[string]any{"driver": "redfish", "name": "vm0", "inspect_interface": "agent",
		"deploy_interface": "direct", "driver_info": redfishDriverInfo(bmc, "vm0")}, 201)
	uuid, _ := node["uuid"].(string)
	c.do("POST", "/v1/ports", map[string]any{"address": mac, "node_uuid": uuid}, 201)
	provision := func(target string, extra map[string]any) {
		t.Helper()
		body := map[string]any{"target": target}
		for k, v := range extra {
			body[k] = v
		}
		c.do("PUT", "/v1/nodes/vm0/states/provision", body, 202)
	}
	mode := map[bool]string{true: "fast-track", false: "no fast-track"}[fast]
	var phases []string
	phase := func(format string, args ...any) {
		phases = append(phases, fmt.Sprintf(format, args...))
	}

	provision("manage", nil)
	c.waitState("vm0", "manageable", time.Minute)
	t0 := time.Now()
	provision("inspect", nil)
	n := c.waitState("vm0", "manageable", 4*time.Minute)
	phase("inspect: %.1fs (power %v)", time.Since(t0).Seconds(), n["power_state"])
	if fast {
		// The agent goes on from inspection to lookup and heartbeats.
		qemuWaitNode(t, c, "vm0", "heard from its agent", time.Minute, func(n map[string]any) bool {
			d, _ := n["driver_internal_info"].(map[string]any)
			return d["agent_last_heartbeat"] != nil && n["reservation"] == nil
		})
	}
	t1 := time.Now()
	provision("provide", nil)
	n = c.waitState("vm0", "available", 4*time.Minute)
	phase("provide (cleaning): %.1fs (power %v)", time.Since(t1).Seconds(), n["power_state"])
	c.do("PATCH", "/v1/nodes/vm0", []map[string]any{{"op": "add", "path": "/instance_info/image_source", "value": imageID}}, 200)
	t2 := time.Now()
	provision("active", nil)
	c.waitState("vm0", "active", 4*time.Minute)
	tActive := time.Now()
	phase("deploy: %.1fs", tActive.Sub(t2).Seconds())
	// The instance boots from disk: the deploy is over once it does.
	starts, at := m.list()
	ramdisk := 0
	for _, s := range starts {
		if s == lab.BootPXE {
			ramdisk++
		}
	}
	want := map[bool]int{true: 1, false: 3}[fast]
	if ramdisk != want || len(starts) == 0 || starts[len(starts)-1] != lab.BootDisk {
		t.Errorf("%s: starts seen by the BMC %v, want %d ramdisk boot(s) (pxe) then the instance (disk)", mode, starts, want)
	}
	for i := range starts {
		t.Logf("BMC start %d: %s at +%.1fs", i+1, starts[i], at[i].Sub(t0).Seconds())
	}
	phase("inspect→active: %.1fs with %d ramdisk boots", tActive.Sub(t0).Seconds(), ramdisk)
	for _, p := range phases {
		t.Logf("phase (%s) %s", mode, p)
	}
	if !fast || t.Failed() {
		return
	}

	// Undeploy: the tear-down boots the ramdisk for cleaning; with
	// fast-track it stays up, and the next deploy writes at once.
	provision("deleted", nil)
	c.waitState("vm0", "available", 4*time.Minute)
	c.do("PATCH", "/v1/nodes/vm0", []map[string]any{
		{"op": "add", "path": "/instance_info/image_source", "value": files + "/slow.raw"},
		{"op": "add", "path": "/instance_info/image_checksum", "value": slowSum},
		{"op": "add", "path": "/instance_info/image_disk_format", "value": "raw"}}, 200)
	provision("active", nil)
	n = qemuWaitNode(t, c, "vm0", "writing its image", 3*time.Minute, func(n map[string]any) bool {
		d, _ := n["driver_internal_info"].(map[string]any)
		p, _ := d["agent_progress"].(map[string]any)
		b, _ := p["bytes_written"].(float64)
		return n["provision_state"] == "deploying" && p["phase"] == "writing" && b > 0 && p["rate_bytes_per_second"] != nil
	})
	d, _ := n["driver_internal_info"].(map[string]any)
	t.Logf("progress before the kill: %v", d["agent_progress"])
	p, _ := d["agent_progress"].(map[string]any)
	for _, k := range []string{"rate_bytes_per_second", "estimated_end", "last_heard", "total_bytes"} {
		if p[k] == nil {
			t.Errorf("agent_progress %v has no %s", p, k)
		}
	}
	pid, _ := q.Pid()
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	n = qemuWaitNode(t, c, "vm0", "failed", qemuStallLimit+time.Minute, func(n map[string]any) bool {
		return n["provision_state"] == "deploy failed" && n["reservation"] == nil
	})
	took := time.Since(killed)
	msg, _ := n["last_error"].(string)
	t.Logf("killed mid-write: deploy failed after %.1fs (stall limit %s, wait timeout 4m): %s", took.Seconds(), qemuStallLimit, msg)
	if took > qemuStallLimit+30*time.Second {
		t.Errorf("the node failed %.1fs after the machine died, want within the stall limit %s (+ one poll)", took.Seconds(), qemuStallLimit)
	}
	for _, w := range []string{"write_image", "phase writing", fmt.Sprintf("of %d bytes written", qemuSlowImageMiB<<20), "agent last heard at"} {
		if !strings.Contains(msg, w) {
			t.Errorf("last_error %q does not say %q", msg, w)
		}
	}
}
