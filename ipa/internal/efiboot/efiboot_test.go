package efiboot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/ferric-metal/ferric/ipa/internal/disk"
)

// mkdisk builds a 64 MiB disk image with one FAT partition from 1 MiB
// (sfdisk, mkfs.vfat --offset and mtools: no loop device) holding files:
// "path" (a stand-in binary) or "path=content".
func mkdisk(t *testing.T, label string, fatBits int, files ...string) string {
	t.Helper()
	for _, tool := range []string{"sfdisk", "mkfs.vfat", "mmd", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian fdisk, dosfstools, mtools)", tool)
		}
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	run := func(stdin string, name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(img, 64<<20)
	typ := "type=6"
	if label == "gpt" {
		typ = "type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	}
	run("label: "+label+"\nstart=2048, size=100000, "+typ+"\n", "sfdisk", "-q", img)
	run("", "mkfs.vfat", "-F", fmt.Sprint(fatBits), "--offset", "2048", img, "50000")
	made := map[string]bool{}
	for i, f := range files {
		f, content, ok := strings.Cut(f, "=")
		if !ok {
			content = "not really an EFI binary"
		}
		src := filepath.Join(dir, fmt.Sprint("payload", i))
		os.WriteFile(src, []byte(content), 0o644)
		parts := strings.Split(f, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/")
			if !made[d] {
				run("", "mmd", "-i", img+"@@1M", "::"+d)
				made[d] = true
			}
		}
		run("", "mcopy", "-i", img+"@@1M", src, "::"+f)
	}
	return img
}

func openDisk(t *testing.T, p string) *disk.File {
	t.Helper()
	d, err := disk.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestInstall(t *testing.T) {
	tests := []struct {
		name       string
		label      string
		fat        int
		files      []string
		wantLoader string
		wantLabel  string
	}{
		{"MBR FAT16 removable path", "dos", 16, []string{"EFI/BOOT/BOOTX64.EFI", "EFI/BOOT/ldlinux.e64"}, `\EFI\BOOT\BOOTX64.EFI`, Description},
		{"MBR FAT12 GRUB", "dos", 12, []string{"EFI/BOOT/BOOTX64.EFI", "EFI/debian/grubx64.efi"}, `\EFI\debian\grubx64.efi`, Description},
		{"GPT FAT32 shim before GRUB", "gpt", 32, []string{"EFI/ubuntu/grubx64.efi", "EFI/ubuntu/shimx64.efi", "EFI/BOOT/BOOTX64.EFI"}, `\EFI\ubuntu\shimx64.efi`, Description},
		{"long folder name", "gpt", 16, []string{"EFI/Some Long Vendor Name/grubx64.efi"}, `\EFI\Some Long Vendor Name\grubx64.efi`, Description},
		{"BOOTX64.CSV in UCS-2, as shim packages ship it", "gpt", 32, []string{"EFI/BOOT/BOOTX64.EFI", "EFI/BOOT/fbx64.efi",
			"EFI/debian/shimx64.efi", "EFI/debian/grubx64.efi", "EFI/debian/mmx64.efi",
			"EFI/debian/BOOTX64.CSV=" + csvUCS2("shimx64.efi,debian,,This is the boot entry for debian\r\n")},
			`\EFI\debian\shimx64.efi`, "debian"},
		{"BOOTX64.CSV naming another loader, in ASCII", "dos", 16, []string{"EFI/centos/shimx64.efi", "EFI/centos/grubx64.efi",
			"EFI/centos/BOOTX64.CSV=grubx64.efi,CentOS Linux,,\n"}, `\EFI\centos\grubx64.efi`, "CentOS Linux"},
		{"BOOTX64.CSV naming a missing loader is ignored", "gpt", 16, []string{"EFI/fedora/grubx64.efi",
			"EFI/fedora/BOOTX64.CSV=" + csvUCS2("shimx64.efi,Fedora,,\n")}, `\EFI\fedora\grubx64.efi`, Description},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := openDisk(t, mkdisk(t, tc.label, tc.fat, tc.files...))
			vdir := t.TempDir()
			// The firmware's own entries: Boot0000 and Boot0001, in that order.
			other := vars{dir: vdir}
			for _, n := range []string{"Boot0000", "Boot0001"} {
				if err := other.set(n, append([]byte{1, 0, 0, 0, 4, 0}, ucs2("UEFI "+n)...)); err != nil {
					t.Fatal(err)
				}
			}
			other.set("BootOrder", []byte{0, 0, 1, 0})

			res, err := Install(d, "", vdir)
			if err != nil {
				t.Fatalf("Install: %v", err)
			}
			if res.Loader != tc.wantLoader || res.Label != tc.wantLabel || res.Entry != "Boot0002" || fmt.Sprint(res.BootOrder) != "[2 0 1]" {
				t.Errorf("Install = %+v, want loader %s labelled %q as Boot0002 first in the order", res, tc.wantLoader, tc.wantLabel)
			}
			attrs, opt, err := other.get("Boot0002")
			if err != nil || attrs != varAttrs {
				t.Fatalf("Boot0002: attrs %#x, %v", attrs, err)
			}
			checkOption(t, d, opt, tc.label, tc.wantLabel, tc.wantLoader)
			if _, order, _ := other.get("BootOrder"); !bytes.Equal(order, []byte{2, 0, 0, 0, 1, 0}) {
				t.Errorf("BootOrder = % x", order)
			}
			// Again (a redeploy): the same entry, no duplicate.
			res2, err := Install(d, "", vdir)
			if err != nil || res2.Entry != "Boot0002" || fmt.Sprint(res2.BootOrder) != "[2 0 1]" {
				t.Errorf("second Install = %+v, %v", res2, err)
			}
		})
	}
}

// checkOption decodes an EFI_LOAD_OPTION and checks its device path
// against the disk's partition table.
func checkOption(t *testing.T, d disk.BlockDevice, opt []byte, label, desc0, loader string) {
	t.Helper()
	tbl, err := disk.ReadTable(d)
	if err != nil {
		t.Fatal(err)
	}
	p := tbl.Partitions[0]
	desc := ucs2(desc0)
	if binary.LittleEndian.Uint32(opt) != 1 || !bytes.Equal(opt[6:6+len(desc)], desc) {
		t.Fatalf("load option header % x", opt[:min(len(opt), 24)])
	}
	dp := opt[6+len(desc):]
	if int(binary.LittleEndian.Uint16(opt[4:])) != len(dp) {
		t.Fatalf("FilePathListLength %d, device path is %d bytes", binary.LittleEndian.Uint16(opt[4:]), len(dp))
	}
	hd := dp[:42]
	if hd[0] != 4 || hd[1] != 1 || binary.LittleEndian.Uint16(hd[2:]) != 42 ||
		binary.LittleEndian.Uint32(hd[4:]) != uint32(p.Number) ||
		binary.LittleEndian.Uint64(hd[8:]) != uint64(p.Start/512) || binary.LittleEndian.Uint64(hd[16:]) != uint64(p.Size/512) {
		t.Errorf("HD node % x, partition %+v", hd, p)
	}
	switch label {
	case "gpt":
		g, _ := guidBytes(p.UUID)
		if !bytes.Equal(hd[24:40], g[:]) || hd[40] != 2 || hd[41] != 2 {
			t.Errorf("HD signature % x, want GUID %s", hd[24:42], p.UUID)
		}
	default:
		var sig uint32
		fmt.Sscanf(tbl.DiskID, "0x%x", &sig)
		if binary.LittleEndian.Uint32(hd[24:]) != sig || hd[40] != 1 || hd[41] != 1 {
			t.Errorf("HD signature % x, want MBR %s", hd[24:42], tbl.DiskID)
		}
	}
	file := dp[42:]
	path := ucs2(loader)
	if file[0] != 4 || file[1] != 4 || int(binary.LittleEndian.Uint16(file[2:])) != 4+len(path) || !bytes.Equal(file[4:4+len(path)], path) {
		t.Errorf("file node % x, want %s", file[:min(len(file), 16)], loader)
	}
	if end := file[4+len(path):]; !bytes.Equal(end, []byte{0x7f, 0xff, 4, 0}) {
		t.Errorf("device path end % x", end)
	}
}

func TestInstallErrors(t *testing.T) {
	noLoader := openDisk(t, mkdisk(t, "dos", 16, "EFI/BOOT/readme.txt"))
	if _, err := Install(noLoader, "", t.TempDir()); !errors.Is(err, ErrNoESP) || !strings.Contains(err.Error(), "no boot loader") {
		t.Errorf("Install without a loader = %v", err)
	}
	d := openDisk(t, mkdisk(t, "dos", 16, "EFI/BOOT/BOOTX64.EFI"))
	if _, err := Install(d, "", filepath.Join(t.TempDir(), "missing")); !errors.Is(err, ErrNoVars) {
		t.Errorf("Install without efivarfs = %v", err)
	}
}

// csvUCS2 is s as UTF-16LE with a byte-order mark, as BOOTX64.CSV files are.
func csvUCS2(s string) string {
	b := []byte{0xFF, 0xFE}
	for _, c := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return string(b)
}

func TestParseBootCSV(t *testing.T) {
	tests := []struct {
		in            string
		loader, label string
		ok            bool
	}{
		{csvUCS2("shimx64.efi,debian,,This is the boot entry for debian\r\n"), "shimx64.efi", "debian", true},
		{"\uFEFFshimx64.efi,Red Hat Enterprise Linux,,This is the boot entry for RHEL\n", "shimx64.efi", "Red Hat Enterprise Linux", true},
		{"\n\r\n grubx64.efi , ubuntu \n", "grubx64.efi", "ubuntu", true},
		{"shimx64.efi\n", "", "", false},
		{"", "", "", false},
		{csvUCS2(""), "", "", false},
	}
	for _, tc := range tests {
		l, label, ok := parseBootCSV([]byte(tc.in))
		if l != tc.loader || label != tc.label || ok != tc.ok {
			t.Errorf("parseBootCSV(%q) = %q, %q, %v; want %q, %q, %v", tc.in, l, label, ok, tc.loader, tc.label, tc.ok)
		}
	}
}

// An OS's own entry (same label, an older disk) is updated, not duplicated.
func TestInstallUpdatesOSEntry(t *testing.T) {
	d := openDisk(t, mkdisk(t, "gpt", 16, "EFI/debian/shimx64.efi",
		"EFI/debian/BOOTX64.CSV="+csvUCS2("shimx64.efi,debian,,This is the boot entry for debian\r\n")))
	vdir := t.TempDir()
	v := vars{dir: vdir}
	v.set("Boot0000", append([]byte{1, 0, 0, 0, 4, 0}, ucs2("UEFI PXE")...))
	v.set("Boot0001", append([]byte{1, 0, 0, 0, 4, 0}, append(ucs2("debian"), 0x7f, 0xff, 4, 0)...))
	v.set("BootOrder", []byte{0, 0, 1, 0})
	res, err := Install(d, "", vdir)
	if err != nil || res.Entry != "Boot0001" || fmt.Sprint(res.BootOrder) != "[1 0]" {
		t.Fatalf("Install = %+v, %v; want the debian entry Boot0001 reused, first", res, err)
	}
	_, opt, _ := v.get("Boot0001")
	checkOption(t, d, opt, "gpt", "debian", `\EFI\debian\shimx64.efi`)
}

func TestGUIDBytes(t *testing.T) {
	g, err := guidBytes("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
	want := []byte{0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11, 0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b}
	if err != nil || !bytes.Equal(g[:], want) {
		t.Errorf("guidBytes = % x, %v", g, err)
	}
	if _, err := guidBytes("0x12345678-01"); err == nil {
		t.Errorf("guidBytes accepted an MBR PARTUUID")
	}
}

// tinyFAT12 is a hand-made 32 KiB FAT12 volume holding
// \EFI\BOOT\BOOTX64.EFI and \EFI\DEBIAN\BOOTX64.CSV (naming a loader
// that is not there): the seed of FuzzFAT.
func tinyFAT12() []byte {
	b := make([]byte, 64*512)
	bs := b[:512]
	binary.LittleEndian.PutUint16(bs[11:], 512) // bytes per sector
	bs[13] = 1                                  // sectors per cluster
	binary.LittleEndian.PutUint16(bs[14:], 1)   // reserved sectors
	bs[16] = 1                                  // FATs
	binary.LittleEndian.PutUint16(bs[17:], 16)  // root entries (1 sector)
	binary.LittleEndian.PutUint16(bs[19:], 64)  // sectors
	binary.LittleEndian.PutUint16(bs[22:], 1)   // FAT sectors
	bs[510], bs[511] = 0x55, 0xAA
	fat := b[512:1024] // clusters 2 to 5 end their chains
	copy(fat, []byte{0xF8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	entry := func(at []byte, name string, attr byte, cluster uint16, size int) {
		copy(at[:11], name)
		at[11] = attr
		binary.LittleEndian.PutUint16(at[26:], cluster)
		binary.LittleEndian.PutUint32(at[28:], uint32(size))
	}
	csv := csvUCS2("grubx64.efi,debian,,\r\n")
	entry(b[1024:], "EFI        ", 0x10, 2, 0)        // root directory, sector 2
	entry(b[1536:], "BOOT       ", 0x10, 3, 0)        // cluster 2 = sector 3
	entry(b[1568:], "DEBIAN     ", 0x10, 4, 0)        //
	entry(b[2048:], "BOOTX64 EFI", 0x20, 0, 0)        // cluster 3 = sector 4
	entry(b[2560:], "BOOTX64 CSV", 0x20, 5, len(csv)) // cluster 4 = sector 5
	copy(b[3072:], csv)                               // cluster 5 = sector 6
	return b
}

func TestTinyFAT12(t *testing.T) {
	b := tinyFAT12()
	f, err := openFAT(bytes.NewReader(b), 0, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if l, label, err := f.loader(); err != nil || l != `\EFI\BOOT\BOOTX64.EFI` || label != Description {
		t.Errorf("loader = %q, %q, %v", l, label, err)
	}
}

// FuzzFAT feeds corrupt volumes to the FAT reader: errors, never a panic,
// a hang or an unbounded allocation.
func FuzzFAT(f *testing.F) {
	f.Add(tinyFAT12())
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := openFAT(bytes.NewReader(b), 0, int64(len(b)))
		if err != nil {
			return
		}
		_, _, _ = fs.loader()
	})
}
