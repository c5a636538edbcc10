// Package image writes a deploy image to a target disk the way the agent's
// write_image step needs it: streamed over HTTP(S) straight to the device
// (never buffered whole in RAM or tmpfs), hashed as the bytes arrive,
// resumed with Range after broken connections, decompressed on the fly
// (gzip, zstd) or converted (qcow2, with images/qcow2: metadata through
// HTTP Range reads, data through the same single sequential stream), with runs of
// zeroes skipped or offloaded. Writes go through disk.Stream: behind the
// download, with O_DIRECT where the device allows it, so the page cache of a
// small ramdisk machine never fills with the image. A failed write (checksum
// mismatch, truncated download, I/O error) waits for the writes in flight,
// then wipes the partition table so the disk cannot boot a half-written
// image.
package image

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/ferric-metal/ferric/images/checksum"
	"github.com/ferric-metal/ferric/images/qcow2"
	"github.com/ferric-metal/ferric/ipa/internal/disk"
	"github.com/ferric-metal/ferric/ipa/internal/fetch"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// Tuning constants.
const (
	// ChunkSize is the unit of reading, zero detection and writing.
	ChunkSize = 4 * disk.MiB
	// zeroBlock is the granularity of zero detection inside a chunk.
	zeroBlock = 64 << 10
	// minOffload is the shortest zero run handed to ZeroRange instead of
	// being written.
	minOffload = disk.MiB
	// buffers in flight between the download/hash goroutine and the writer.
	pipelineDepth = 3
)

// Formats detected from the image bytes.
const (
	FormatRaw   = "raw"
	FormatGzip  = "gzip"
	FormatZstd  = "zstd"
	FormatQCOW2 = "qcow2"
)

// ErrFormat is returned when the image bytes do not match disk_format or
// the format is not supported.
var ErrFormat = errors.New("image: unsupported or mismatching image format")

// Options configure Write.
type Options struct {
	// Fetcher downloads the image (default: fetch.HTTP over Client).
	Fetcher fetch.Fetcher
	// Client fetches checksum files (default http.DefaultClient).
	Client *http.Client
	// DisableMD5 refuses md5 checksums.
	DisableMD5 bool
	// Progress is called after every chunk written.
	Progress func(protocol.Progress)
	// Retries and RetryDelay bound download resumption (fetch defaults).
	Retries    int
	RetryDelay time.Duration
	Logger     *slog.Logger
}

// Result describes a finished write.
type Result struct {
	Format      string
	Downloaded  int64 // bytes received (as served)
	Written     int64 // raw bytes of the image (virtual size)
	DataWritten int64 // bytes actually written (non-zero data)
	Copied      int64 // bytes the disk stream copied (the rest it wrote from the download buffers)
	Checksum    string
	Duration    time.Duration
	// Sync is how long the final sync of the device took: the page cache's
	// share of the image (IO.Buffered) is written then.
	Sync time.Duration
	// IO is how the image's bytes reached the device (zero for devices
	// that do not count them).
	IO disk.IOStats
	// DirtyAtSync is the machine's dirty and under-writeback page cache
	// (bytes, all files and devices: /proc/meminfo Dirty + Writeback)
	// just before the final sync; -1 where unknown. With IO.Buffered near
	// zero, a long Sync comes from others' dirty data or the device's own
	// cache flush, not from the image.
	DirtyAtSync     int64
	PartitionTable  string
	RootPartitionID string
}

// Write streams the image described by info onto dev.
func Write(ctx context.Context, dev disk.BlockDevice, info protocol.ImageInfo, opts Options) (Result, error) {
	res, err := write(ctx, dev, info, opts)
	if err != nil {
		if werr := disk.WipeTable(dev); werr != nil {
			return res, fmt.Errorf("image: writing %s to %s: %w (and wiping its partition table failed: %w)", info.ID, dev.Name(), err, werr)
		}
		return res, fmt.Errorf("image: writing %s to %s: %w; partition table wiped", info.ID, dev.Name(), err)
	}
	return res, nil
}

func write(ctx context.Context, dev disk.BlockDevice, info protocol.ImageInfo, opts Options) (Result, error) {
	start := time.Now()
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	want, ver, err := expectedChecksum(ctx, info, opts)
	if err != nil {
		return Result{}, err
	}
	f := opts.Fetcher
	if f == nil {
		f = &fetch.HTTP{Client: opts.Client}
	}
	dl, err := startDownload(ctx, f, info.URLs, opts, ver, log)
	if err != nil {
		return Result{}, err
	}
	defer dl.Close()
	format := detect(dl.hashed.Peek(8))
	if err := checkFormat(format, info.DiskFormat); err != nil {
		return Result{Format: format}, err
	}
	log.Info("writing image", "image", info.ID, "url", dl.url, "device", dev.Name(), "format", format,
		"size", dl.size, "checksum", want.Algorithm)

	// Raw and qcow2 take the prefetcher's buffers as they are (their data
	// is written from there); decompressors read through bufio.
	var in io.Reader = dl.hashed
	var br *bufio.Reader
	if format != FormatRaw && format != FormatQCOW2 {
		br = bufio.NewReaderSize(dl.hashed, disk.MiB)
		in = br
	}
	res := Result{Format: format, Checksum: want.String()}
	io0 := ioStats(dev)
	progress := progressFunc(opts.Progress, dev.Name())
	w, stream := writerFor(dev, dl.hashed, br == nil)
	if stream != nil {
		defer stream.Close() // error paths; finish checks it on success
	}
	if format == FormatQCOW2 {
		meta := &fetch.ReaderAt{Ctx: ctx, Fetcher: f, URL: info.URLs[0], Size: dl.size}
		res.Written, res.DataWritten, err = writeQCOW2(ctx, dev, w, meta, dl.size, in, progress)
	} else {
		res.Written, res.DataWritten, err = writeStream(ctx, dev, w, format, in, br, dl.size, progress)
	}
	if err != nil {
		return res, err
	}
	err = finish(dev, in, stream, ver, dl.downloaded, &res, io0)
	if err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	log.Info("image written", "image", info.ID, "device", dev.Name(), "bytes", res.Written, "data_bytes", res.DataWritten,
		"downloaded", res.Downloaded, "copied", res.Copied, "direct_bytes", res.IO.Direct, "buffered_bytes", res.IO.Buffered,
		"zeroed_bytes", res.IO.Zeroed, "dirty_at_sync", res.DirtyAtSync, "seconds", res.Duration.Seconds(), "sync_seconds", res.Sync.Seconds(), "checksum", want.Algorithm)
	return res, nil
}

// dirtyPageCache returns Dirty + Writeback of /proc/meminfo in bytes, or
// -1.
func dirtyPageCache() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return -1
	}
	var sum int64 = -1
	for line := range strings.Lines(string(b)) {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || (name != "Dirty" && name != "Writeback") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return -1
		}
		sum = max(sum, 0) + kb<<10
	}
	return sum
}

// ioStats returns dev's counts of bytes written, if it keeps them.
func ioStats(dev disk.BlockDevice) disk.IOStats {
	if c, ok := dev.(interface{ IOStats() disk.IOStats }); ok {
		return c.IOStats()
	}
	return disk.IOStats{}
}

// expectedChecksum refuses image_info that cannot be written (no URL, a
// partition image) and resolves the checksum the bytes must have.
func expectedChecksum(ctx context.Context, info protocol.ImageInfo, opts Options) (checksum.Expected, *checksum.Verifier, error) {
	if len(info.URLs) == 0 {
		return checksum.Expected{}, nil, errors.New("image_info has no urls")
	}
	if info.ImageType == "partition" {
		return checksum.Expected{}, nil, fmt.Errorf("partition images are not supported, use a whole-disk image: %w", ErrFormat)
	}
	want, err := checksum.Resolve(ctx, opts.Client, checksum.Spec{
		OSHashAlgo: info.OSHashAlgo, OSHashValue: info.OSHashValue,
		Checksum: info.Checksum, ImageURL: info.URLs[0], DisableMD5: opts.DisableMD5,
	})
	if err != nil {
		return checksum.Expected{}, nil, err
	}
	ver, err := checksum.NewVerifier(want)
	if err != nil {
		return checksum.Expected{}, nil, err
	}
	return want, ver, nil
}

// download is the image's bytes as they arrive, hashed into the verifier.
type download struct {
	src    *fetch.Reader
	hashed *prefetcher
	stop   context.CancelFunc
	// size and url are the image's length and the URL that served it.
	size int64
	url  string
	// downloaded returns the bytes received so far.
	downloaded func() int64
}

// startDownload opens the image at the first URL that answers and starts
// prefetching it: in pieces side by side when the server honours Range
// requests and the image is large, else as one resumable stream.
func startDownload(ctx context.Context, f fetch.Fetcher, urls []string, opts Options, ver io.Writer, log *slog.Logger) (*download, error) {
	fctx, stop := context.WithCancel(ctx)
	src := fetch.NewReader(fctx, f, urls)
	dl := &download{src: src, stop: stop}
	if opts.Retries > 0 {
		src.Retries = opts.Retries
	}
	if opts.RetryDelay > 0 {
		src.RetryDelay = opts.RetryDelay
	}
	src.OnRetry = func(off int64, err error) {
		log.Warn("image download interrupted, resuming", "url", src.URL(), "offset", off, "error", err)
	}
	if err := src.Open(); err != nil {
		dl.Close()
		return nil, err
	}
	dl.downloaded = src.Offset
	// The prefetcher reads src from now on: take what we need from it first.
	dl.size, dl.url = src.Size(), src.URL()
	if rf, ok := f.(rangeFetcher); ok && dl.size >= 2*ChunkSize && rangesWork(fctx, rf, dl.url) {
		// Pieces side by side (the first answer is dropped unread).
		src.Close()
		size := dl.size
		dl.hashed = newChunkPrefetcher(ctx, chunkFetcher(fctx, rf, dl.url, src.Retries, src.RetryDelay, log), size, rangeWorkers, ver)
		dl.downloaded = func() int64 { return size }
	} else {
		dl.hashed = newPrefetcher(ctx, src, ver)
	}
	return dl, nil
}

// Close stops the download and its prefetcher.
func (d *download) Close() {
	d.stop()
	if d.hashed != nil {
		d.hashed.Close()
	}
	d.src.Close()
	d.stop()
}

// progressFunc reports the bytes written through report, if set.
func progressFunc(report func(protocol.Progress), device string) func(done, total int64) {
	return func(done, total int64) {
		if report != nil {
			report(protocol.Progress{Phase: "writing", BytesWritten: done, TotalBytes: total, Device: device})
		}
	}
}

// writerFor returns where the image goes on dev: a write-behind O_DIRECT
// stream when dev is a disk.File (always, in the agent), which writes
// straight from the prefetcher's buffers when pinned, else dev itself.
func writerFor(dev disk.BlockDevice, hashed *prefetcher, pinned bool) (io.WriterAt, *disk.Stream) {
	f, ok := dev.(*disk.File)
	if !ok {
		return dev, nil
	}
	stream := f.NewStream()
	if pinned { // the writes take the prefetcher's bytes (same goroutine)
		stream.Pin = hashed.Pin
	}
	return stream, stream
}

// writeStream writes a raw, gzip or zstd image from in (br for the
// compressed ones) to w, skipping runs of zeroes; it returns the image's
// end and the data bytes written.
func writeStream(ctx context.Context, dev disk.BlockDevice, w io.WriterAt, format string, in io.Reader, br *bufio.Reader, size int64,
	progress func(done, total int64)) (end, data int64, err error) {
	var src io.Reader
	total := int64(-1)
	switch format {
	case FormatRaw:
		src, total = in, size
		if total > 0 && dev.Size() > 0 && total > dev.Size() {
			return 0, 0, fmt.Errorf("image is %d bytes, larger than %s (%d bytes)", total, dev.Name(), dev.Size())
		}
	case FormatGzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return 0, 0, fmt.Errorf("gzip: %w", err)
		}
		zr.Multistream(true)
		defer zr.Close()
		src = zr
	case FormatZstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			return 0, 0, fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		src = zr
	default:
		return 0, 0, nil
	}
	st, err := copySparse(ctx, dev, w, src, total, progress)
	return st.end, st.data, err
}

// writeQCOW2 converts the qcow2 image streamed by in (its metadata read
// through meta) onto w, over zeroes; it returns the virtual size and the
// data bytes written.
func writeQCOW2(ctx context.Context, dev disk.BlockDevice, w io.WriterAt, meta io.ReaderAt, size int64, in io.Reader,
	progress func(done, total int64)) (vsize, data int64, err error) {
	img, err := qcow2.Open(ctx, meta, size)
	if err != nil {
		return 0, 0, err
	}
	vsize = img.VirtualSize()
	if dev.Size() > 0 && vsize > dev.Size() {
		return 0, 0, fmt.Errorf("qcow2 virtual size %d bytes is larger than %s (%d bytes)", vsize, dev.Name(), dev.Size())
	}
	// Unallocated clusters are skipped: the target must read zeroes there.
	if dev.HasData(0) {
		if err := dev.ZeroRange(0, vsize); err != nil {
			return 0, 0, fmt.Errorf("zeroing %s before qcow2 conversion: %w", dev.Name(), err)
		}
	} else if dev.Size() < vsize {
		if err := dev.ZeroRange(0, vsize); err != nil {
			return 0, 0, err
		}
	}
	if s, ok := w.(*disk.Stream); ok {
		s.Zeroed = true // what the conversion skips reads as zeroes
	}
	pw := &progressWriterAt{w: w, report: func(done, _ int64) { progress(done, vsize) }}
	st, err := img.Convert(ctx, in, 0, pw, qcow2.Options{})
	if err != nil {
		return 0, 0, err
	}
	progress(vsize, vsize)
	return vsize, st.BytesWritten, nil
}

// finish hashes what is left of the download, waits for the stream's
// writes, verifies the checksum, repairs a GPT's backup header, counts the
// bytes written since io0 into res.IO, syncs dev (timed into res.Sync) and
// reads the partition table into res.
func finish(dev disk.BlockDevice, in io.Reader, stream *disk.Stream, ver *checksum.Verifier, downloaded func() int64, res *Result, io0 disk.IOStats) error {
	// Hash every byte served, even what a decompressor left unread.
	if _, err := io.Copy(io.Discard, in); err != nil {
		return err
	}
	res.Downloaded = downloaded()
	if stream != nil {
		if err := stream.Close(); err != nil {
			return err
		}
		res.Copied = stream.Copied()
	}
	if err := ver.Verify(); err != nil {
		return err
	}
	// The backup GPT goes to the disk's end before the sync, which so
	// covers it too.
	if err := disk.FixGPTBackup(dev); err != nil {
		return err
	}
	io1 := ioStats(dev)
	res.IO = disk.IOStats{Direct: io1.Direct - io0.Direct, Buffered: io1.Buffered - io0.Buffered, Zeroed: io1.Zeroed - io0.Zeroed}
	res.DirtyAtSync = dirtyPageCache()
	syncStart := time.Now()
	if err := dev.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dev.Name(), err)
	}
	res.Sync = time.Since(syncStart)
	t, err := disk.ReadTable(dev)
	if err != nil {
		return fmt.Errorf("no partition table readable on %s after writing the image (different sector size than the device?): %w", dev.Name(), err)
	}
	res.PartitionTable, res.RootPartitionID = t.Kind, t.DiskID
	return nil
}

func detect(magic []byte) string {
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return FormatGzip
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return FormatZstd
	case bytes.HasPrefix(magic, []byte("QFI\xfb")):
		return FormatQCOW2
	}
	return FormatRaw
}

// checkFormat rejects images whose bytes contradict disk_format: a qcow2
// header in a "raw" image (which would be written verbatim) or anything but
// qcow2 for "qcow2".
func checkFormat(detected, declared string) error {
	switch declared {
	case "", FormatRaw, "gpt", "mbr":
		if detected == FormatQCOW2 {
			return fmt.Errorf("disk_format is %q but the image is qcow2: %w", declared, ErrFormat)
		}
	case FormatQCOW2:
		if detected != FormatQCOW2 {
			return fmt.Errorf("disk_format is qcow2 but the image is %s: %w", detected, ErrFormat)
		}
	default:
		return fmt.Errorf("disk_format %q: %w", declared, ErrFormat)
	}
	return nil
}

type copyStats struct{ end, data int64 }

type chunk struct {
	buf []byte
	n   int
	err error
}

// chunkReader is a source that hands out its bytes where they lie (the
// prefetcher): valid until the next call, and written from there when the
// disk stream can pin them.
type chunkReader interface {
	ReadChunk(max int) ([]byte, error)
}

// copySparse copies src to dev (writing through w) from offset 0. Zero blocks are skipped when
// the device is known to read back zeroes there, offloaded with ZeroRange
// when long, written otherwise. A chunkReader source is read in place (it
// runs ahead on its own goroutines); any other (a decompressor) is read
// into buffers by a goroutine of its own, overlapping with the writes.
func copySparse(ctx context.Context, dev disk.BlockDevice, w io.WriterAt, src io.Reader, total int64, progress func(done, total int64)) (copyStats, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next func() ([]byte, error) // the next bytes; io.EOF after the last
	if cr, ok := src.(chunkReader); ok {
		next = func() ([]byte, error) {
			b, err := cr.ReadChunk(ChunkSize)
			if len(b) > 0 {
				return b, nil
			}
			return nil, err
		}
	} else {
		next = readAhead(ctx, src)
	}

	knownZero := !dev.HasData(0)
	if s, ok := w.(*disk.Stream); ok && knownZero {
		s.Zeroed = true // the skipped zero runs read as zeroes
	}
	zeroes := make([]byte, minOffload)
	var st copyStats
	var off, zStart, zLen int64
	flushZero := func() error {
		if zLen == 0 {
			return nil
		}
		var err error
		switch {
		case knownZero:
		case zLen >= minOffload:
			// The offload takes the whole blocks; blocks the run
			// covers in part go through w, as the data beside them.
			a, b := alignUp(zStart), alignDown(zStart+zLen)
			if _, err = w.WriteAt(zeroes[:a-zStart], zStart); err == nil {
				if err = dev.ZeroRange(a, b-a); err == nil {
					_, err = w.WriteAt(zeroes[:zStart+zLen-b], b)
				}
			}
		default:
			_, err = w.WriteAt(zeroes[:zLen], zStart)
		}
		zLen = 0
		if err != nil {
			return fmt.Errorf("zeroing %s at %d: %w", dev.Name(), zStart, err)
		}
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		b, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return st, err
		}
		for i := 0; i < len(b); {
			j := min(i+zeroBlock, len(b))
			if disk.IsZero(b[i:j]) {
				if zLen == 0 {
					zStart = off + int64(i)
				}
				zLen += int64(j - i)
				i = j
				continue
			}
			if err := flushZero(); err != nil {
				return st, err
			}
			// Extend the data run over following non-zero blocks.
			k := j
			for k < len(b) {
				e := min(k+zeroBlock, len(b))
				if disk.IsZero(b[k:e]) {
					break
				}
				k = e
			}
			if _, err := w.WriteAt(b[i:k], off+int64(i)); err != nil {
				return st, fmt.Errorf("writing %s at %d: %w", dev.Name(), off+int64(i), err)
			}
			st.data += int64(k - i)
			i = k
		}
		off += int64(len(b))
		st.end = off
		if progress != nil {
			progress(off, max(total, 0))
		}
	}
	// A trailing zero run: make sure a file disk is long enough.
	if knownZero && zLen > 0 && zStart+zLen > dev.Size() {
		knownZero = false
	}
	if err := flushZero(); err != nil {
		return st, err
	}
	if total >= 0 && st.end != total {
		return st, fmt.Errorf("image stream ended at byte %d of %d: %w", st.end, total, io.ErrUnexpectedEOF)
	}
	return st, nil
}

// blockAlign is the block size of the disk stream's O_DIRECT writes: a
// zero offload (ZeroRange) beside them covers whole blocks only.
const blockAlign = 4096

func alignUp(off int64) int64   { return (off + blockAlign - 1) &^ (blockAlign - 1) }
func alignDown(off int64) int64 { return off &^ (blockAlign - 1) }

// readAhead reads src into buffers on a goroutine of its own, pipelineDepth
// buffers ahead of the caller of the returned function, which returns the
// next bytes (valid until its next call) and io.EOF after the last.
// Cancelling ctx stops the goroutine.
func readAhead(ctx context.Context, src io.Reader) func() ([]byte, error) {
	free := make(chan []byte, pipelineDepth)
	for range pipelineDepth {
		free <- make([]byte, ChunkSize)
	}
	full := make(chan chunk, pipelineDepth)
	go func() {
		defer close(full)
		for {
			var buf []byte
			select {
			case buf = <-free:
			case <-ctx.Done():
				return
			}
			n, err := io.ReadFull(src, buf)
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.EOF
			}
			select {
			case full <- chunk{buf, n, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var held []byte
	var last error
	return func() ([]byte, error) {
		if held != nil {
			free <- held
			held = nil
		}
		for last == nil {
			c, ok := <-full
			if !ok {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				return nil, io.ErrUnexpectedEOF
			}
			last = c.err
			if c.n > 0 {
				held = c.buf
				return c.buf[:c.n], nil
			}
			free <- c.buf
		}
		return nil, last
	}
}

// progressWriterAt reports the highest offset written (qcow2 path).
type progressWriterAt struct {
	w      io.WriterAt
	high   int64
	report func(done, total int64)
}

func (p *progressWriterAt) WriteAt(b []byte, off int64) (int, error) {
	n, err := p.w.WriteAt(b, off)
	if end := off + int64(n); end > p.high {
		p.high = end
		p.report(p.high, 0)
	}
	return n, err
}

// rangeFetcher fetches bounded byte ranges (fetch.HTTP).
type rangeFetcher interface {
	OpenRange(ctx context.Context, url string, off, n int64) (io.ReadCloser, error)
}

// rangeWorkers is how many pieces of an image are fetched side by side.
const rangeWorkers = 2

// rangesWork asks for the image's first byte as a range: only a server
// that answers with it gets pieces side by side.
func rangesWork(ctx context.Context, rf rangeFetcher, url string) bool {
	body, err := rf.OpenRange(ctx, url, 0, 1)
	if err != nil {
		return false
	}
	body.Close()
	return true
}

// chunkFetcher returns the function that fills b with the image bytes at
// off, resuming a broken piece where it stopped, up to retries failures in
// a row (as the sequential download resumes).
func chunkFetcher(ctx context.Context, rf rangeFetcher, url string, retries int, delay time.Duration, log *slog.Logger) func(context.Context, int64, []byte) error {
	return func(wctx context.Context, off int64, b []byte) error {
		got, fails := 0, 0
		for got < len(b) {
			body, err := rf.OpenRange(wctx, url, off+int64(got), int64(len(b)-got))
			if err == nil {
				var n int
				n, err = io.ReadFull(body, b[got:])
				body.Close()
				got += n
				if n > 0 {
					fails = 0
				}
				if err == nil {
					continue
				}
			}
			if errors.Is(err, fetch.ErrPermanent) || wctx.Err() != nil || ctx.Err() != nil {
				return err
			}
			if fails++; fails > retries {
				return fmt.Errorf("image download failed %d times in a row at byte %d: %w", fails, off+int64(got), err)
			}
			log.Warn("image download interrupted, resuming", "url", fetch.Redact(url), "offset", off+int64(got), "error", err)
			select {
			case <-time.After(delay):
			case <-wctx.Done():
				return wctx.Err()
			}
		}
		return nil
	}
}
