package swraid

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ferric-metal/ferric/ipa/hints"
	"github.com/ferric-metal/ferric/ipa/internal/disk"
	"github.com/ferric-metal/ferric/ipa/internal/efiboot"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// Runner runs a program and returns its combined output; a non-zero exit
// is an error carrying that output.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) (string, error)
}

// Exec runs programs on this machine. mdadm is looked up in PATH, then in
// /sbin and /usr/sbin (the agent as PID 1 of the ramdisk has no PATH).
type Exec struct{}

// Run runs name with args.
func (Exec) Run(ctx context.Context, name string, args ...string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/sbin", "/usr/sbin"} {
			if _, serr := os.Stat(filepath.Join(dir, name)); serr == nil {
				path, err = filepath.Join(dir, name), nil
				break
			}
		}
	}
	if err != nil {
		return "", fmt.Errorf("swraid: %s is not installed in the ramdisk: %w", name, err)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = []string{"LC_ALL=C", "PATH=/sbin:/usr/sbin:/bin:/usr/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("swraid: %s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Manager builds and removes md arrays. Its zero fields take the
// machine's: Exec, /sys, /dev, disk.Open, BLKRRPART.
type Manager struct {
	Run Runner
	// Sys is the sysfs mount (md arrays under Sys/block, partitions under
	// Sys/class/block); Dev where device nodes are.
	Sys, Dev string
	Open     func(name string) (disk.BlockDevice, error)
	// Reread asks the kernel to read a disk's partition table again.
	Reread func(name string) error
	Log    *slog.Logger
}

func (m *Manager) runner() Runner {
	if m.Run == nil {
		return Exec{}
	}
	return m.Run
}

func (m *Manager) sys() string {
	if m.Sys == "" {
		return "/sys"
	}
	return m.Sys
}

func (m *Manager) dev() string {
	if m.Dev == "" {
		return "/dev"
	}
	return m.Dev
}

func (m *Manager) open(name string) (disk.BlockDevice, error) {
	if m.Open == nil {
		return disk.Open(name)
	}
	return m.Open(name)
}

func (m *Manager) log() *slog.Logger {
	if m.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Log
}

func (m *Manager) reread(name string) error {
	if m.Reread != nil {
		return m.Reread(name)
	}
	f, err := os.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	var rerr error
	for range 10 { // the kernel answers EBUSY while udev-less probes hold the disk
		if rerr = unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0); !errors.Is(rerr, unix.EBUSY) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return rerr
}

// Member is one component of an array.
type Member struct {
	// Device is the component (a holder partition, /dev/vda1); Disk the
	// disk holding it (/dev/vda).
	Device, Disk string
	// PartStart is where the partition starts on its disk and DataOffset
	// where the array's data starts in it, in bytes.
	PartStart, DataOffset int64
}

// Array is an md device.
type Array struct {
	Name string // /dev/md0
	// Level is md's (raid0, raid1, raid10; empty while inactive).
	Level   string
	Size    int64
	Members []Member
}

// Arrays lists the md devices the kernel has, in name order.
func (m *Manager) Arrays() ([]Array, error) {
	ents, err := os.ReadDir(filepath.Join(m.sys(), "block"))
	if err != nil {
		return nil, fmt.Errorf("swraid: %w", err)
	}
	var out []Array
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "md") {
			continue
		}
		base := filepath.Join(m.sys(), "block", name)
		a := Array{Name: filepath.Join(m.dev(), name), Level: readTrim(filepath.Join(base, "md", "level"))}
		if n, err := strconv.ParseInt(readTrim(filepath.Join(base, "size")), 10, 64); err == nil {
			a.Size = n * 512
		}
		slaves, _ := os.ReadDir(filepath.Join(base, "slaves"))
		for _, s := range slaves {
			mb := Member{Device: filepath.Join(m.dev(), s.Name())}
			if link, err := os.Readlink(filepath.Join(m.sys(), "class", "block", s.Name())); err == nil {
				if parent := filepath.Base(filepath.Dir(link)); parent != "block" {
					mb.Disk = filepath.Join(m.dev(), parent)
				}
			}
			if n, err := strconv.ParseInt(readTrim(filepath.Join(m.sys(), "class", "block", s.Name(), "start")), 10, 64); err == nil {
				mb.PartStart = n * 512
			}
			if n, err := strconv.ParseInt(readTrim(filepath.Join(base, "md", "dev-"+s.Name(), "offset")), 10, 64); err == nil {
				mb.DataOffset = n * 512
			}
			a.Members = append(a.Members, mb)
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b Array) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func readTrim(p string) string {
	b, _ := os.ReadFile(p)
	return strings.TrimSpace(string(b))
}

// Holders returns the disks holding members of arrays.
func Holders(arrays []Array) map[string]bool {
	h := map[string]bool{}
	for _, a := range arrays {
		for _, mb := range a.Members {
			if mb.Disk != "" {
				h[mb.Disk] = true
			}
		}
	}
	return h
}

// raidStart is where the first holder partition starts (as sgdisk -F
// finds on a fresh MBR disk: sector 2048).
const raidStart = 1 << 20

// ESPSize is the EFI system partition kept free at the start of every
// holder disk of a UEFI machine (IPA's 550 MiB); the first holder
// partition then starts at ESPSize + 1 MiB.
const ESPSize = 550 << 20

const gib = 1 << 30

// span is one holder partition, in bytes.
type span struct{ start, end int64 }

// Create builds the software RAID of cfg on disks (the inventory's) as
// IPA's create_configuration does: the holder disks (every disk, or the
// ones physical_disks' hints pick) must carry no partitions; each gets an
// MBR partition table with one partition per logical disk (the first at
// 1 MiB, size_gb GiB apart, MAX last and to the end of the disk); then
// mdadm builds /dev/md<i> of each logical disk over its partitions. On a
// UEFI machine the first 551 MiB of every holder stay free for its EFI
// system partition, made when an image is deployed (InstallUEFIBoot). IPA
// gives UEFI holders a GPT; these get an MBR too (UEFI firmware boots an
// ESP of MBR type 0xEF as well). It returns the configuration built,
// which becomes the node's raid_config.
func (m *Manager) Create(ctx context.Context, node string, cfg map[string]any, disks []protocol.Disk, uefi bool) (map[string]any, error) {
	if err := Validate(node, cfg, len(disks)); err != nil {
		return nil, err
	}
	first := int64(raidStart)
	if uefi {
		first = ESPSize + raidStart
	}
	lds := Parse(cfg)
	// Holder disks of each logical disk.
	var all []string
	perLD := make([][]string, len(lds))
	for i, ld := range lds {
		if ld.PhysicalDisks == nil {
			for _, d := range disks {
				perLD[i] = append(perLD[i], d.Name)
			}
		} else {
			var picked []string
			for _, raw := range ld.PhysicalDisks {
				h, err := hints.Parse(raw)
				if err != nil {
					return nil, fmt.Errorf("physical_disks of logical disk %d: %w", i, err)
				}
				var left []protocol.Disk
				for _, d := range disks {
					if !slices.Contains(picked, d.Name) {
						left = append(left, d)
					}
				}
				d, err := hints.Select(left, h, nil, 0)
				if err != nil {
					return nil, fmt.Errorf("No candidates for physical disk %v: %w", raw, err) //lint:ignore ST1005 IPA's message
				}
				picked = append(picked, d.Name)
			}
			perLD[i] = picked
		}
		for _, d := range perLD[i] {
			if !slices.Contains(all, d) {
				all = append(all, d)
			}
		}
	}
	var withParts []string
	sizes := map[string]int64{}
	for _, name := range all {
		dev, err := m.open(name)
		if err != nil {
			return nil, fmt.Errorf("swraid: %w", err)
		}
		sizes[name] = dev.Size()
		if t, err := disk.ReadTable(dev); err == nil && len(t.Partitions) > 0 {
			withParts = append(withParts, name)
		}
		dev.Close()
	}
	if len(withParts) > 0 {
		return nil, fmt.Errorf("Partitions detected on devices %s during RAID config", strings.Join(withParts, ", ")) //lint:ignore ST1005 IPA's message
	}
	// MAX comes last; md<i> numbers follow that order, as IPA's.
	order := make([]int, 0, len(lds))
	for i, ld := range lds {
		if !ld.Max {
			order = append(order, i)
		}
	}
	for i, ld := range lds {
		if ld.Max {
			order = append(order, i)
		}
	}
	next := map[string]int64{}
	parts := map[string][]span{}
	partNo := make([]map[string]int, len(lds))
	for _, i := range order {
		ld := lds[i]
		for _, d := range perLD[i] {
			start := next[d]
			if start == 0 {
				start = first
			}
			end := sizes[d]
			if !ld.Max {
				if start == first {
					end = ld.SizeGB * gib
				} else {
					end = start + ld.SizeGB*gib
				}
			}
			if end > sizes[d] || end <= start {
				size := fmt.Sprintf("%d GiB", ld.SizeGB)
				if ld.Max {
					size = "MAX"
				}
				return nil, fmt.Errorf("Failed to create partitions on %s: logical disk of size %s does not fit from byte %d (disk of %d bytes)", d, size, start, sizes[d]) //lint:ignore ST1005 IPA's message
			}
			parts[d] = append(parts[d], span{start, end})
			next[d] = end
			if partNo[i] == nil {
				partNo[i] = map[string]int{}
			}
			partNo[i][d] = len(parts[d])
		}
	}
	for _, d := range all {
		if err := m.writeMBR(d, parts[d]); err != nil {
			return nil, fmt.Errorf("Failed to create partitions on %s: %w", d, err) //lint:ignore ST1005 IPA's message
		}
	}
	for n, i := range order {
		ld := lds[i]
		md := filepath.Join(m.dev(), fmt.Sprintf("md%d", n))
		var comps []string
		for _, d := range perLD[i] {
			comps = append(comps, partName(d, partNo[i][d]))
		}
		for _, c := range comps {
			if err := waitFor(ctx, c, 10*time.Second); err != nil {
				return nil, err
			}
		}
		name := ld.Name
		if name == "" {
			name = md
		}
		args := []string{"--create", md, "--force", "--run", "--metadata=1", "--level", mdLevel(ld.RAIDLevel),
			"--name", name, "--raid-devices", strconv.Itoa(len(comps))}
		if _, err := m.runner().Run(ctx, "mdadm", append(args, comps...)...); err != nil {
			return nil, fmt.Errorf("Failed to create md device %s on %s: %w", md, strings.Join(comps, " "), err) //lint:ignore ST1005 IPA's message
		}
		m.log().Info("software RAID device created", "device", md, "level", ld.RAIDLevel, "members", strings.Join(comps, " "))
	}
	return cfg, nil
}

// partName is the n-th partition of disk d (nvme0n1p1, vda1).
func partName(d string, n int) string {
	if last := d[len(d)-1]; last >= '0' && last <= '9' {
		return fmt.Sprintf("%sp%d", d, n)
	}
	return fmt.Sprintf("%s%d", d, n)
}

// waitFor waits until the device node p exists (devtmpfs creates it once
// the kernel has read the partition table).
func waitFor(ctx context.Context, p string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if _, err := os.Stat(p); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("swraid: %s did not appear in %s", p, d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// mbrEntry encodes one MBR partition entry (LBA addressing; CHS fields
// say "beyond CHS", as parted writes for large disks).
func mbrEntry(active bool, typ byte, start, sectors uint32) []byte {
	e := make([]byte, 16)
	if active {
		e[0] = 0x80
	}
	copy(e[1:4], []byte{0xfe, 0xff, 0xff})
	e[4] = typ
	copy(e[5:8], []byte{0xfe, 0xff, 0xff})
	binary.LittleEndian.PutUint32(e[8:], start)
	binary.LittleEndian.PutUint32(e[12:], sectors)
	return e
}

// writeMBR writes a fresh MBR with spans as partitions 1.. (type 0x83, as
// parted's mkpart primary) on disk d and has the kernel read it.
func (m *Manager) writeMBR(d string, spans []span) error {
	if len(spans) > 4 {
		return fmt.Errorf("%d partitions do not fit an MBR", len(spans))
	}
	dev, err := m.open(d)
	if err != nil {
		return err
	}
	defer dev.Close()
	if err := disk.WipeTable(dev); err != nil {
		return err
	}
	mbr := make([]byte, 512)
	if _, err := rand.Read(mbr[440:444]); err != nil {
		return err
	}
	for i, s := range spans {
		start, n := s.start/512, (s.end-s.start)/512
		if start+n > 1<<32-1 {
			return fmt.Errorf("partition beyond 2 TiB does not fit an MBR")
		}
		copy(mbr[446+16*i:], mbrEntry(false, 0x83, uint32(start), uint32(n)))
	}
	mbr[510], mbr[511] = 0x55, 0xaa
	if _, err := dev.WriteAt(mbr, 0); err != nil {
		return err
	}
	if err := dev.Sync(); err != nil {
		return err
	}
	if err := m.reread(d); err != nil {
		return fmt.Errorf("re-reading the partition table: %w", err)
	}
	return nil
}

// Delete removes every software RAID device as IPA's delete_configuration
// does: arrays found (after mdadm --assemble --scan) have their start and
// end wiped and are stopped, their components' superblocks zeroed, any
// other block device still carrying an md superblock is zeroed too, and
// the holder disks' partition tables are wiped. It tries twice, then
// fails naming what remains.
func (m *Manager) Delete(ctx context.Context) error {
	scan := func() ([]Array, error) {
		_, _ = m.runner().Run(ctx, "mdadm", "--assemble", "--scan")
		return m.Arrays()
	}
	arrays, err := scan()
	if err != nil {
		return err
	}
	for range 2 {
		if err := m.deletePass(ctx, arrays); err != nil {
			return err
		}
		if arrays, err = scan(); err != nil {
			return err
		}
		if len(arrays) == 0 {
			return nil
		}
	}
	var names []string
	for _, a := range arrays {
		names = append(names, a.Name)
	}
	return fmt.Errorf("Unable to clean all softraid correctly. Remaining %v", names) //lint:ignore ST1005 IPA's message
}

func (m *Manager) deletePass(ctx context.Context, arrays []Array) error {
	var holders []string
	for _, a := range arrays {
		if len(a.Members) == 0 {
			continue // a partition of an md device goes with it
		}
		if dev, err := m.open(a.Name); err == nil {
			if err := disk.WipeTable(dev); err != nil {
				m.log().Warn("could not wipe software RAID device", "device", a.Name, "error", err)
			}
			dev.Close()
		}
		if _, err := m.runner().Run(ctx, "mdadm", "--stop", a.Name); err != nil {
			m.log().Warn("could not stop software RAID device", "device", a.Name, "error", err)
		}
		for _, mb := range a.Members {
			if _, err := m.runner().Run(ctx, "mdadm", "--examine", mb.Device); err != nil {
				continue
			}
			if _, err := m.runner().Run(ctx, "mdadm", "--zero-superblock", mb.Device); err != nil {
				m.log().Warn("could not remove md superblock", "device", mb.Device, "error", err)
			}
			if mb.Disk != "" && !slices.Contains(holders, mb.Disk) {
				holders = append(holders, mb.Disk)
			}
		}
		m.log().Info("software RAID device deleted", "device", a.Name)
	}
	// Whatever else still carries a superblock (a member of an array that
	// could not start), partitions before their disks.
	ents, _ := os.ReadDir(filepath.Join(m.sys(), "class", "block"))
	var blks []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "md") || strings.HasPrefix(n, "loop") || strings.HasPrefix(n, "ram") ||
			strings.HasPrefix(n, "sr") || strings.HasPrefix(n, "dm-") {
			continue
		}
		blks = append(blks, n)
	}
	slices.Sort(blks)
	slices.Reverse(blks)
	for _, n := range blks {
		p := filepath.Join(m.dev(), n)
		if _, err := m.runner().Run(ctx, "mdadm", "--examine", p); err != nil {
			continue
		}
		if _, err := m.runner().Run(ctx, "mdadm", "--zero-superblock", p); err != nil {
			m.log().Warn("could not remove md superblock", "device", p, "error", err)
		}
	}
	for _, h := range holders {
		dev, err := m.open(h)
		if err != nil {
			m.log().Warn("could not open holder disk", "device", h, "error", err)
			continue
		}
		err = disk.WipeTable(dev)
		dev.Close()
		if err != nil {
			m.log().Warn("could not remove partitions of holder disk", "device", h, "error", err)
			continue
		}
		if err := m.reread(h); err != nil {
			m.log().Warn("could not re-read the partition table", "device", h, "error", err)
		}
		m.log().Info("partitions of holder disk removed", "device", h)
	}
	return nil
}

// Array returns the array named name (/dev/md0), if the kernel has it.
func (m *Manager) Array(name string) (Array, bool) {
	arrays, err := m.Arrays()
	if err != nil {
		return Array{}, false
	}
	for _, a := range arrays {
		if a.Name == name {
			return a, true
		}
	}
	return Array{}, false
}

// InstallBIOSBoot makes every member disk of a boot the image written on
// the array, for BIOS firmware. IPA runs the image's grub-install on each
// holder disk; this agent instead gives each holder disk the image's own
// boot code (its MBR's first 440 bytes) and an active partition entry
// pointing at the image's boot partition where it lies on that disk (the
// holder partition's start + the array's data offset + the partition's
// start in the image). A firmware booting any one member then runs the
// image's loader from that member alone, so the machine still boots with
// the other disks gone. Images with a GPT are refused.
func (m *Manager) InstallBIOSBoot(a Array) error {
	dev, err := m.open(a.Name)
	if err != nil {
		return fmt.Errorf("swraid: %w", err)
	}
	img := make([]byte, 512)
	_, err = dev.ReadAt(img, 0)
	t, terr := disk.ReadTable(dev)
	dev.Close()
	if err != nil {
		return fmt.Errorf("swraid: reading %s: %w", a.Name, err)
	}
	if terr != nil || t.Kind != disk.KindMBR || img[510] != 0x55 || img[511] != 0xaa {
		return fmt.Errorf("swraid: the image on %s has no MBR partition table to boot from (BIOS boot from software RAID needs one)", a.Name)
	}
	// The image's boot partition: its active one, else its first.
	boot := -1
	for i := range 4 {
		e := img[446+16*i : 462+16*i]
		if e[4] == 0 {
			continue
		}
		if boot < 0 || e[0] == 0x80 {
			boot = i
			if e[0] == 0x80 {
				break
			}
		}
	}
	if boot < 0 {
		return fmt.Errorf("swraid: the image on %s has no partitions", a.Name)
	}
	be := img[446+16*boot : 462+16*boot]
	bstart, bn := binary.LittleEndian.Uint32(be[8:]), binary.LittleEndian.Uint32(be[12:])
	if len(a.Members) == 0 {
		return fmt.Errorf("swraid: %s has no members", a.Name)
	}
	for _, mb := range a.Members {
		if mb.Disk == "" {
			return fmt.Errorf("swraid: member %s of %s is not a partition of a disk", mb.Device, a.Name)
		}
		if err := m.bootMember(mb, img[:440], be[4], uint32((mb.PartStart+mb.DataOffset)/512)+bstart, bn); err != nil {
			return fmt.Errorf("swraid: boot code on %s: %w", mb.Disk, err)
		}
		m.log().Info("boot code written to software RAID member disk", "device", mb.Disk, "array", a.Name,
			"boot_partition_lba", uint32((mb.PartStart+mb.DataOffset)/512)+bstart)
	}
	return nil
}

func (m *Manager) bootMember(mb Member, code []byte, typ byte, start, n uint32) error {
	dev, err := m.open(mb.Disk)
	if err != nil {
		return err
	}
	defer dev.Close()
	mbr := make([]byte, 512)
	if _, err := dev.ReadAt(mbr, 0); err != nil {
		return err
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return errors.New("no MBR partition table")
	}
	// The slot after the holder partitions.
	slot := -1
	for i := range 4 {
		e := mbr[446+16*i : 462+16*i]
		if e[4] == 0 || (binary.LittleEndian.Uint32(e[8:]) == start && e[4] == typ) {
			slot = i
			break
		}
	}
	if slot < 0 {
		return errors.New("no free MBR slot for the boot partition entry")
	}
	for i := range 4 {
		mbr[446+16*i] = 0
	}
	copy(mbr[:440], code)
	copy(mbr[446+16*slot:], mbrEntry(true, typ, start, n))
	if _, err := dev.WriteAt(mbr, 0); err != nil {
		return err
	}
	return dev.Sync()
}

// Assemble starts the arrays whose members the machine has (mdadm
// --assemble --scan), as the udev rules of IPA's ramdisk do when it boots:
// a deploy after the clean that built them finds them again.
func (m *Manager) Assemble(ctx context.Context) ([]Array, error) {
	if _, err := m.runner().Run(ctx, "mdadm", "--assemble", "--scan"); err != nil {
		m.log().Debug("mdadm --assemble --scan", "error", err)
	}
	return m.Arrays()
}

// InstallUEFIBoot makes every member disk of a boot the image written on
// the array, for UEFI firmware, as IPA's prepare_boot_partitions_for_softraid
// and efibootmgr do: an EFI system partition (MBR type 0xEF) in the space
// Create kept free at the start of each member disk, those partitions
// mirrored by an md RAID-1 with metadata 1.0 (the superblock at the end:
// each partition alone is a plain FAT the firmware reads), the image's own
// ESP copied onto that mirror, and a UEFI boot entry per disk (labelled
// ferric-raid-<n>) when varsDir has the EFI variables. Without
// varsDir the firmware's removable-media path still finds the loader.
func (m *Manager) InstallUEFIBoot(ctx context.Context, a Array, varsDir string) error {
	if len(a.Members) == 0 {
		return fmt.Errorf("swraid: %s has no members", a.Name)
	}
	src, err := m.open(a.Name)
	if err != nil {
		return fmt.Errorf("swraid: %w", err)
	}
	defer src.Close()
	esp, loader, err := efiboot.FindESP(src, "")
	if err != nil {
		return fmt.Errorf("swraid: the image on %s: %w", a.Name, err)
	}
	if esp.Size > ESPSize-raidStart {
		return fmt.Errorf("swraid: the image's EFI system partition (%d bytes) is larger than the %d MiB kept on each disk", esp.Size, ESPSize>>20)
	}
	var parts []string
	for _, mb := range a.Members {
		if mb.Disk == "" {
			return fmt.Errorf("swraid: member %s of %s is not a partition of a disk", mb.Device, a.Name)
		}
		if mb.PartStart < ESPSize+raidStart {
			return fmt.Errorf("swraid: %s has no room for an EFI system partition before its member %s (the array was built for BIOS boot: run delete_configuration and create_configuration in UEFI mode)", mb.Disk, mb.Device)
		}
		p, err := m.addESP(mb.Disk)
		if err != nil {
			return fmt.Errorf("swraid: EFI system partition on %s: %w", mb.Disk, err)
		}
		parts = append(parts, p)
	}
	for _, p := range parts {
		if err := waitFor(ctx, p, 10*time.Second); err != nil {
			return err
		}
	}
	md, err := m.freeMD()
	if err != nil {
		return err
	}
	args := []string{"--create", md, "--force", "--run", "--metadata=1.0", "--level", "1", "--name", "esp", "--raid-devices", strconv.Itoa(len(parts))}
	if _, err := m.runner().Run(ctx, "mdadm", append(args, parts...)...); err != nil {
		return fmt.Errorf("swraid: EFI system partitions mirror: %w", err)
	}
	if err := waitFor(ctx, md, 10*time.Second); err != nil {
		return err
	}
	dst, err := m.open(md)
	if err != nil {
		return fmt.Errorf("swraid: %w", err)
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < esp.Size; off += int64(len(buf)) {
		n := min(int64(len(buf)), esp.Size-off)
		if _, err := src.ReadAt(buf[:n], esp.Start+off); err != nil {
			dst.Close()
			return fmt.Errorf("swraid: reading the image's EFI system partition: %w", err)
		}
		if _, err := dst.WriteAt(buf[:n], off); err != nil {
			dst.Close()
			return fmt.Errorf("swraid: writing %s: %w", md, err)
		}
	}
	err = dst.Sync()
	dst.Close()
	if err != nil {
		return fmt.Errorf("swraid: %w", err)
	}
	m.log().Info("EFI system partitions mirrored on the software RAID members", "device", md, "partitions", strings.Join(parts, " "),
		"loader", loader, "bytes", esp.Size)
	for i, mb := range a.Members {
		dev, err := m.open(mb.Disk)
		if err != nil {
			return fmt.Errorf("swraid: %w", err)
		}
		res, err := efiboot.InstallAs(dev, "", varsDir, fmt.Sprintf("ferric-raid-%d", i))
		dev.Close()
		switch {
		case errors.Is(err, efiboot.ErrNoVars):
			m.log().Warn("no UEFI boot entry written: no EFI variables", "device", mb.Disk)
		case err != nil:
			return fmt.Errorf("swraid: UEFI boot entry for %s: %w", mb.Disk, err)
		default:
			m.log().Info("UEFI boot entry written for software RAID member", "device", mb.Disk, "entry", res.Entry, "loader", res.Loader)
		}
	}
	return nil
}

// addESP adds the EFI system partition [1 MiB, 551 MiB) to the MBR of a
// holder disk (a free slot; the same entry again is reused) and tells the
// kernel about it with BLKPG (the disk is busy: its array runs). It
// returns the partition's device.
func (m *Manager) addESP(d string) (string, error) {
	dev, err := m.open(d)
	if err != nil {
		return "", err
	}
	mbr := make([]byte, 512)
	_, err = dev.ReadAt(mbr, 0)
	if err == nil && (mbr[510] != 0x55 || mbr[511] != 0xaa || mbr[446+4] == 0xee) {
		err = errors.New("no MBR partition table (a GPT?)")
	}
	if err != nil {
		dev.Close()
		return "", err
	}
	start, n := uint32(raidStart/512), uint32(ESPSize/512)
	slot := -1
	for i := range 4 {
		e := mbr[446+16*i : 462+16*i]
		if e[4] == 0xef && binary.LittleEndian.Uint32(e[8:]) == start {
			slot = i
			break
		}
		if e[4] == 0 && slot < 0 {
			slot = i
		}
	}
	if slot < 0 {
		dev.Close()
		return "", errors.New("no free MBR slot")
	}
	copy(mbr[446+16*slot:], mbrEntry(false, 0xef, start, n))
	if _, err := dev.WriteAt(mbr, 0); err != nil {
		dev.Close()
		return "", err
	}
	err = dev.Sync()
	dev.Close()
	if err != nil {
		return "", err
	}
	if err := m.addPartition(d, slot+1, int64(start)*512, int64(n)*512); err != nil {
		return "", fmt.Errorf("telling the kernel about partition %d: %w", slot+1, err)
	}
	return partName(d, slot+1), nil
}

// addPartition tells the kernel about a new partition of a disk in use
// (BLKPG_ADD_PARTITION, as partx does); one it knows already is fine.
func (m *Manager) addPartition(d string, num int, start, size int64) error {
	if m.Reread != nil { // tests: the fake machine reads the table again
		return m.Reread(d)
	}
	f, err := os.OpenFile(d, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	p := unix.BlkpgPartition{Start: start, Length: size, Pno: int32(num)}
	arg := unix.BlkpgIoctlArg{Op: unix.BLKPG_ADD_PARTITION, Datalen: int32(unsafe.Sizeof(p)), Data: (*byte)(unsafe.Pointer(&p))}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKPG, uintptr(unsafe.Pointer(&arg)))
	if errno != 0 && errno != unix.EBUSY {
		return errno
	}
	return nil
}

// freeMD returns the first /dev/md<n> the kernel does not have.
func (m *Manager) freeMD() (string, error) {
	for n := range 128 {
		name := fmt.Sprintf("md%d", n)
		if _, err := os.Stat(filepath.Join(m.sys(), "block", name)); os.IsNotExist(err) {
			return filepath.Join(m.dev(), name), nil
		}
	}
	return "", errors.New("swraid: No free md (RAID) devices are left")
}
