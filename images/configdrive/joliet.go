package configdrive

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf16"
)

// Written by hand: go-diskfs v1.9.4 writes a correct Joliet path table and
// correct Joliet directory extents, but the records of subdirectories inside
// those extents point at the primary (ISO9660) directory extents. Windows
// (cloudbase-init) and other Joliet readers then list garbage below the
// root. fixJoliet repoints each such record at its Joliet extent, found by
// path through the Joliet path table.

const sector = 2048

// fixJoliet repairs the Joliet tree of the ISO in f (see above). An image
// without a Joliet supplementary volume descriptor is left alone.
func fixJoliet(f interface {
	io.ReaderAt
	io.WriterAt
}) error {
	svd, err := findJolietSVD(f)
	if err != nil || svd == nil {
		return err
	}
	ptSize := binary.LittleEndian.Uint32(svd[132:])
	ptLoc := binary.LittleEndian.Uint32(svd[140:])
	if ptSize == 0 || ptSize > 1<<20 {
		return fmt.Errorf("configdrive: joliet path table of %d bytes", ptSize)
	}
	pt := make([]byte, ptSize)
	if _, err := f.ReadAt(pt, int64(ptLoc)*sector); err != nil {
		return fmt.Errorf("configdrive: read joliet path table: %w", err)
	}
	// Directory numbers start at 1 (the root); each entry names its parent.
	type dir struct {
		loc  uint32
		path string
	}
	dirs := []dir{{}} // index 0 unused
	for off := 0; off+8 <= len(pt); {
		n := int(pt[off])
		if n == 0 || off+8+n > len(pt) {
			break
		}
		loc := binary.LittleEndian.Uint32(pt[off+2:])
		parent := int(binary.LittleEndian.Uint16(pt[off+6:]))
		name := pt[off+8 : off+8+n]
		d := dir{loc: loc}
		if len(dirs) > 1 { // not the root
			if parent < 1 || parent >= len(dirs) {
				return fmt.Errorf("configdrive: joliet path table entry %d has parent %d", len(dirs), parent)
			}
			d.path = dirs[parent].path + "/" + ucs2(name)
		}
		dirs = append(dirs, d)
		off += 8 + n + n%2
	}
	byPath := make(map[string]uint32, len(dirs))
	for _, d := range dirs[1:] {
		byPath[d.path] = d.loc
	}
	sizeOf := func(loc uint32) (uint32, error) {
		var rec [34]byte
		if _, err := f.ReadAt(rec[:], int64(loc)*sector); err != nil {
			return 0, err
		}
		return binary.LittleEndian.Uint32(rec[10:]), nil
	}
	for _, d := range dirs[1:] {
		size, err := sizeOf(d.loc)
		if err != nil || size == 0 || size > 1<<20 {
			return fmt.Errorf("configdrive: joliet directory %q at sector %d: size %d: %v", d.path, d.loc, size, err)
		}
		ext := make([]byte, size)
		if _, err := f.ReadAt(ext, int64(d.loc)*sector); err != nil {
			return fmt.Errorf("configdrive: read joliet directory %q: %w", d.path, err)
		}
		changed := false
		for off, idx := 0, 0; off < len(ext); {
			n := int(ext[off])
			if n == 0 { // records do not cross sectors: next sector
				off = (off/sector + 1) * sector
				continue
			}
			if n < 34 || off+n > len(ext) {
				return fmt.Errorf("configdrive: joliet directory %q: bad record at %d", d.path, off)
			}
			rec := ext[off : off+n]
			nameLen := int(rec[32])
			if idx >= 2 && rec[25]&2 != 0 && 33+nameLen <= n { // a subdirectory, not . or ..
				child := d.path + "/" + ucs2(rec[33:33+nameLen])
				loc, ok := byPath[child]
				if !ok {
					return fmt.Errorf("configdrive: joliet directory %q missing from the path table", child)
				}
				csize, err := sizeOf(loc)
				if err != nil {
					return fmt.Errorf("configdrive: joliet directory %q: %w", child, err)
				}
				binary.LittleEndian.PutUint32(rec[2:], loc)
				binary.BigEndian.PutUint32(rec[6:], loc)
				binary.LittleEndian.PutUint32(rec[10:], csize)
				binary.BigEndian.PutUint32(rec[14:], csize)
				changed = true
			}
			off += n
			idx++
		}
		if changed {
			if _, err := f.WriteAt(ext, int64(d.loc)*sector); err != nil {
				return fmt.Errorf("configdrive: write joliet directory %q: %w", d.path, err)
			}
		}
	}
	return nil
}

// findJolietSVD returns the supplementary volume descriptor with a Joliet
// escape sequence, or nil.
func findJolietSVD(r io.ReaderAt) ([]byte, error) {
	for s := int64(16); s < 16+32; s++ {
		vd := make([]byte, sector)
		if _, err := r.ReadAt(vd, s*sector); err != nil {
			return nil, fmt.Errorf("configdrive: read volume descriptor %d: %w", s, err)
		}
		if string(vd[1:6]) != "CD001" {
			return nil, errors.New("configdrive: bad volume descriptor")
		}
		switch vd[0] {
		case 255: // terminator
			return nil, nil
		case 2:
			if vd[88] == '%' && vd[89] == '/' && (vd[90] == '@' || vd[90] == 'C' || vd[90] == 'E') {
				return vd, nil
			}
		}
	}
	return nil, nil
}

// ucs2 decodes a big-endian UCS-2 Joliet name, dropping a ";1" version.
func ucs2(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	s := string(utf16.Decode(u))
	if len(s) > 2 && s[len(s)-2:] == ";1" {
		s = s[:len(s)-2]
	}
	return s
}
