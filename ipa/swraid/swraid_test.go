package swraid

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/ipa/internal/disk"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

func cfgOf(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestValidate(t *testing.T) {
	const pre = "Could not validate Software RAID config for n1: "
	for _, tc := range []struct {
		name, cfg string
		disks     int
		want      string
	}{
		{"mirror", `{"logical_disks":[{"raid_level":"1","size_gb":"MAX","controller":"software"}]}`, 2, ""},
		{"mirror and stripe", `{"logical_disks":[{"raid_level":"1","size_gb":10,"controller":"software"},{"raid_level":"0","size_gb":"MAX","controller":"software"}]}`, 2, ""},
		{"RAID-10 second", `{"logical_disks":[{"raid_level":"1","size_gb":10,"controller":"software"},{"raid_level":"1+0","size_gb":"MAX","controller":"software"}]}`, 4, ""},
		{"as metal3 sends softwareRAIDVolumes", `{"logical_disks":[{"raid_level":"1","size_gb":"MAX","controller":"software","physical_disks":[{"name":"/dev/vda"},{"name":"/dev/vdb"}]}]}`, 2, ""},
		{"empty", `{"logical_disks":[]}`, 2, "RAID config contains no logical disks"},
		{"first not RAID-1", `{"logical_disks":[{"raid_level":"0","size_gb":"MAX","controller":"software"}]}`, 2,
			pre + "Software RAID Configuration requires RAID-1 for the first logical disk"},
		{"three volumes", `{"logical_disks":[{"raid_level":"1","size_gb":1,"controller":"software"},{"raid_level":"0","size_gb":1,"controller":"software"},{"raid_level":"0","size_gb":1,"controller":"software"}]}`, 2,
			pre + "Software RAID configuration requires one or two logical disks"},
		{"hardware volume mixed in", `{"logical_disks":[{"raid_level":"1","size_gb":1,"controller":"software"},{"raid_level":"0","size_gb":1}]}`, 2,
			pre + "Software RAID configuration requires all logical disks to have 'controller'='software'"},
		{"two MAX", `{"logical_disks":[{"raid_level":"1","size_gb":"MAX","controller":"software"},{"raid_level":"0","size_gb":"MAX","controller":"software"}]}`, 2,
			pre + "Software RAID can have only one RAID device with size 'MAX'"},
		{"RAID-5 second", `{"logical_disks":[{"raid_level":"1","size_gb":1,"controller":"software"},{"raid_level":"5","size_gb":"MAX","controller":"software"}]}`, 3,
			pre + "Software RAID configuration does not support RAID level 5"},
		{"one physical disk", `{"logical_disks":[{"raid_level":"1","size_gb":1,"controller":"software","physical_disks":[{"name":"/dev/vda"}]}]}`, 2,
			pre + "The physical_disks parameter for software RAID must be a list with at least 2 items, each specifying a disk in the device hints format; " +
				"Software RAID level 1 needs at least 2 disks, the machine has 1"},
		{"physical disks as names", `{"logical_disks":[{"raid_level":"1","size_gb":1,"controller":"software","physical_disks":["a","b"]}]}`, 2,
			pre + "The physical_disks parameter for software RAID must be a list of device hints (dictionaries)"},
		{"mirror on one disk", `{"logical_disks":[{"raid_level":"1","size_gb":"MAX","controller":"software"}]}`, 1,
			pre + "Software RAID level 1 needs at least 2 disks, the machine has 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate("n1", cfgOf(t, tc.cfg), tc.disks)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Validate = %q, want %q", got, tc.want)
			}
		})
	}
}

// fakeMachine is a machine's /dev and /sys in a directory: disks are
// files, partitions appear when the table is re-read, and mdadm is a
// recording fake that adds and removes arrays in the fake sysfs.
type fakeMachine struct {
	t        *testing.T
	dev, sys string
	cmds     []string
	// superblocks are the devices mdadm --examine finds a superblock on.
	superblocks map[string]bool
}

func newFakeMachine(t *testing.T, disks ...string) *fakeMachine {
	root := t.TempDir()
	f := &fakeMachine{t: t, dev: filepath.Join(root, "dev"), sys: filepath.Join(root, "sys"), superblocks: map[string]bool{}}
	for _, d := range []string{f.dev, filepath.Join(f.sys, "block"), filepath.Join(f.sys, "class", "block"), filepath.Join(f.sys, "devices")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range disks {
		if err := os.WriteFile(filepath.Join(f.dev, d), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(filepath.Join(f.dev, d), 64<<20); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fakeMachine) manager() *Manager {
	return &Manager{Run: f, Sys: f.sys, Dev: f.dev, Reread: f.reread,
		Open: func(name string) (disk.BlockDevice, error) { return disk.Open(name) }}
}

// reread creates the partitions of a disk's table in the fake /dev and
// /sys (start in sectors).
func (f *fakeMachine) reread(name string) error {
	dev, err := disk.Open(name)
	if err != nil {
		return err
	}
	defer dev.Close()
	d := filepath.Base(name)
	tbl, err := disk.ReadTable(dev)
	if err != nil {
		return nil
	}
	for _, p := range tbl.Partitions {
		pn := d + string(rune('0'+p.Number))
		_ = os.WriteFile(filepath.Join(f.dev, pn), nil, 0o644)
		dir := filepath.Join(f.sys, "devices", "block", d, pn)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		_ = os.WriteFile(filepath.Join(dir, "start"), []byte(strings.TrimSpace(itoa(p.Start/512))+"\n"), 0o644)
		link := filepath.Join(f.sys, "class", "block", pn)
		_ = os.Remove(link)
		if err := os.Symlink(dir, link); err != nil {
			return err
		}
	}
	return nil
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// Run fakes mdadm: --create adds the array to sysfs, --stop removes it,
// --examine answers from superblocks, --zero-superblock clears them.
func (f *fakeMachine) Run(_ context.Context, name string, args ...string) (string, error) {
	f.cmds = append(f.cmds, name+" "+strings.Join(args, " "))
	if name != "mdadm" {
		return "", os.ErrNotExist
	}
	switch args[0] {
	case "--create":
		md := filepath.Base(args[1])
		comps := args[len(args)-2:]
		base := filepath.Join(f.sys, "block", md)
		for _, c := range comps {
			pn := filepath.Base(c)
			if err := os.MkdirAll(filepath.Join(base, "slaves", pn), 0o755); err != nil {
				return "", err
			}
			_ = os.MkdirAll(filepath.Join(base, "md", "dev-"+pn), 0o755)
			_ = os.WriteFile(filepath.Join(base, "md", "dev-"+pn, "offset"), []byte("2048\n"), 0o644)
			f.superblocks[c] = true
		}
		_ = os.WriteFile(filepath.Join(base, "md", "level"), []byte("raid1\n"), 0o644)
		_ = os.WriteFile(filepath.Join(base, "size"), []byte("100000\n"), 0o644)
		if err := os.WriteFile(args[1], nil, 0o644); err != nil {
			return "", err
		}
		return "", os.Truncate(args[1], 32<<20)
	case "--stop":
		return "", os.RemoveAll(filepath.Join(f.sys, "block", filepath.Base(args[1])))
	case "--examine":
		if f.superblocks[args[1]] {
			return "", nil
		}
		return "mdadm: No md superblock detected on " + args[1], os.ErrNotExist
	case "--zero-superblock":
		delete(f.superblocks, args[1])
	}
	return "", nil
}

func TestCreateDeleteAndBoot(t *testing.T) {
	ctx := context.Background()
	f := newFakeMachine(t, "vda", "vdb")
	m := f.manager()
	disks := []protocol.Disk{{Name: filepath.Join(f.dev, "vda"), Size: 64 << 20}, {Name: filepath.Join(f.dev, "vdb"), Size: 64 << 20}}
	cfg := cfgOf(t, `{"logical_disks":[{"raid_level":"1","size_gb":"MAX","controller":"software","is_root_volume":true}]}`)

	// UEFI keeps 551 MiB free on each disk: 64 MiB disks are too small.
	if _, err := m.Create(ctx, "n1", cfg, disks, true); err == nil || !strings.Contains(err.Error(), "logical disk of size MAX does not fit") {
		t.Errorf("Create on UEFI = %v, want a refusal", err)
	}
	got, err := m.Create(ctx, "n1", cfg, disks, false)
	if err != nil {
		t.Fatalf("Create = %v", err)
	}
	if got["logical_disks"] == nil {
		t.Errorf("Create returned %v, want the configuration", got)
	}
	vda1, vdb1 := filepath.Join(f.dev, "vda1"), filepath.Join(f.dev, "vdb1")
	wantCreate := "mdadm --create " + filepath.Join(f.dev, "md0") + " --force --run --metadata=1 --level 1 --name " +
		filepath.Join(f.dev, "md0") + " --raid-devices 2 " + vda1 + " " + vdb1
	if !slices.Contains(f.cmds, wantCreate) {
		t.Errorf("mdadm calls %q, want %q", f.cmds, wantCreate)
	}
	for _, d := range disks {
		dev, _ := disk.Open(d.Name)
		tbl, err := disk.ReadTable(dev)
		dev.Close()
		if err != nil || tbl.Kind != disk.KindMBR || len(tbl.Partitions) != 1 ||
			tbl.Partitions[0].Start != 1<<20 || tbl.Partitions[0].Start+tbl.Partitions[0].Size != 64<<20 {
			t.Errorf("holder table of %s = %+v, %v; want one partition from 1 MiB to the end", d.Name, tbl, err)
		}
	}
	// A second create finds the holder partitions.
	if _, err := m.Create(ctx, "n1", cfg, disks, false); err == nil || !strings.Contains(err.Error(), "Partitions detected on devices") {
		t.Errorf("Create over partitions = %v", err)
	}

	arrays, err := m.Arrays()
	if err != nil || len(arrays) != 1 || arrays[0].Level != "raid1" || len(arrays[0].Members) != 2 ||
		arrays[0].Members[0].Disk != disks[0].Name || arrays[0].Members[0].PartStart != 1<<20 || arrays[0].Members[0].DataOffset != 1<<20 {
		t.Fatalf("Arrays = %+v, %v", arrays, err)
	}
	if h := Holders(arrays); !h[disks[0].Name] || !h[disks[1].Name] {
		t.Errorf("Holders = %v", h)
	}

	// An image with its boot partition at sector 2048 is written to md0;
	// both member disks then boot it.
	img := make([]byte, 512)
	for i := range 440 {
		img[i] = byte(i)
	}
	copy(img[446:], mbrEntry(true, 0x06, 2048, 4096))
	img[510], img[511] = 0x55, 0xaa
	if err := os.WriteFile(arrays[0].Name, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.InstallBIOSBoot(arrays[0]); err != nil {
		t.Fatalf("InstallBIOSBoot = %v", err)
	}
	for _, d := range disks {
		b, _ := os.ReadFile(d.Name)
		e2 := b[446+16 : 446+32]
		if !slices.Equal(b[:440], img[:440]) || e2[0] != 0x80 || e2[4] != 0x06 ||
			binary.LittleEndian.Uint32(e2[8:]) != 2048+2048+2048 || binary.LittleEndian.Uint32(e2[12:]) != 4096 || b[446] != 0 ||
			binary.LittleEndian.Uint32(b[446+8:]) != 2048 {
			t.Errorf("MBR of %s after InstallBIOSBoot: code ok %v, entries % x", d.Name, slices.Equal(b[:440], img[:440]), b[446:478])
		}
	}
	// Not an MBR image: refused.
	if err := os.WriteFile(arrays[0].Name, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.InstallBIOSBoot(arrays[0]); err == nil {
		t.Errorf("InstallBIOSBoot of an image without an MBR succeeded")
	}

	f.cmds = nil
	if err := m.Delete(ctx); err != nil {
		t.Fatalf("Delete = %v", err)
	}
	md0 := filepath.Join(f.dev, "md0")
	for _, want := range []string{"mdadm --assemble --scan", "mdadm --stop " + md0, "mdadm --zero-superblock " + vda1, "mdadm --zero-superblock " + vdb1} {
		if !slices.Contains(f.cmds, want) {
			t.Errorf("Delete ran %q, want %q among them", f.cmds, want)
		}
	}
	for _, d := range disks {
		dev, _ := disk.Open(d.Name)
		_, err := disk.ReadTable(dev)
		dev.Close()
		if err == nil {
			t.Errorf("%s still has a partition table after Delete", d.Name)
		}
	}
	if arrays, _ := m.Arrays(); len(arrays) != 0 {
		t.Errorf("arrays after Delete: %+v", arrays)
	}
}

// mkESPImage builds a 64 MiB whole-disk image with an MBR and a FAT
// partition from 1 MiB holding \EFI\BOOT\BOOTX64.EFI (sfdisk, mkfs.vfat
// --offset and mtools: no loop device).
func mkESPImage(t *testing.T, path string) {
	t.Helper()
	for _, tool := range []string{"sfdisk", "mkfs.vfat", "mmd", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian fdisk, dosfstools, mtools)", tool)
		}
	}
	run := func(stdin, name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 64<<20); err != nil {
		t.Fatal(err)
	}
	run("start=2048, size=100000, type=6, bootable\n", "sfdisk", "-q", path)
	run("", "mkfs.vfat", "-F", "16", "--offset", "2048", path, "50000")
	loader := filepath.Join(t.TempDir(), "BOOTX64.EFI")
	if err := os.WriteFile(loader, []byte("not really an EFI binary"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("", "mmd", "-i", path+"@@1M", "::EFI", "::EFI/BOOT")
	run("", "mcopy", "-i", path+"@@1M", loader, "::EFI/BOOT/BOOTX64.EFI")
}

func TestUEFIBoot(t *testing.T) {
	ctx := context.Background()
	f := newFakeMachine(t, "vda", "vdb")
	for _, d := range []string{"vda", "vdb"} {
		if err := os.Truncate(filepath.Join(f.dev, d), 1536<<20); err != nil {
			t.Fatal(err)
		}
	}
	m := f.manager()
	disks := []protocol.Disk{{Name: filepath.Join(f.dev, "vda"), Size: 1536 << 20}, {Name: filepath.Join(f.dev, "vdb"), Size: 1536 << 20}}
	cfg := cfgOf(t, `{"logical_disks":[{"raid_level":"1","size_gb":"MAX","controller":"software"}]}`)
	if _, err := m.Create(ctx, "n1", cfg, disks, true); err != nil {
		t.Fatalf("Create (UEFI) = %v", err)
	}
	for _, d := range disks {
		dev, _ := disk.Open(d.Name)
		tbl, err := disk.ReadTable(dev)
		dev.Close()
		if err != nil || len(tbl.Partitions) != 1 || tbl.Partitions[0].Start != ESPSize+raidStart {
			t.Fatalf("holder table of %s = %+v, %v; want the member from 551 MiB", d.Name, tbl, err)
		}
	}
	arrays, _ := m.Arrays()
	if len(arrays) != 1 {
		t.Fatalf("Arrays = %+v", arrays)
	}
	mkESPImage(t, arrays[0].Name)
	if err := m.InstallUEFIBoot(ctx, arrays[0], filepath.Join(t.TempDir(), "no-efivars")); err != nil {
		t.Fatalf("InstallUEFIBoot = %v", err)
	}
	vda2, vdb2 := filepath.Join(f.dev, "vda2"), filepath.Join(f.dev, "vdb2")
	want := "mdadm --create " + filepath.Join(f.dev, "md1") + " --force --run --metadata=1.0 --level 1 --name esp --raid-devices 2 " + vda2 + " " + vdb2
	if !slices.Contains(f.cmds, want) {
		t.Errorf("mdadm calls %q, want %q", f.cmds, want)
	}
	for _, d := range disks {
		dev, _ := disk.Open(d.Name)
		tbl, err := disk.ReadTable(dev)
		dev.Close()
		if err != nil || len(tbl.Partitions) != 2 || tbl.Partitions[1].Type != "0xef" || tbl.Partitions[1].Start != raidStart || tbl.Partitions[1].Size != ESPSize {
			t.Errorf("holder table of %s after InstallUEFIBoot = %+v, %v; want an ESP (0xef) at 1 MiB of 550 MiB", d.Name, tbl, err)
		}
	}
	img, _ := os.ReadFile(arrays[0].Name)
	esp, _ := os.ReadFile(filepath.Join(f.dev, "md1"))
	if len(esp) < 100000*512 || !slices.Equal(esp[:100000*512], img[1<<20:1<<20+100000*512]) {
		t.Errorf("the ESP mirror does not hold the image's EFI system partition")
	}
	// An array built for BIOS (no room before the members) is refused.
	b := newFakeMachine(t, "vda", "vdb")
	bm := b.manager()
	bd := []protocol.Disk{{Name: filepath.Join(b.dev, "vda"), Size: 64 << 20}, {Name: filepath.Join(b.dev, "vdb"), Size: 64 << 20}}
	if _, err := bm.Create(ctx, "n1", cfg, bd, false); err != nil {
		t.Fatal(err)
	}
	ba, _ := bm.Arrays()
	mkESPImage(t, ba[0].Name)
	if err := bm.InstallUEFIBoot(ctx, ba[0], ""); err == nil || !strings.Contains(err.Error(), "no room for an EFI system partition") {
		t.Errorf("InstallUEFIBoot on a BIOS array = %v", err)
	}
}

func TestCreateTwoVolumes(t *testing.T) {
	ctx := context.Background()
	f := newFakeMachine(t, "vda", "vdb")
	for _, d := range []string{"vda", "vdb"} {
		if err := os.Truncate(filepath.Join(f.dev, d), 3<<30); err != nil {
			t.Fatal(err)
		}
	}
	m := f.manager()
	disks := []protocol.Disk{{Name: filepath.Join(f.dev, "vda"), Size: 3 << 30}, {Name: filepath.Join(f.dev, "vdb"), Size: 3 << 30}}
	// The MAX volume is built last (md1, second partition), as IPA does.
	cfg := cfgOf(t, `{"logical_disks":[{"raid_level":"1","size_gb":"MAX","controller":"software"},{"raid_level":"1+0","size_gb":1,"controller":"software","volume_name":"data"}]}`)
	if _, err := m.Create(ctx, "n1", cfg, disks, false); err != nil {
		t.Fatalf("Create = %v", err)
	}
	vda, vdb := filepath.Join(f.dev, "vda"), filepath.Join(f.dev, "vdb")
	for _, want := range []string{
		"mdadm --create " + filepath.Join(f.dev, "md0") + " --force --run --metadata=1 --level 10 --name data --raid-devices 2 " + vda + "1 " + vdb + "1",
		"mdadm --create " + filepath.Join(f.dev, "md1") + " --force --run --metadata=1 --level 1 --name " + filepath.Join(f.dev, "md1") + " --raid-devices 2 " + vda + "2 " + vdb + "2",
	} {
		if !slices.Contains(f.cmds, want) {
			t.Errorf("mdadm calls %q, want %q", f.cmds, want)
		}
	}
	dev, _ := disk.Open(vda)
	tbl, err := disk.ReadTable(dev)
	dev.Close()
	if err != nil || len(tbl.Partitions) != 2 || tbl.Partitions[0].Start != 1<<20 || tbl.Partitions[0].Start+tbl.Partitions[0].Size != 1<<30 ||
		tbl.Partitions[1].Start != 1<<30 || tbl.Partitions[1].Start+tbl.Partitions[1].Size != 3<<30 {
		t.Errorf("holder table = %+v, %v; want [1 MiB, 1 GiB) and [1 GiB, end)", tbl, err)
	}
	// physical_disks hints that name no disk are refused before anything is written.
	g := newFakeMachine(t, "vda", "vdb")
	gd := []protocol.Disk{{Name: filepath.Join(g.dev, "vda"), Size: 64 << 20}, {Name: filepath.Join(g.dev, "vdb"), Size: 64 << 20}}
	bad := cfgOf(t, `{"logical_disks":[{"raid_level":"1","size_gb":"MAX","controller":"software","physical_disks":[{"name":"/dev/sdx"},{"name":"/dev/sdy"}]}]}`)
	if _, err := g.manager().Create(ctx, "n1", bad, gd, false); err == nil || !strings.Contains(err.Error(), "No candidates for physical disk") {
		t.Errorf("Create with hints matching nothing = %v", err)
	}
	if len(g.cmds) != 0 {
		t.Errorf("mdadm ran %q for a config that cannot be built", g.cmds)
	}
}
