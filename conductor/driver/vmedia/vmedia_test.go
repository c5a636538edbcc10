package vmedia

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/driver/bmc"
	"github.com/ferric-metal/ferric/test/lab"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testKernel finds a Linux kernel: $FERRIC_TEST_KERNEL, or the cloud
// kernel `make ramdisk` unpacked into its cache.
func testKernel(t *testing.T) string {
	t.Helper()
	if k := os.Getenv("FERRIC_TEST_KERNEL"); k != "" {
		return k
	}
	for _, dir := range []string{"/var/cache/ferric", filepath.Join(os.Getenv("HOME"), ".cache/ferric")} {
		if m, _ := filepath.Glob(filepath.Join(dir, "kroot-*cloud*", "boot", "vmlinuz-*")); len(m) > 0 {
			return m[0]
		}
	}
	t.Skip("skipping: no kernel (set FERRIC_TEST_KERNEL, or run make ramdisk once)")
	return ""
}

func needTools(t *testing.T) {
	t.Helper()
	for _, p := range []string{"xorriso", "grub-mkstandalone", "mkfs.vfat", "mcopy", "qemu-system-x86_64"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("skipping: %s not installed (.ci/deps.sh)", p)
		}
	}
	if _, err := os.Stat("/usr/lib/ISOLINUX/isolinux.bin"); err != nil {
		t.Skip("skipping: no ISOLINUX (.ci/deps.sh)")
	}
}

// TestVirtualMediaBoot boots a SeaBIOS QEMU machine behind the Redfish
// emulator from the ramdisk ISO: prepared (built, published, inserted),
// the CD set once, the kernel starts with the parameters; cleaned up
// (ejected, name withdrawn). Then the faults: a missing kernel and a BMC
// without virtual media leave nothing inserted or published.
func TestVirtualMediaBoot(t *testing.T) {
	needTools(t)
	ctx := context.Background()
	kernel := testKernel(t)
	dir, err := os.MkdirTemp("", "ferric-vmboot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	initrd := filepath.Join(dir, "initrd")
	if err := os.WriteFile(initrd, []byte("not an initramfs"), 0o644); err != nil {
		t.Fatal(err)
	}
	q, err := lab.NewQEMU(lab.MachineConfig{Name: "vm0", Dir: dir, DiskSizeMiB: 8, MemMiB: 256, Net: "none", CDROM: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.PowerOff(context.Background()) })
	rf := httptest.NewServer(redfish.New(redfish.Config{Username: "admin", Password: "pw", MediaDir: dir,
		Machines: map[string]redfish.Machine{"vm0": q}, Logger: quiet()}))
	defer rf.Close()
	bare := httptest.NewServer(redfish.New(redfish.Config{Username: "admin", Password: "pw",
		Machines: map[string]redfish.Machine{"vm0": &lab.QEMU{}}, Logger: quiet()}))
	defer bare.Close()

	d := bmc.NewRedfish(bmc.Config{Logger: quiet()})
	var inspections []bool
	b, err := New(Config{Media: d, Dir: filepath.Join(dir, "iso"), Log: quiet(),
		Ramdisk: func(n *driver.Node, inspection bool) (Ramdisk, error) {
			inspections = append(inspections, inspection)
			k, _ := n.DriverInfo["deploy_kernel"].(string)
			return Ramdisk{Kernel: k, Initrd: initrd, Params: "console=ttyS0 panic=0 ipa-api-url=http://192.0.2.1:6385"}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.StripPrefix("/boot/vmedia", b)}
	go srv.Serve(ln)
	defer srv.Close()
	b.SetBaseURL("http://" + ln.Addr().String() + "/boot/vmedia/")

	node := func(url, kernel string) *driver.Node {
		return &driver.Node{UUID: "8c1c2e2a-0000-4000-8000-000000000001", Properties: map[string]any{},
			DriverInfo: map[string]any{bmc.KeyRedfishAddress: url, bmc.KeyRedfishUsername: "admin", bmc.KeyRedfishPassword: "pw",
				"deploy_kernel": kernel, "deploy_ramdisk": initrd}}
	}
	n := node(rf.URL, kernel)
	if err := b.Validate(&driver.Node{UUID: "x", DriverInfo: map[string]any{}}); err == nil || !strings.Contains(err.Error(), "deploy_kernel and deploy_ramdisk") {
		t.Errorf("Validate without driver_info = %v", err)
	}
	dev, err := b.PrepareRamdisk(ctx, n, true)
	if err != nil || dev != driver.BootCDROM {
		t.Fatalf("PrepareRamdisk = %q, %v; want cdrom", dev, err)
	}
	if len(inspections) != 1 || !inspections[0] {
		t.Errorf("ramdisk asked with inspection %v, want [true]", inspections)
	}
	if q.Media() == "" {
		t.Fatal("nothing in the machine's drive after PrepareRamdisk")
	}
	// Again (a reboot within a step): the same ISO from the cache.
	if _, err := b.PrepareRamdisk(ctx, n, true); err != nil {
		t.Fatal(err)
	}
	if b.Builds() != 1 {
		t.Errorf("%d ISO builds for the same inputs, want 1", b.Builds())
	}
	b.mu.Lock()
	var url string
	for name := range b.byName {
		url = "http://" + ln.Addr().String() + "/boot/vmedia/" + name
	}
	names := len(b.byName)
	b.mu.Unlock()
	if names != 1 {
		t.Errorf("%d published names for one node, want 1", names)
	}
	if err := d.SetBootDevice(ctx, n, dev, false); err != nil {
		t.Fatal(err)
	}
	if err := d.SetPowerState(ctx, n, driver.TargetPowerOn, time.Minute); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		s, _ := os.ReadFile(q.SerialLog())
		if i := strings.Index(string(s), "Command line: "); i >= 0 && strings.Contains(string(s[i:]), "ipa-api-url=http://192.0.2.1:6385") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the kernel did not start from the CD with the parameters:\n%s", s)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if resp, err := http.Get(url); err != nil || resp.StatusCode != 200 {
		t.Errorf("GET %s before the clean-up: %v %v", url, resp, err)
	} else {
		resp.Body.Close()
	}
	for _, bad := range []string{"/boot/vmedia/", "/boot/vmedia/" + strings.Repeat("0", 32) + ".iso", "/boot/vmedia/../iso"} {
		if resp, err := http.Get("http://" + ln.Addr().String() + bad); err == nil {
			if resp.StatusCode != 404 {
				t.Errorf("GET %s = %d, want 404", bad, resp.StatusCode)
			}
			resp.Body.Close()
		}
	}
	if err := b.CleanUpRamdisk(ctx, n); err != nil {
		t.Fatal(err)
	}
	if q.Media() != "" {
		t.Errorf("media %s left after CleanUpRamdisk", q.Media())
	}
	if resp, err := http.Get(url); err != nil || resp.StatusCode != 404 {
		t.Errorf("GET %s after the clean-up: %v %v, want 404", url, resp, err)
	} else {
		resp.Body.Close()
	}
	// Clean-up of a node with nothing inserted is fine.
	if err := b.CleanUpRamdisk(ctx, n); err != nil {
		t.Errorf("second CleanUpRamdisk = %v", err)
	}

	// Faults: nothing stays inserted or published.
	for _, tc := range []struct {
		name    string
		n       *driver.Node
		wantErr string
	}{
		{"missing kernel", node(rf.URL, filepath.Join(dir, "no-kernel")), "kernel"},
		{"BMC without virtual media", node(bare.URL, kernel), "no virtual media"},
	} {
		_, err := b.PrepareRamdisk(ctx, tc.n, false)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: PrepareRamdisk = %v, want an error naming %q", tc.name, err, tc.wantErr)
		}
		if tc.name == "BMC without virtual media" && !errors.Is(err, bmc.ErrNoVirtualMedia) {
			t.Errorf("%s: %v is not ErrNoVirtualMedia", tc.name, err)
		}
		b.mu.Lock()
		left := len(b.byName)
		b.mu.Unlock()
		if left != 0 || q.Media() != "" {
			t.Errorf("%s: %d names published, media %q", tc.name, left, q.Media())
		}
	}
}
