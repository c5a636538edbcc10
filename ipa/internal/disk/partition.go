package disk

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"unicode/utf16"
)

// Partition table kinds.
const (
	KindNone = ""
	KindMBR  = "msdos"
	KindGPT  = "gpt"
)

// Partition is one partition of a table; offsets are bytes.
type Partition struct {
	Number int
	Start  int64
	Size   int64
	// UUID is the GPT unique partition GUID, or for MBR the PARTUUID form
	// "<disk signature>-<NN>".
	UUID string
	// Type is the GPT type GUID or the MBR type byte as "0xNN".
	Type string
	Name string
}

// Table is a parsed partition table.
type Table struct {
	Kind string
	// DiskID is the MBR disk signature ("0x12345678", also reported for
	// GPT disks, from the protective MBR, as Ironic expects) .
	DiskID string
	// DiskGUID is the GPT disk GUID.
	DiskGUID   string
	Partitions []Partition
}

var (
	// ErrNoTable is returned when the device carries no MBR or GPT.
	ErrNoTable = errors.New("disk: no partition table")
	// ErrNoRoom is returned when a new partition does not fit.
	ErrNoRoom = errors.New("disk: no room for the partition")
)

const gptSig = "EFI PART"

// gptTypeLinuxData is the "Linux filesystem data" type GUID.
var gptTypeLinuxData = mustGUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4")

type gptHeader struct {
	raw        []byte
	myLBA      uint64
	altLBA     uint64
	firstUse   uint64
	lastUse    uint64
	guid       [16]byte
	entriesLBA uint64
	numEntries uint32
	entrySize  uint32
}

func parseGPTHeader(b []byte) (*gptHeader, error) {
	if string(b[:8]) != gptSig {
		return nil, ErrNoTable
	}
	hs := binary.LittleEndian.Uint32(b[12:16])
	if hs < 92 || int(hs) > len(b) {
		return nil, fmt.Errorf("disk: GPT header size %d", hs)
	}
	h := make([]byte, hs)
	copy(h, b[:hs])
	want := binary.LittleEndian.Uint32(h[16:20])
	binary.LittleEndian.PutUint32(h[16:20], 0)
	if crc32.ChecksumIEEE(h) != want {
		return nil, errors.New("disk: GPT header CRC mismatch")
	}
	g := &gptHeader{raw: h,
		myLBA: binary.LittleEndian.Uint64(h[24:]), altLBA: binary.LittleEndian.Uint64(h[32:]),
		firstUse: binary.LittleEndian.Uint64(h[40:]), lastUse: binary.LittleEndian.Uint64(h[48:]),
		entriesLBA: binary.LittleEndian.Uint64(h[72:]), numEntries: binary.LittleEndian.Uint32(h[80:]),
		entrySize: binary.LittleEndian.Uint32(h[84:])}
	copy(g.guid[:], h[56:72])
	if g.entrySize < 128 || g.entrySize > 4096 || g.numEntries > 4096 {
		return nil, fmt.Errorf("disk: GPT entries %d × %d unsupported", g.numEntries, g.entrySize)
	}
	return g, nil
}

func (g *gptHeader) encode(myLBA, altLBA, entriesLBA uint64, entriesCRC uint32) []byte {
	h := make([]byte, len(g.raw))
	copy(h, g.raw)
	binary.LittleEndian.PutUint64(h[24:], myLBA)
	binary.LittleEndian.PutUint64(h[32:], altLBA)
	binary.LittleEndian.PutUint64(h[48:], g.lastUse)
	binary.LittleEndian.PutUint64(h[72:], entriesLBA)
	binary.LittleEndian.PutUint32(h[88:], entriesCRC)
	binary.LittleEndian.PutUint32(h[16:], 0)
	binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h))
	return h
}

// ReadTable parses the partition table of dev (GPT preferred over MBR).
func ReadTable(dev BlockDevice) (*Table, error) {
	t, _, _, err := readTable(dev)
	return t, err
}

func readTable(dev BlockDevice) (*Table, *gptHeader, []byte, error) {
	ss := int64(dev.SectorSize())
	mbr := make([]byte, 512)
	if _, err := dev.ReadAt(mbr, 0); err != nil {
		return nil, nil, nil, fmt.Errorf("disk: reading MBR: %w", err)
	}
	sig := binary.LittleEndian.Uint32(mbr[440:444])
	t := &Table{DiskID: fmt.Sprintf("0x%08x", sig)}
	hb := make([]byte, ss)
	if _, err := dev.ReadAt(hb, ss); err == nil {
		if g, err := parseGPTHeader(hb); err == nil {
			entries := make([]byte, int64(g.numEntries)*int64(g.entrySize))
			if _, err := dev.ReadAt(entries, int64(g.entriesLBA)*ss); err != nil {
				return nil, nil, nil, fmt.Errorf("disk: reading GPT entries: %w", err)
			}
			if crc32.ChecksumIEEE(entries) != binary.LittleEndian.Uint32(g.raw[88:92]) {
				return nil, nil, nil, errors.New("disk: GPT entry array CRC mismatch")
			}
			t.Kind = KindGPT
			t.DiskGUID = guidString(g.guid[:])
			for i := uint32(0); i < g.numEntries; i++ {
				e := entries[i*g.entrySize : (i+1)*g.entrySize]
				if isZeroGUID(e[:16]) {
					continue
				}
				first, last := binary.LittleEndian.Uint64(e[32:]), binary.LittleEndian.Uint64(e[40:])
				t.Partitions = append(t.Partitions, Partition{Number: int(i) + 1,
					Start: int64(first) * ss, Size: int64(last-first+1) * ss,
					Type: guidString(e[:16]), UUID: guidString(e[16:32]), Name: utf16Name(e[56:128])})
			}
			return t, g, entries, nil
		}
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return &Table{}, nil, nil, ErrNoTable
	}
	t.Kind = KindMBR
	for i := 0; i < 4; i++ {
		e := mbr[446+16*i : 446+16*(i+1)]
		if e[4] == 0 {
			continue
		}
		t.Partitions = append(t.Partitions, Partition{Number: i + 1,
			Start: int64(binary.LittleEndian.Uint32(e[8:])) * 512, Size: int64(binary.LittleEndian.Uint32(e[12:])) * 512,
			Type: fmt.Sprintf("0x%02x", e[4]), UUID: fmt.Sprintf("%08x-%02d", sig, i+1)})
	}
	return t, nil, nil, nil
}

// AddPartitionAtEnd creates a partition of size bytes at the end of dev (GPT:
// in the last usable sectors, after moving the backup GPT to the real end of
// the disk; MBR: at the end, below the 2 TiB MBR limit), aligned to 1 MiB.
// name is the GPT partition name. It returns the new partition.
func AddPartitionAtEnd(dev BlockDevice, size int64, name string) (Partition, error) {
	t, g, entries, err := readTable(dev)
	if err != nil {
		return Partition{}, err
	}
	switch t.Kind {
	case KindGPT:
		return addGPT(dev, t, g, entries, size, name)
	case KindMBR:
		return addMBR(dev, t, size)
	}
	return Partition{}, ErrNoTable
}

func overlaps(t *Table, start, end int64) bool {
	for _, p := range t.Partitions {
		if start < p.Start+p.Size && p.Start < end {
			return true
		}
	}
	return false
}

func addGPT(dev BlockDevice, t *Table, g *gptHeader, entries []byte, size int64, name string) (Partition, error) {
	ss := int64(dev.SectorSize())
	lastLBA := uint64(dev.Size()/ss) - 1
	entrySectors := (uint64(len(entries)) + uint64(ss) - 1) / uint64(ss)
	g.lastUse = lastLBA - entrySectors - 1
	endLBA := g.lastUse
	align := uint64(MiB / ss)
	startLBA := (endLBA + 1 - uint64(size/ss)) / align * align
	if startLBA < g.firstUse || endLBA <= startLBA || overlaps(t, int64(startLBA)*ss, int64(endLBA+1)*ss) {
		return Partition{}, fmt.Errorf("disk: %d MiB at the end of %s overlaps existing partitions: %w", size/MiB, dev.Name(), ErrNoRoom)
	}
	slot := -1
	for i := uint32(0); i < g.numEntries; i++ {
		if isZeroGUID(entries[i*g.entrySize : i*g.entrySize+16]) {
			slot = int(i)
			break
		}
	}
	if slot < 0 {
		return Partition{}, fmt.Errorf("disk: GPT of %s has no free entry: %w", dev.Name(), ErrNoRoom)
	}
	e := entries[uint32(slot)*g.entrySize : uint32(slot+1)*g.entrySize]
	copy(e[:16], gptTypeLinuxData[:])
	uid := newGUID()
	copy(e[16:32], uid[:])
	binary.LittleEndian.PutUint64(e[32:], startLBA)
	binary.LittleEndian.PutUint64(e[40:], endLBA)
	binary.LittleEndian.PutUint64(e[48:], 0)
	clear(e[56:128])
	for i, r := range utf16.Encode([]rune(name)) {
		if 56+2*i+2 > 128 {
			break
		}
		binary.LittleEndian.PutUint16(e[56+2*i:], r)
	}
	if err := writeGPT(dev, g, entries, lastLBA, entrySectors); err != nil {
		return Partition{}, err
	}
	return Partition{Number: slot + 1, Start: int64(startLBA) * ss, Size: int64(endLBA-startLBA+1) * ss,
		Type: guidString(gptTypeLinuxData[:]), UUID: guidString(uid[:]), Name: name}, nil
}

func writeGPT(dev BlockDevice, g *gptHeader, entries []byte, lastLBA, entrySectors uint64) error {
	ss := int64(dev.SectorSize())
	crc := crc32.ChecksumIEEE(entries)
	backupEntries := lastLBA - entrySectors
	primary := g.encode(1, lastLBA, g.entriesLBA, crc)
	backup := g.encode(lastLBA, 1, backupEntries, crc)
	pad := func(b []byte) []byte { out := make([]byte, ss); copy(out, b); return out }
	writes := []struct {
		b   []byte
		lba uint64
	}{
		{entries, backupEntries}, {pad(backup), lastLBA}, {entries, g.entriesLBA}, {pad(primary), 1},
	}
	for _, w := range writes {
		if _, err := dev.WriteAt(w.b, int64(w.lba)*ss); err != nil {
			return fmt.Errorf("disk: writing GPT at LBA %d: %w", w.lba, err)
		}
	}
	// Protective MBR covers the whole disk.
	mbr := make([]byte, 512)
	if _, err := dev.ReadAt(mbr, 0); err != nil {
		return fmt.Errorf("disk: reading MBR: %w", err)
	}
	for i := 0; i < 4; i++ {
		e := mbr[446+16*i:]
		if e[4] == 0xEE {
			binary.LittleEndian.PutUint32(e[12:], uint32(min(lastLBA, 0xFFFFFFFF)))
		}
	}
	if _, err := dev.WriteAt(mbr, 0); err != nil {
		return fmt.Errorf("disk: writing protective MBR: %w", err)
	}
	return dev.Sync()
}

// mbrLimit is the last byte an MBR partition can address (2 TiB).
const mbrLimit = int64(0xFFFFFFFF) * 512

func addMBR(dev BlockDevice, t *Table, size int64) (Partition, error) {
	if len(t.Partitions) >= 4 {
		return Partition{}, fmt.Errorf("disk: MBR of %s already has 4 primary partitions: %w", dev.Name(), ErrNoRoom)
	}
	end := min(dev.Size(), mbrLimit) / 512 * 512
	start := (end - size) / MiB * MiB
	if start < MiB || overlaps(t, start, end) {
		return Partition{}, fmt.Errorf("disk: %d MiB at the end of %s overlaps existing partitions: %w", size/MiB, dev.Name(), ErrNoRoom)
	}
	mbr := make([]byte, 512)
	if _, err := dev.ReadAt(mbr, 0); err != nil {
		return Partition{}, fmt.Errorf("disk: reading MBR: %w", err)
	}
	slot := -1
	for i := 0; i < 4; i++ {
		if mbr[446+16*i+4] == 0 {
			slot = i
			break
		}
	}
	e := mbr[446+16*slot : 446+16*(slot+1)]
	clear(e)
	copy(e[1:4], []byte{0xFE, 0xFF, 0xFF}) // CHS unused: LBA only
	e[4] = 0x83
	copy(e[5:8], []byte{0xFE, 0xFF, 0xFF})
	binary.LittleEndian.PutUint32(e[8:], uint32(start/512))
	binary.LittleEndian.PutUint32(e[12:], uint32((end-start)/512))
	if _, err := dev.WriteAt(mbr, 0); err != nil {
		return Partition{}, fmt.Errorf("disk: writing MBR: %w", err)
	}
	if err := dev.Sync(); err != nil {
		return Partition{}, fmt.Errorf("disk: %w", err)
	}
	sig := binary.LittleEndian.Uint32(mbr[440:444])
	return Partition{Number: slot + 1, Start: start, Size: end - start, Type: "0x83",
		UUID: fmt.Sprintf("%08x-%02d", sig, slot+1)}, nil
}

// FixGPTBackup moves the backup GPT of an image smaller than the disk to the
// disk's last sectors (what `sgdisk -e` does). No-op for MBR or no table.
func FixGPTBackup(dev BlockDevice) error {
	t, g, entries, err := readTable(dev)
	if err != nil || t.Kind != KindGPT {
		return nil //nolint:nilerr // nothing to fix
	}
	ss := int64(dev.SectorSize())
	lastLBA := uint64(dev.Size()/ss) - 1
	if g.altLBA == lastLBA {
		return nil
	}
	entrySectors := (uint64(len(entries)) + uint64(ss) - 1) / uint64(ss)
	g.lastUse = lastLBA - entrySectors - 1
	return writeGPT(dev, g, entries, lastLBA, entrySectors)
}

// WipeTable zeroes the first and last MiB of dev, destroying MBR, primary
// and backup GPT.
func WipeTable(dev BlockDevice) error {
	n := min(int64(MiB), dev.Size())
	var errs []error
	if err := WriteZeroes(context.Background(), dev, 0, n, nil); err != nil {
		errs = append(errs, err)
	}
	if dev.Size() > n {
		if err := WriteZeroes(context.Background(), dev, dev.Size()-n, n, nil); err != nil {
			errs = append(errs, err)
		}
	}
	if err := dev.Sync(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// EraseMetadata removes filesystem and partition signatures: the first MiB
// of every partition, then the first and last MiB of the disk.
func EraseMetadata(dev BlockDevice) error {
	if t, err := ReadTable(dev); err == nil {
		for _, p := range t.Partitions {
			if p.Start >= dev.Size() {
				continue
			}
			n := min(int64(MiB), p.Size, dev.Size()-p.Start)
			if err := WriteZeroes(context.Background(), dev, p.Start, n, nil); err != nil {
				return fmt.Errorf("disk: wiping partition %d of %s: %w", p.Number, dev.Name(), err)
			}
		}
	}
	return WipeTable(dev)
}

// Erase destroys all data on dev: BLKSECDISCARD, else BLKDISCARD (when the
// device reads back zeroes afterwards is not assumed: a zero pass follows
// unless discard succeeded on a regular file), else zeroes. progress gets the
// bytes done so far. It returns the method used.
func Erase(ctx context.Context, dev BlockDevice, progress func(done, total int64)) (string, error) {
	total := dev.Size()
	report := func(done int64) {
		if progress != nil {
			progress(done, total)
		}
	}
	if err := dev.Discard(0, total, true); err == nil {
		report(total)
		return "secure discard", dev.Sync()
	}
	if err := dev.Discard(0, total, false); err == nil {
		if f, ok := dev.(*File); ok && !f.block {
			report(total)
			return "discard", dev.Sync()
		}
	}
	if err := WriteZeroes(ctx, dev, 0, total, report); err != nil {
		return "", err
	}
	return "zero", dev.Sync()
}

// EraseExpress erases dev the fast way, as IPA's erase_devices_express: a
// (secure) discard of the whole device when it supports one, otherwise
// its partition tables and signatures only (never a full zeroing pass).
func EraseExpress(dev BlockDevice) (string, error) {
	total := dev.Size()
	if err := dev.Discard(0, total, true); err == nil {
		return "secure discard", dev.Sync()
	}
	if err := dev.Discard(0, total, false); err == nil {
		return "discard", dev.Sync()
	}
	return "metadata", EraseMetadata(dev)
}

// ProbeISOLabel returns the ISO9660 volume identifier at byte off (the
// configdrive's "config-2"), or "".
func ProbeISOLabel(dev BlockDevice, off int64) string {
	b := make([]byte, 72)
	if _, err := dev.ReadAt(b, off+32768); err != nil {
		return ""
	}
	if b[0] != 1 || string(b[1:6]) != "CD001" {
		return ""
	}
	return strings.TrimRight(string(b[40:72]), " \x00")
}

func guidString(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]), binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16])
}

func mustGUID(s string) [16]byte {
	var g [16]byte
	var a uint32
	var b, c uint16
	var d, e uint64
	if _, err := fmt.Sscanf(s, "%08X-%04X-%04X-%04X-%012X", &a, &b, &c, &d, &e); err != nil {
		panic(err)
	}
	binary.LittleEndian.PutUint32(g[0:], a)
	binary.LittleEndian.PutUint16(g[4:], b)
	binary.LittleEndian.PutUint16(g[6:], c)
	binary.BigEndian.PutUint16(g[8:], uint16(d))
	var tail [8]byte
	binary.BigEndian.PutUint64(tail[:], e)
	copy(g[10:], tail[2:])
	return g
}

func newGUID() [16]byte {
	var g [16]byte
	rand.Read(g[:])
	g[7] = g[7]&0x0f | 0x40 // version 4 (mixed-endian field 3)
	g[8] = g[8]&0x3f | 0x80
	return g
}

func isZeroGUID(b []byte) bool { return bytes.Equal(b[:16], make([]byte, 16)) }

func utf16Name(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
}
