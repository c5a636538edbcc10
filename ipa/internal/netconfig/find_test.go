package netconfig

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const sampleData = `{"links": [{"id": "p", "type": "phy", "ethernet_mac_address": "52:54:00:12:34:56"}],
 "networks": [{"id": "n", "type": "ipv4", "link": "p", "ip_address": "192.0.2.7", "netmask": "255.255.255.0"}]}`

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (see .ci/deps.sh)", tool)
		}
	}
}

// isoTree writes the files Ironic injects into a virtual media ISO.
func isoTree(t *testing.T) string {
	dir := t.TempDir()
	p := filepath.Join(dir, DataPath)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(sampleData), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "vmlinuz"), make([]byte, 4096), 0o644)
	return dir
}

// loop attaches img read-only to a loop device and returns a Finder that
// sees only that device (through a directory holding the link to its
// /sys/class/block entry, so that other tests' devices do not interfere).
func loop(t *testing.T, img string) (Finder, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices")
	}
	need(t, "losetup")
	dev := run(t, "losetup", "-f", "-r", "--show", img)
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	sys := t.TempDir()
	if err := os.Symlink(filepath.Join("/sys/class/block", filepath.Base(dev)), filepath.Join(sys, filepath.Base(dev))); err != nil {
		t.Fatal(err)
	}
	return Finder{SysBlock: sys, MountDir: t.TempDir()}, dev
}

// TestFindISO reads network_data.json from an ISO labelled config-2 on a
// loop device, as the ramdisk finds it on the virtual CD: made by xorriso
// with Rock Ridge and Joliet (as ISOs for virtual media are), plain and
// with an MBR partition table in front (as hybrid ISOs have).
func TestFindISO(t *testing.T) {
	need(t, "xorriso")
	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"plain", nil},
		{"Ironic's boot ISO label", []string{"-V", "VMEDIA_BOOT_ISO"}},
		{"ferric's boot ISO label", []string{"-V", "FERRIC_BOOT"}},
		{"partition table (offset 16)", []string{"-partition_offset", "16"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "boot.iso")
			args := append([]string{"-as", "mkisofs", "-quiet", "-R", "-J", "-V", Label, "-o", img}, tc.extra...)
			run(t, "xorriso", append(args, isoTree(t))...)
			want := Label
			for i, a := range tc.extra {
				if a == "-V" {
					want = tc.extra[i+1]
				}
			}
			if l, err := DeviceLabel(img); err != nil || l != want {
				t.Fatalf("DeviceLabel(%s) = %q, %v", img, l, err)
			}
			f, dev := loop(t, img)
			devs, err := f.Devices()
			if err != nil || len(devs) != 1 || devs[0] != dev {
				t.Fatalf("Devices = %q, %v, want [%s]", devs, err, dev)
			}
			b, got, err := f.Read(context.Background())
			if err != nil || got != dev || string(b) != sampleData {
				t.Fatalf("Read = %q from %s, %v", b, got, err)
			}
			if _, err := Parse(b); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestFindFAT: config drives are also VFAT, labelled CONFIG-2 (FAT labels
// are upper case). FAT32 is read without mounting.
func TestFindFAT(t *testing.T) {
	need(t, "mkfs.vfat", "mcopy", "mmd")
	img := filepath.Join(t.TempDir(), "cd.img")
	f, _ := os.Create(img)
	f.Truncate(64 << 20)
	f.Close()
	run(t, "mkfs.vfat", "-F", "32", "-n", "CONFIG-2", img)
	run(t, "mmd", "-i", img, "::openstack", "::openstack/latest")
	src := filepath.Join(isoTree(t), DataPath)
	run(t, "mcopy", "-i", img, src, "::"+DataPath)
	if l, err := DeviceLabel(img); err != nil || l != "CONFIG-2" {
		t.Fatalf("DeviceLabel = %q, %v", l, err)
	}
	fd, dev := loop(t, img)
	b, got, err := fd.Read(context.Background())
	if err != nil || got != dev || string(b) != sampleData {
		t.Fatalf("Read = %q from %s, %v", b, got, err)
	}
}

// TestFindNone: an ISO of another label, or labelled config-2 or as a boot
// ISO without the file, is not taken: ErrNotFound, and the caller keeps to DHCP.
func TestFindNone(t *testing.T) {
	need(t, "xorriso")
	for _, tc := range []struct{ name, label, file string }{
		{"other label", "DATA", DataPath},
		{"boot ISO without network_data", "FERRIC_BOOT", "openstack/latest/meta_data.json"},
		{"no network_data", Label, "openstack/latest/meta_data.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, tc.file)
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte("{}"), 0o644)
			img := filepath.Join(t.TempDir(), "x.iso")
			run(t, "xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", tc.label, "-o", img, dir)
			f, _ := loop(t, img)
			if _, _, err := f.Read(context.Background()); !errors.Is(err, ErrNotFound) {
				t.Errorf("Read: %v, want ErrNotFound", err)
			}
		})
	}
}
