package e2e

// TestQEMUDeploy: the whole bare-metal path on virtual hardware. Two QEMU
// machines (TCG, SeaBIOS, QEMU's iPXE ROM, virtio NIC on a tap, raw sparse
// disk), each behind its own ipmi_sim BMC, in a network namespace with a
// bridge; the conductor (the ferric-conductor binary, so that a fault can
// SIGKILL it) runs there with full DHCP on the bridge, TFTP, IPv6 RA and the
// deploy ramdisk in its boot dir. The test acts as an operator through the
// API only.
//
// The test process re-runs itself inside the namespace (ip netns exec): the
// parent checks the tools, builds the ramdisk, the test OS image and
// ferric-vbmc (it has the network apt may need), creates the namespace and
// always removes it, with every process started under the work directory
// (QEMU, ipmi_sim), even when the child crashes or times out.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/ferric-metal/ferric/test/artifacts"
	"github.com/ferric-metal/ferric/test/harness"
	"github.com/ferric-metal/ferric/test/lab"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

const (
	qemuEnvChild = "FERRIC_E2E_QEMU_CHILD" // set in the child: the work directory
	// qemuEnvVMedia is set in the child of TestQEMUVirtualMediaDeploy.
	qemuEnvVMedia = "FERRIC_E2E_QEMU_VMEDIA"
	qemuBridgeIP  = "10.99.0.1"
	qemuMachines  = 2
	// qemuUEFIMachine boots with OVMF (UEFI); the others with SeaBIOS.
	qemuUEFIMachine = 1
	// qemuRedfishMachine is driven through the Redfish emulator (driver
	// redfish); the others through ipmi_sim (driver ipmi).
	qemuRedfishMachine = 0
	qemuIPMIPort       = 6230
	// qemuIPMISerialPort + i is where vm<i>'s ipmi_sim offers its in-band
	// system interface (driver ipmi machines): their QEMU has a KCS BMC
	// that is that ipmi_sim, and they boot the deploy ramdisk built on
	// Debian's generic kernel (with the IPMI drivers), whose agent reads
	// the BMC's LAN address in-band for the inventory.
	qemuIPMISerialPort = 6330
	qemuImageMiB       = 64
	// Disks must be at least 4 GiB, the agent's smallest root device
	// without hints; they are sparse.
	qemuDiskMiB = 5 << 10
	// The conductor's power sync period: short, so that the dead BMC fault
	// reaches maintenance (3 failed syncs) in seconds.
	qemuPowerSync = 5 * time.Second
)

// TestQEMUDeploy enrolls two QEMU machines, vm0 with SeaBIOS behind the
// Redfish emulator (driver redfish) and vm1 with UEFI (OVMF) behind ipmi_sim
// (driver ipmi, and an in-band KCS BMC that is the same ipmi_sim, read by
// the agent of a ramdisk on Debian's generic kernel), takes both at the same
// time through manage, in-band inspection (the agent as PID 1 in the
// PXE-booted ramdisk posts its inventory, with the BMC's address for vm1),
// provide at once (automated cleaning by the agent), deploy of
// the test OS uploaded to the conductor's image store (raw for vm0, qcow2
// for vm1; checksums from the store) with a config drive, the test OS's
// report from the deployed disk, a rescue of vm0 with an SSH login into its
// rescue ramdisk and unrescue (qemuRescue), and undeploy; then the faults
// (qemuFaults): wrong checksum (whose ramdisk logs must say why),
// conductor SIGKILL in wait call-back, a BMC that stops answering.
func TestQEMUDeploy(t *testing.T) {
	if dir := os.Getenv(qemuEnvChild); dir != "" {
		qemuDeployChild(t, dir)
		return
	}
	qemuParent(t, "TestQEMUDeploy")
}

// TestQEMUVirtualMediaDeploy is TestQEMUDeploy's path with the ramdisk
// booted from virtual media instead of the network: both machines (vm0
// SeaBIOS, vm1 OVMF) behind the Redfish emulator with a CD drive and
// boot_interface redfish-virtual-media, inspected, cleaned, deployed and
// undeployed; the conductor still runs DHCP (for the agent) but the
// machines never boot from the network. No faults.
func TestQEMUVirtualMediaDeploy(t *testing.T) {
	if dir := os.Getenv(qemuEnvChild); dir != "" {
		qemuDeployChild(t, dir)
		return
	}
	qemuParent(t, "TestQEMUVirtualMediaDeploy", qemuEnvVMedia+"=1")
}

// qemuVMedia reports whether the child runs the virtual media variant.
func qemuVMedia() bool { return os.Getenv(qemuEnvVMedia) != "" }

// qemuParent builds the artifacts, creates the namespace and runs test
// name inside it, with env (the variant's settings) added to its
// environment; the variants (env given) boot only the cloud-kernel ramdisk.
func qemuParent(t *testing.T, name string, env ...string) {
	if testing.Short() {
		t.Skip("skipping: boots QEMU machines (~3-5 min); run without -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (network namespace, taps, DHCP on port 67)")
	}
	var missing []string
	for tool, pkg := range map[string]string{
		"qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils", "ipmi_sim": "openipmi", "ipmitool": "ipmitool", "ip": "iproute2",
		"syslinux": "syslinux", "sfdisk": "fdisk", "mkfs.vfat": "dosfstools", "mcopy": "mtools",
		"dpkg-deb": "dpkg", "depmod": "kmod", "cpio": "cpio", "go": "golang",
	} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, fmt.Sprintf("%s (package %s)", tool, pkg))
		}
	}
	for file, pkg := range map[string]string{
		"/usr/lib/syslinux/mbr/mbr.bin": "syslinux-common", "/usr/lib/ipxe/qemu/efi-virtio.rom": "ipxe-qemu",
		lab.OVMFCode: "ovmf", "/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi": "syslinux-efi",
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
	dir := workDir(t, "ferric-e2e-qemu-", " (serial consoles vm/*.serial, conductor.log)")

	start := time.Now()
	qemuArtifacts(t, root, dir, len(env) == 0)
	t.Logf("phase build (ramdisk, test OS image, ferric-vbmc, ferric-conductor): %.1fs", time.Since(start).Seconds())

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

	// The child must end (and the cleanups above run) before go test's own
	// -timeout panics this process. Two machines through inspection, deploy,
	// rescue and four faults take 6-9 minutes under TCG on a loaded 2-core
	// machine; 9.5 minutes ran out at a load average of 15 (stress-ng --cpu 2
	// beside the suite and other builds), in the undeploy of the last fault.
	budget := 15 * time.Minute
	if d, ok := t.Deadline(); ok && time.Until(d)-30*time.Second < budget {
		budget = time.Until(d) - 30*time.Second
	}
	if budget < 2*time.Minute {
		t.Fatalf("only %s left before the test timeout; run with -timeout 15m", budget)
	}
	cctx, cancel := context.WithTimeout(ctx, budget+10*time.Second)
	defer cancel()
	child := exec.CommandContext(cctx, "ip", "netns", "exec", ns, os.Args[0],
		"-test.run=^"+name+"$", "-test.v", "-test.count=1", "-test.timeout="+budget.Round(time.Second).String())
	child.Env = append(os.Environ(), qemuEnvChild+"="+dir)
	child.Env = append(child.Env, env...)
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

// qemuArtifacts puts into dir: boot/ferric-deploy.{kernel,initramfs}
// (from $FERRIC_RAMDISK_DIR when set), boot/ferric-deploy-generic.* (the
// same on Debian's generic kernel, when generic), testos.raw, testos.qcow2,
// ferric-vbmc and ferric-conductor. They are built once per run
// (test/artifacts' cache, shared by the suite's test binaries) and linked
// in: the tests only read them (machines write to their own disks).
func qemuArtifacts(t *testing.T, root, dir string, generic bool) {
	t.Helper()
	_ = root // the artifacts package finds the repository itself
	link := func(src, dst string, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if err := artifacts.Link(src, filepath.Join(dir, dst)); err != nil {
			t.Fatal(err)
		}
	}
	// Two deploy ramdisks: on Debian's cloud kernel (make ramdisk) and on
	// its generic kernel, which has the IPMI drivers for the machines with
	// an in-band BMC (ferric-deploy-generic.*).
	rd, err := artifacts.DeployRamdisk(artifacts.CloudKernel)
	link(rd.Kernel, "boot/ferric-deploy.kernel", err)
	link(rd.Initramfs, "boot/ferric-deploy.initramfs", err)
	if generic {
		rd, err := artifacts.DeployRamdisk(artifacts.GenericKernel)
		link(rd.Kernel, "boot/ferric-deploy-generic.kernel", err)
		link(rd.Initramfs, "boot/ferric-deploy-generic.initramfs", err)
	}
	for _, pkg := range []string{"./test/cmd/ferric-vbmc", "./conductor/cmd/ferric-conductor"} {
		bin, err := artifacts.GoBinary(pkg)
		link(bin, filepath.Base(pkg), err)
	}
	raw, err := artifacts.TestOS(qemuImageMiB)
	link(raw, "testos.raw", err)
	qcow, err := artifacts.TestOSQcow2(qemuImageMiB)
	link(qcow, "testos.qcow2", err)
}

// ---- inside the namespace ----

// qemuEvents records the conductor's log records (time, message, node)
// parsed from its text log.
type qemuEvents struct {
	mu sync.Mutex
	ev []qemuEvent
}

type qemuEvent struct {
	at        time.Time
	msg, node string
}

var (
	logTime = regexp.MustCompile(`^time=(\S+) `)
	logMsg  = regexp.MustCompile(` msg=("(?:[^"\\]|\\.)*"|\S+)`)
	logNode = regexp.MustCompile(` node=(\S+)`)
)

func (e *qemuEvents) parse(line string) {
	tm, msg := logTime.FindStringSubmatch(line), logMsg.FindStringSubmatch(line)
	if tm == nil || msg == nil {
		return
	}
	at, err := time.Parse(time.RFC3339Nano, tm[1])
	if err != nil {
		return
	}
	ev := qemuEvent{at: at, msg: msg[1]}
	if u, err := strconv.Unquote(msg[1]); err == nil {
		ev.msg = u
	}
	if n := logNode.FindStringSubmatch(line); n != nil {
		ev.node = n[1]
	}
	e.mu.Lock()
	e.ev = append(e.ev, ev)
	e.mu.Unlock()
}

// qemuConductor runs ferric-conductor (the binary, so that it can be
// killed) with full DHCP on br0 (none with noDHCP); its log goes to
// conductor.log and events.
type qemuConductor struct {
	t              *testing.T
	bin, dir, addr string
	noDHCP         bool
	extra          []string // more flags (a variant's settings)
	events         *qemuEvents
	proc           *harness.Process
}

func (c *qemuConductor) start() {
	t := c.t
	t.Helper()
	logf, err := os.OpenFile(filepath.Join(c.dir, "conductor.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	netArgs := []string{"--dhcp-mode", "full", "--dhcp-interface", "br0", "--dhcp-range", "10.99.0.100-10.99.0.199",
		"--dhcp-router-advertisements", "--tftp-listen", qemuBridgeIP + ":69", "--tftp-root", "/usr/lib/ipxe"}
	if c.noDHCP {
		netArgs = []string{"--dhcp-mode", "none"}
	}
	cmd := exec.Command(c.bin, append(append([]string{"--api-listen", c.addr, "--public-url", "http://" + c.addr,
		"--state-dir", filepath.Join(c.dir, "state"), "--hostname", "e2e-qemu", "--boot-dir", filepath.Join(c.dir, "boot")}, netArgs...),
		"--wait-timeout", "4m", "--inspector-listen", "", "--log-level", "debug",
		"--power-sync-interval", qemuPowerSync.String(), "--console-port-range", qemuConsolePorts)...)
	cmd.Args = append(cmd.Args, c.extra...)
	// Its stdout is logf itself (O_APPEND); its log lines are appended by
	// the one goroutine that reads them.
	cmd.Stdout = logf
	p, err := harness.StartBinary(cmd, func(line string) {
		fmt.Fprintln(logf, line)
		c.events.parse(line)
	})
	if err != nil {
		logf.Close()
		t.Fatalf("%v; see %s", err, filepath.Join(c.dir, "conductor.log"))
	}
	go func() { <-p.Done(); logf.Close() }()
	c.proc = p
}

// stop ends the conductor with sig and waits for it.
func (c *qemuConductor) stop(sig syscall.Signal) {
	if c.proc == nil {
		return
	}
	_ = c.proc.Stop(sig, 15*time.Second)
	c.proc = nil
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
	firmware  string // bios or uefi
	driver    string // ipmi or redfish
	format    string // disk_format of the image deployed from the image store
	redfish   string // the Redfish emulator's URL (driver redfish)
	uuid      string
	port      int
	q         *lab.QEMU
	reports   chan map[string]string
	sim       *lab.IPMISim // nil while stopped (BMC fault)
	simCfg    lab.IPMISimConfig
	// bmcIP and bmcMAC are the LAN settings of the machine's in-band BMC
	// (driver ipmi), which inspection must report.
	bmcIP, bmcMAC string
}

// bmcPower asks the machine's BMC with ipmitool or its Redfish API, as an
// operator would.
func (m *qemuMachine) bmcPower(t *testing.T) string {
	t.Helper()
	if m.driver == "redfish" {
		req, _ := http.NewRequest("GET", m.redfish+"/redfish/v1/Systems/"+m.name, nil)
		req.SetBasicAuth("admin", "password")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("redfish power state %s: %v", m.name, err)
		}
		defer resp.Body.Close()
		var sys struct{ PowerState string }
		if err := json.NewDecoder(resp.Body).Decode(&sys); err != nil || resp.StatusCode != 200 {
			t.Fatalf("redfish power state %s: %s %v", m.name, resp.Status, err)
		}
		return "power " + strings.ToLower(sys.PowerState)
	}
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
			port: qemuIPMIPort + i, reports: make(chan map[string]string, 4), firmware: "bios", driver: "ipmi", format: "raw"}
		if i == qemuUEFIMachine {
			m.firmware, m.format = "uefi", "qcow2"
		}
		if i == qemuRedfishMachine || qemuVMedia() {
			m.driver = "redfish"
		}
		mc := lab.MachineConfig{Name: m.name, Dir: vmDir, MAC: m.mac, Net: fmt.Sprintf("tap:tap%d", i),
			DiskSizeMiB: qemuDiskMiB, Firmware: m.firmware, CDROM: qemuVMedia()}
		if m.driver == "ipmi" {
			mc.BMCSerial = fmt.Sprintf("127.0.0.1:%d", qemuIPMISerialPort+i)
			mc.SOLListen = fmt.Sprintf("127.0.0.1:%d", qemuSOLPort+i)
			m.bmcIP, m.bmcMAC = fmt.Sprintf("192.0.2.%d", 40+i), fmt.Sprintf("52:54:00:b3:c0:%02x", i+1)
		}
		m.q = newLabQEMU(t, mc)
		machines = append(machines, m)
		if m.driver != "ipmi" {
			continue
		}
		m.simCfg = lab.IPMISimConfig{Name: m.name, Dir: vmDir, Port: m.port, SerialPort: qemuIPMISerialPort + i,
			Username: "admin", Password: "password", ChassisControl: []string{vbmc, "chassis", vmDir, m.name},
			SOL: fmt.Sprintf("tcp:127.0.0.1:%d", qemuSOLPort+i)}
		m.sim, err = lab.StartIPMISim(ctx, m.simCfg)
		if err != nil {
			t.Fatal(err)
		}
		// The BMC's own LAN settings, as a datacenter sets them.
		if err := m.sim.SetLAN(ctx, m.bmcIP, m.bmcMAC); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if m.sim != nil {
				_ = m.sim.Stop()
			}
		})
	}
	// The Redfish BMC of the redfish machines, on the namespace's loopback.
	rfMachines := map[string]redfish.Machine{}
	for _, m := range machines {
		if m.driver == "redfish" {
			rfMachines[m.name] = m.q
		}
	}
	mediaDir := ""
	if qemuVMedia() {
		mediaDir = filepath.Join(dir, "bmc-media")
		if err := os.MkdirAll(mediaDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bmc := serveRedfish(t, rfMachines, mediaDir)
	for _, m := range machines {
		m.redfish = bmc
	}

	// The image and report server, on the bridge like the conductor.
	var reportTimes sync.Map // name -> time.Time
	var reportMu sync.Mutex
	reportFrom := map[string]string{} // name -> the report's source address
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
				reportMu.Lock()
				reportFrom[m.name] = remoteIP(r.RemoteAddr)
				reportMu.Unlock()
				select {
				case m.reports <- rep:
				default:
				}
			}
		}
	})
	files := serveOnBridge(t, mux)

	// The API port stays the same across restarts: the agents keep it.
	events := &qemuEvents{}
	cond := &qemuConductor{events: events, noDHCP: qemuNoDHCP()}
	base := startQEMUConductor(t, dir, qemuBridgeIP, cond)
	var dhcpProbe *qemuDHCPProbe
	if qemuNoDHCP() {
		dhcpProbe = probeDHCP(t)
	}
	t.Logf("conductor %s, files %s, image %d bytes sha256 %x", base, files, len(image), sum)

	// The test OS goes into the conductor's image store through its Glance
	// API, as raw and as qcow2; the machines deploy it by image id, the
	// checksum coming from the store.
	imageIDs := map[string]string{}
	for format, file := range map[string]string{"raw": "testos.raw", "qcow2": "testos.qcow2"} {
		imageIDs[format] = qemuUpload(t, base, "testos-"+format, format, filepath.Join(dir, file))
	}

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

	isoWatch := watchISOs(filepath.Join(dir, "state", "vmedia"))
	var invMu sync.Mutex
	inventoryIPs := map[string][]string{} // name -> the inspected interfaces' IPv4 addresses
	t.Run("machines", func(t *testing.T) {
		for i, m := range machines {
			t.Run(m.name, func(t *testing.T) {
				t.Parallel()
				c := client{t, base}
				info := map[string]any{
					"ipmi_address": "127.0.0.1", "ipmi_port": m.port, "ipmi_username": "admin",
					"ipmi_password": "password", "ipmi_cipher_suite": "3",
				}
				if m.driver == "redfish" {
					info = redfishDriverInfo(m.redfish, m.name)
				}
				info["deploy_kernel"], info["deploy_ramdisk"] = "ferric-deploy.kernel", "ferric-deploy.initramfs"
				if m.bmcIP != "" {
					info["deploy_kernel"], info["deploy_ramdisk"] = "ferric-deploy-generic.kernel", "ferric-deploy-generic.initramfs"
				}
				// The operator's calls go through gophercloud, as metal3 and
				// other Ironic clients make them; checks read the API raw.
				bm := qemuBaremetal(t, base)
				// The ramdisk boots from the network, or, in the virtual
				// media variant, from the CD.
				ramdiskBoot, bootIface := lab.BootPXE, ""
				if qemuVMedia() {
					ramdiskBoot, bootIface = lab.BootCDROM, "redfish-virtual-media"
				}
				// Without DHCP: the node's static address, which the
				// conductor puts on its virtual media and the config drive
				// carries to the deployed OS.
				var netData map[string]any
				if qemuNoDHCP() {
					netData = qemuNetworkData(m, qemuStaticIP(i))
				}
				consoleIface := ""
				if m.driver == "ipmi" {
					consoleIface = "ipmitool-socat"
				}
				rescueIface := ""
				if i == qemuRescueMachine && !qemuVMedia() && !qemuNoDHCP() {
					rescueIface = "agent"
					info["rescue_kernel"], info["rescue_ramdisk"] = info["deploy_kernel"], info["deploy_ramdisk"]
				}
				node, err := nodes.Create(ctx, bm, nodes.CreateOpts{Name: m.name, Driver: m.driver, BootInterface: bootIface,
					DeployInterface: "direct", InspectInterface: "agent", RescueInterface: rescueIface, DriverInfo: info, NetworkData: netData,
					ConsoleInterface: consoleIface}).Extract()
				if err != nil {
					t.Fatalf("create node %s: %v", m.name, err)
				}
				uuid := node.UUID
				m.uuid = uuid
				if _, err := ports.Create(ctx, bm, ports.CreateOpts{NodeUUID: uuid, Address: m.mac}).Extract(); err != nil {
					t.Fatalf("create port %s: %v", m.mac, err)
				}
				provision := func(opts nodes.ProvisionStateOpts) {
					t.Helper()
					if err := nodes.ChangeProvisionState(ctx, bm, m.name, opts).ExtractErr(); err != nil {
						t.Fatalf("%s: provision %s: %v", m.name, opts.Target, err)
					}
				}

				// The serial console, attached before the machine first
				// boots (qemu_console_test.go).
				var console *consoleCapture
				if consoleIface != "" {
					console = qemuEnableConsole(t, c, m.name)
				}

				t0 := time.Now()
				provision(nodes.ProvisionStateOpts{Target: nodes.TargetManage})
				n := c.waitState(m.name, "manageable", time.Minute)
				if got, want := m.bmcPower(t), n["power_state"]; got != want {
					t.Errorf("manageable: BMC says %q, node says %v", got, want)
				}
				addPhase(m.name, "manage: %.1fs", time.Since(t0).Seconds())

				t0 = time.Now()
				provision(nodes.ProvisionStateOpts{Target: nodes.TargetInspect})
				n = c.waitState(m.name, "manageable", 4*time.Minute)
				tInspected := time.Now()
				on, okOn := firstPowerOn(m.q, ramdiskBoot, t0)
				qemuInspected(t, c, m, n)
				ips := qemuInventoryIPs(c, m.name)
				invMu.Lock()
				inventoryIPs[m.name] = ips
				invMu.Unlock()
				if console != nil {
					banner, cmdline, lines := console.waitKernel(t, 0, time.Minute)
					t.Logf("%s: the console showed the inspection ramdisk's kernel (%d kernel lines): %s; %s", m.name, lines, strings.TrimSpace(banner), strings.TrimSpace(cmdline))
				}
				ins, okIns := events.first("inspector: processed inspection data", uuid, t0)
				addPhase(m.name, "inspect: to manageable (powered off) %.1fs; power-on→inventory processed %s",
					tInspected.Sub(t0).Seconds(), since(on, ins, okOn, okIns))

				t0 = time.Now()
				provision(nodes.ProvisionStateOpts{Target: nodes.TargetProvide})
				n = c.waitState(m.name, "available", 4*time.Minute)
				on, okOn = firstPowerOn(m.q, ramdiskBoot, t0)
				lk, okLk := events.first("manager: agent lookup", uuid, t0)
				addPhase(m.name, "provide (cleaning): total %.1fs, power-on→lookup %s", time.Since(t0).Seconds(), since(on, lk, okOn, okLk))
				if got, want := m.bmcPower(t), n["power_state"]; got != want || got != "power off" {
					t.Errorf("available: BMC says %q, node says %v, want both power off", got, want)
				}

				hostname := m.name + "-instance"
				if _, err := nodes.Update(ctx, bm, m.name, nodes.UpdateOpts{nodes.UpdateOperation{
					Op: nodes.AddOp, Path: "/instance_info/image_source", Value: imageIDs[m.format]}}).Extract(); err != nil {
					t.Fatalf("%s: set image_source: %v", m.name, err)
				}
				consoleAtDeploy := 0
				if console != nil {
					_, consoleAtDeploy = console.text(0)
				}
				t0 = time.Now()
				provision(nodes.ProvisionStateOpts{Target: nodes.TargetActive, ConfigDrive: nodes.ConfigDrive{
					MetaData:    map[string]any{"hostname": hostname},
					UserData:    files + "/report/" + m.name + "\n",
					NetworkData: netData,
				}})
				c.waitState(m.name, "active", 4*time.Minute)
				tActive := time.Now()
				var rep map[string]string
				select {
				case rep = <-m.reports:
				case <-time.After(2 * time.Minute):
					serial, _ := os.ReadFile(m.q.SerialLog())
					t.Fatalf("no report from the deployed OS in 2 min after active; serial tail:\n%s", tail(serial, 4000))
				}
				if rep["uuid"] != uuid || rep["hostname"] != hostname {
					t.Errorf("report %v, want uuid %s hostname %s", rep, uuid, hostname)
				}
				on, okOn = firstPowerOn(m.q, ramdiskBoot, t0)
				lk, okLk = events.first("manager: agent lookup", uuid, t0)
				wr, okWr := events.first("manager: writing image", uuid, t0)
				wd, okWd := events.first("manager: image written", uuid, t0)
				dk, okDk := firstPowerOn(m.q, lab.BootDisk, t0)
				rt, okRt := reportTimes.Load(m.name)
				rtime, _ := rt.(time.Time)
				addPhase(m.name, "deploy: to active %.1fs; power-on→lookup %s, image write (%d MiB %s from the image store + config drive) %s, reboot→report %s, active→report %s",
					tActive.Sub(t0).Seconds(), since(on, lk, okOn, okLk), qemuImageMiB, m.format, since(wr, wd, okWr, okWd),
					since(dk, rtime, okDk, okRt), since(tActive, rtime, true, okRt))

				if console != nil {
					// The deploy's own ramdisk boot (none with fast-track)
					// is counted, not required; then the console closes.
					s, _ := console.text(consoleAtDeploy)
					t.Logf("%s: console during deploy: %d bytes, %d kernel banners, %d connections in all", m.name, len(s),
						strings.Count(s, "Linux version"), console.connections())
					qemuDisableConsole(t, c, m.name, console)
				}
				// The conductor asked the BMC for an EFI boot exactly when
				// inspection found UEFI firmware.
				wantEFI := fmt.Sprint("uefi=", m.firmware == "uefi")
				condLog, _ := os.ReadFile(filepath.Join(dir, "conductor.log"))
				sets := 0
				for _, l := range strings.Split(string(condLog), "\n") {
					if strings.Contains(l, `msg="bmc: boot device set"`) && strings.Contains(l, "node="+uuid) && strings.Contains(l, "device=disk") {
						sets++
						if !strings.Contains(l, wantEFI) {
							t.Errorf("%s: boot device set without %s: %s", m.name, wantEFI, l)
						}
					}
				}
				if sets == 0 {
					t.Errorf("%s: no \"bmc: boot device set\" to disk in the conductor log", m.name)
				}
				// UEFI: the agent registered the image's loader with the
				// firmware (install_bootloader); OVMF keeps its variables
				// in the machine's pflash file.
				if m.firmware == "uefi" {
					nv, err := os.ReadFile(filepath.Join(dir, "vm", m.name+".vars"))
					if err != nil {
						t.Fatal(err)
					}
					for _, want := range []string{"ferric", `\EFI\BOOT\BOOTX64.EFI`} {
						if !bytes.Contains(nv, utf16le(want)) {
							t.Errorf("%s: the firmware's variable store has no boot entry with %q", m.name, want)
						}
					}
					serial, _ := os.ReadFile(m.q.SerialLog())
					if i := bytes.Index(serial, []byte(`msg="install_bootloader: UEFI boot entry written"`)); i < 0 {
						t.Errorf("%s: the agent did not say it wrote a UEFI boot entry", m.name)
					} else {
						t.Logf("%s console: %s", m.name, bytes.SplitN(serial[i:], []byte("\n"), 2)[0])
					}
				}

				waitPoweredOff(t, m)
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

				if i == qemuRescueMachine && !qemuVMedia() && !qemuNoDHCP() {
					qemuRescue(t, c, bm, m, addPhase)
				}

				t0 = time.Now()
				provision(nodes.ProvisionStateOpts{Target: nodes.TargetDeleted})
				n = c.waitState(m.name, "available", 4*time.Minute)
				addPhase(m.name, "undeploy (tear down + cleaning): %.1fs", time.Since(t0).Seconds())
				if got, want := m.bmcPower(t), n["power_state"]; got != want || got != "power off" {
					t.Errorf("after undeploy: BMC says %q, node says %v, want both power off", got, want)
				}
			})
		}
	})

	isos := isoWatch.Stop()
	switch {
	case qemuNoDHCP():
		reportMu.Lock()
		invMu.Lock()
		qemuNoDHCPChecks(t, dir, machines, isos, reportFrom, inventoryIPs, addPhase)
		invMu.Unlock()
		reportMu.Unlock()
		// Nothing asked for an address: the agent and the deployed OS
		// took theirs from network_data, no firmware tried PXE.
		if n := dhcpProbe.Stop(); n != 0 {
			t.Errorf("%d DHCP requests on the network, want none", n)
		}
	case qemuVMedia():
		qemuVMediaChecks(t, dir, machines, addPhase)
	case !t.Failed():
		t.Run("faults", func(t *testing.T) { qemuFaults(t, base, files, cond, machines, image, addPhase) })
	}

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
				t.Logf("phase %s (%s, %s) %s", m.name, m.firmware, m.driver, l)
			}
		}
	}
}

// qemuUpload creates an image in the conductor's image store and uploads
// path as its data with gophercloud's Glance v2 client (create the record,
// upload the file), returning its id once the store calls it active with
// its checksums.
func qemuUpload(t *testing.T, base, name, format, path string) string {
	t.Helper()
	ctx := context.Background()
	ic := &gophercloud.ServiceClient{ProviderClient: &gophercloud.ProviderClient{},
		Endpoint: base + "/images/", ResourceBase: base + "/images/v2/"}
	visibility := images.ImageVisibilityPublic
	img, err := images.Create(ctx, ic, images.CreateOpts{Name: name, DiskFormat: format, ContainerFormat: "bare",
		Visibility: &visibility}).Extract()
	if err != nil {
		t.Fatalf("create image %s: %v", name, err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := imagedata.Upload(ctx, ic, img.ID, f).ExtractErr(); err != nil {
		t.Fatalf("upload %s: %v", name, err)
	}
	img, err = images.Get(ctx, ic, img.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if img.Status != images.ImageStatusActive || img.Checksum == "" {
		t.Fatalf("image %s after upload: status %v, checksum %q", name, img.Status, img.Checksum)
	}
	return img.ID
}

// qemuBaremetal is a gophercloud bare metal client for the conductor
// (noauth, API 1.78).
func qemuBaremetal(t *testing.T, base string) *gophercloud.ServiceClient {
	t.Helper()
	c, err := noauth.NewBareMetalNoAuth(noauth.EndpointOpts{IronicEndpoint: base + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	c.Microversion = "1.78"
	return c
}

// qemuInspected checks a node just back in manageable from in-band
// inspection: the scheduling properties of the QEMU machine (1 CPU, 256
// MiB, the disk less 1 GiB, x86_64), the stored inventory with the
// machine's MAC, and the machine already powered off, as its BMC tells.
func qemuInspected(t *testing.T, c client, m *qemuMachine, n map[string]any) {
	t.Helper()
	if n["last_error"] != nil {
		t.Errorf("inspected %s with last_error %v", m.name, n["last_error"])
	}
	props, _ := n["properties"].(map[string]any)
	num := func(k string) float64 {
		switch v := props[k].(type) {
		case float64:
			return v
		case string:
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
		return -1
	}
	if got := num("cpus"); got != 1 {
		t.Errorf("inspected %s: properties.cpus %v, want 1 (properties %v)", m.name, props["cpus"], props)
	}
	// The guest sees its RAM less what firmware keeps; Ironic's agent rounds
	// the physical size up.
	if got := num("memory_mb"); got < lab.DefaultMemMiB-32 || got > lab.DefaultMemMiB {
		t.Errorf("inspected %s: properties.memory_mb %v, want about %d (properties %v)", m.name, props["memory_mb"], lab.DefaultMemMiB, props)
	}
	if got, want := num("local_gb"), float64(qemuDiskMiB>>10-1); got != want {
		t.Errorf("inspected %s: properties.local_gb %v, want %v (a %d MiB disk less 1 GiB; properties %v)", m.name, props["local_gb"], want, qemuDiskMiB, props)
	}
	if props["cpu_arch"] != "x86_64" {
		t.Errorf("inspected %s: properties.cpu_arch %v, want x86_64", m.name, props["cpu_arch"])
	}
	inv := c.doVersion("1.81", "GET", "/v1/nodes/"+m.name+"/inventory", nil, 200)
	var macs []string
	if x, ok := inv["inventory"].(map[string]any); ok {
		ifs, _ := x["interfaces"].([]any)
		for _, i := range ifs {
			if i, ok := i.(map[string]any); ok {
				macs = append(macs, fmt.Sprint(i["mac_address"]))
			}
		}
	}
	if !slices.Contains(macs, m.mac) {
		t.Errorf("inventory of %s: interfaces with MACs %v, want %s among them", m.name, macs, m.mac)
	}
	// The agent reads the boot mode from /sys/firmware/efi; inspection
	// turns it into the boot_mode capability, which makes the conductor
	// ask the BMC for EFI boot from then on.
	var mode any
	if x, ok := inv["inventory"].(map[string]any); ok {
		if b, ok := x["boot"].(map[string]any); ok {
			mode = b["current_boot_mode"]
		}
	}
	if mode != m.firmware {
		t.Errorf("inventory of %s: boot.current_boot_mode %v, want %s", m.name, mode, m.firmware)
	}
	// The BMC's address, read in-band through /dev/ipmi0 by the agent on
	// the generic kernel; null on the cloud kernel, which has no IPMI
	// drivers.
	var bmcAddr, bmcMAC any
	if x, ok := inv["inventory"].(map[string]any); ok {
		bmcAddr, bmcMAC = x["bmc_address"], x["bmc_mac"]
	}
	switch {
	case m.bmcIP != "" && (bmcAddr != m.bmcIP || bmcMAC != m.bmcMAC):
		t.Errorf("inventory of %s: bmc_address %v, bmc_mac %v; want %s, %s (the in-band BMC's LAN settings)", m.name, bmcAddr, bmcMAC, m.bmcIP, m.bmcMAC)
	case m.bmcIP == "" && bmcAddr != nil:
		t.Errorf("inventory of %s: bmc_address %v, want null (no in-band BMC)", m.name, bmcAddr)
	}
	if caps := fmt.Sprint(props["capabilities"]); !strings.Contains(caps, "boot_mode:"+m.firmware) {
		t.Errorf("inspected %s: properties.capabilities %q, want boot_mode:%s", m.name, caps, m.firmware)
	}
	t.Logf("inspected %s: properties %v, inventory interfaces %v, bmc_address %v, bmc_mac %v", m.name, props, macs, bmcAddr, bmcMAC)
	// What the agent said about its inspection on the console (PID 1).
	serial, _ := os.ReadFile(m.q.SerialLog())
	for _, l := range strings.Split(string(serial), "\n") {
		if strings.HasPrefix(l, "time=") && (strings.Contains(l, "inspection") || strings.Contains(l, "level=ERROR") || strings.Contains(l, "level=WARN")) {
			t.Logf("%s console: %s", m.name, strings.TrimSpace(l))
		}
	}
	// The conductor powers the machine off, under the node's lock, before
	// the node is manageable (as Ironic): provide may follow at once.
	if n["power_state"] != "power off" {
		t.Errorf("inspected %s manageable with power_state %v, want power off", m.name, n["power_state"])
	}
	if got := m.bmcPower(t); got != "power off" {
		t.Errorf("inspected %s: BMC says %q, node says power off", m.name, got)
	}
}

// waitSettled polls a node until it is in a stable or failed state and
// unlocked, and returns it; anything else after timeout is a stuck node.
func (c client) waitSettled(node string, timeout time.Duration) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var n map[string]any
	for time.Now().Before(deadline) {
		n = c.do("GET", "/v1/nodes/"+node, nil, 200)
		// A failed state keeps its target (Ironic's deploy failed shows
		// target active).
		st, _ := n["provision_state"].(string)
		if n["reservation"] == nil && (n["target_provision_state"] == nil || strings.HasSuffix(st, "failed")) {
			return n
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatalf("node %s stuck: state %v target %v reservation %v last_error %v after %s", node,
		n["provision_state"], n["target_provision_state"], n["reservation"], n["last_error"], timeout)
	return nil
}

// qemuDeadBMC: the BMC (ipmi_sim) of an available machine stops answering
// while the machine (QEMU) stays. A deploy and a power change must end in
// bounded time with a last_error naming the BMC; the power sync must move
// the node to maintenance with fault "power failure" after 3 failed syncs,
// and out of it at the first sync after the BMC is back; an undeploy then
// returns the node to available.
func qemuDeadBMC(t *testing.T, c client, files string, m *qemuMachine, addPhase func(name, format string, args ...any)) {
	t.Helper()
	bmc := fmt.Sprintf("127.0.0.1:%d", m.port)
	if err := m.sim.Stop(); err != nil {
		t.Fatal(err)
	}
	m.sim = nil
	tKill := time.Now()

	// A deploy: it needs the BMC to boot the ramdisk.
	c.do("PATCH", "/v1/nodes/"+m.name, []map[string]any{
		{"op": "add", "path": "/instance_info/image_source", "value": files + "/image.raw"},
		{"op": "add", "path": "/instance_info/image_os_hash_algo", "value": "sha256"},
		{"op": "add", "path": "/instance_info/image_os_hash_value", "value": strings.Repeat("0", 64)},
	}, 200)
	t0 := time.Now()
	c.do("PUT", "/v1/nodes/"+m.name+"/states/provision", map[string]any{"target": "active"}, 202)
	n := c.waitSettled(m.name, 2*time.Minute)
	tDeploy := time.Since(t0)
	if e := fmt.Sprint(n["last_error"]); n["provision_state"] != "deploy failed" || !strings.Contains(e, bmc) {
		t.Errorf("deploy with a dead BMC: %v with last_error %v, want deploy failed naming the BMC %s", n["provision_state"], n["last_error"], bmc)
	}
	t.Logf("dead BMC: deploy failed after %.1fs: %v", tDeploy.Seconds(), n["last_error"])

	// A power change: the API accepts it, the task fails on its own.
	t0 = time.Now()
	c.do("PUT", "/v1/nodes/"+m.name+"/states/power", map[string]any{"target": "power on"}, 202)
	n = qemuWaitNode(t, c, m.name, "the power change to end", 2*time.Minute, func(n map[string]any) bool {
		return n["target_power_state"] == nil && n["reservation"] == nil
	})
	tPower := time.Since(t0)
	if e := fmt.Sprint(n["last_error"]); n["last_error"] == nil || !strings.Contains(e, bmc) {
		t.Errorf("power change with a dead BMC: last_error %v, want an error naming the BMC %s", n["last_error"], bmc)
	}
	t.Logf("dead BMC: power change failed after %.1fs: %v", tPower.Seconds(), n["last_error"])

	// The power sync gives up on the BMC after 3 failures in a row.
	n = qemuWaitNode(t, c, m.name, "in maintenance (power failure)", 3*time.Minute, func(n map[string]any) bool {
		return n["maintenance"] == true
	})
	tMaint := time.Since(tKill)
	if n["fault"] != "power failure" || n["power_state"] != nil || !strings.Contains(fmt.Sprint(n["maintenance_reason"]), bmc) {
		t.Errorf("dead BMC: maintenance with fault %v, power_state %v, reason %v; want fault power failure, power_state null, the reason naming %s",
			n["fault"], n["power_state"], n["maintenance_reason"], bmc)
	}
	t.Logf("dead BMC: maintenance %.1fs after the kill: %v", tMaint.Seconds(), n["maintenance_reason"])

	// The BMC comes back: the next sync takes the node out of maintenance.
	sim, err := lab.StartIPMISim(context.Background(), m.simCfg)
	if err != nil {
		t.Fatal(err)
	}
	m.sim = sim
	t0 = time.Now()
	n = qemuWaitNode(t, c, m.name, "out of maintenance", time.Minute, func(n map[string]any) bool {
		return n["maintenance"] == false
	})
	tBack := time.Since(t0)
	if n["fault"] != nil || n["maintenance_reason"] != nil || n["power_state"] != m.bmcPower(t) {
		t.Errorf("BMC back: fault %v, maintenance_reason %v, power_state %v (BMC says %s)", n["fault"], n["maintenance_reason"], n["power_state"], m.bmcPower(t))
	}

	t0 = time.Now()
	c.do("PUT", "/v1/nodes/"+m.name+"/states/provision", map[string]any{"target": "deleted"}, 202)
	c.waitState(m.name, "available", 4*time.Minute)
	tUndeploy := time.Since(t0)
	addPhase(m.name, "fault dead BMC: deploy failed %.1fs, power change failed %.1fs, maintenance %.1fs after the kill (sync every %s); BMC back→out of maintenance %.1fs; undeploy %.1fs",
		tDeploy.Seconds(), tPower.Seconds(), tMaint.Seconds(), qemuPowerSync, tBack.Seconds(), tUndeploy.Seconds())
}

// qemuWaitNode polls a node until done holds and returns it.
func qemuWaitNode(t *testing.T, c client, node, what string, timeout time.Duration, done func(n map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := c.do("GET", "/v1/nodes/"+node, nil, 200)
		if done(n) {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s not %s after %s: state %v target %v power %v target power %v reservation %v maintenance %v last_error %v",
				node, what, timeout, n["provision_state"], n["target_provision_state"], n["power_state"], n["target_power_state"],
				n["reservation"], n["maintenance"], n["last_error"])
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// qemuFaults: a deploy with a wrong checksum fails cleanly (vm1); the
// conductor is SIGKILLed while a node waits for its agent (vm0) and
// restarted, and the node must end deployed or failed, not stuck; vm1's
// BMC dies and comes back (qemuDeadBMC). Both machines end available again.
func qemuFaults(t *testing.T, base, files string, cond *qemuConductor, machines []*qemuMachine, image []byte,
	addPhase func(name, format string, args ...any)) {
	sum := sha256.Sum256(image)
	c := client{t, base}

	// Wrong checksum.
	m := machines[1]
	t0 := time.Now()
	c.do("PATCH", "/v1/nodes/"+m.name, []map[string]any{
		{"op": "add", "path": "/instance_info/image_source", "value": files + "/image.raw"},
		{"op": "add", "path": "/instance_info/image_os_hash_algo", "value": "sha256"},
		{"op": "add", "path": "/instance_info/image_os_hash_value", "value": strings.Repeat("0", 64)},
	}, 200)
	c.do("PUT", "/v1/nodes/"+m.name+"/states/provision", map[string]any{"target": "active"}, 202)
	n := c.waitSettled(m.name, 3*time.Minute)
	if n["provision_state"] != "deploy failed" || !strings.Contains(fmt.Sprint(n["last_error"]), "checksum") {
		t.Fatalf("wrong checksum: %s ends %v with last_error %v, want deploy failed naming the checksum",
			m.name, n["provision_state"], n["last_error"])
	}
	t.Logf("wrong checksum: %s deploy failed after %.1fs: %v", m.name, time.Since(t0).Seconds(), n["last_error"])
	checkDeployLogs(t, c, m.name, "checksum mismatch") // the failed deploy left the ramdisk's logs
	addPhase(m.name, "fault wrong checksum → deploy failed: %.1fs", time.Since(t0).Seconds())
	c.do("PUT", "/v1/nodes/"+m.name+"/states/provision", map[string]any{"target": "deleted"}, 202)
	c.waitState(m.name, "available", 4*time.Minute)

	// Conductor killed while the node waits for its agent.
	m = machines[0]
	c.do("PATCH", "/v1/nodes/"+m.name, []map[string]any{
		{"op": "add", "path": "/instance_info/image_source", "value": files + "/image.raw"},
		{"op": "add", "path": "/instance_info/image_os_hash_algo", "value": "sha256"},
		{"op": "add", "path": "/instance_info/image_os_hash_value", "value": hex.EncodeToString(sum[:])},
	}, 200)
	t0 = time.Now()
	c.do("PUT", "/v1/nodes/"+m.name+"/states/provision", map[string]any{"target": "active",
		"configdrive": map[string]any{"meta_data": map[string]any{"hostname": m.name + "-again"}}}, 202)
	deadline := time.Now().Add(time.Minute)
	for {
		n = c.do("GET", "/v1/nodes/"+m.name, nil, 200)
		_, served := cond.events.first("ipxe: boot script", m.uuid, t0)
		if n["provision_state"] == "wait call-back" && served {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not reach wait call-back with its ramdisk requested in 1 min: %v", m.name, n["provision_state"])
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // let iPXE fetch the kernel and ramdisk
	cond.stop(syscall.SIGKILL)
	tKill := time.Now()
	time.Sleep(2 * time.Second)
	cond.start()
	t.Logf("conductor SIGKILLed with %s in wait call-back, restarted after %.1fs", m.name, time.Since(tKill).Seconds())
	n = c.waitSettled(m.name, 3*time.Minute)
	switch n["provision_state"] {
	case "active":
		addPhase(m.name, "fault conductor SIGKILL in wait call-back → active: %.1fs after the kill", time.Since(tKill).Seconds())
	case "deploy failed":
		if n["last_error"] == nil {
			t.Errorf("%s deploy failed after the conductor restart without last_error", m.name)
		}
		addPhase(m.name, "fault conductor SIGKILL in wait call-back → deploy failed (%v): %.1fs after the kill", n["last_error"], time.Since(tKill).Seconds())
	default:
		t.Fatalf("after the conductor restart %s ends %v (last_error %v), want active or deploy failed", m.name, n["provision_state"], n["last_error"])
	}
	c.do("PUT", "/v1/nodes/"+m.name+"/states/provision", map[string]any{"target": "deleted"}, 202)
	c.waitState(m.name, "available", 4*time.Minute)

	qemuDeadBMC(t, c, files, machines[1], addPhase)

	for _, m := range machines {
		n = c.do("GET", "/v1/nodes/"+m.name, nil, 200)
		if got := m.bmcPower(t); got != n["power_state"] {
			t.Errorf("after the faults: %s BMC says %q, node says %v", m.name, got, n["power_state"])
		}
	}
}

// utf16le is s in UTF-16LE, as EFI variables store text.
func utf16le(s string) []byte {
	b := make([]byte, 0, 2*len(s))
	for _, c := range utf16.Encode([]rune(s)) {
		b = append(b, byte(c), byte(c>>8))
	}
	return b
}

// qemuVMediaChecks checks, after the virtual media variant, that no
// machine booted from the network, that the conductor built the ISOs once
// for both machines (the same ramdisk and parameters) and ejected every
// medium, and logs the ISOs' size.
func qemuVMediaChecks(t *testing.T, dir string, machines []*qemuMachine, addPhase func(name, format string, args ...any)) {
	for _, m := range machines {
		_, boots := powerOns(m.q)
		if slices.Contains(boots, lab.BootPXE) {
			t.Errorf("%s booted from the network: %v", m.name, boots)
		}
		if !slices.Contains(boots, lab.BootCDROM) {
			t.Errorf("%s never booted from the CD: %v", m.name, boots)
		}
		if med := m.q.Media(); med != "" {
			t.Errorf("%s: %s left in the CD drive", m.name, med)
		}
	}
	isos, _ := filepath.Glob(filepath.Join(dir, "state", "vmedia", "*.iso"))
	for _, p := range isos {
		if fi, err := os.Stat(p); err == nil {
			addPhase(machines[0].name, "virtual media ISO %s: %.1f MiB", filepath.Base(p)[:12], float64(fi.Size())/(1<<20))
		}
	}
	// One for inspection (its parameters add the callback), one for the
	// rest, shared by both machines.
	if len(isos) != 2 {
		t.Errorf("%d ISOs built, want two for both machines: %v", len(isos), isos)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "conductor.log"))
	ins, ej := strings.Count(string(log), `msg="vmedia: boot ISO inserted"`), strings.Count(string(log), `msg="vmedia: boot ISO ejected"`)
	t.Logf("virtual media: %d inserts, %d ejects", ins, ej)
	if ins == 0 || ej < len(machines) {
		t.Errorf("virtual media: %d inserts, %d ejects", ins, ej)
	}
}
