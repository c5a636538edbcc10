package iso

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func needTools(t *testing.T) {
	t.Helper()
	tl := DefaultTools
	for _, p := range []string{tl.Xorriso, tl.GrubMkstandalone, tl.MkfsVfat, tl.Mmd, tl.Mcopy} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("skipping: %s not installed (.ci/deps.sh)", p)
		}
	}
	for _, f := range []string{tl.ISOLINUX, tl.LDLinux, tl.IsohdpfxMBR} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("skipping: %v (.ci/deps.sh)", err)
		}
	}
}

func writeTemp(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// isoFile extracts one file of an image with xorriso.
func isoFile(t *testing.T, img, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "x")
	out, err := exec.Command("xorriso", "-osirrox", "on", "-indev", img, "-extract", name, dst).CombinedOutput()
	if err != nil {
		t.Fatalf("extract %s: %v: %s", name, err, out)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBuild(t *testing.T) {
	needTools(t)
	ctx := context.Background()
	kernel := writeTemp(t, "vmlinuz", "KERNEL-BYTES")
	ramdisk := writeTemp(t, "initrd", "RAMDISK-BYTES")
	b := &Builder{Dir: t.TempDir()}
	params := "console=ttyS0 ipa-api-url=http://10.99.0.1:6385 ipa-inspection-callback-url=http://10.99.0.1:5050/v1/continue"
	in := Input{Kernel: kernel, Ramdisk: ramdisk, Params: params, Files: map[string][]byte{"config/network_data.json": []byte(`{"links":[]}`)}}
	img, err := b.Build(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"/boot/vmlinuz":             "KERNEL-BYTES",
		"/boot/initrd":              "RAMDISK-BYTES",
		"/config/network_data.json": `{"links":[]}`,
		"/isolinux/isolinux.cfg":    "APPEND initrd=/boot/initrd " + params + "\n",
		"/boot/grub/grub.cfg":       "linux /boot/vmlinuz " + params + "\n",
		"/ferric-vmedia":            version,
		"/isolinux/isolinux.bin":    "",
		"/boot/efiboot.img":         "",
		"/isolinux/ldlinux.c32":     "",
	} {
		if got := isoFile(t, img, name); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want it to hold %q", name, got, want)
		}
	}
	// Both boot records: BIOS (ISOLINUX, no emulation) and UEFI (the ESP).
	out, err := exec.Command("xorriso", "-indev", img, "-report_el_torito", "plain").CombinedOutput()
	if err != nil {
		t.Fatalf("report_el_torito: %v: %s", err, out)
	}
	rep := string(out)
	if !strings.Contains(rep, "BIOS") || !strings.Contains(rep, "UEFI") || !strings.Contains(rep, "/isolinux/isolinux.bin") || !strings.Contains(rep, "/boot/efiboot.img") {
		t.Errorf("El Torito report lacks the BIOS or the UEFI entry:\n%s", rep)
	}
	// The ESP holds GRUB at the removable-media path.
	esp := filepath.Join(t.TempDir(), "esp.img")
	if err := os.WriteFile(esp, []byte(isoFile(t, img, "/boot/efiboot.img")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mdir", "-i", esp, "::/EFI/BOOT/BOOTX64.EFI").CombinedOutput(); err != nil {
		t.Errorf("ESP has no EFI/BOOT/BOOTX64.EFI: %v: %s", err, out)
	}

	// The same inputs: the same image, not built again, even concurrently.
	fi0, _ := os.Stat(img)
	var wg sync.WaitGroup
	paths := make([]string, 4)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := b.Build(ctx, in)
			if err != nil {
				t.Error(err)
			}
			paths[i] = p
		}()
	}
	wg.Wait()
	for _, p := range paths {
		if p != img {
			t.Errorf("rebuild path %s, want %s", p, img)
		}
	}
	if fi, _ := os.Stat(img); b.Builds() != 1 || !fi.ModTime().Equal(fi0.ModTime()) {
		t.Errorf("same inputs built again: %d builds", b.Builds())
	}
	// New inputs asked concurrently: built once.
	in2 := in
	in2.Params = "console=ttyS0 other"
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := b.Build(ctx, in2)
			if err != nil {
				t.Error(err)
			}
			paths[i] = p
		}()
	}
	wg.Wait()
	if b.Builds() != 2 || paths[0] == img || paths[0] != paths[3] {
		t.Errorf("other parameters: %d builds, paths %q (first image %s)", b.Builds(), paths, img)
	}
	// A changed kernel is a new image, a cached hash notwithstanding.
	if err := os.WriteFile(kernel, []byte("KERNEL-BYTES-2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, err := b.Build(ctx, in); err != nil || p == img {
		t.Errorf("changed kernel: %s, %v; want a new image", p, err)
	}
	// Nothing but images and the cached ESP is left in the directory.
	ents, _ := os.ReadDir(b.Dir)
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".iso") && e.Name() != "efiboot-"+version+".img" {
			t.Errorf("left in the image directory: %s", e.Name())
		}
	}
	if len(ents) != 4 {
		t.Errorf("%d files in the image directory, want 3 images and the ESP", len(ents))
	}
	if err := b.Remove(img); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(img); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Remove left %s", img)
	}
	if err := b.Remove("/etc/passwd"); err == nil {
		t.Errorf("Remove of a file outside the directory: nil error")
	}
}

// volumeID reads an image's volume label as xorriso reports it.
func volumeID(t *testing.T, img string) string {
	t.Helper()
	out, err := exec.Command("xorriso", "-indev", img, "-pvd_info").CombinedOutput()
	if err != nil {
		t.Fatalf("pvd_info: %v: %s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "Volume Id" {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no Volume Id in pvd_info:\n%s", out)
	return ""
}

// TestBuildLabel checks the volume label (the default, and a config
// drive's for an image carrying network data) and that the label is part
// of the cache key.
func TestBuildLabel(t *testing.T) {
	needTools(t)
	ctx := context.Background()
	kernel := writeTemp(t, "vmlinuz", "K")
	ramdisk := writeTemp(t, "initrd", "R")
	b := &Builder{Dir: t.TempDir()}
	nd := `{"links":[{"id":"eth0","type":"phy","ethernet_mac_address":"52:54:00:00:00:01"}],"networks":[],"services":[]}`
	in := Input{Kernel: kernel, Ramdisk: ramdisk, Params: "console=ttyS0", Files: map[string][]byte{NetworkDataPath: []byte(nd)}}
	plain, err := b.Build(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	in.Label = ConfigDriveLabel
	cd, err := b.Build(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if plain == cd || b.Builds() != 2 {
		t.Fatalf("another label reused the image: %s, %s (%d builds)", plain, cd, b.Builds())
	}
	for _, tc := range []struct{ img, want string }{{plain, Label}, {cd, ConfigDriveLabel}} {
		if got := volumeID(t, tc.img); got != tc.want {
			t.Errorf("%s: volume id %q, want %q", tc.img, got, tc.want)
		}
	}
	if got := isoFile(t, cd, "/"+NetworkDataPath); got != nd {
		t.Errorf("%s = %q, want %q", NetworkDataPath, got, nd)
	}
	// The label of the image as Linux's blkid (udev) sees it, which is
	// what the agent's finder goes by.
	if _, err := exec.LookPath("blkid"); err == nil {
		out, err := exec.Command("blkid", "-o", "value", "-s", "LABEL", cd).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != ConfigDriveLabel {
			t.Errorf("blkid LABEL = %q, %v; want %q", out, err, ConfigDriveLabel)
		}
	}
}

func TestBuildBadInput(t *testing.T) {
	kernel := writeTemp(t, "vmlinuz", "K")
	ramdisk := writeTemp(t, "initrd", "R")
	dir := t.TempDir()
	b := &Builder{Dir: dir}
	tests := []struct {
		name    string
		in      Input
		wantMsg string
	}{
		{"missing kernel", Input{Kernel: filepath.Join(dir, "nope"), Ramdisk: ramdisk}, "kernel"},
		{"no kernel", Input{Ramdisk: ramdisk}, "no kernel"},
		{"missing ramdisk", Input{Kernel: kernel, Ramdisk: filepath.Join(dir, "nope")}, "ramdisk"},
		{"kernel is a directory", Input{Kernel: dir, Ramdisk: ramdisk}, "not a regular file"},
		{"newline in params", Input{Kernel: kernel, Ramdisk: ramdisk, Params: "a\nb"}, "kernel parameters"},
		{"grub syntax in params", Input{Kernel: kernel, Ramdisk: ramdisk, Params: "a=$x"}, "kernel parameters"},
		{"long params", Input{Kernel: kernel, Ramdisk: ramdisk, Params: strings.Repeat("a", 2001)}, "2000"},
		{"extra file on the boot path", Input{Kernel: kernel, Ramdisk: ramdisk, Files: map[string][]byte{"/boot/vmlinuz": nil}}, "extra file"},
		{"extra file escaping", Input{Kernel: kernel, Ramdisk: ramdisk, Files: map[string][]byte{"../EFI/x": nil}}, "extra file"},
		{"label with a space", Input{Kernel: kernel, Ramdisk: ramdisk, Label: "config 2"}, "label"},
		{"long label", Input{Kernel: kernel, Ramdisk: ramdisk, Label: strings.Repeat("L", 33)}, "label"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.Build(context.Background(), tc.in)
			if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Build = %v, want ErrBadInput naming %q", err, tc.wantMsg)
			}
		})
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("bad input left files: %v", ents)
	}
	if b.Builds() != 0 {
		t.Errorf("bad input ran %d builds", b.Builds())
	}
}
