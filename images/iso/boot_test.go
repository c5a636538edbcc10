package iso

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/lab"
)

// testKernel finds a Linux kernel to boot: $FERRIC_TEST_KERNEL, or the
// cloud kernel `make ramdisk` unpacked into its cache.
func testKernel(t *testing.T) string {
	t.Helper()
	if k := os.Getenv("FERRIC_TEST_KERNEL"); k != "" {
		return k
	}
	for _, dir := range []string{"/var/cache/ferric", filepath.Join(os.Getenv("HOME"), ".cache/ferric")} {
		m, _ := filepath.Glob(filepath.Join(dir, "kroot-*cloud*", "boot", "vmlinuz-*"))
		if len(m) > 0 {
			return m[0]
		}
	}
	t.Skip("skipping: no kernel (set FERRIC_TEST_KERNEL, or run make ramdisk once)")
	return ""
}

// TestBootQEMU boots a built image from a QEMU machine's CD drive with
// SeaBIOS (ISOLINUX) and with OVMF (GRUB from the ESP) and checks that the
// kernel starts with the image's command line, on the serial console.
func TestBootQEMU(t *testing.T) {
	needTools(t)
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("skipping: qemu-system-x86_64 is not installed")
	}
	kernel := testKernel(t)
	// Not a cpio: the kernel prints its command line long before it
	// finds out.
	ramdisk := writeTemp(t, "initrd", "not an initramfs")
	b := &Builder{Dir: t.TempDir()}
	for _, fw := range []string{"bios", "uefi"} {
		t.Run(fw, func(t *testing.T) {
			if fw == "uefi" {
				if _, err := os.Stat(lab.OVMFCode); err != nil {
					t.Skip("skipping: no OVMF (Debian package ovmf)")
				}
			}
			marker := "ferric.iso.test=" + fw
			img, err := b.Build(context.Background(), Input{Kernel: kernel, Ramdisk: ramdisk, Params: "console=ttyS0 panic=0 " + marker})
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := os.Stat(img)
			t.Logf("image %d KiB", fi.Size()>>10)
			dir, err := os.MkdirTemp("", "ferric-iso-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			// 512 MiB: GRUB 2.06 on OVMF runs out of memory loading
			// Debian's generic kernel in 256 MiB (the cloud one fits).
			q, err := lab.NewQEMU(lab.MachineConfig{Name: "vm0", Dir: dir, DiskSizeMiB: 8, MemMiB: 512, Net: "none", CDROM: true, Firmware: fw})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			t.Cleanup(func() { _ = q.PowerOff(context.Background()) })
			if err := q.InsertMedia(ctx, img); err != nil {
				t.Fatal(err)
			}
			if err := q.SetBootDevice(ctx, lab.BootCDROM); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := q.PowerOn(ctx); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(3 * time.Minute)
			for {
				b, _ := os.ReadFile(q.SerialLog())
				if i := strings.Index(string(b), "Command line: "); i >= 0 && strings.Contains(string(b[i:]), marker) {
					line, _, _ := strings.Cut(string(b[i:]), "\n")
					t.Logf("kernel started after %.1fs: %s", time.Since(start).Seconds(), strings.TrimSpace(line))
					break
				}
				if time.Now().After(deadline) {
					if len(b) > 2000 {
						b = b[len(b)-2000:]
					}
					t.Fatalf("no kernel command line with %q on the serial console after 3 minutes:\n%s", marker, b)
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
}
