package qcow2

import (
	"bytes"
	"encoding/binary"
)

// Format is a disk image or container format recognised by Detect.
type Format string

// Formats Detect reports. Raw means "no known signature" (a raw disk, or a
// partition table, or anything else).
const (
	FormatRaw   Format = "raw"
	FormatQcow2 Format = "qcow2"
	FormatGzip  Format = "gzip"
	FormatZstd  Format = "zstd"
	FormatXZ    Format = "xz"
	FormatBzip2 Format = "bzip2"
	FormatISO   Format = "iso"
	FormatVMDK  Format = "vmdk"
	FormatVHDX  Format = "vhdx"
	FormatVDI   Format = "vdi"
	FormatVHD   Format = "vpc"
)

// DetectSize is how many leading bytes Detect needs to recognise every
// format: an ISO9660 volume descriptor starts at byte 32768.
const DetectSize = 32768 + 6

var isoMagic = []byte("CD001")

// Detect sniffs the format of an image from its first bytes. 512 bytes are
// enough for everything but ISO9660, which needs DetectSize bytes (an ISO
// given fewer bytes is reported as raw, or as the hybrid MBR it carries).
func Detect(prefix []byte) Format {
	be := binary.BigEndian
	switch {
	case len(prefix) >= 4 && be.Uint32(prefix) == Magic:
		return FormatQcow2
	case bytes.HasPrefix(prefix, []byte{0x1f, 0x8b}):
		return FormatGzip
	case bytes.HasPrefix(prefix, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return FormatZstd
	case bytes.HasPrefix(prefix, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return FormatXZ
	case bytes.HasPrefix(prefix, []byte("BZh")) && len(prefix) >= 4 && prefix[3] >= '1' && prefix[3] <= '9':
		return FormatBzip2
	case bytes.HasPrefix(prefix, []byte("KDMV")), bytes.HasPrefix(prefix, []byte("# Disk DescriptorFile")):
		return FormatVMDK
	case bytes.HasPrefix(prefix, []byte("vhdxfile")):
		return FormatVHDX
	case bytes.HasPrefix(prefix, []byte("conectix")):
		return FormatVHD
	case len(prefix) >= 0x44 && binary.LittleEndian.Uint32(prefix[0x40:]) == 0xbeda107f:
		return FormatVDI
	case len(prefix) >= 32769+5 && bytes.Equal(prefix[32769:32769+5], isoMagic):
		return FormatISO
	}
	return FormatRaw
}
