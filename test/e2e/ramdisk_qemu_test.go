package e2e

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/images/iso"
	"github.com/ferric-metal/ferric/test/artifacts"
	"github.com/ferric-metal/ferric/test/lab"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// liveMarker is what the live ISO's init prints on the console.
const liveMarker = "ferric-live-iso: up"

// TestQEMURamdiskDeploy is metal3's live ISO: a QEMU machine (TCG, SeaBIOS
// in subtest bios, OVMF in uefi, a CD drive, no network at all) behind the Redfish emulator, enrolled with
// driver redfish, boot_interface redfish-virtual-media and deploy_interface
// ramdisk, instance_info boot_iso the URL of a live ISO (built by
// images/iso from the test kernel and a one-program initramfs that
// announces itself on the serial console, and the config drive it finds).
// Deploy, with a config drive: the conductor downloads
// the ISO (ramdisk_image_download_source local), serves it to the BMC,
// which inserts it; the node is active once the boot is set up, and the
// machine boots the ISO from the CD (the init's line on its console); the
// config drive is on the BMC's virtual USB stick, where the init reads
// its config-2 label and user_data (the machine's "USB stick" is a
// removable SCSI disk: lab.MachineConfig.USBStick). Undeploy ejects both.
// No namespace or DHCP is needed: nothing boots from a network.
func TestQEMURamdiskDeploy(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: boots a QEMU machine; run without -short")
	}
	for _, p := range []string{"xorriso", "grub-mkstandalone", "mkfs.vfat", "mcopy", "qemu-system-x86_64", "cpio"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("skipping: %s not installed (.ci/deps.sh)", p)
		}
	}
	if _, err := os.Stat("/usr/lib/ISOLINUX/isolinux.bin"); err != nil {
		t.Skip("skipping: no ISOLINUX (.ci/deps.sh)")
	}
	kernel := liveKernel(t)
	ctx := context.Background()
	dir := workDir(t, "ferric-e2e-live-", "")

	start := time.Now()
	img, err := (&iso.Builder{Dir: filepath.Join(dir, "live")}).Build(ctx, iso.Input{Kernel: kernel, Ramdisk: liveInitramfs(t, dir),
		Params: "console=ttyS0,115200n8 panic=0 ferric.live=1"})
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(img)
	t.Logf("phase build live ISO: %.1fs, %.1f MiB", time.Since(start).Seconds(), float64(fi.Size())/(1<<20))
	var downloads atomic.Int32
	isoSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/live.iso" {
			http.NotFound(w, r)
			return
		}
		downloads.Add(1)
		http.ServeFile(w, r, img)
	}))
	defer isoSrv.Close()
	state := t.TempDir()
	base, stop := runConductor(t, service.Config{APIListen: "127.0.0.1:0", StateDir: state, Hostname: "e2e"})
	defer func() { stop() }()

	outer := t // the conductor restarted in a subtest outlives it
	for _, fw := range []string{"bios", "uefi"} {
		t.Run(fw, func(t *testing.T) {
			if fw == "uefi" {
				if _, err := os.Stat(lab.OVMFCode); err != nil {
					t.Skip("skipping: no OVMF (.ci/deps.sh)")
				}
			}
			vmDir := filepath.Join(dir, fw)
			if err := os.MkdirAll(vmDir, 0o755); err != nil {
				t.Fatal(err)
			}
			c := client{t, base}
			q, err := lab.NewQEMU(lab.MachineConfig{Name: "vm0", Dir: vmDir, DiskSizeMiB: 8, MemMiB: 512, Net: "none", CDROM: true, USBStick: true, Firmware: fw})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = q.PowerOff(context.Background()) })
			if err := os.MkdirAll(filepath.Join(vmDir, "media"), 0o755); err != nil {
				t.Fatal(err)
			}
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
			bmc := redfish.New(redfish.Config{Username: "admin", Password: "pw", MediaDir: filepath.Join(vmDir, "media"),
				Machines: map[string]redfish.Machine{"vm0": q}, Logger: quiet})
			rf := httptest.NewServer(bmc)
			defer rf.Close()

			c.doVersion("1.96", "POST", "/v1/nodes", map[string]any{
				"driver": "redfish", "name": "live-" + fw, "boot_interface": "redfish-virtual-media", "deploy_interface": "ramdisk",
				"automated_clean": false, "properties": map[string]any{"capabilities": "boot_mode:" + fw},
				"driver_info": map[string]any{"redfish_address": rf.URL, "redfish_system_id": "/redfish/v1/Systems/vm0",
					"redfish_username": "admin", "redfish_password": "pw",
					"deploy_kernel": "ferric-deploy.kernel", "deploy_ramdisk": "ferric-deploy.initramfs"},
			}, 201)
			c.do("PUT", "/v1/nodes/live-"+fw+"/states/provision", map[string]any{"target": "manage"}, 202)
			c.waitState("live-"+fw, "manageable", 60*time.Second)
			c.do("PUT", "/v1/nodes/live-"+fw+"/states/provision", map[string]any{"target": "provide"}, 202)
			c.waitState("live-"+fw, "available", 60*time.Second)

			c.do("PATCH", "/v1/nodes/live-"+fw, []map[string]any{
				{"op": "add", "path": "/instance_info/boot_iso", "value": isoSrv.URL + "/live.iso"}}, 200)
			t0 := time.Now()
			// With a config drive, which goes on the BMC's virtual USB
			// stick, where the live ISO's init finds it.
			c.doVersion("1.96", "PUT", "/v1/nodes/live-"+fw+"/states/provision", map[string]any{"target": "active",
				"configdrive": map[string]any{"user_data": "#cloud-config\nhostname: live\n"}}, 202)
			n := c.waitState("live-"+fw, "active", 2*time.Minute)
			t.Logf("phase deploy to active: %.1fs", time.Since(t0).Seconds())
			if n["power_state"] != "power on" {
				t.Errorf("power_state %v after the deploy", n["power_state"])
			}
			if downloads.Load() == 0 {
				t.Errorf("the conductor did not download the boot ISO (ramdisk_image_download_source local)")
			}
			media := q.Media()
			if media == "" {
				t.Fatal("no media in the machine's CD drive after the deploy")
			}
			if b, _ := bmc.BootOverride("vm0"); b.BootSourceOverrideTarget != "Cd" || b.BootSourceOverrideEnabled != "Continuous" {
				t.Errorf("boot override %+v, want Cd Continuous", b)
			}
			s := waitSerial(t, q, 4*time.Minute, "the live ISO and its config drive", liveMarker, "ferric.live=1",
				"ferric-live-iso: config drive config-2 on sd")
			if !strings.Contains(string(s), "user_data true") {
				t.Errorf("the live ISO sees a config drive without the user_data:\n%s", tail(s, 2000))
			}
			t.Logf("phase live ISO up on the console: %.1fs after the deploy request", time.Since(t0).Seconds())

			if fw == "bios" {
				// A restarted conductor serves none of the names it
				// published: it takes the instance boot over (publishes
				// and inserts again), as Ironic's takeover prepares the
				// instance again; the node stays active.
				before := mediaImage(t, rf.URL)
				stop()
				base, stop = runConductor(outer, service.Config{APIListen: "127.0.0.1:0", StateDir: state, Hostname: "e2e"})
				c = client{t, base}
				deadline := time.Now().Add(time.Minute)
				for {
					img := mediaImage(t, rf.URL)
					if img != before && strings.HasPrefix(img, base+"/boot/vmedia/") {
						resp, err := http.Get(img)
						if err != nil || resp.StatusCode != 200 {
							t.Fatalf("GET the taken-over instance ISO %s: %v %v", img, resp, err)
						}
						resp.Body.Close()
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("the restarted conductor did not publish and insert the instance ISO again (media %q, was %q)", img, before)
					}
					time.Sleep(200 * time.Millisecond)
				}
				n := c.waitState("live-"+fw, "active", time.Minute)
				if n["last_error"] != nil {
					t.Errorf("last_error after the takeover: %v", n["last_error"])
				}
				t.Logf("phase conductor restart: instance ISO inserted again")
			}

			c.do("PUT", "/v1/nodes/live-"+fw+"/states/provision", map[string]any{"target": "deleted"}, 202)
			n = c.waitState("live-"+fw, "available", 2*time.Minute)
			if q.Media() != "" || q.USBMedia() != "" {
				t.Errorf("media %q / USB stick %q still inserted after undeploy", q.Media(), q.USBMedia())
			}
			if n["power_state"] != "power off" {
				t.Errorf("power_state %v after undeploy", n["power_state"])
			}
			if dii, _ := n["driver_internal_info"].(map[string]any); dii["instance_boot_interface"] != nil {
				t.Errorf("instance boot still recorded: %v", dii["instance_boot_interface"])
			}
		})
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// liveKernel finds a Linux kernel: $FERRIC_TEST_KERNEL, or the cloud
// kernel build.sh unpacked into its cache (building the suite's deploy
// ramdisk, once per run, unpacks it).
func liveKernel(t *testing.T) string {
	t.Helper()
	if k := os.Getenv("FERRIC_TEST_KERNEL"); k != "" {
		return k
	}
	find := func() string {
		for _, dir := range []string{"/var/cache/ferric", filepath.Join(os.Getenv("HOME"), ".cache/ferric")} {
			if m, _ := filepath.Glob(filepath.Join(dir, "kroot-*cloud*", "boot", "vmlinuz-*")); len(m) > 0 {
				return m[0]
			}
		}
		return ""
	}
	if k := find(); k != "" {
		return k
	}
	if _, err := artifacts.BuildRamdisk(artifacts.CloudKernel); err != nil {
		t.Skipf("skipping: no kernel (set FERRIC_TEST_KERNEL, or run make ramdisk once): %v", err)
	}
	if k := find(); k != "" {
		return k
	}
	t.Skip("skipping: no kernel (set FERRIC_TEST_KERNEL, or run make ramdisk once)")
	return ""
}

// liveModules are the modules (in load order) the live ISO's init loads
// to see a virtio-scsi disk: Debian's cloud kernel has them as modules.
var liveModules = []string{"drivers/virtio/virtio_ring.ko", "drivers/virtio/virtio.ko", "drivers/virtio/virtio_pci_legacy_dev.ko",
	"drivers/virtio/virtio_pci_modern_dev.ko", "drivers/virtio/virtio_pci.ko", "drivers/scsi/scsi_common.ko",
	"drivers/scsi/scsi_mod.ko", "drivers/scsi/virtio_scsi.ko", "drivers/scsi/sd_mod.ko"}

// liveInit is the live ISO's /init: it loads the modules under /modules
// (in the order of /modules/order), then every 5 s prints liveMarker and,
// for each SCSI disk holding an ISO labelled config-2 (a config drive on
// the BMC's virtual USB stick), a line naming it and whether it carries
// a #cloud-config user_data.
const liveInit = `package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	_ = syscall.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	_ = syscall.Mount("sysfs", "/sys", "sysfs", 0, "")
	order, _ := os.ReadFile("/modules/order")
	for _, m := range strings.Fields(string(order)) {
		b, err := os.ReadFile(filepath.Join("/modules", m))
		if err != nil || len(b) == 0 {
			continue
		}
		empty := []byte{0}
		_, _, e := syscall.Syscall(syscall.SYS_INIT_MODULE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&empty[0])))
		if e != 0 && e != syscall.EEXIST {
			fmt.Println("ferric-live-iso: module", m, e)
		}
	}
	for {
		fmt.Println("` + liveMarker + `")
		disks, _ := filepath.Glob("/sys/block/sd*")
		for _, d := range disks {
			f, err := os.Open("/dev/" + filepath.Base(d))
			if err != nil {
				continue
			}
			b := make([]byte, 1<<20)
			n, _ := f.ReadAt(b, 0)
			f.Close()
			b = b[:n]
			if len(b) > 32840 && string(b[32769:32774]) == "CD001" && strings.HasPrefix(string(b[32808:32840]), "config-2") {
				fmt.Printf("ferric-live-iso: config drive config-2 on %s, user_data %v\n", filepath.Base(d), bytes.Contains(b, []byte("#cloud-config")))
			}
		}
		time.Sleep(5 * time.Second)
	}
}
`

// liveInitramfs builds an initramfs whose /init (a static Go program,
// liveInit) prints liveMarker on the console and reports config drives,
// with the modules it loads taken from the test kernel's tree when there
// is one.
func liveInitramfs(t *testing.T, dir string) string {
	t.Helper()
	src := filepath.Join(dir, "init-src")
	root := filepath.Join(dir, "init-root")
	for _, d := range []string{src, root, filepath.Join(root, "dev"), filepath.Join(root, "sys"), filepath.Join(root, "modules")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(liveInit), 0o644); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(root, "init"), "main.go")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GO111MODULE=off", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the live ISO's init: %v\n%s", err, out)
	}
	files := []string{"init", "dev", "sys", "modules"}
	kernel := liveKernel(t)
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(filepath.Dir(kernel)), "lib", "modules", strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-"), "kernel")); len(m) == 1 {
		var order []string
		for _, mod := range liveModules {
			b, err := os.ReadFile(filepath.Join(m[0], mod))
			if err != nil {
				continue // built in, or another kernel's layout
			}
			if err := os.WriteFile(filepath.Join(root, "modules", filepath.Base(mod)), b, 0o644); err != nil {
				t.Fatal(err)
			}
			order = append(order, filepath.Base(mod))
			files = append(files, "modules/"+filepath.Base(mod))
		}
		if err := os.WriteFile(filepath.Join(root, "modules", "order"), []byte(strings.Join(order, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, "modules/order")
	}
	out := filepath.Join(dir, "live.initramfs")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cp := exec.Command("cpio", "-o", "-H", "newc", "--quiet")
	cp.Dir = root
	cp.Stdin = strings.NewReader(strings.Join(files, "\n") + "\n")
	cp.Stdout = f
	var stderr strings.Builder
	cp.Stderr = &stderr
	if err := cp.Run(); err != nil {
		t.Fatalf("cpio: %v %s", err, stderr.String())
	}
	return out
}

// runConductor runs a conductor in-process with cfg until stop (or the
// end of the test) and returns its API URL.
func runConductor(t *testing.T, cfg service.Config) (base string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	cfg.Ready = func(a string) { ready <- a }
	go func() { done <- service.Run(ctx, cfg) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("conductor: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case a := <-ready:
		return "http://" + a, stop
	case err := <-done:
		t.Fatalf("conductor did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("conductor did not start in 30s")
	}
	return "", stop
}

// mediaImage is the image URL the emulator's CD holds ("" when none).
func mediaImage(t *testing.T, bmcURL string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", bmcURL+"/redfish/v1/Systems/vm0/VirtualMedia/Cd", nil)
	req.SetBasicAuth("admin", "pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var vm struct {
		Image    string
		Inserted bool
	}
	if err := json.NewDecoder(resp.Body).Decode(&vm); err != nil || !vm.Inserted {
		return ""
	}
	return vm.Image
}
