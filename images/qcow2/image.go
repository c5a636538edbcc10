package qcow2

import (
	"bytes"
	"cmp"
	"compress/flate"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/klauspost/compress/zstd"
)

const (
	l1OffsetMask  = 0x00fffffffffffe00
	l1Reserved    = 0x7f000000000001ff
	l2OffsetMask  = 0x00fffffffffffe00
	l2Compressed  = 1 << 62
	l2Zero        = 1 << 0
	l2Reserved    = 0x3f000000000001fe
	maxTableBatch = 8 << 20 // largest single read of adjacent L2 tables
	copyChunk     = 1 << 20
	maxRun        = 4 << 20 // largest write straight from the stream buffer
	allSubcluster = 0xffffffff
)

// extent is one data cluster: where it is in the file and where it goes.
type extent struct {
	host  uint64 // offset in the qcow2 file
	guest uint64 // offset in the virtual disk
	clen  uint32 // compressed length upper bound; 0 for an uncompressed cluster
	sub   uint32 // allocated subclusters (bit i = subcluster i); all ones without extended L2
}

// Image is an opened qcow2 image ready for streaming conversion.
type Image struct {
	Header  *Header
	size    int64
	extents []extent // sorted by host offset
}

// Open reads the header and the L1/L2 tables of a qcow2 file of the given
// size through r. It refuses images using unsupported features with an
// error wrapping ErrUnsupported.
func Open(ctx context.Context, r io.ReaderAt, size int64) (*Image, error) {
	if size < HeaderFixedSize {
		return nil, fmt.Errorf("qcow2: file of %d bytes is too small: %w", size, ErrNotQcow2)
	}
	n := min(size, 64<<10)
	first := make([]byte, n)
	if err := readAt(ctx, r, first, 0); err != nil {
		return nil, fmt.Errorf("qcow2: read header: %w", err)
	}
	if cb := binary.BigEndian.Uint32(first[20:]); cb > 16 && cb <= maxClusterBits && n < size {
		first = make([]byte, min(size, int64(1)<<cb))
		if err := readAt(ctx, r, first, 0); err != nil {
			return nil, fmt.Errorf("qcow2: read header: %w", err)
		}
	}
	h, err := ParseHeader(first)
	if err != nil {
		return nil, err
	}
	if err := h.Supported(); err != nil {
		return nil, err
	}
	img := &Image{Header: h, size: size}
	if err := img.readTables(ctx, r); err != nil {
		return nil, err
	}
	return img, nil
}

func readAt(ctx context.Context, r io.ReaderAt, p []byte, off int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func (img *Image) readTables(ctx context.Context, r io.ReaderAt) error {
	h := img.Header
	cs := uint64(h.ClusterSize())
	size := uint64(img.size)
	l1Bytes := uint64(h.L1Size) * 8
	if h.L1TableOffset > size || l1Bytes > size-h.L1TableOffset {
		return fmt.Errorf("qcow2: L1 table at %#x (%d bytes) beyond end of file (%d bytes): %w", h.L1TableOffset, l1Bytes, size, ErrCorrupt)
	}
	l1 := make([]byte, l1Bytes)
	if err := readAt(ctx, r, l1, int64(h.L1TableOffset)); err != nil {
		return fmt.Errorf("qcow2: read L1 table: %w", err)
	}
	type table struct {
		off uint64
		idx uint64 // L1 index
	}
	var tables []table
	for i := range uint64(h.L1Size) {
		e := binary.BigEndian.Uint64(l1[i*8:])
		off := e & l1OffsetMask
		if off == 0 {
			continue
		}
		if e&l1Reserved != 0 || off%cs != 0 || off > size || size-off < cs {
			return fmt.Errorf("qcow2: L1 entry %d (%#x) is invalid: %w", i, e, ErrCorrupt)
		}
		if i >= h.l1Needed() {
			continue // beyond the virtual size
		}
		tables = append(tables, table{off: off, idx: i})
	}
	slices.SortFunc(tables, func(a, b table) int { return cmp.Compare(a.off, b.off) })
	for i := 1; i < len(tables); i++ {
		if tables[i].off == tables[i-1].off {
			return fmt.Errorf("qcow2: L2 table %#x referenced twice: %w", tables[i].off, ErrCorrupt)
		}
	}
	// Read runs of adjacent tables in one request each.
	var buf []byte
	for i := 0; i < len(tables); {
		j := i + 1
		for j < len(tables) && tables[j].off == tables[j-1].off+cs && uint64(j-i+1)*cs <= maxTableBatch {
			j++
		}
		need := int(uint64(j-i) * cs)
		if cap(buf) < need {
			buf = make([]byte, need)
		}
		buf = buf[:need]
		if err := readAt(ctx, r, buf, int64(tables[i].off)); err != nil {
			return fmt.Errorf("qcow2: read L2 table at %#x: %w", tables[i].off, err)
		}
		for k := i; k < j; k++ {
			t := buf[uint64(k-i)*cs : uint64(k-i+1)*cs]
			if err := img.addL2(t, tables[k].idx); err != nil {
				return err
			}
		}
		i = j
	}
	slices.SortFunc(img.extents, func(a, b extent) int {
		if c := cmp.Compare(a.host, b.host); c != 0 {
			return c
		}
		return cmp.Compare(a.guest, b.guest)
	})
	return nil
}

func (img *Image) addL2(t []byte, l1idx uint64) error {
	h := img.Header
	be := binary.BigEndian
	cs := uint64(h.ClusterSize())
	size := uint64(img.size)
	n := h.l2Entries()
	ext := h.ExtendedL2()
	for j := range n {
		guest := (l1idx*n + j) * cs
		if guest >= h.Size {
			break
		}
		var e, bitmap uint64
		if ext {
			e, bitmap = be.Uint64(t[j*16:]), be.Uint64(t[j*16+8:])
		} else {
			e = be.Uint64(t[j*8:])
		}
		if e&l2Compressed != 0 {
			x := 62 - (h.ClusterBits - 8)
			host := e & (1<<x - 1)
			nsec := (e >> x) & (1<<(h.ClusterBits-8) - 1)
			clen := (nsec+1)*512 - host&511
			if host == 0 || host >= size || (ext && bitmap != 0) {
				return fmt.Errorf("qcow2: compressed L2 entry %#x for guest offset %#x is invalid: %w", e, guest, ErrCorrupt)
			}
			clen = min(clen, size-host)
			img.extents = append(img.extents, extent{host: host, guest: guest, clen: uint32(clen), sub: allSubcluster})
			continue
		}
		host := e & l2OffsetMask
		if e&l2Reserved != 0 || host%cs != 0 {
			return fmt.Errorf("qcow2: L2 entry %#x for guest offset %#x is invalid: %w", e, guest, ErrCorrupt)
		}
		sub := uint32(allSubcluster)
		if ext {
			alloc, zero := uint32(bitmap), uint32(bitmap>>32)
			if alloc&zero != 0 || (host == 0 && alloc != 0) {
				return fmt.Errorf("qcow2: extended L2 entry %#x/%#x for guest offset %#x is invalid: %w", e, bitmap, guest, ErrCorrupt)
			}
			sub = alloc
		} else if e&l2Zero != 0 {
			continue // reads as zeros
		}
		if host == 0 || sub == 0 {
			continue // unallocated (no backing file: zeros) or all zero
		}
		if host >= size {
			return fmt.Errorf("qcow2: data cluster at %#x beyond end of file (%d bytes): %w", host, size, ErrCorrupt)
		}
		img.extents = append(img.extents, extent{host: host, guest: guest, sub: sub})
	}
	return nil
}

// VirtualSize returns the guest disk size in bytes.
func (img *Image) VirtualSize() int64 { return img.Header.VirtualSize() }

// DataStart returns the file offset of the first data cluster: Convert needs
// the file's bytes from there on. It is the file size when the image holds
// no data.
func (img *Image) DataStart() int64 {
	if len(img.extents) == 0 {
		return img.size
	}
	return int64(img.extents[0].host)
}

// DataClusters returns the number of clusters holding data (compressed or not).
func (img *Image) DataClusters() int { return len(img.extents) }

// Options tune Convert.
type Options struct {
	// WriteZeroes makes Convert write zeros for every part of the virtual
	// disk that holds no data, so the target need not read as zeros first.
	// Without it those ranges (and data clusters that are all zeros) are
	// skipped.
	WriteZeroes bool
}

// Stats describes a finished conversion.
type Stats struct {
	BytesRead          int64 // bytes consumed from the stream
	BytesWritten       int64 // bytes written to the target
	DataClusters       int   // data clusters written
	CompressedClusters int   // of which compressed
	ZeroClusters       int   // data clusters skipped because they held only zeros
}

// Convert reads the qcow2 file sequentially from src, whose first byte is
// at file offset srcOffset (0 or at most DataStart), and writes the guest
// data to dst at guest offsets. It reads no further than the last data
// cluster. dst is not truncated or synced; callers writing to a regular file
// should Truncate it to VirtualSize.
func (img *Image) Convert(ctx context.Context, src io.Reader, srcOffset int64, dst io.WriterAt, opt Options) (Stats, error) {
	var st Stats
	if srcOffset < 0 || srcOffset > img.DataStart() {
		return st, fmt.Errorf("qcow2: convert: stream starts at %d, after the first data cluster at %d", srcOffset, img.DataStart())
	}
	cs := int(img.Header.ClusterSize())
	maxLen := cs
	for _, e := range img.extents {
		maxLen = max(maxLen, int(e.clen))
	}
	win := &window{r: src, start: srcOffset, size: maxLen + maxRun}
	if cr, ok := src.(ChunkReader); ok {
		win.cr = cr
	} else {
		win.buf = make([]byte, 0, win.size)
	}
	out := &coalescer{w: dst, buf: make([]byte, 0, copyChunk)}
	cluster := make([]byte, cs)
	dec := &decompressor{typ: img.Header.CompressionType}
	defer dec.close()
	vsize := uint64(img.Header.Size)
	subSize := cs / 32

	for i := 0; i < len(img.extents); i++ {
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("qcow2: convert: %w", err)
		}
		e := img.extents[i]
		if n := img.run(i, win.span(int64(e.host), maxRun)); n > 1 {
			// Clusters adjacent in the file and on the disk: written
			// straight from the stream buffer, without copying.
			if err := img.writeRun(out, win, img.extents[i:i+n], opt.WriteZeroes, &st); err != nil {
				return st, err
			}
			i += n - 1
			continue
		}
		var data []byte
		if e.clen != 0 {
			raw, err := win.get(int64(e.host), int(e.clen), true)
			if err != nil {
				return st, fmt.Errorf("qcow2: convert: compressed cluster at %#x: %w", e.host, err)
			}
			if err := dec.decompress(raw, cluster); err != nil {
				return st, fmt.Errorf("qcow2: convert: compressed cluster at %#x for guest offset %#x: %w", e.host, e.guest, err)
			}
			data = cluster
			st.CompressedClusters++
		} else {
			avail := min(int64(cs), img.size-int64(e.host))
			raw, err := win.get(int64(e.host), int(avail), false)
			if err != nil {
				return st, fmt.Errorf("qcow2: convert: data cluster at %#x: %w", e.host, err)
			}
			data = raw
			if len(raw) < cs { // last cluster cut short by the end of the file
				n := copy(cluster, raw)
				clear(cluster[n:])
				data = cluster
			}
		}
		glen := int(min(uint64(cs), vsize-e.guest))
		data = data[:glen]
		if e.sub != allSubcluster {
			if err := img.writeSubclusters(out, e, data, subSize, opt.WriteZeroes, &st); err != nil {
				return st, err
			}
			continue
		}
		if !opt.WriteZeroes && isZero(data) {
			st.ZeroClusters++
			continue
		}
		if err := out.write(data, int64(e.guest)); err != nil {
			return st, fmt.Errorf("qcow2: convert: write at guest offset %#x: %w", e.guest, err)
		}
		st.DataClusters++
		st.BytesWritten += int64(glen)
	}
	if err := out.flush(); err != nil {
		return st, fmt.Errorf("qcow2: convert: %w", err)
	}
	st.BytesRead = win.consumed
	if opt.WriteZeroes {
		n, err := img.writeGaps(ctx, dst)
		st.BytesWritten += n
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

// run returns how many extents from i on are whole uncompressed clusters
// that follow each other both in the file and on the virtual disk, up to
// limit bytes.
func (img *Image) run(i int, limit int) int {
	cs := uint64(img.Header.ClusterSize())
	whole := func(e extent) bool {
		return e.clen == 0 && e.sub == allSubcluster && e.host+cs <= uint64(img.size) && e.guest+cs <= img.Header.Size
	}
	if !whole(img.extents[i]) {
		return 0
	}
	n := 1
	for j := i + 1; j < len(img.extents) && uint64(n+1)*cs <= uint64(limit); j++ {
		p, e := img.extents[j-1], img.extents[j]
		if !whole(e) || e.host != p.host+cs || e.guest != p.guest+cs {
			break
		}
		n++
	}
	return n
}

// writeRun writes a run of adjacent clusters (see run) with as few WriteAt
// calls as its zero clusters allow.
func (img *Image) writeRun(out *coalescer, win *window, run []extent, zeros bool, st *Stats) error {
	cs := int(img.Header.ClusterSize())
	raw, err := win.get(int64(run[0].host), len(run)*cs, false)
	if err != nil {
		return fmt.Errorf("qcow2: convert: data cluster at %#x: %w", run[0].host, err)
	}
	if err := out.flush(); err != nil {
		return fmt.Errorf("qcow2: convert: %w", err)
	}
	from := -1 // first cluster of the pending write
	flush := func(to int) error {
		if from < 0 {
			return nil
		}
		off := int64(run[from].guest)
		if _, err := out.w.WriteAt(raw[from*cs:to*cs], off); err != nil {
			return fmt.Errorf("qcow2: convert: write at guest offset %#x: %w", off, err)
		}
		st.DataClusters += to - from
		st.BytesWritten += int64((to - from) * cs)
		from = -1
		return nil
	}
	for k := range run {
		if !zeros && isZero(raw[k*cs:(k+1)*cs]) {
			st.ZeroClusters++
			if err := flush(k); err != nil {
				return err
			}
			continue
		}
		if from < 0 {
			from = k
		}
	}
	return flush(len(run))
}

func (img *Image) writeSubclusters(out *coalescer, e extent, data []byte, subSize int, zeros bool, st *Stats) error {
	wrote := false
	for i := 0; i < 32; i++ {
		lo := i * subSize
		if lo >= len(data) {
			break
		}
		chunk := data[lo:min(lo+subSize, len(data))]
		if e.sub&(1<<i) == 0 {
			if !zeros {
				continue
			}
			chunk = make([]byte, len(chunk))
		} else if !zeros && isZero(chunk) {
			continue
		}
		if err := out.write(chunk, int64(e.guest)+int64(lo)); err != nil {
			return fmt.Errorf("qcow2: convert: write at guest offset %#x: %w", int64(e.guest)+int64(lo), err)
		}
		st.BytesWritten += int64(len(chunk))
		wrote = true
	}
	if wrote {
		st.DataClusters++
	} else {
		st.ZeroClusters++
	}
	return nil
}

// writeGaps writes zeros over every guest range no extent covers.
func (img *Image) writeGaps(ctx context.Context, dst io.WriterAt) (int64, error) {
	byGuest := slices.Clone(img.extents)
	slices.SortFunc(byGuest, func(a, b extent) int { return cmp.Compare(a.guest, b.guest) })
	zero := make([]byte, copyChunk)
	cs := uint64(img.Header.ClusterSize())
	var written int64
	fill := func(from, to uint64) error {
		for from < to {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("qcow2: convert: %w", err)
			}
			n := min(to-from, uint64(len(zero)))
			if _, err := dst.WriteAt(zero[:n], int64(from)); err != nil {
				return fmt.Errorf("qcow2: convert: write zeros at %#x: %w", from, err)
			}
			written += int64(n)
			from += n
		}
		return nil
	}
	var pos uint64
	for _, e := range byGuest {
		if err := fill(pos, e.guest); err != nil {
			return written, err
		}
		pos = max(pos, e.guest+cs)
	}
	return written, fill(min(pos, img.Header.Size), img.Header.Size)
}

func isZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.NativeEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ChunkReader is an optional interface of Convert's source: a stream that
// holds its bytes in buffers of its own hands them out instead of having
// them copied. Convert then passes slices of those buffers to the
// destination's WriteAt (a destination that writes behind may keep them
// only if the source's owner allows it).
type ChunkReader interface {
	io.Reader
	// ReadChunk returns up to max of the next bytes of the stream, valid
	// until the next call; at the end it returns io.EOF.
	ReadChunk(max int) ([]byte, error)
}

// window is a forward-only view of the stream that keeps the bytes of the
// current cluster (compressed clusters may share a sector with the next).
// Over a ChunkReader, buf is the source's current chunk, or, for bytes
// spanning two chunks, a copy put together in own.
type window struct {
	r        io.Reader
	cr       ChunkReader
	size     int   // capacity of the window's own buffer
	start    int64 // file offset of buf[0]
	buf      []byte
	own      []byte
	consumed int64
	eof      bool
}

// span returns how many bytes from file offset off on (at most limit) get
// returns without copying them.
func (w *window) span(off int64, limit int) int {
	if w.cr == nil {
		return limit
	}
	if _, err := w.get(off, 1, true); err != nil {
		return limit // get reports it
	}
	return min(limit, int(w.start+int64(len(w.buf))-off))
}

// next takes up to max bytes of a ChunkReader, or none at its end.
func (w *window) next(max int) ([]byte, error) {
	if w.eof {
		return nil, nil
	}
	b, err := w.cr.ReadChunk(max)
	w.consumed += int64(len(b))
	switch {
	case err == io.EOF:
		w.eof = true
	case err != nil:
		return nil, err
	}
	return b, nil
}

// getChunk is get over a ChunkReader.
func (w *window) getChunk(off int64, n int, short bool) ([]byte, error) {
	if end := w.start + int64(len(w.buf)); off >= end {
		w.start, w.buf = end, nil
		for w.start < off {
			b, err := w.next(int(min(off-w.start, 1<<30)))
			if err != nil {
				return nil, err
			}
			if len(b) == 0 {
				return nil, fmt.Errorf("stream ended at %d before offset %d: %w", w.start, off, io.ErrUnexpectedEOF)
			}
			w.start += int64(len(b))
		}
		b, err := w.next(1 << 30) // the rest of the chunk
		if err != nil {
			return nil, err
		}
		w.buf = b
	}
	d := int(off - w.start)
	if d+n <= len(w.buf) {
		return w.buf[d : d+n], nil
	}
	// Bytes spanning two chunks (or the end of the stream).
	if w.own == nil {
		w.own = make([]byte, 0, w.size)
	}
	own := w.own[:copy(w.own[:cap(w.own)], w.buf[d:])] // buf may be own: copy moves
	w.start = off
	for len(own) < n && !w.eof {
		b, err := w.next(min(n-len(own), cap(own)-len(own)))
		if err != nil {
			return nil, err
		}
		own = append(own, b...)
	}
	w.buf = own
	if len(own) < n {
		if !short || len(own) == 0 {
			return nil, fmt.Errorf("stream ended at %d, need %d bytes at %d: %w", w.start+int64(len(own)), n, off, io.ErrUnexpectedEOF)
		}
		return own, nil
	}
	return own[:n], nil
}

// get returns n bytes at file offset off. With short set, fewer bytes are
// returned at the end of the stream (a compressed cluster's length is an
// upper bound).
func (w *window) get(off int64, n int, short bool) ([]byte, error) {
	if off < w.start {
		return nil, fmt.Errorf("stream position %d already passed offset %d", w.start, off)
	}
	if w.cr != nil {
		return w.getChunk(off, n, short)
	}
	end := w.start + int64(len(w.buf))
	if off >= end {
		skip := off - end
		w.buf = w.buf[:0]
		w.start = end
		if skip > 0 {
			m, err := io.CopyN(io.Discard, w.r, skip)
			w.consumed += m
			w.start += m
			if err != nil {
				return nil, fmt.Errorf("stream ended at %d before offset %d: %w", w.start, off, io.ErrUnexpectedEOF)
			}
		}
	}
	d := int(off - w.start)
	if d+n > cap(w.buf) {
		w.buf = w.buf[:copy(w.buf, w.buf[d:])]
		w.start = off
		d = 0
	}
	for len(w.buf) < d+n && !w.eof {
		m, err := w.r.Read(w.buf[len(w.buf):cap(w.buf)])
		w.buf = w.buf[:len(w.buf)+m]
		w.consumed += int64(m)
		if err == io.EOF {
			w.eof = true
		} else if err != nil {
			return nil, err
		}
	}
	if len(w.buf) < d+n {
		if !short || len(w.buf) <= d {
			return nil, fmt.Errorf("stream ended at %d, need %d bytes at %d: %w", w.start+int64(len(w.buf)), n, off, io.ErrUnexpectedEOF)
		}
		return w.buf[d:], nil
	}
	return w.buf[d : d+n], nil
}

// coalescer merges writes to adjacent guest offsets into larger WriteAt calls.
type coalescer struct {
	w   io.WriterAt
	buf []byte
	off int64
}

func (c *coalescer) write(p []byte, off int64) error {
	if len(c.buf) > 0 && (off != c.off+int64(len(c.buf)) || len(c.buf)+len(p) > cap(c.buf)) {
		if err := c.flush(); err != nil {
			return err
		}
	}
	if len(c.buf) == 0 {
		if len(p) >= cap(c.buf) {
			_, err := c.w.WriteAt(p, off)
			return err
		}
		c.off = off
	}
	c.buf = append(c.buf, p...)
	return nil
}

func (c *coalescer) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.w.WriteAt(c.buf, c.off)
	c.buf = c.buf[:0]
	return err
}

// decompressor inflates compressed clusters, reusing its state.
type decompressor struct {
	typ   uint8
	src   bytes.Reader
	flate io.ReadCloser
	zstd  *zstd.Decoder
}

func (d *decompressor) decompress(raw, out []byte) error {
	d.src.Reset(raw)
	var r io.Reader
	switch d.typ {
	case CompressionDeflate:
		if d.flate == nil {
			d.flate = flate.NewReader(&d.src)
		} else if err := d.flate.(flate.Resetter).Reset(&d.src, nil); err != nil {
			return err
		}
		r = d.flate
	case CompressionZstd:
		if d.zstd == nil {
			z, err := zstd.NewReader(&d.src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(8<<20))
			if err != nil {
				return err
			}
			d.zstd = z
		} else if err := d.zstd.Reset(&d.src); err != nil {
			return err
		}
		r = d.zstd
	default:
		return fmt.Errorf("compression type %d: %w", d.typ, ErrUnsupported)
	}
	if _, err := io.ReadFull(r, out); err != nil {
		return fmt.Errorf("decompress: %v: %w", err, ErrCorrupt)
	}
	return nil
}

func (d *decompressor) close() {
	if d.zstd != nil {
		d.zstd.Close()
	}
}
