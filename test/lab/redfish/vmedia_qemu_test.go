package redfish_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/lab"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// isolinuxISO builds an ISOLINUX CD whose boot loader prints its banner on
// the serial console and then waits at its prompt.
func isolinuxISO(t *testing.T) string {
	t.Helper()
	for _, f := range []string{"/usr/lib/ISOLINUX/isolinux.bin", "/usr/lib/syslinux/modules/bios/ldlinux.c32"} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("skipping: %s missing (Debian packages isolinux, syslinux-common)", f)
		}
	}
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Skip("skipping: xorriso is not installed")
	}
	root := t.TempDir()
	for src, dst := range map[string]string{"/usr/lib/ISOLINUX/isolinux.bin": "isolinux/isolinux.bin", "/usr/lib/syslinux/modules/bios/ldlinux.c32": "isolinux/ldlinux.c32"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		_ = os.MkdirAll(filepath.Dir(filepath.Join(root, dst)), 0o755)
		if err := os.WriteFile(filepath.Join(root, dst), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := "SERIAL 0 115200\nPROMPT 1\nTIMEOUT 0\nLABEL x\n  LOCALBOOT 0\n"
	if err := os.WriteFile(filepath.Join(root, "isolinux/isolinux.cfg"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	iso := filepath.Join(t.TempDir(), "marker.iso")
	out, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-o", iso, "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
		"-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", root).CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso: %v: %s", err, out)
	}
	return iso
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// TestVirtualMediaQEMU inserts an ISO into a SeaBIOS QEMU machine through
// the emulator's VirtualMedia, boots it once from the CD, and checks the
// firmware's boot order and the CD's boot on the serial console; then it
// ejects and inserts again while the machine runs (QMP).
func TestVirtualMediaQEMU(t *testing.T) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("skipping: qemu-system-x86_64 is not installed")
	}
	const marker = "ISOLINUX 6" // the boot loader's banner, only on the CD
	iso := isolinuxISO(t)
	images := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, iso)
	}))
	defer images.Close()

	dir, err := os.MkdirTemp("", "ferric-vmedia-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	q, err := lab.NewQEMU(lab.MachineConfig{Name: "vm0", Dir: dir, DiskSizeMiB: 8, MemMiB: 128, Net: "none", CDROM: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.PowerOff(context.Background()) })
	mediaDir := filepath.Join(dir, "media")
	if err := os.Mkdir(mediaDir, 0o755); err != nil {
		t.Fatal(err)
	}
	srv := redfish.New(redfish.Config{Username: "admin", Password: "pw", MediaDir: mediaDir, OnceRevertDelay: 5 * time.Second,
		Machines: map[string]redfish.Machine{"vm0": q}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	call := func(method, path, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		req.SetBasicAuth("admin", "pw")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("%s %s = %s: %s", method, path, resp.Status, b)
		}
	}
	const cd = "/redfish/v1/Managers/vm0/VirtualMedia/Cd"
	booted := func(n int) func() bool {
		return func() bool {
			b, _ := os.ReadFile(q.SerialLog())
			return strings.Count(string(b), marker) >= n
		}
	}

	// Off: the image waits in the drive for the start.
	call("POST", cd+"/Actions/VirtualMedia.InsertMedia", `{"Image":"`+images.URL+`/boot.iso","Inserted":true,"WriteProtected":true}`)
	if q.Media() == "" {
		t.Fatal("no media in the machine's drive after InsertMedia")
	}
	call("PATCH", "/redfish/v1/Systems/vm0", `{"Boot":{"BootSourceOverrideTarget":"Cd","BootSourceOverrideEnabled":"Once"}}`)
	call("POST", "/redfish/v1/Systems/vm0/Actions/ComputerSystem.Reset", `{"ResetType":"On"}`)
	waitFor(t, "the CD's boot loader on the serial console", 90*time.Second, booted(1))
	order, _, err := lab.FirmwareBootOrder(q.FirmwareLog())
	if err != nil || len(order) == 0 {
		t.Fatalf("firmware boot order: %q, %v", order, err)
	}
	fw, _ := os.ReadFile(q.FirmwareLog())
	if !strings.Contains(string(fw), "Booting from DVD/CD") {
		t.Errorf("firmware log has no CD boot:\n%s", fw)
	}
	// SeaBIOS names the CD drive on its virtio-scsi controller (the only
	// device with a SCSI channel; the virtio-blk disk is scsi@N/disk@0,0).
	if !strings.Contains(order[0], "/channel@0/disk@") {
		t.Errorf("first boot entry %q, want the CD drive; boot order %q", order[0], order)
	}
	// The Once override is consumed: the disk is first at the next start.
	waitFor(t, "the one-time CD boot reverted", 30*time.Second, func() bool { return q.BootDevice() == lab.BootDisk })

	// Running: eject and insert go to the drive over QMP.
	call("POST", cd+"/Actions/VirtualMedia.EjectMedia", `{}`)
	if q.Media() != "" {
		t.Errorf("media %q left after EjectMedia", q.Media())
	}
	if left, _ := os.ReadDir(mediaDir); len(left) != 0 {
		t.Errorf("downloads left after EjectMedia: %v", left)
	}
	call("PATCH", "/redfish/v1/Systems/vm0/VirtualMedia/Cd", `{"Image":"`+images.URL+`/boot.iso","Inserted":true}`)
	_, starts, _ := lab.FirmwareBootOrder(q.FirmwareLog())
	call("PATCH", "/redfish/v1/Systems/vm0", `{"Boot":{"BootSourceOverrideTarget":"Cd","BootSourceOverrideEnabled":"Once"}}`)
	call("POST", "/redfish/v1/Systems/vm0/Actions/ComputerSystem.Reset", `{"ResetType":"ForceRestart"}`)
	waitFor(t, "a second CD boot", 90*time.Second, booted(2))
	order, n, _ := lab.FirmwareBootOrder(q.FirmwareLog())
	if n != starts+1 || !strings.Contains(order[0], "/channel@0/disk@") {
		t.Errorf("boot %d (want %d) order %q, want the CD drive first", n, starts+1, order)
	}
	// And reverted live: the CD is last again.
	waitFor(t, "the CD's bootindex back to 3 (after the disk and NIC)", 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		idx, err := q.BootIndex(ctx, "cd0")
		return err == nil && idx == 3 && q.BootDevice() == lab.BootDisk
	})
	call("POST", cd+"/Actions/VirtualMedia.EjectMedia", `{}`)
}
