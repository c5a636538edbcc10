package efiboot

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// fatFS is a read-only view of the directories of a FAT12, FAT16 or FAT32
// volume: enough to find the boot loaders on an EFI system partition.
type fatFS struct {
	r        io.ReaderAt
	bps      int64 // bytes per sector
	cluster  int64 // bytes per cluster
	fatOff   int64 // first FAT
	rootOff  int64 // FAT12/16: fixed root directory region
	rootLen  int64
	rootClus uint32 // FAT32: first cluster of the root directory
	dataOff  int64  // cluster 2
	clusters uint32 // data clusters
	bits     int    // 12, 16 or 32
}

// dirEntry is one name in a directory.
type dirEntry struct {
	name    string
	dir     bool
	cluster uint32
	size    uint32
}

var errNotFAT = errors.New("efiboot: not a FAT filesystem")

// maxDir bounds a directory: FAT allows 65536 entries of 32 bytes, plus
// one cluster of slack.
const maxDir = 65536*32 + 512<<10

// openFAT reads the boot sector of the volume at off (size bytes) of r.
func openFAT(r io.ReaderAt, off, size int64) (*fatFS, error) {
	b := make([]byte, 512)
	if _, err := r.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("efiboot: boot sector: %w", err)
	}
	le16 := func(i int) int64 { return int64(binary.LittleEndian.Uint16(b[i:])) }
	le32 := func(i int) int64 { return int64(binary.LittleEndian.Uint32(b[i:])) }
	bps, spc, rsvd, nfats, rootEnt := le16(11), int64(b[13]), le16(14), int64(b[16]), le16(17)
	fatSz, tot := le16(22), le16(19)
	if fatSz == 0 {
		fatSz = le32(36)
	}
	if tot == 0 {
		tot = le32(32)
	}
	if b[510] != 0x55 || b[511] != 0xAA || (bps != 512 && bps != 1024 && bps != 2048 && bps != 4096) ||
		spc == 0 || spc&(spc-1) != 0 || rsvd == 0 || nfats == 0 || fatSz == 0 || tot*bps > size {
		return nil, errNotFAT
	}
	rootSecs := (rootEnt*32 + bps - 1) / bps
	first := rsvd + nfats*fatSz + rootSecs
	if first >= tot {
		return nil, errNotFAT
	}
	f := &fatFS{r: r, bps: bps, cluster: spc * bps, fatOff: off + rsvd*bps,
		rootOff: off + (rsvd+nfats*fatSz)*bps, rootLen: rootSecs * bps,
		dataOff: off + first*bps, clusters: uint32((tot - first) / spc)}
	switch {
	case f.clusters < 4085:
		f.bits = 12
	case f.clusters < 65525:
		f.bits = 16
	default:
		f.bits = 32
		f.rootClus = uint32(le32(44))
	}
	return f, nil
}

// next returns the cluster after c in its chain, or 0 at the end.
func (f *fatFS) next(c uint32) (uint32, error) {
	var b [4]byte
	var v uint32
	switch f.bits {
	case 12:
		if _, err := f.r.ReadAt(b[:2], f.fatOff+int64(c)+int64(c)/2); err != nil {
			return 0, err
		}
		v = uint32(binary.LittleEndian.Uint16(b[:]))
		if c&1 == 1 {
			v >>= 4
		}
		v &= 0xFFF
		if v >= 0xFF8 {
			return 0, nil
		}
	case 16:
		if _, err := f.r.ReadAt(b[:2], f.fatOff+2*int64(c)); err != nil {
			return 0, err
		}
		v = uint32(binary.LittleEndian.Uint16(b[:]))
		if v >= 0xFFF8 {
			return 0, nil
		}
	default:
		if _, err := f.r.ReadAt(b[:], f.fatOff+4*int64(c)); err != nil {
			return 0, err
		}
		v = binary.LittleEndian.Uint32(b[:]) & 0x0FFFFFFF
		if v >= 0x0FFFFFF8 {
			return 0, nil
		}
	}
	if v < 2 || v >= f.clusters+2 {
		return 0, fmt.Errorf("efiboot: FAT chain points at cluster %d", v)
	}
	return v, nil
}

// readDir lists the directory starting at cluster c (0: the root).
func (f *fatFS) readDir(c uint32) ([]dirEntry, error) {
	var raw []byte
	if c == 0 && f.bits != 32 {
		raw = make([]byte, f.rootLen)
		if _, err := f.r.ReadAt(raw, f.rootOff); err != nil {
			return nil, fmt.Errorf("efiboot: root directory: %w", err)
		}
	} else {
		if c == 0 {
			c = f.rootClus
		}
		for n := uint32(0); c != 0; n++ {
			if n > f.clusters || c < 2 || c >= f.clusters+2 {
				return nil, errors.New("efiboot: directory cluster chain is broken or loops")
			}
			b := make([]byte, f.cluster)
			if _, err := f.r.ReadAt(b, f.dataOff+int64(c-2)*f.cluster); err != nil {
				return nil, fmt.Errorf("efiboot: directory: %w", err)
			}
			raw = append(raw, b...)
			if len(raw) > maxDir {
				return nil, errors.New("efiboot: directory larger than FAT allows")
			}
			next, err := f.next(c)
			if err != nil {
				return nil, err
			}
			c = next
		}
	}
	var out []dirEntry
	var long []uint16
	for i := 0; i+32 <= len(raw); i += 32 {
		e := raw[i : i+32]
		switch {
		case e[0] == 0:
			return out, nil
		case e[0] == 0xE5:
			long = nil
			continue
		case e[11] == 0x0F: // long name part, stored last part first
			var part []uint16
			for _, r := range [][2]int{{1, 11}, {14, 26}, {28, 32}} {
				for j := r[0]; j < r[1]; j += 2 {
					part = append(part, binary.LittleEndian.Uint16(e[j:]))
				}
			}
			if e[0]&0x40 != 0 {
				long = nil
			}
			long = append(part, long...)
			continue
		case e[11]&0x08 != 0: // volume label
			long = nil
			continue
		}
		name := shortName(e)
		if long != nil {
			u := long
			for k, ch := range u {
				if ch == 0 {
					u = u[:k]
					break
				}
			}
			name = string(utf16.Decode(u))
		}
		long = nil
		if name == "." || name == ".." {
			continue
		}
		cl := uint32(binary.LittleEndian.Uint16(e[26:]))
		if f.bits == 32 {
			cl |= uint32(binary.LittleEndian.Uint16(e[20:])) << 16
		}
		out = append(out, dirEntry{name: name, dir: e[11]&0x10 != 0, cluster: cl, size: binary.LittleEndian.Uint32(e[28:])})
	}
	return out, nil
}

// shortName is an 8.3 entry's name, lower-cased where the entry says so.
func shortName(e []byte) string {
	base, ext := strings.TrimRight(string(e[0:8]), " "), strings.TrimRight(string(e[8:11]), " ")
	if e[0] == 0x05 {
		base = "\xe5" + base[1:]
	}
	if e[12]&0x08 != 0 {
		base = strings.ToLower(base)
	}
	if e[12]&0x10 != 0 {
		ext = strings.ToLower(ext)
	}
	if ext == "" {
		return base
	}
	return base + "." + ext
}

// lookup finds a directory by path components (case-insensitive, as FAT
// is) and returns its entries.
func (f *fatFS) lookup(path ...string) ([]dirEntry, error) {
	ents, err := f.readDir(0)
	if err != nil {
		return nil, err
	}
	for _, p := range path {
		var found *dirEntry
		for i := range ents {
			if ents[i].dir && strings.EqualFold(ents[i].name, p) {
				found = &ents[i]
				break
			}
		}
		if found == nil {
			return nil, fmt.Errorf("efiboot: no directory %s", strings.Join(path, "/"))
		}
		if ents, err = f.readDir(found.cluster); err != nil {
			return nil, err
		}
	}
	return ents, nil
}

// readFile returns the content of file e, refused above limit bytes.
func (f *fatFS) readFile(e dirEntry, limit int) ([]byte, error) {
	if int64(e.size) > int64(limit) {
		return nil, fmt.Errorf("efiboot: %s is %d bytes, more than %d", e.name, e.size, limit)
	}
	out := make([]byte, 0, e.size)
	c := e.cluster
	for n := uint32(0); len(out) < int(e.size); n++ {
		if n > f.clusters || c < 2 || c >= f.clusters+2 {
			return nil, fmt.Errorf("efiboot: %s: cluster chain is broken or loops", e.name)
		}
		b := make([]byte, min(f.cluster, int64(int(e.size)-len(out))))
		if _, err := f.r.ReadAt(b, f.dataOff+int64(c-2)*f.cluster); err != nil {
			return nil, fmt.Errorf("efiboot: %s: %w", e.name, err)
		}
		out = append(out, b...)
		next, err := f.next(c)
		if err != nil {
			return nil, err
		}
		c = next
	}
	return out, nil
}

// bootCSV is the name of the file in which shim's packages list the
// loader to register and its label (what shim's fallback.efi reads).
const bootCSV = "BOOTX64.CSV"

// parseBootCSV reads a BOOTX64.CSV (UCS-2 with a byte-order mark, or
// plain ASCII): its first entry "loader,label,options,description".
func parseBootCSV(b []byte) (loader, label string, ok bool) {
	text := string(b)
	if len(b) >= 2 && b[0] == 0xFF && b[1] == 0xFE {
		u := make([]uint16, (len(b)-2)/2)
		for i := range u {
			u[i] = binary.LittleEndian.Uint16(b[2+2*i:])
		}
		text = string(utf16.Decode(u))
	}
	text = strings.TrimPrefix(text, "\uFEFF") // UTF-8 with a byte-order mark
	for _, line := range strings.Split(text, "\n") {
		fields := strings.SplitN(strings.TrimSpace(line), ",", 4)
		if len(fields) >= 2 && strings.TrimSpace(fields[0]) != "" {
			return strings.TrimSpace(fields[0]), strings.TrimSpace(fields[1]), true
		}
	}
	return "", "", false
}

// loader returns the boot loader to register, as an EFI path
// (\EFI\debian\shimx64.efi), and the label of its entry: the loader and
// label an OS folder's BOOTX64.CSV names (as ironic-python-agent prefers),
// else shim, then GRUB of an OS folder under \EFI, else the removable-media
// path \EFI\BOOT\BOOTX64.EFI, labelled Description.
func (f *fatFS) loader() (string, string, error) {
	efi, err := f.lookup("EFI")
	if err != nil {
		return "", "", err
	}
	// find returns the entry named name in folder d, if it is there.
	find := func(d dirEntry, name string) (dirEntry, bool, error) {
		files, err := f.readDir(d.cluster)
		if err != nil {
			return dirEntry{}, false, err
		}
		for _, fl := range files {
			if !fl.dir && strings.EqualFold(fl.name, name) {
				return fl, true, nil
			}
		}
		return dirEntry{}, false, nil
	}
	path := func(d, fl dirEntry) string { return `\EFI\` + d.name + `\` + fl.name }
	osDirs := make([]dirEntry, 0, len(efi))
	for _, d := range efi {
		if d.dir && !strings.EqualFold(d.name, "BOOT") {
			osDirs = append(osDirs, d)
		}
	}
	for _, d := range osDirs {
		csv, ok, err := find(d, bootCSV)
		if err != nil {
			return "", "", err
		}
		if !ok {
			continue
		}
		b, err := f.readFile(csv, 64<<10)
		if err != nil {
			return "", "", err
		}
		name, label, ok := parseBootCSV(b)
		if !ok || label == "" || strings.ContainsAny(name, `\/`) {
			continue
		}
		if fl, ok, err := find(d, name); err != nil || ok {
			return path(d, fl), label, err
		}
	}
	for _, want := range []string{"shimx64.efi", "grubx64.efi"} {
		for _, d := range osDirs {
			if fl, ok, err := find(d, want); err != nil || ok {
				return path(d, fl), Description, err
			}
		}
	}
	for _, d := range efi {
		if d.dir && strings.EqualFold(d.name, "BOOT") {
			if fl, ok, err := find(d, "BOOTX64.EFI"); err != nil || ok {
				return path(d, fl), Description, err
			}
		}
	}
	return "", "", errors.New("efiboot: no boot loader under \\EFI (BOOTX64.CSV, shimx64.efi, grubx64.efi or BOOT\\BOOTX64.EFI)")
}
