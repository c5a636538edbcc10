package e2e

// TestQEMUDeploy: the whole bare-metal path on virtual hardware. Two QEMU
// machines (TCG, SeaBIOS, QEMU's iPXE ROM, virtio NIC on a tap, raw sparse
// disk), each behind its own ipmi_sim BMC, in a network namespace with a
// bridge; the conductor runs in-process with full DHCP on the bridge, TFTP,
// and the deploy ramdisk in its boot dir. The test acts as an operator
// through the API only.
//
// The test process re-runs itself inside the namespace (ip netns exec): the
// parent checks the tools, builds the ramdisk, the test OS image and
// ferric-vbmc (it has the network apt may need), creates the namespace and
// always removes it, with every process started under the work directory
// (QEMU, ipmi_sim), even when the child crashes or times out.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/lab"
)

const (
	qemuEnvChild = "FERRIC_E2E_QEMU_CHILD" // set in the child: the work directory
	qemuBridgeIP = "10.99.0.1"
	qemuMachines = 2
	qemuIPMIPort = 6230
	qemuImageMiB = 64
	// Disks must be at least 4 GiB, the agent's smallest root device
	// without hints; they are sparse.
	qemuDiskMiB = 5 << 10
)

// TestQEMUDeploy enrolls two QEMU machines behind ipmi_sim BMCs, takes both
// at the same time through manage, provide (automated cleaning by the agent
// in the PXE-booted ramdisk), deploy of a checksummed test OS image with a
// config drive, the test OS's report from the deployed disk, and undeploy.
func TestQEMUDeploy(t *testing.T) {
	if dir := os.Getenv(qemuEnvChild); dir != "" {
		qemuDeployChild(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("skipping: boots QEMU machines (~3-5 min); run without -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (network namespace, taps, DHCP on port 67)")
	}
	var missing []string
	for tool, pkg := range map[string]string{
		"qemu-system-x86_64": "qemu-system-x86", "ipmi_sim": "openipmi", "ipmitool": "ipmitool", "ip": "iproute2",
		"syslinux": "syslinux", "sfdisk": "fdisk", "mkfs.vfat": "dosfstools", "mcopy": "mtools",
		"dpkg-deb": "dpkg", "depmod": "kmod", "cpio": "cpio", "go": "golang",
	} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, fmt.Sprintf("%s (package %s)", tool, pkg))
		}
	}
	for file, pkg := range map[string]string{
		"/usr/lib/syslinux/mbr/mbr.bin": "syslinux-common", "/usr/lib/ipxe/qemu/efi-virtio.rom": "ipxe-qemu",
	} {
		if _, err := os.Stat(file); err != nil {
			missing = append(missing, fmt.Sprintf("%s (package %s)", file, pkg))
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Skipf("skipping: missing %s (.ci/deps.sh installs them)", strings.Join(missing, ", "))
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	// A short path: QMP sockets live under it (unix socket paths ≤ 108 bytes).
	dir, err := os.MkdirTemp("", "ferric-e2e-qemu-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("work directory kept for inspection: %s (serial consoles vm/*.serial, conductor.log)", dir)
			return
		}
		os.RemoveAll(dir)
	})

	start := time.Now()
	qemuArtifacts(t, root, dir)
	t.Logf("phase build (ramdisk, test OS image, ferric-vbmc): %.1fs", time.Since(start).Seconds())

	ns := fmt.Sprintf("ferric-e2e-%d", os.Getpid())
	ctx := context.Background()
	if err := lab.NetUp(ctx, lab.NetConfig{Namespace: ns, Addr: qemuBridgeIP + "/24", Taps: qemuMachines}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Whatever the child left behind (it cleans up itself unless killed).
		if pids := lab.KillUnder(dir, 3*time.Second); len(pids) > 0 {
			t.Logf("stopped leftover lab processes %v", pids)
		}
		if err := lab.NetDown(context.Background(), ns); err != nil {
			t.Errorf("removing namespace %s: %v", ns, err)
		}
	})

	cctx, cancel := context.WithTimeout(ctx, 9*time.Minute+40*time.Second)
	defer cancel()
	child := exec.CommandContext(cctx, "ip", "netns", "exec", ns, os.Args[0],
		"-test.run=^TestQEMUDeploy$", "-test.v", "-test.count=1", "-test.timeout=9m30s")
	child.Env = append(os.Environ(), qemuEnvChild+"="+dir)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = child.Stdout
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		t.Log(sc.Text())
	}
	if err := child.Wait(); err != nil {
		t.Fatalf("the test inside namespace %s failed: %v", ns, err)
	}
	t.Logf("total %.1fs", time.Since(start).Seconds())
}

// qemuArtifacts builds into dir: boot/ferric-deploy.{kernel,initramfs}
// (or copies them from $FERRIC_RAMDISK_DIR), testos.raw and ferric-vbmc.
func qemuArtifacts(t *testing.T, root, dir string) {
	t.Helper()
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	boot := filepath.Join(dir, "boot")
	if err := os.MkdirAll(boot, 0o755); err != nil {
		t.Fatal(err)
	}
	if rd := os.Getenv("FERRIC_RAMDISK_DIR"); rd != "" {
		for _, f := range []string{"ferric-deploy.kernel", "ferric-deploy.initramfs"} {
			b, err := os.ReadFile(filepath.Join(rd, f))
			if err != nil {
				t.Fatalf("FERRIC_RAMDISK_DIR: %v (make ramdisk builds them)", err)
			}
			if err := os.WriteFile(filepath.Join(boot, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	} else {
		agent := filepath.Join(dir, "ferric-agent")
		run("go", "build", "-trimpath", "-ldflags=-s -w", "-o", agent, "./ipa/cmd/ferric-agent")
		run("ipa/ramdisk/build.sh", agent, boot)
	}
	run("go", "build", "-o", filepath.Join(dir, "ferric-vbmc"), "./test/cmd/ferric-vbmc")
	run("test/lab/mkimage.sh", filepath.Join(dir, "testos.raw"), fmt.Sprint(qemuImageMiB))
}

// ---- inside the namespace ----

// qemuEvents records the conductor's log records (time, message, node) and
// writes them as text to a file.
type qemuEvents struct {
	mu sync.Mutex
	ev []qemuEvent
}

type qemuEvent struct {
	at        time.Time
	msg, node string
}

type qemuLogHandler struct {
	slog.Handler
	ev *qemuEvents
}

func (h qemuLogHandler) Handle(ctx context.Context, r slog.Record) error {
	node := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "node" {
			node = a.Value.String()
			return false
		}
		return true
	})
	h.ev.mu.Lock()
	h.ev.ev = append(h.ev.ev, qemuEvent{r.Time, r.Message, node})
	h.ev.mu.Unlock()
	return h.Handler.Handle(ctx, r)
}

func (h qemuLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return qemuLogHandler{h.Handler.WithAttrs(as), h.ev}
}

func (h qemuLogHandler) WithGroup(g string) slog.Handler {
	return qemuLogHandler{h.Handler.WithGroup(g), h.ev}
}

// first returns the time of the first record msg about node at or after t0.
func (e *qemuEvents) first(msg, node string, t0 time.Time) (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, x := range e.ev {
		if x.msg == msg && x.node == node && !x.at.Before(t0) {
			return x.at, true
		}
	}
	return time.Time{}, false
}

// powerOns reads the "=== power on TIME boot=DEV" lines lab.QEMU writes.
func powerOns(q *lab.QEMU) (at []time.Time, boot []string) {
	b, _ := os.ReadFile(filepath.Join(q.Config().Dir, q.Config().Name+".qemu.log"))
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 5 && f[0] == "===" && f[1] == "power" && f[2] == "on" {
			if ts, err := time.Parse(time.RFC3339Nano, f[3]); err == nil {
				at = append(at, ts)
				boot = append(boot, strings.TrimPrefix(f[4], "boot="))
			}
		}
	}
	return at, boot
}

// firstPowerOn returns the first power-on at or after t0 booting dev.
func firstPowerOn(q *lab.QEMU, dev string, t0 time.Time) (time.Time, bool) {
	at, boot := powerOns(q)
	for i := range at {
		if boot[i] == dev && !at[i].Before(t0) {
			return at[i], true
		}
	}
	return time.Time{}, false
}

type qemuMachine struct {
	name, mac string
	port      int
	q         *lab.QEMU
	reports   chan map[string]string
}

// bmcPower asks the machine's BMC with ipmitool, as an operator would.
func (m *qemuMachine) bmcPower(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ipmitool", "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", fmt.Sprint(m.port),
		"-U", "admin", "-P", "password", "chassis", "power", "status").CombinedOutput()
	if err != nil {
		t.Fatalf("ipmitool power status %s: %v: %s", m.name, err, out)
	}
	s := strings.TrimSpace(string(out))
	switch {
	case strings.HasSuffix(s, " on"):
		return "power on"
	case strings.HasSuffix(s, " off"):
		return "power off"
	}
	t.Fatalf("ipmitool power status %s: %q", m.name, s)
	return ""
}

func qemuDeployChild(t *testing.T, dir string) {
	ctx := context.Background()
	vbmc := filepath.Join(dir, "ferric-vbmc")
	vmDir := filepath.Join(dir, "vm")
	image, err := os.ReadFile(filepath.Join(dir, "testos.raw"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(image)

	var machines []*qemuMachine
	for i := range qemuMachines {
		m := &qemuMachine{name: fmt.Sprintf("vm%d", i), mac: fmt.Sprintf("52:54:00:e2:e0:%02x", i+1),
			port: qemuIPMIPort + i, reports: make(chan map[string]string, 4)}
		q, err := lab.NewQEMU(lab.MachineConfig{Name: m.name, Dir: vmDir, MAC: m.mac, Net: fmt.Sprintf("tap:tap%d", i),
			DiskSizeMiB: qemuDiskMiB})
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Save(); err != nil {
			t.Fatal(err)
		}
		m.q = q
		t.Cleanup(func() { _ = q.PowerOff(context.Background()) })
		sim, err := lab.StartIPMISim(ctx, lab.IPMISimConfig{Name: m.name, Dir: vmDir, Port: m.port,
			Username: "admin", Password: "password", ChassisControl: []string{vbmc, "chassis", vmDir, m.name}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sim.Stop() })
		machines = append(machines, m)
	}

	// The image and report server, on the bridge like the conductor.
	ln, err := net.Listen("tcp", qemuBridgeIP+":0")
	if err != nil {
		t.Fatalf("listen on the bridge (are we in the namespace?): %v", err)
	}
	var reportTimes sync.Map // name -> time.Time
	mux := http.NewServeMux()
	mux.HandleFunc("GET /image.raw", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(dir, "testos.raw"))
	})
	mux.HandleFunc("POST /report/{name}", func(w http.ResponseWriter, r *http.Request) {
		var rep map[string]string
		_ = json.NewDecoder(r.Body).Decode(&rep)
		for _, m := range machines {
			if m.name == r.PathValue("name") {
				reportTimes.LoadOrStore(m.name, time.Now())
				select {
				case m.reports <- rep:
				default:
				}
			}
		}
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	files := "http://" + ln.Addr().String()

	logf, err := os.Create(filepath.Join(dir, "conductor.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	events := &qemuEvents{}
	log := slog.New(qemuLogHandler{slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelDebug}), events})
	base := startConductorWith(t, service.Config{
		APIListen: qemuBridgeIP + ":0", StateDir: filepath.Join(dir, "state"), Hostname: "e2e-qemu",
		BootDir: filepath.Join(dir, "boot"), DHCPMode: "full", DHCPInterface: "br0", DHCPRange: "10.99.0.100-10.99.0.199",
		RouterAdvertisements: true,
		TFTPListen:           qemuBridgeIP + ":69", TFTPRoot: "/usr/lib/ipxe", AutomatedClean: true, WaitTimeout: 4 * time.Minute,
		Log: log,
	})
	t.Logf("conductor %s, files %s, image %d bytes sha256 %x", base, files, len(image), sum)

	type phases struct {
		lines []string
	}
	var pmu sync.Mutex
	report := map[string]*phases{}
	addPhase := func(name, format string, args ...any) {
		pmu.Lock()
		defer pmu.Unlock()
		if report[name] == nil {
			report[name] = &phases{}
		}
		report[name].lines = append(report[name].lines, fmt.Sprintf(format, args...))
	}
	since := func(a, b time.Time, okA, okB bool) string {
		if !okA || !okB {
			return "n/a"
		}
		return fmt.Sprintf("%.1fs", b.Sub(a).Seconds())
	}

	t.Run("machines", func(t *testing.T) {
		for _, m := range machines {
			t.Run(m.name, func(t *testing.T) {
				t.Parallel()
				c := client{t, base}
				node := c.do("POST", "/v1/nodes", map[string]any{
					"name": m.name, "driver": "ipmi", "deploy_interface": "direct",
					"driver_info": map[string]any{
						"ipmi_address": "127.0.0.1", "ipmi_port": m.port, "ipmi_username": "admin",
						"ipmi_password": "password", "ipmi_cipher_suite": "3",
						"deploy_kernel": "ferric-deploy.kernel", "deploy_ramdisk": "ferric-deploy.initramfs",
					},
				}, 201)
				uuid := node["uuid"].(string)
				c.do("POST", "/v1/ports", map[string]any{"address": m.mac, "node_uuid": uuid}, 201)

				t0 := time.Now()
				c.do("PUT", "/v1/nodes/"+m.name+"/states/provision", map[string]any{"target": "manage"}, 202)
				n := c.waitState(m.name, "manageable", time.Minute)
				if got, want := m.bmcPower(t), n["power_state"]; got != want {
					t.Errorf("manageable: BMC says %q, node says %v", got, want)
				}
				addPhase(m.name, "manage: %.1fs", time.Since(t0).Seconds())

				t0 = time.Now()
				c.do("PUT", "/v1/nodes/"+m.name+"/states/provision", map[string]any{"target": "provide"}, 202)
				n = c.waitState(m.name, "available", 4*time.Minute)
				on, okOn := firstPowerOn(m.q, lab.BootPXE, t0)
				lk, okLk := events.first("manager: agent lookup", uuid, t0)
				addPhase(m.name, "provide (cleaning): total %.1fs, power-on→lookup %s", time.Since(t0).Seconds(), since(on, lk, okOn, okLk))
				if got, want := m.bmcPower(t), n["power_state"]; got != want || got != "power off" {
					t.Errorf("available: BMC says %q, node says %v, want both power off", got, want)
				}

				hostname := m.name + "-instance"
				c.do("PATCH", "/v1/nodes/"+m.name, []map[string]any{
					{"op": "add", "path": "/instance_info/image_source", "value": files + "/image.raw"},
					{"op": "add", "path": "/instance_info/image_os_hash_algo", "value": "sha256"},
					{"op": "add", "path": "/instance_info/image_os_hash_value", "value": hex.EncodeToString(sum[:])},
				}, 200)
				t0 = time.Now()
				c.do("PUT", "/v1/nodes/"+m.name+"/states/provision", map[string]any{"target": "active",
					"configdrive": map[string]any{
						"meta_data": map[string]any{"hostname": hostname},
						"user_data": files + "/report/" + m.name + "\n",
					}}, 202)
				n = c.waitState(m.name, "active", 4*time.Minute)
				tActive := time.Now()
				var rep map[string]string
				select {
				case rep = <-m.reports:
				case <-time.After(2 * time.Minute):
					serial, _ := os.ReadFile(m.q.SerialLog())
					if len(serial) > 4000 {
						serial = serial[len(serial)-4000:]
					}
					t.Fatalf("no report from the deployed OS in 2 min after active; serial tail:\n%s", serial)
				}
				if rep["uuid"] != uuid || rep["hostname"] != hostname {
					t.Errorf("report %v, want uuid %s hostname %s", rep, uuid, hostname)
				}
				on, okOn = firstPowerOn(m.q, lab.BootPXE, t0)
				lk, okLk = events.first("manager: agent lookup", uuid, t0)
				wr, okWr := events.first("manager: writing image", uuid, t0)
				wd, okWd := events.first("manager: image written", uuid, t0)
				dk, okDk := firstPowerOn(m.q, lab.BootDisk, t0)
				rt, okRt := reportTimes.Load(m.name)
				rtime, _ := rt.(time.Time)
				addPhase(m.name, "deploy: to active %.1fs; power-on→lookup %s, image write (%d MiB + config drive) %s, reboot→report %s, active→report %s",
					tActive.Sub(t0).Seconds(), since(on, lk, okOn, okLk), qemuImageMiB, since(wr, wd, okWr, okWd),
					since(dk, rtime, okDk, okRt), since(tActive, rtime, true, okRt))

				// The test OS powers itself off after reporting.
				deadline := time.Now().Add(time.Minute)
				for {
					if on, _ := m.q.Running(ctx); !on {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("the deployed OS did not power off within 1 min of its report")
					}
					time.Sleep(200 * time.Millisecond)
				}
				f, err := os.Open(m.q.Config().Disk)
				if err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(image))
				_, err = io.ReadFull(f, got)
				f.Close()
				// The config drive partition adds an entry to the MBR's
				// partition table (bytes 446..509); the rest must be the image.
				if err != nil || !slices.Equal(got[:446], image[:446]) || !slices.Equal(got[510:], image[510:]) {
					t.Errorf("disk of %s does not hold the image after deploy (read err %v)", m.name, err)
				}

				t0 = time.Now()
				c.do("PUT", "/v1/nodes/"+m.name+"/states/provision", map[string]any{"target": "deleted"}, 202)
				n = c.waitState(m.name, "available", 4*time.Minute)
				addPhase(m.name, "undeploy (tear down + cleaning): %.1fs", time.Since(t0).Seconds())
				if got, want := m.bmcPower(t), n["power_state"]; got != want || got != "power off" {
					t.Errorf("after undeploy: BMC says %q, node says %v, want both power off", got, want)
				}
			})
		}
	})

	c := client{t, base}
	nodes := c.do("GET", "/v1/nodes?detail=true", nil, 200)
	list, _ := nodes["nodes"].([]any)
	if len(list) != qemuMachines {
		t.Errorf("%d nodes enrolled, want %d", len(list), qemuMachines)
	}
	for _, x := range list {
		n, _ := x.(map[string]any)
		if n["reservation"] != nil {
			t.Errorf("node %v left locked by %v", n["name"], n["reservation"])
		}
		if !t.Failed() && (n["provision_state"] != "available" || n["last_error"] != nil) {
			t.Errorf("node %v ends %v (last_error %v), want available", n["name"], n["provision_state"], n["last_error"])
		}
	}
	for _, m := range machines {
		if r := report[m.name]; r != nil {
			for _, l := range r.lines {
				t.Logf("phase %s %s", m.name, l)
			}
		}
	}
}
