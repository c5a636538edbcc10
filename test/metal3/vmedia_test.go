package metal3

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// Virtual media: the machine has a CD drive the Redfish emulator puts the
// inserted image in (redfish.MediaDrive). Started from the CD, it does what
// the image's boot loader does: it reads ISOLINUX's configuration (the host
// boots in legacy mode; GRUB's must say the same), checks that the kernel
// and initramfs it names are on the image, reads the network data of a
// config drive image (openstack/latest/network_data.json), and runs the
// agent with the configuration's kernel command line. Nothing is fetched
// from the conductor's boot server: the host's life is driven by the media.

// cdBoot is what one start from the CD found on the image.
type cdBoot struct {
	Label, Cmdline, NetworkData string
}

// InsertMedia puts the image at path in the machine's CD drive.
func (m *machine) InsertMedia(_ context.Context, path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.media = path
	return nil
}

// EjectMedia empties the CD drive.
func (m *machine) EjectMedia(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.media = ""
	return nil
}

// CDBoots returns what each start from the CD found.
func (m *machine) CDBoots() []cdBoot {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]cdBoot(nil), m.cdBoots...)
}

// NetBoots counts the starts that fetched a boot script.
func (m *machine) NetBoots() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.netBoots
}

// cdboot reads the image in the drive and returns the kernel command line
// its boot loader starts the kernel with.
func (m *machine) cdboot(gen int) (string, error) {
	m.mu.Lock()
	img := m.media
	m.mu.Unlock()
	if img == "" {
		return "", fmt.Errorf("no media in the CD drive")
	}
	dir := filepath.Join(filepath.Dir(m.disk), fmt.Sprintf("%s.cd.%d", m.name, gen))
	defer os.RemoveAll(dir)
	files := []string{"isolinux/isolinux.cfg", "boot/grub/grub.cfg", "boot/vmlinuz", "boot/initrd"}
	if err := isoExtract(img, dir, files...); err != nil {
		return "", err
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "isolinux/isolinux.cfg"))
	if err != nil {
		return "", err
	}
	cmdline, kernel, initrd := "", "", ""
	for _, line := range strings.Split(string(cfg), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && strings.EqualFold(f[0], "KERNEL"):
			kernel = f[1]
		case len(f) >= 2 && strings.EqualFold(f[0], "APPEND"):
			var args []string
			for _, a := range f[1:] {
				if v, ok := strings.CutPrefix(a, "initrd="); ok {
					initrd = v
				} else {
					args = append(args, a)
				}
			}
			cmdline = strings.Join(args, " ")
		}
	}
	if kernel != "/boot/vmlinuz" || initrd != "/boot/initrd" || cmdline == "" {
		return "", fmt.Errorf("ISOLINUX configuration without kernel, initrd and parameters:\n%s", cfg)
	}
	grub, err := os.ReadFile(filepath.Join(dir, "boot/grub/grub.cfg"))
	if err != nil {
		return "", err
	}
	if !strings.Contains(string(grub), "linux /boot/vmlinuz "+cmdline+"\n") {
		return "", fmt.Errorf("GRUB boots another command line than ISOLINUX (%q):\n%s", cmdline, grub)
	}
	boot := cdBoot{Cmdline: cmdline, Label: isoLabel(img)}
	// A config drive image (label config-2) carries the node's network data.
	if boot.Label == "config-2" {
		if err := isoExtract(img, dir, "openstack/latest/network_data.json"); err != nil {
			return "", fmt.Errorf("config drive image without network data: %w", err)
		}
		nd, err := os.ReadFile(filepath.Join(dir, "openstack/latest/network_data.json"))
		if err != nil {
			return "", err
		}
		boot.NetworkData = string(nd)
	}
	m.mu.Lock()
	m.cdBoots = append(m.cdBoots, boot)
	m.mu.Unlock()
	return cmdline, nil
}

// isoExtract copies files of an ISO 9660 image into dir with xorriso.
func isoExtract(img, dir string, files ...string) error {
	args := []string{"-osirrox", "on", "-indev", img}
	for _, f := range files {
		dst := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
			return err
		}
		args = append(args, "-extract", "/"+f, dst)
	}
	out, err := exec.Command("xorriso", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("xorriso: extracting %v: %w\n%s", files, err, out)
	}
	return nil
}

// isoLabel is the image's volume label ("" when unreadable).
func isoLabel(img string) string {
	out, err := exec.Command("xorriso", "-indev", img, "-pvd_info").CombinedOutput()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Volume Id    :"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// startRedfishVMediaBMC puts m behind the Redfish emulator with virtual
// media (a download directory for the images it inserts in m's drive).
func startRedfishVMediaBMC(t *testing.T, m *machine) bmcUnderTest {
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Fatal("xorriso is not installed (Debian package xorriso, installed by .ci/deps.sh)")
	}
	hw := redfish.Hardware{Disks: []redfish.Disk{{Size: 10 << 30}, {Size: 10 << 30}}}
	emu := redfish.New(redfish.Config{Username: "admin", Password: "pw-redfish", Machines: map[string]redfish.Machine{"m1": m},
		Hardware: map[string]redfish.Hardware{"m1": hw}, MediaDir: t.TempDir()})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return bmcUnderTest{Address: strings.TrimPrefix(srv.URL, "http://") + "/redfish/v1/Systems/m1", Username: "admin", Password: "pw-redfish",
		BIOS:    func() map[string]any { b, _ := emu.BIOS("m1"); return b },
		Volumes: func() []redfish.Volume { return emu.Volumes("m1") },
		Media:   func() (string, bool) { return emu.Media("m1") }}
}

// checkMediaBoots checks, at the end of a virtual media host's life, that
// every ramdisk start booted the conductor's ISO from the CD (none from
// the network) with the agent's virtual media parameters and the host's
// preprovisioning network data, and that the CD was left empty.
func checkMediaBoots(t *testing.T, m *machine, b bmcUnderTest, mac string) {
	t.Helper()
	if n := m.NetBoots(); n != 0 {
		t.Errorf("the machine network-booted %d times; a virtual media host boots only its CD", n)
	}
	ramdisk := 0
	for _, s := range m.Starts() {
		if s == "ramdisk" {
			ramdisk++
		}
	}
	boots := m.CDBoots()
	if len(boots) == 0 || len(boots) != ramdisk {
		t.Errorf("%d boots from the CD for %d ramdisk starts (starts %v)", len(boots), ramdisk, m.Starts())
		if len(boots) == 0 {
			return
		}
	}
	inspection := false
	for i, cb := range boots {
		if !strings.Contains(cb.Cmdline, "boot_method=vmedia") || !strings.Contains(cb.Cmdline, "ipa-api-url=") {
			t.Errorf("CD boot %d: command line %q lacks the agent's virtual media parameters", i, cb.Cmdline)
		}
		inspection = inspection || strings.Contains(cb.Cmdline, "ipa-inspection-callback-url=")
		if cb.Label != "config-2" || !strings.Contains(cb.NetworkData, mac) {
			t.Errorf("CD boot %d: image label %q, network data %q; want a config drive with the host's network data", i, cb.Label, cb.NetworkData)
		}
	}
	if !inspection {
		t.Errorf("no CD boot carried the inspection callback")
	}
	if img, in := b.Media(); in || img != "" {
		t.Errorf("virtual media left inserted at the end: %q", img)
	}
	t.Logf("%d ramdisk boots from virtual media, e.g. %q", len(boots), boots[0].Cmdline)
}
