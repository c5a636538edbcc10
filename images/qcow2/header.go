// Package qcow2 converts qcow2 images (version 2 and 3) to raw disk bytes
// while streaming, so an agent can write a qcow2 image served over HTTP
// straight to a block device without a temporary copy or qemu-img.
//
// Conversion takes two passes over the source, neither of which buffers the
// image:
//
//  1. Open reads the header and the L1 and L2 tables through an io.ReaderAt
//     (the agent backs it with HTTP Range requests; metadata is small), and
//     builds the list of data clusters sorted by their offset in the file.
//  2. Image.Convert reads the file once, sequentially, from DataStart (one
//     plain GET, or a GET with "Range: bytes=DataStart-"), and writes every
//     data cluster to its guest offset through an io.WriterAt (the disk).
//
// Memory is bounded by 16 bytes per allocated cluster plus a few cluster
// buffers. Unallocated and zero clusters (and data clusters that hold only
// zeros) are not written unless Options.WriteZeroes is set, so the target
// must already read as zeros (a new sparse file, a discarded disk) or the
// caller must ask for zeros to be written.
//
// Supported: cluster sizes 512 B to 2 MiB, compressed clusters (deflate and
// zstd), zero clusters, extended L2 entries (subclusters), internal
// snapshots (ignored; the active image is converted), the dirty bit.
// Refused with ErrUnsupported: backing files, encryption, external data
// files, the corrupt bit, unknown incompatible features.
//
// Usage:
//
//	img, err := qcow2.Open(ctx, rangeReaderAt, fileSize)
//	resp := GET url with "Range: bytes=<img.DataStart()>-"
//	stats, err := img.Convert(ctx, resp.Body, img.DataStart(), disk, qcow2.Options{})
//
// The format is implemented here from the published qcow2 specification
// (docs/interop/qcow2.txt in QEMU): the only Go qcow2 reader
// (lima-vm/go-qcow2reader) is a random-access reader, cannot be fetched
// through this project's module proxy, and does not stream.
package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Magic is the first four bytes of a qcow2 file ("QFI\xfb").
const Magic = 0x514649fb

// Header extension types.
const (
	extEnd           = 0x00000000
	extBackingFormat = 0xe2792aca
	extFeatureNames  = 0x6803f857
	extBitmaps       = 0x23852875
	extEncryption    = 0x0537be77
	extDataFile      = 0x44415441
)

// Incompatible feature bits.
const (
	IncompatDirty       = 1 << 0
	IncompatCorrupt     = 1 << 1
	IncompatDataFile    = 1 << 2
	IncompatCompression = 1 << 3
	IncompatExtendedL2  = 1 << 4
)

// Compression types (header byte 104).
const (
	CompressionDeflate = 0
	CompressionZstd    = 1
)

const (
	minClusterBits = 9
	maxClusterBits = 21
	// maxL1Bytes matches QEMU's limit on the L1 table size.
	maxL1Bytes  = 32 << 20
	v2HeaderLen = 72
	v3HeaderLen = 104
)

var (
	// ErrNotQcow2 is returned when the input does not start with the qcow2 magic.
	ErrNotQcow2 = errors.New("not a qcow2 image")
	// ErrUnsupported is returned for valid images using features this package refuses.
	ErrUnsupported = errors.New("unsupported qcow2 feature")
	// ErrCorrupt is returned for malformed images.
	ErrCorrupt = errors.New("corrupt qcow2 image")
)

// Header is the parsed qcow2 header.
type Header struct {
	Version               uint32
	BackingFileOffset     uint64
	BackingFileSize       uint32
	ClusterBits           uint32
	Size                  uint64 // virtual size in bytes
	CryptMethod           uint32
	L1Size                uint32
	L1TableOffset         uint64
	RefcountTableOffset   uint64
	RefcountTableClusters uint32
	NbSnapshots           uint32
	SnapshotsOffset       uint64
	IncompatibleFeatures  uint64
	CompatibleFeatures    uint64
	AutoclearFeatures     uint64
	RefcountOrder         uint32
	HeaderLength          uint32
	CompressionType       uint8

	// From header extensions.
	BackingFormat string
	DataFile      string
	Encrypted     bool // a full disk encryption extension is present
}

// ClusterSize returns the cluster size in bytes.
func (h *Header) ClusterSize() int64 { return 1 << h.ClusterBits }

// VirtualSize returns the guest disk size in bytes.
func (h *Header) VirtualSize() int64 { return int64(h.Size) }

// ExtendedL2 reports whether L2 entries carry subcluster bitmaps.
func (h *Header) ExtendedL2() bool { return h.IncompatibleFeatures&IncompatExtendedL2 != 0 }

// HeaderFixedSize is the number of bytes ParseHeader needs to read the fixed
// part of any qcow2 header.
const HeaderFixedSize = 112

// ParseHeader parses a qcow2 header from the start of the file. b should
// hold the whole first cluster (or the whole file if it is shorter) so that
// header extensions can be read; at least HeaderFixedSize bytes are needed.
// It validates the fields but does not refuse unsupported features; see
// (*Header).Supported.
func ParseHeader(b []byte) (*Header, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("qcow2: header: %d bytes: %w", len(b), ErrNotQcow2)
	}
	be := binary.BigEndian
	if be.Uint32(b) != Magic {
		return nil, fmt.Errorf("qcow2: header: %w", ErrNotQcow2)
	}
	h := &Header{Version: be.Uint32(b[4:])}
	if h.Version != 2 && h.Version != 3 {
		return nil, fmt.Errorf("qcow2: header: version %d: %w", h.Version, ErrUnsupported)
	}
	if len(b) < v2HeaderLen {
		return nil, fmt.Errorf("qcow2: header: truncated (%d bytes): %w", len(b), ErrCorrupt)
	}
	h.BackingFileOffset = be.Uint64(b[8:])
	h.BackingFileSize = be.Uint32(b[16:])
	h.ClusterBits = be.Uint32(b[20:])
	h.Size = be.Uint64(b[24:])
	h.CryptMethod = be.Uint32(b[32:])
	h.L1Size = be.Uint32(b[36:])
	h.L1TableOffset = be.Uint64(b[40:])
	h.RefcountTableOffset = be.Uint64(b[48:])
	h.RefcountTableClusters = be.Uint32(b[56:])
	h.NbSnapshots = be.Uint32(b[60:])
	h.SnapshotsOffset = be.Uint64(b[64:])
	h.RefcountOrder = 4
	h.HeaderLength = v2HeaderLen
	if h.Version >= 3 {
		if len(b) < v3HeaderLen {
			return nil, fmt.Errorf("qcow2: header: truncated v3 header (%d bytes): %w", len(b), ErrCorrupt)
		}
		h.IncompatibleFeatures = be.Uint64(b[72:])
		h.CompatibleFeatures = be.Uint64(b[80:])
		h.AutoclearFeatures = be.Uint64(b[88:])
		h.RefcountOrder = be.Uint32(b[96:])
		h.HeaderLength = be.Uint32(b[100:])
		if h.HeaderLength < v3HeaderLen {
			return nil, fmt.Errorf("qcow2: header: header_length %d: %w", h.HeaderLength, ErrCorrupt)
		}
		if h.HeaderLength > v3HeaderLen {
			if len(b) <= v3HeaderLen {
				return nil, fmt.Errorf("qcow2: header: truncated header: %w", ErrCorrupt)
			}
			h.CompressionType = b[104]
		}
	}
	if h.ClusterBits < minClusterBits || h.ClusterBits > maxClusterBits {
		return nil, fmt.Errorf("qcow2: header: cluster_bits %d outside %d..%d: %w", h.ClusterBits, minClusterBits, maxClusterBits, ErrCorrupt)
	}
	if h.HeaderLength > uint32(h.ClusterSize()) {
		return nil, fmt.Errorf("qcow2: header: header_length %d larger than a cluster: %w", h.HeaderLength, ErrCorrupt)
	}
	if h.Size > 1<<62 {
		return nil, fmt.Errorf("qcow2: header: virtual size %d too large: %w", h.Size, ErrCorrupt)
	}
	if uint64(h.L1Size)*8 > maxL1Bytes {
		return nil, fmt.Errorf("qcow2: header: L1 table of %d entries too large: %w", h.L1Size, ErrCorrupt)
	}
	if need := h.l1Needed(); uint64(h.L1Size) < need {
		return nil, fmt.Errorf("qcow2: header: L1 table has %d entries, virtual size %d needs %d: %w", h.L1Size, h.Size, need, ErrCorrupt)
	}
	if h.L1Size > 0 && h.L1TableOffset%uint64(h.ClusterSize()) != 0 {
		return nil, fmt.Errorf("qcow2: header: L1 table offset %#x not cluster aligned: %w", h.L1TableOffset, ErrCorrupt)
	}
	if h.CompressionType != CompressionDeflate && h.IncompatibleFeatures&IncompatCompression == 0 {
		return nil, fmt.Errorf("qcow2: header: compression type %d without the compression-type feature bit: %w", h.CompressionType, ErrCorrupt)
	}
	if err := h.parseExtensions(b); err != nil {
		return nil, err
	}
	return h, nil
}

// l2Entries is the number of entries in one L2 table.
func (h *Header) l2Entries() uint64 {
	if h.ExtendedL2() {
		return uint64(h.ClusterSize()) / 16
	}
	return uint64(h.ClusterSize()) / 8
}

func (h *Header) l1Needed() uint64 {
	perL1 := h.l2Entries() << h.ClusterBits
	return (h.Size + perL1 - 1) / perL1
}

func (h *Header) parseExtensions(b []byte) error {
	be := binary.BigEndian
	off := uint64(h.HeaderLength)
	end := uint64(len(b))
	if cs := uint64(h.ClusterSize()); end > cs {
		end = cs
	}
	for off+8 <= end {
		typ := be.Uint32(b[off:])
		n := uint64(be.Uint32(b[off+4:]))
		off += 8
		if typ == extEnd {
			return nil
		}
		if n > end-off {
			return fmt.Errorf("qcow2: header extension %#x: length %d beyond the first cluster: %w", typ, n, ErrCorrupt)
		}
		data := b[off : off+n]
		switch typ {
		case extBackingFormat:
			h.BackingFormat = string(data)
		case extDataFile:
			h.DataFile = string(data)
		case extEncryption:
			h.Encrypted = true
		}
		off += (n + 7) &^ 7
	}
	return nil
}

// Supported returns an error wrapping ErrUnsupported when the image uses a
// feature that this package does not convert.
func (h *Header) Supported() error {
	switch {
	case h.BackingFileOffset != 0:
		return fmt.Errorf("qcow2: image has a backing file (overlay image); flatten it first with `qemu-img convert -O qcow2`: %w", ErrUnsupported)
	case h.CryptMethod != 0 || h.Encrypted:
		return fmt.Errorf("qcow2: image is encrypted (method %d): %w", h.CryptMethod, ErrUnsupported)
	case h.IncompatibleFeatures&IncompatDataFile != 0 || h.DataFile != "":
		return fmt.Errorf("qcow2: image keeps its data in an external file %q: %w", h.DataFile, ErrUnsupported)
	case h.IncompatibleFeatures&IncompatCorrupt != 0:
		return fmt.Errorf("qcow2: image is marked corrupt; repair it with `qemu-img check -r all`: %w", ErrCorrupt)
	}
	known := uint64(IncompatDirty | IncompatCompression | IncompatExtendedL2)
	if u := h.IncompatibleFeatures &^ known; u != 0 {
		return fmt.Errorf("qcow2: unknown incompatible features %#x: %w", u, ErrUnsupported)
	}
	if h.CompressionType != CompressionDeflate && h.CompressionType != CompressionZstd {
		return fmt.Errorf("qcow2: compression type %d: %w", h.CompressionType, ErrUnsupported)
	}
	return nil
}
