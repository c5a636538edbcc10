// Package efiboot registers a deployed whole-disk image with the UEFI
// firmware, as ironic-python-agent's install_bootloader does with
// efibootmgr for UEFI nodes: it finds the EFI system partition on the
// disk, the boot loader on it (the one its OS folder's BOOTX64.CSV names,
// else shim or GRUB of the OS, else the removable-media
// \EFI\BOOT\BOOTX64.EFI), writes a Boot#### load option
// for it through efivarfs and puts it first in BootOrder. The FAT
// directory reader, the load option encoding and the efivarfs writes are
// hand-written: no Go library does them without cgo or efibootmgr.
package efiboot

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf16"

	"golang.org/x/sys/unix"

	"github.com/ferric-metal/ferric/ipa/internal/disk"
)

// Description is the label of the boot entries this package writes when
// the ESP has no BOOTX64.CSV to name one.
const Description = "ferric"

// GlobalGUID is the vendor GUID of Boot#### and BootOrder.
const GlobalGUID = "8be4df61-93ca-11d2-aa0d-00e098032b8c"

// DefaultVarsDir is where efivarfs is mounted.
const DefaultVarsDir = "/sys/firmware/efi/efivars"

// ESPType is the GPT partition type of an EFI system partition.
const ESPType = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"

// fsImmutable is FS_IMMUTABLE_FL (efivarfs marks variables immutable).
const fsImmutable = 0x10

// varAttrs: non-volatile, boot service and runtime access.
const varAttrs = 0x7

// ErrNoVars means the machine has no EFI variables (not booted by UEFI, or
// efivarfs is not mounted).
var ErrNoVars = errors.New("efiboot: no EFI variables (efivarfs)")

// ErrNoESP means the disk has no EFI system partition with a boot loader.
var ErrNoESP = errors.New("efiboot: no EFI boot loader")

// Result tells what was registered.
type Result struct {
	Entry     string // "Boot0003"
	Loader    string // \EFI\BOOT\BOOTX64.EFI
	Label     string // "debian" (from BOOTX64.CSV) or Description
	Partition int
	BootOrder []uint16
}

// Install registers the boot loader of dev's EFI system partition (the
// partition whose UUID is espUUID when not empty) in the EFI variables
// under varsDir and makes it the first boot option.
func Install(dev disk.BlockDevice, espUUID, varsDir string) (Result, error) {
	return InstallAs(dev, espUUID, varsDir, "")
}

// InstallAs is Install with the entry's label given (one entry per disk,
// as for the members of a software RAID); "" labels it as Install does.
func InstallAs(dev disk.BlockDevice, espUUID, varsDir, label string) (Result, error) {
	if varsDir == "" {
		varsDir = DefaultVarsDir
	}
	if st, err := os.Stat(varsDir); err != nil || !st.IsDir() {
		return Result{}, fmt.Errorf("%w at %s", ErrNoVars, varsDir)
	}
	t, err := disk.ReadTable(dev)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrNoESP, err)
	}
	p, loader, found, err := findESP(dev, t, espUUID)
	if err != nil {
		return Result{}, err
	}
	if label == "" {
		label = found
	}
	opt, err := loadOption(label, dev.SectorSize(), t, p, loader)
	if err != nil {
		return Result{}, err
	}
	v := vars{dir: varsDir}
	num, err := v.entryFor(opt, label)
	if err != nil {
		return Result{}, err
	}
	name := fmt.Sprintf("Boot%04X", num)
	if err := v.set(name, opt); err != nil {
		return Result{}, err
	}
	order := []uint16{num}
	if _, cur, err := v.get("BootOrder"); err == nil {
		for i := 0; i+1 < len(cur); i += 2 {
			if n := binary.LittleEndian.Uint16(cur[i:]); n != num {
				order = append(order, n)
			}
		}
	}
	ob := make([]byte, 2*len(order))
	for i, n := range order {
		binary.LittleEndian.PutUint16(ob[2*i:], n)
	}
	if err := v.set("BootOrder", ob); err != nil {
		return Result{}, err
	}
	return Result{Entry: name, Loader: loader, Label: label, Partition: p.Number, BootOrder: order}, nil
}

// ESPUUID returns the UUID of t's partition typed as EFI system partition
// (GPT type or MBR 0xEF), or "".
func ESPUUID(t *disk.Table) string {
	for _, p := range t.Partitions {
		if isESP(p) {
			return p.UUID
		}
	}
	return ""
}

func isESP(p disk.Partition) bool {
	return strings.EqualFold(p.Type, ESPType) || strings.EqualFold(p.Type, "0xef")
}

// FindESP returns the EFI system partition of dev (as Install finds it)
// and the boot loader on it.
func FindESP(dev disk.BlockDevice, espUUID string) (disk.Partition, string, error) {
	t, err := disk.ReadTable(dev)
	if err != nil {
		return disk.Partition{}, "", fmt.Errorf("%w: %w", ErrNoESP, err)
	}
	p, loader, _, err := findESP(dev, t, espUUID)
	return p, loader, err
}

// findESP returns the EFI system partition, its loader and the entry's
// label: the partition named
// by espUUID, else those typed as ESP, else any FAT partition with an \EFI
// folder (whole-disk images often use a plain FAT type on MBR disks).
func findESP(dev disk.BlockDevice, t *disk.Table, espUUID string) (disk.Partition, string, string, error) {
	var cands, rest []disk.Partition
	for _, p := range t.Partitions {
		switch {
		case espUUID != "" && strings.EqualFold(p.UUID, espUUID):
			cands = append([]disk.Partition{p}, cands...)
		case isESP(p):
			cands = append(cands, p)
		default:
			rest = append(rest, p)
		}
	}
	var errs []error
	for _, p := range append(cands, rest...) {
		fs, err := openFAT(dev, p.Start, p.Size)
		if err != nil {
			continue
		}
		l, label, err := fs.loader()
		if err != nil {
			errs = append(errs, fmt.Errorf("partition %d: %w", p.Number, err))
			continue
		}
		return p, l, label, nil
	}
	if len(errs) > 0 {
		return disk.Partition{}, "", "", fmt.Errorf("%w on %s: %w", ErrNoESP, dev.Name(), errors.Join(errs...))
	}
	return disk.Partition{}, "", "", fmt.Errorf("%w on %s: no FAT partition", ErrNoESP, dev.Name())
}

// loadOption encodes an EFI_LOAD_OPTION: active, the description, and the
// device path HD(partition)/File(loader)/End.
func loadOption(desc string, sector int, t *disk.Table, p disk.Partition, loader string) ([]byte, error) {
	if sector <= 0 {
		sector = 512
	}
	hd := make([]byte, 42)
	hd[0], hd[1] = 0x04, 0x01 // media device path, hard drive
	binary.LittleEndian.PutUint16(hd[2:], 42)
	binary.LittleEndian.PutUint32(hd[4:], uint32(p.Number))
	binary.LittleEndian.PutUint64(hd[8:], uint64(p.Start/int64(sector)))
	binary.LittleEndian.PutUint64(hd[16:], uint64(p.Size/int64(sector)))
	if t.Kind == disk.KindGPT {
		g, err := guidBytes(p.UUID)
		if err != nil {
			return nil, fmt.Errorf("efiboot: partition %d GUID %q: %w", p.Number, p.UUID, err)
		}
		copy(hd[24:40], g[:])
		hd[40], hd[41] = 0x02, 0x02 // GPT, GUID signature
	} else {
		sig, err := strconv.ParseUint(strings.TrimPrefix(t.DiskID, "0x"), 16, 32)
		if err != nil {
			return nil, fmt.Errorf("efiboot: MBR disk signature %q: %w", t.DiskID, err)
		}
		binary.LittleEndian.PutUint32(hd[24:], uint32(sig))
		hd[40], hd[41] = 0x01, 0x01 // MBR, 32-bit signature
	}
	path := ucs2(loader)
	file := make([]byte, 4, 4+len(path))
	file[0], file[1] = 0x04, 0x04 // media device path, file path
	binary.LittleEndian.PutUint16(file[2:], uint16(4+len(path)))
	file = append(file, path...)
	dp := append(append(hd, file...), 0x7f, 0xff, 0x04, 0x00)

	b := make([]byte, 6, 6+len(desc)*2+2+len(dp))
	binary.LittleEndian.PutUint32(b, 1) // LOAD_OPTION_ACTIVE
	binary.LittleEndian.PutUint16(b[4:], uint16(len(dp)))
	b = append(b, ucs2(desc)...)
	return append(b, dp...), nil
}

// ucs2 is s in UTF-16LE with a terminating NUL.
func ucs2(s string) []byte {
	u := append(utf16.Encode([]rune(s)), 0)
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// guidBytes is a GUID string in EFI's mixed-endian binary form.
func guidBytes(s string) ([16]byte, error) {
	var g [16]byte
	h, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(h) != 16 || strings.Count(s, "-") != 4 {
		return g, errors.New("not a GUID")
	}
	g[0], g[1], g[2], g[3] = h[3], h[2], h[1], h[0]
	g[4], g[5], g[6], g[7] = h[5], h[4], h[7], h[6]
	copy(g[8:], h[8:])
	return g, nil
}

// vars reads and writes EFI global variables in an efivarfs directory.
type vars struct{ dir string }

func (v vars) path(name string) string { return filepath.Join(v.dir, name+"-"+GlobalGUID) }

// get returns a variable's attributes and data.
func (v vars) get(name string) (uint32, []byte, error) {
	b, err := os.ReadFile(v.path(name))
	if err != nil {
		return 0, nil, err
	}
	if len(b) < 4 {
		return 0, nil, fmt.Errorf("efiboot: variable %s: %d bytes", name, len(b))
	}
	return binary.LittleEndian.Uint32(b), b[4:], nil
}

// set writes a non-volatile variable: efivarfs takes the attributes and
// the data in one write. Existing variables are immutable files until
// their flag is cleared.
func (v vars) set(name string, data []byte) error {
	p := v.path(name)
	if f, err := os.Open(p); err == nil {
		if flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS); err == nil && flags&fsImmutable != 0 {
			_ = unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags&^fsImmutable))
		}
		f.Close()
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("efiboot: variable %s: %w", name, err)
	}
	buf := make([]byte, 4+len(data))
	binary.LittleEndian.PutUint32(buf, varAttrs)
	copy(buf[4:], data)
	_, werr := f.Write(buf)
	var st unix.Statfs_t
	if werr == nil && unix.Fstatfs(int(f.Fd()), &st) == nil && st.Type != unix.EFIVARFS_MAGIC {
		werr = f.Truncate(int64(len(buf))) // a plain directory (tests)
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("efiboot: writing variable %s: %w", name, werr)
	}
	return nil
}

// entryFor returns the Boot#### number to write opt to: an entry that
// says exactly that already, else one labelled label (ours from an
// earlier deploy, or the OS's own from an earlier install: updated rather
// than duplicated), else the lowest free number.
func (v vars) entryFor(opt []byte, label string) (uint16, error) {
	ents, err := os.ReadDir(v.dir)
	if err != nil {
		return 0, fmt.Errorf("efiboot: %w", err)
	}
	used := map[uint16]bool{}
	ours := -1
	for _, e := range ents {
		n, ok := bootNumber(e.Name())
		if !ok {
			continue
		}
		used[n] = true
		_, data, err := v.get(fmt.Sprintf("Boot%04X", n))
		if err != nil {
			continue
		}
		if bytes.Equal(data, opt) {
			return n, nil
		}
		if ours < 0 && describes(data, label) {
			ours = int(n)
		}
	}
	if ours >= 0 {
		return uint16(ours), nil
	}
	for n := 0; n <= 0xFFFF; n++ {
		if !used[uint16(n)] {
			return uint16(n), nil
		}
	}
	return 0, errors.New("efiboot: no free Boot#### number")
}

func bootNumber(file string) (uint16, bool) {
	name, guid, ok := strings.Cut(file, "-")
	if !ok || !strings.EqualFold(guid, GlobalGUID) || len(name) != 8 || !strings.HasPrefix(name, "Boot") {
		return 0, false
	}
	n, err := strconv.ParseUint(name[4:], 16, 16)
	return uint16(n), err == nil
}

// describes reports whether load option data carries description d.
func describes(data []byte, d string) bool {
	want := ucs2(d)
	return len(data) >= 6+len(want) && bytes.Equal(data[6:6+len(want)], want)
}
