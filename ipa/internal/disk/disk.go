// Package disk is the agent's access to target disks: a BlockDevice
// interface implemented for Linux block devices and for regular files (used
// as disks by tests and by the agent's process mode), erase primitives
// (discard, zero-out, metadata wipe) and in-Go partition table edits (GPT and
// MBR) needed for the configdrive partition.
package disk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MiB is 2^20 bytes.
const MiB = 1 << 20

// ErrNotSupported is returned by operations the device cannot do.
var ErrNotSupported = errors.New("disk: operation not supported by device")

// BlockDevice is what the agent writes images to and erases.
type BlockDevice interface {
	io.ReaderAt
	io.WriterAt
	// Name is the device path (e.g. /dev/sda, or the file name).
	Name() string
	// Size is the capacity in bytes.
	Size() int64
	// SectorSize is the logical sector size (512 for files).
	SectorSize() int
	// ZeroRange makes [off, off+n) read back as zeroes, as cheaply as the
	// device allows (hole punching, WRITE ZEROES offload, or writing zeroes).
	ZeroRange(off, n int64) error
	// Discard unmaps [off, off+n) (secure: BLKSECDISCARD); ErrNotSupported
	// when the device cannot.
	Discard(off, n int64, secure bool) error
	// HasData reports whether any byte at or after off may be non-zero
	// (false only when the device is known to read back zeroes).
	HasData(off int64) bool
	Sync() error
	Close() error
}

// File is a BlockDevice backed by an *os.File: a block device node or a
// regular file.
type File struct {
	f      *os.File
	size   int64
	sector int
	block  bool
	dirty  atomic.Int64 // bytes written since writeback was last started
	// How the bytes written so far reached the device (see IOStats).
	direct, buffered, zeroed atomic.Int64
}

// IOStats counts how the bytes written to a File reached the device: the
// page cache's share is what its final Sync still has to write.
type IOStats struct {
	Direct   int64 // written with O_DIRECT (by a Stream)
	Buffered int64 // written through the page cache
	Zeroed   int64 // made to read as zeroes without writing them (hole punch, BLKZEROOUT)
}

// IOStats returns the counts of the bytes written so far.
func (d *File) IOStats() IOStats {
	return IOStats{Direct: d.direct.Load(), Buffered: d.buffered.Load(), Zeroed: d.zeroed.Load()}
}

// writebackEvery is how many bytes WriteAt lets accumulate in the page
// cache before it starts their writeback (sync_file_range, not waiting for
// it). Without it a machine with much RAM keeps gigabytes dirty until the
// final Sync, which then writes them all while nothing else happens; with it
// the disk writes while the image still downloads.
const writebackEvery = 32 * MiB

var _ BlockDevice = (*File)(nil)

// Open opens path read-write as a BlockDevice.
func Open(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("disk: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("disk: %w", err)
	}
	d := &File{f: f, sector: 512}
	if st.Mode()&os.ModeDevice != 0 {
		d.block = true
		var sz uint64
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&sz))); e != 0 {
			f.Close()
			return nil, fmt.Errorf("disk: %s: BLKGETSIZE64: %w", path, e)
		}
		d.size = int64(sz)
		if ss, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET); err == nil && ss > 0 {
			d.sector = ss
		}
	} else {
		d.size = st.Size()
	}
	return d, nil
}

// Name implements BlockDevice.
func (d *File) Name() string { return d.f.Name() }

// Size implements BlockDevice.
func (d *File) Size() int64 { return d.size }

// SectorSize implements BlockDevice.
func (d *File) SectorSize() int { return d.sector }

// ReadAt implements io.ReaderAt.
func (d *File) ReadAt(p []byte, off int64) (int, error) { return d.f.ReadAt(p, off) }

// WriteAt implements io.WriterAt. Regular files grow; writes past the end of
// a block device fail.
func (d *File) WriteAt(p []byte, off int64) (int, error) {
	n, err := d.f.WriteAt(p, off)
	d.buffered.Add(int64(n))
	if !d.block && off+int64(n) > d.size {
		d.size = off + int64(n)
	}
	if d.dirty.Add(int64(n)) >= writebackEvery {
		d.dirty.Store(0)
		// Best effort: a failure here shows up at Sync.
		_ = unix.SyncFileRange(int(d.f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
	return n, err
}

// Sync implements BlockDevice.
func (d *File) Sync() error { return d.f.Sync() }

// Close implements BlockDevice.
func (d *File) Close() error { return d.f.Close() }

// Truncate sets the size of a regular-file disk (no-op for block devices).
func (d *File) Truncate(size int64) error {
	if d.block {
		return nil
	}
	if err := d.f.Truncate(size); err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	d.size = size
	return nil
}

// ZeroRange implements BlockDevice: fallocate(PUNCH_HOLE) on files,
// BLKZEROOUT on block devices, zero writes (through a Stream) as the
// fallback.
func (d *File) ZeroRange(off, n int64) error {
	if n <= 0 {
		return nil
	}
	if d.block {
		r := [2]uint64{uint64(off), uint64(n)}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, d.f.Fd(), unix.BLKZEROOUT, uintptr(unsafe.Pointer(&r))); e == 0 {
			d.zeroed.Add(n)
			return nil
		}
	} else {
		if off+n > d.size {
			if err := d.Truncate(off + n); err != nil {
				return err
			}
		}
		if err := unix.Fallocate(int(d.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err == nil {
			d.zeroed.Add(n)
			return nil
		}
	}
	// Zeroes written, with O_DIRECT where the device allows it. The
	// caller keeps other writes off [off, off+n) and, if it has a Stream
	// open on d, off the blocks the range covers in part.
	s := d.NewStream()
	err := WriteZeroes(context.Background(), s, off, n, nil)
	return errors.Join(err, s.Close())
}

// Discard implements BlockDevice.
func (d *File) Discard(off, n int64, secure bool) error {
	if !d.block {
		if secure {
			return ErrNotSupported
		}
		if err := unix.Fallocate(int(d.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err != nil {
			return fmt.Errorf("disk: punch hole: %w: %w", err, ErrNotSupported)
		}
		return nil
	}
	req := uintptr(unix.BLKDISCARD)
	if secure {
		req = unix.BLKSECDISCARD
	}
	r := [2]uint64{uint64(off), uint64(n)}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, d.f.Fd(), req, uintptr(unsafe.Pointer(&r))); e != 0 {
		if e == unix.EOPNOTSUPP || e == unix.ENOTTY || e == unix.EINVAL {
			return fmt.Errorf("disk: %s: %w", d.Name(), ErrNotSupported)
		}
		return fmt.Errorf("disk: %s: discard: %w", d.Name(), e)
	}
	return nil
}

// HasData implements BlockDevice: for regular files SEEK_DATA tells whether
// any allocated extent lies at or after off.
func (d *File) HasData(off int64) bool {
	if d.block {
		return true
	}
	_, err := unix.Seek(int(d.f.Fd()), off, unix.SEEK_DATA)
	return !errors.Is(err, unix.ENXIO)
}

// WriteZeroes writes zero bytes over [off, off+n) in 4 MiB chunks, calling
// progress after each chunk.
func WriteZeroes(ctx context.Context, w io.WriterAt, off, n int64, progress func(done int64)) error {
	buf := make([]byte, 4*MiB)
	var done int64
	for done < n {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("disk: zeroing: %w", err)
		}
		chunk := min(int64(len(buf)), n-done)
		if _, err := w.WriteAt(buf[:chunk], off+done); err != nil {
			return fmt.Errorf("disk: zeroing at %d: %w", off+done, err)
		}
		done += chunk
		if progress != nil {
			progress(done)
		}
	}
	return nil
}

// IsZero reports whether b holds only zero bytes.
func IsZero(b []byte) bool {
	// Word-at-a-time scan; the tail is checked bytewise.
	for len(b) >= 8 && uintptr(unsafe.Pointer(&b[0]))%8 != 0 {
		if b[0] != 0 {
			return false
		}
		b = b[1:]
	}
	n := len(b) / 8
	if n > 0 {
		words := unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), n)
		for i := 0; i+4 <= len(words); i += 4 {
			if words[i]|words[i+1]|words[i+2]|words[i+3] != 0 {
				return false
			}
		}
		for i := n &^ 3; i < n; i++ {
			if words[i] != 0 {
				return false
			}
		}
	}
	for _, c := range b[n*8:] {
		if c != 0 {
			return false
		}
	}
	return true
}
