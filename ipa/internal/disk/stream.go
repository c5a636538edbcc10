package disk

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Stream geometry: 4 buffers of StreamChunk bytes (one filling, up to three
// being written), and the alignment O_DIRECT needs on every device we meet
// (4096 covers 512-byte and 4Kn sectors).
const (
	StreamChunk   = 2 * MiB
	streamBuffers = 4
	directAlign   = 4096
)

// Stream is a write-behind writer for an image: WriteAt copies the bytes
// into aligned buffers, merges adjacent writes, and worker goroutines write
// full buffers with O_DIRECT (no page-cache copy, no gigabytes of dirty
// pages left for the final sync) while the caller downloads, hashes and
// decodes the next bytes. The parts of a buffer that cover a 4096-byte
// block only in part are gathered per block and written whole with
// O_DIRECT too (completed with what the device holds, or with zeroes when
// Zeroed), so the final sync has next to nothing to write; only a block
// that would grow a regular file past its end goes through the page
// cache. On a regular file used as a disk, blocks are
// reserved (fallocate) before each direct write so the writers overlap as
// they do on a block device. Without O_DIRECT support (tmpfs, some
// filesystems) everything goes through the page cache, still behind.
//
// When the caller's bytes can be written where they lie (Pin says their
// buffer stays put until released, and they are aligned for O_DIRECT), a
// write takes them without the copy.
//
// Writes through a Stream must not overlap each other, and while it is
// open nothing else may write to a block they cover in part (other writes
// to the device, such as ZeroRange, keep to whole blocks). Errors are sticky:
// once a write fails, WriteAt and Close return that error. Close waits for
// every write; the caller then syncs the device.
type Stream struct {
	d      *File
	direct *os.File // nil: no O_DIRECT
	// noAlloc is set once the file refused fallocate.
	noAlloc atomic.Bool
	// noDirect is set when the device refused an aligned O_DIRECT write
	// (EINVAL: it wants a larger alignment): the page cache from then on.
	noDirect atomic.Bool
	// writeDirect writes an aligned range with O_DIRECT (a field so that
	// tests can make the device refuse it).
	writeDirect func(b []byte, off int64) error
	// Pin, when set, is asked to keep the memory of a write's bytes
	// unchanged until release is called; if it can, the bytes are written
	// from there instead of being copied (see WriteAt).
	Pin func(b []byte) (release func(), ok bool)
	// Zeroed, set before the first write, says the device reads zeroes
	// wherever the stream's writes do not go (a fresh sparse file, a disk
	// zeroed first): a partly written block is completed with zeroes
	// instead of what a read of the device returns.
	Zeroed bool
	free   chan []byte
	work   chan streamJob
	wg     sync.WaitGroup

	mu  sync.Mutex
	err error

	cur    []byte // the buffer being filled; data at cur[lead:]
	lead   int    // off % directAlign of the buffer's first byte
	curOff int64  // device offset of cur[lead]
	closed bool
	made   int   // buffers made so far
	copied int64 // bytes copied into the stream's buffers

	// edges holds the bytes of directAlign blocks that writes cover only
	// in part (a write's unaligned head and tail), by block offset, until
	// the block is whole or Close (or maxEdges blocks pile up): they are
	// then written with O_DIRECT, completed with what the device holds
	// there. edgeMu is held over a block's read and write.
	edgeMu sync.Mutex
	edges  map[int64]*edgeBlock
}

// edgeBlock is a directAlign block of the device, in part written.
type edgeBlock struct {
	b   []byte                   // aligned, directAlign bytes
	set [directAlign / 64]uint64 // which bytes of b hold written data
	n   int                      // how many
}

// maxEdges bounds the partly written blocks a Stream keeps (1 MiB).
const maxEdges = 256

type streamJob struct {
	buf  []byte // aligned buffer, data in buf[lead:]
	lead int
	off  int64 // device offset of buf[lead]
	// release hands a pinned caller's buffer back (nil: buf is the
	// stream's own).
	release func()
}

// minPinned is the shortest write taken without a copy; shorter ones are
// merged in the stream's buffers.
const minPinned = 256 << 10

// NewStream starts a Stream on d. It opens d a second time with O_DIRECT
// when the device allows it.
func (d *File) NewStream() *Stream {
	s := &Stream{d: d, free: make(chan []byte, streamBuffers), work: make(chan streamJob, streamBuffers), edges: map[int64]*edgeBlock{}}
	if f, err := os.OpenFile(d.f.Name(), os.O_WRONLY|unix.O_DIRECT, 0); err == nil {
		s.direct = f
	}

	s.writeDirect = func(b []byte, off int64) error { return s.pwrite(s.direct, b, off) }
	for range streamBuffers - 1 {
		s.wg.Add(1)
		go s.writer()
	}
	return s
}

// Copied returns how many bytes were copied into the stream's buffers so
// far; the others were written where the caller had them (Pin).
func (s *Stream) Copied() int64 { return s.copied }

// Direct reports whether the stream writes with O_DIRECT.
func (s *Stream) Direct() bool { return s.direct != nil && !s.noDirect.Load() }

// alignedBuffer returns n bytes starting at a directAlign boundary.
func alignedBuffer(n int) []byte {
	b := make([]byte, n+directAlign)
	skip := int(-uintptr(unsafe.Pointer(&b[0])) & (directAlign - 1))
	return b[skip : skip+n : skip+n]
}

func (s *Stream) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

func (s *Stream) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// WriteAt implements io.WriterAt. p may be reused as soon as it returns.
func (s *Stream) WriteAt(p []byte, off int64) (int, error) {
	if err := s.failed(); err != nil {
		return 0, err
	}
	if s.closed {
		return 0, errors.New("disk: write on a closed stream")
	}
	if j, ok := s.pinned(p, off); ok {
		s.submit()
		s.work <- j
		return len(p), nil
	}
	written := 0
	for len(p) > 0 {
		if s.cur != nil && (off != s.curOff+int64(len(s.cur)-s.lead) || len(s.cur) == cap(s.cur)) {
			s.submit()
		}
		if s.cur == nil {
			s.cur = s.buffer()
			s.lead = int(off % directAlign)
			s.cur = s.cur[:s.lead]
			s.curOff = off
		}
		n := copy(s.cur[len(s.cur):cap(s.cur)], p)
		s.copied += int64(n)
		s.cur = s.cur[:len(s.cur)+n]
		p, off, written = p[n:], off+int64(n), written+n
	}
	return written, nil
}

// pinned returns a job writing p where it lies, if p is long, starts a
// 4096-aligned device offset at a 4096-aligned address, and Pin holds it.
func (s *Stream) pinned(p []byte, off int64) (streamJob, bool) {
	if s.Pin == nil || len(p) < minPinned || off%directAlign != 0 ||
		uintptr(unsafe.Pointer(unsafe.SliceData(p)))%directAlign != 0 {
		return streamJob{}, false
	}
	release, ok := s.Pin(p)
	if !ok {
		return streamJob{}, false
	}
	return streamJob{buf: p, off: off, release: release}, true
}

// buffer returns a free buffer of the stream; they are made when first
// needed (a stream whose writes are all pinned never makes one).
func (s *Stream) buffer() []byte {
	select {
	case b := <-s.free:
		return b
	default:
	}
	if s.made < streamBuffers {
		s.made++
		return alignedBuffer(StreamChunk + directAlign)
	}
	return <-s.free
}

func (s *Stream) submit() {
	if s.cur != nil {
		s.work <- streamJob{buf: s.cur, lead: s.lead, off: s.curOff}
		s.cur = nil
	}
}

func (s *Stream) writer() {
	defer s.wg.Done()
	for j := range s.work {
		if s.failed() == nil {
			if err := s.write(j); err != nil {
				s.fail(err)
			}
		}
		if j.release != nil {
			j.release()
		} else {
			s.free <- j.buf[:cap(j.buf)]
		}
	}
}

// write puts one buffer on the device: its directAlign-aligned middle
// with O_DIRECT, the unaligned head and tail as edges (see addEdge); all
// of it through the page cache on a device without O_DIRECT.
func (s *Stream) write(j streamJob) error {
	// buf[i] holds the byte at base + i, and buf is aligned: an aligned
	// offset's index is a multiple of directAlign.
	base := j.off - int64(j.lead)
	end := j.off + int64(len(j.buf)-j.lead)
	if s.direct == nil || s.noDirect.Load() {
		return s.pwrite(s.d.f, j.buf[j.lead:], j.off)
	}
	dStart := (j.off + directAlign - 1) &^ (directAlign - 1)
	dEnd := end &^ (directAlign - 1)
	if dEnd <= dStart { // within one block, or two with no whole one between
		return s.addEdges(j.buf[j.lead:], j.off)
	}
	if err := s.addEdges(j.buf[j.lead:dStart-base], j.off); err != nil {
		return err
	}
	s.allocate(dStart, dEnd-dStart)
	err := s.writeDirect(j.buf[dStart-base:dEnd-base], dStart)
	switch {
	case errors.Is(err, unix.EINVAL):
		s.noDirect.Store(true)
		if err := s.pwrite(s.d.f, j.buf[dStart-base:dEnd-base], dStart); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		s.d.direct.Add(dEnd - dStart)
	}
	return s.addEdges(j.buf[dEnd-base:end-base], dEnd)
}

// addEdges keeps b, to be written at off, in the blocks it covers in part.
// A block whose every byte has been written goes to the device at once;
// when more than maxEdges blocks are pending, they all do.
func (s *Stream) addEdges(b []byte, off int64) error {
	type whole struct {
		blk int64
		e   *edgeBlock
	}
	var done []whole
	s.edgeMu.Lock()
	for len(b) > 0 {
		blk := off &^ (directAlign - 1)
		i := int(off - blk)
		n := min(len(b), directAlign-i)
		e := s.edges[blk]
		if e == nil {
			e = &edgeBlock{b: alignedBuffer(directAlign)}
			s.edges[blk] = e
		}
		copy(e.b[i:], b[:n])
		for k := i; k < i+n; k++ {
			if w, bit := &e.set[k/64], uint64(1)<<(k%64); *w&bit == 0 {
				*w |= bit
				e.n++
			}
		}
		if e.n == directAlign {
			delete(s.edges, blk)
			done = append(done, whole{blk, e})
		}
		b, off = b[n:], off+int64(n)
	}
	var err error
	if len(s.edges) > maxEdges {
		err = s.flushEdgesLocked()
	}
	s.edgeMu.Unlock()
	// Whole blocks: no other write touches them, no lock needed.
	for _, w := range done {
		err = errors.Join(err, s.flushEdge(w.blk, w.e, -1))
	}
	return err
}

// flushEdges writes every pending edge block (Close).
func (s *Stream) flushEdges() error {
	s.edgeMu.Lock()
	defer s.edgeMu.Unlock()
	return s.flushEdgesLocked()
}

// edgeWriters is how many edge blocks are written side by side: they are
// scattered 4 KiB writes, which a disk serves best many at a time.
const edgeWriters = 16

func (s *Stream) flushEdgesLocked() error {
	if len(s.edges) == 0 {
		return nil
	}
	size := int64(-1) // a regular file's current end: blocks past it are not written whole
	if !s.d.block {
		st, err := s.d.f.Stat()
		if err != nil {
			return fmt.Errorf("disk: %s: %w", s.d.Name(), err)
		}
		size = st.Size()
	}
	blks := make(chan int64)
	errs := make(chan error, edgeWriters)
	for range edgeWriters {
		go func() {
			var err error
			for blk := range blks {
				err = errors.Join(err, s.flushEdge(blk, s.edges[blk], size))
			}
			errs <- err
		}()
	}
	for blk := range s.edges {
		blks <- blk
	}
	close(blks)
	var err error
	for range edgeWriters {
		err = errors.Join(err, <-errs)
	}
	clear(s.edges)
	return err
}

// flushEdge writes block blk: whole with O_DIRECT, the bytes not written
// through the stream read from the device first. Only the written bytes
// go through the page cache when the block would extend a regular file
// (size is its end; -1 when unknown or a block device) or the device
// refuses O_DIRECT.
func (s *Stream) flushEdge(blk int64, e *edgeBlock, size int64) error {
	if !s.noDirect.Load() && (size < 0 || blk+directAlign <= size) {
		if e.n < directAlign && s.Zeroed {
			for k := range directAlign {
				if e.set[k/64]&(1<<(k%64)) == 0 {
					e.b[k] = 0
				}
			}
		} else if e.n < directAlign {
			old := alignedBuffer(directAlign)
			if _, err := s.d.f.ReadAt(old, blk); err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("disk: %s: read %d bytes at %d: %w", s.d.Name(), directAlign, blk, err)
			}
			for k := range directAlign {
				if e.set[k/64]&(1<<(k%64)) == 0 {
					e.b[k] = old[k]
				}
			}
		}
		err := s.writeDirect(e.b, blk)
		if err == nil {
			s.d.direct.Add(directAlign)
			return nil
		}
		if !errors.Is(err, unix.EINVAL) {
			return err
		}
		s.noDirect.Store(true)
	}
	// The written runs, through the page cache.
	for k := 0; k < directAlign; {
		if e.set[k/64]&(1<<(k%64)) == 0 {
			k++
			continue
		}
		r := k
		for r < directAlign && e.set[r/64]&(1<<(r%64)) != 0 {
			r++
		}
		if err := s.pwrite(s.d.f, e.b[k:r], blk+int64(k)); err != nil {
			return err
		}
		k = r
	}
	return nil
}

// allocate reserves the blocks of a regular-file disk before an O_DIRECT
// write to them: a direct write into a hole allocates under the file's
// lock and waits for its I/O there, so the writers would take turns;
// into allocated (unwritten) blocks they run side by side, as on a real
// disk. Block devices need nothing; filesystems without fallocate are
// left alone.
func (s *Stream) allocate(off, n int64) {
	if s.d.block || s.noAlloc.Load() {
		return
	}
	if err := unix.Fallocate(int(s.d.f.Fd()), unix.FALLOC_FL_KEEP_SIZE, off, n); err != nil {
		s.noAlloc.Store(true)
	}
}

func (s *Stream) pwrite(f *os.File, b []byte, off int64) error {
	if len(b) == 0 {
		return nil
	}
	n, err := f.WriteAt(b, off)
	if f == s.d.f {
		s.d.buffered.Add(int64(n))
	}
	if err != nil {
		return fmt.Errorf("disk: %s: write %d bytes at %d: %w", s.d.Name(), len(b), off, err)
	}
	return nil
}

// Close writes what is buffered, waits for every write and returns the
// first error. The device's size is updated for regular files.
func (s *Stream) Close() error {
	if !s.closed {
		s.closed = true
		s.submit()
		close(s.work)
		s.wg.Wait()
		if s.failed() == nil {
			if err := s.flushEdges(); err != nil {
				s.fail(err)
			}
		}
		if s.direct != nil {
			if err := s.direct.Close(); err != nil {
				s.fail(fmt.Errorf("disk: %s: %w", s.d.Name(), err))
			}
		}
		if !s.d.block {
			if st, err := s.d.f.Stat(); err == nil && st.Size() > s.d.size {
				s.d.size = st.Size()
			}
		}
	}
	return s.failed()
}
