package netconfig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
	"golang.org/x/sys/unix"
)

// Label is the filesystem label of the medium holding network data, as
// Ironic writes it on a virtual media ISO with openstack/ files and as
// Nova writes config drives.
const Label = "config-2"

// Labels are the filesystem labels searched, in this order of preference:
// Label, then the labels of boot ISOs that may carry network data beside
// the ramdisk: Ironic's VMEDIA_BOOT_ISO (IPA reads configuration from both)
// and ferric's FERRIC_BOOT (images/iso). Only a medium holding DataPath is
// taken.
var Labels = []string{Label, "VMEDIA_BOOT_ISO", "FERRIC_BOOT"}

// DataPath is where network_data.json lies on that medium.
const DataPath = "openstack/latest/network_data.json"

// ErrNotFound means no block device has one of Labels or none holds
// DataPath: the caller keeps to DHCP.
var ErrNotFound = errors.New("netconfig: no config-2 medium with network_data.json")

// Finder looks for the medium. The zero value looks at the running
// machine.
type Finder struct {
	SysBlock string // default /sys/class/block
	Dev      string // default /dev
	MountDir string // default a directory under /run
}

// DeviceLabel reads the filesystem label of the ISO9660 or FAT filesystem
// on the device at path ("" when it has neither). It reads the label from
// the superblock, as blkid does: the ramdisk has no udev and no
// /dev/disk/by-label, and the two formats are a few fixed offsets.
func DeviceLabel(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	// ISO9660: primary volume descriptor at sector 16 (2048-byte sectors):
	// type 1, "CD001", volume identifier at 40..72.
	pvd := make([]byte, 2048)
	if n, _ := f.ReadAt(pvd, 16*2048); n == len(pvd) && pvd[0] == 1 && string(pvd[1:6]) == "CD001" {
		return strings.TrimRight(string(pvd[40:72]), " \x00"), nil
	}
	// FAT: boot sector signature 0x55AA; FAT12/16 extended boot record
	// label at 43 (signature 0x29 at 38), FAT32 at 71 (0x29 at 66).
	bs := make([]byte, 512)
	if n, _ := f.ReadAt(bs, 0); n == len(bs) && bs[510] == 0x55 && bs[511] == 0xAA {
		switch {
		case bs[66] == 0x29 && bytes.HasPrefix(bs[82:90], []byte("FAT32")):
			return strings.TrimRight(string(bs[71:82]), " \x00"), nil
		case bs[38] == 0x29 && bytes.HasPrefix(bs[54:62], []byte("FAT")):
			return strings.TrimRight(string(bs[43:54]), " \x00"), nil
		}
	}
	return "", nil
}

// Devices lists the block devices with one of Labels (any case; FAT
// labels are upper case), config-2 first, whole CD drives and disks
// before partitions.
func (f Finder) Devices() ([]string, error) {
	sys, dev := f.SysBlock, f.Dev
	if sys == "" {
		sys = "/sys/class/block"
	}
	if dev == "" {
		dev = "/dev"
	}
	ents, err := os.ReadDir(sys)
	if err != nil {
		return nil, fmt.Errorf("netconfig: %w", err)
	}
	type cand struct {
		path string
		rank int
		part bool
	}
	var found []cand
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, "ram") || strings.HasPrefix(name, "zram") {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(sys, name, "size")); err == nil && strings.TrimSpace(string(b)) == "0" {
			continue // empty drive or unbound loop device
		}
		p := filepath.Join(dev, name)
		l, err := DeviceLabel(p)
		if err != nil {
			continue
		}
		for rank, want := range Labels {
			if strings.EqualFold(l, want) {
				found = append(found, cand{p, rank, isPartition(sys, name)})
			}
		}
	}
	sort.SliceStable(found, func(i, j int) bool {
		if found[i].rank != found[j].rank {
			return found[i].rank < found[j].rank
		}
		return !found[i].part && found[j].part
	})
	var out []string
	for _, c := range found {
		out = append(out, c.path)
	}
	return out, nil
}

// Read reads DataPath from the first device of Devices that holds it,
// without writing to it. It answers
// ErrNotFound when there is none.
func (f Finder) Read(ctx context.Context) (data []byte, device string, err error) {
	devs, err := f.Devices()
	if err != nil {
		return nil, "", err
	}
	var errs []error
	for _, d := range devs {
		if err := ctx.Err(); err != nil {
			return nil, "", err
		}
		b, err := f.readFrom(d)
		if err == nil {
			return b, d, nil
		}
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, "", fmt.Errorf("%w: %w", ErrNotFound, errors.Join(errs...))
	}
	return nil, "", ErrNotFound
}

// readFrom reads DataPath from dev: ISO9660 and FAT32 directly from the
// device with github.com/diskfs/go-diskfs (no kernel filesystem module
// needed, nothing mounted), other filesystems (FAT12/16 config drives)
// through a read-only mount.
func (f Finder) readFrom(dev string) ([]byte, error) {
	b, derr := readDirect(dev)
	if derr == nil {
		return b, nil
	}
	b, merr := f.readMounted(dev)
	if merr == nil {
		return b, nil
	}
	return nil, fmt.Errorf("%w; %w", derr, merr)
}

func readDirect(dev string) ([]byte, error) {
	fsys, closeFn, err := openDirect(dev)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	fh, err := fsys.OpenFile("/"+DataPath, os.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("netconfig: %s has no %s: %w", dev, DataPath, err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("netconfig: %s: %w", dev, err)
	}
	return b, nil
}

// openDirect opens the filesystem on dev: ISO9660 with its 2048-byte
// blocks whatever the device's sector size (a loop device or a SCSI CD
// may say 512), else what go-diskfs recognises (FAT32).
func openDirect(dev string) (filesystem.FileSystem, func(), error) {
	f, err := os.Open(dev)
	if err != nil {
		return nil, nil, fmt.Errorf("netconfig: %w", err)
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("netconfig: %s: %w", dev, err)
	}
	if fsys, err := iso9660.Read(file.New(f, true), size, 0, 2048); err == nil {
		return fsys, func() { f.Close() }, nil
	}
	f.Close()
	d, err := diskfs.Open(dev, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		return nil, nil, fmt.Errorf("netconfig: open %s: %w", dev, err)
	}
	fsys, err := d.GetFilesystem(0)
	if err != nil {
		d.Close()
		return nil, nil, fmt.Errorf("netconfig: read %s: %w", dev, err)
	}
	return fsys, func() { fsys.Close(); d.Close() }, nil
}

func (f Finder) readMounted(dev string) ([]byte, error) {
	base := f.MountDir
	if base == "" {
		base = "/run"
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, fmt.Errorf("netconfig: %w", err)
	}
	dir, err := os.MkdirTemp(base, "config-2.")
	if err != nil {
		return nil, fmt.Errorf("netconfig: %w", err)
	}
	defer os.Remove(dir)
	var merr error
	mounted := false
	for _, fstype := range []string{"iso9660", "vfat"} {
		if err := unix.Mount(dev, dir, fstype, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			merr = errors.Join(merr, fmt.Errorf("%s: %w", fstype, err))
			continue
		}
		mounted = true
		break
	}
	if !mounted {
		return nil, fmt.Errorf("netconfig: mount %s read-only: %w", dev, merr)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	b, err := os.ReadFile(filepath.Join(dir, DataPath))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("netconfig: %s has no %s", dev, DataPath)
	}
	if err != nil {
		return nil, fmt.Errorf("netconfig: %s: %w", dev, err)
	}
	return b, nil
}

func isPartition(sys, name string) bool {
	_, err := os.Stat(filepath.Join(sys, name, "partition"))
	return err == nil
}
