package image

import (
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// prefetcher reads an image stream ahead of its consumer on two
// goroutines: one downloads into buffers, the other hashes them, and the
// consumer (decompressor, qcow2 converter, disk writer) reads hashed
// buffers in order. Download, hashing and writing so use the machine's
// cores at once instead of taking turns. Memory is bounded by the buffers
// in flight.
//
// The consumer may take the bytes where they lie (ReadChunk) and have the
// disk stream write them from there (Pin): a buffer goes back to the
// download only when the consumer has moved past it and every write that
// pinned it has finished. On a two-core machine the two copies this saves
// (into the consumer's buffer, into the stream's) are a tenth of the CPU
// time of a qcow2 write.
type prefetcher struct {
	cancel context.CancelFunc
	free   chan *pbuf
	out    chan pchunk
	cur    []byte // unread part of the current buffer
	held   *pbuf  // the current buffer, released once read
	err    error
	// downloaded is closed when the download goroutine has returned: the
	// source is no longer read and may be closed.
	downloaded chan struct{}
}

// pbuf is one buffer of the prefetcher, aligned for O_DIRECT writes, with
// the count of its holders (the consumer, writes in flight).
type pbuf struct {
	b    []byte
	refs atomic.Int32
	free chan<- *pbuf
}

func (b *pbuf) release() {
	if b.refs.Add(-1) == 0 {
		b.free <- b
	}
}

type pchunk struct {
	buf *pbuf
	n   int
	err error
}

// prefetchBuffers of ChunkSize bytes: enough for the download and the
// hash to run ahead while the disk stream's writes in flight pin theirs.
const prefetchBuffers = 6

// bufAlign is the alignment of the buffers (O_DIRECT on 4Kn disks).
const bufAlign = 4096

// newPrefetcherBase makes the buffers; the caller starts a download stage
// that feeds toHash in order, and the hash stage.
func newPrefetcherBase(ctx context.Context) (*prefetcher, context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	p := &prefetcher{cancel: cancel, free: make(chan *pbuf, prefetchBuffers), out: make(chan pchunk, prefetchBuffers),
		downloaded: make(chan struct{})}
	for range prefetchBuffers {
		raw := make([]byte, ChunkSize+bufAlign)
		skip := int(-uintptr(unsafe.Pointer(&raw[0])) & (bufAlign - 1))
		b := &pbuf{b: raw[skip : skip+ChunkSize : skip+ChunkSize], free: p.free}
		p.free <- b
	}
	return p, ctx
}

func newPrefetcher(ctx context.Context, src io.Reader, hash io.Writer) *prefetcher {
	p, ctx := newPrefetcherBase(ctx)
	toHash := make(chan pchunk, prefetchBuffers)
	go func() { // download
		defer close(p.downloaded)
		defer close(toHash)
		for {
			var buf *pbuf
			select {
			case buf = <-p.free:
			case <-ctx.Done():
				return
			}
			n, err := io.ReadFull(src, buf.b)
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.EOF
			}
			select {
			case toHash <- pchunk{buf, n, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	p.startHash(ctx, toHash, hash)
	return p
}

// newChunkPrefetcher downloads the size bytes of an image as ChunkSize
// pieces, workers at a time (fetch fills b with the bytes at off), and
// hands them on in order. Several requests in flight keep the image
// server's disk busy while this machine's disk writes: on a server reading
// from a disk that is also being written (the lab's, a conductor serving
// from the disk it caches on), two range streams read a cold image
// 1.5-1.8x faster than one.
func newChunkPrefetcher(ctx context.Context, fetch func(ctx context.Context, off int64, b []byte) error, size int64, workers int, hash io.Writer) *prefetcher {
	p, ctx := newPrefetcherBase(ctx)
	toHash := make(chan pchunk, prefetchBuffers)
	type result struct {
		idx int64
		c   pchunk
	}
	results := make(chan result, prefetchBuffers)
	chunks := (size + ChunkSize - 1) / ChunkSize
	var next atomic.Int64
	var stop atomic.Bool // a piece failed: start no more
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				// The buffer first, then the piece: the piece the reorder
				// stage waits for always has a buffer.
				var buf *pbuf
				select {
				case buf = <-p.free:
				case <-ctx.Done():
					return
				}
				i := next.Add(1) - 1
				if i >= chunks || stop.Load() {
					p.free <- buf
					return
				}
				off := i * ChunkSize
				n := min(int64(ChunkSize), size-off)
				err := fetch(ctx, off, buf.b[:n])
				select {
				case results <- result{i, pchunk{buf, int(n), err}}:
				case <-ctx.Done():
					return
				}
				if err != nil {
					stop.Store(true)
					return
				}
			}
		}()
	}
	go func() { // reorder
		defer close(p.downloaded)
		defer wg.Wait()
		defer close(toHash)
		pending := map[int64]pchunk{}
		for want := int64(0); want < chunks; {
			c, ok := pending[want]
			if !ok {
				select {
				case r := <-results:
					pending[r.idx] = r.c
				case <-ctx.Done():
					return
				}
				continue
			}
			delete(pending, want)
			if c.err == nil && want == chunks-1 {
				c.err = io.EOF
			}
			select {
			case toHash <- c:
			case <-ctx.Done():
				return
			}
			if c.err == io.EOF {
				return
			}
			if c.err != nil {
				// The workers stop with the next piece they would start;
				// the hash stage passes the error on first.
				return
			}
			want++
		}
	}()
	p.startHash(ctx, toHash, hash)
	return p
}

// startHash runs the hash stage: it hashes the chunks in order and hands
// them to the consumer.
func (p *prefetcher) startHash(ctx context.Context, toHash chan pchunk, hash io.Writer) {
	go func() { // hash
		criticalThread()
		defer close(p.out)
		for c := range toHash {
			if c.n > 0 {
				hash.Write(c.buf.b[:c.n])
			}
			select {
			case p.out <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
}

// criticalThread gives the calling goroutine an OS thread of its own, at a
// higher scheduling priority (nice -5), until it returns (the thread then
// ends with it). Hashing is the pipeline's one serial chain (SHA-256 of a
// 1.5 GiB image is 0.8 s of CPU here); on a two-core machine the other
// stages (receive, decode, the disk writes, the kernel's I/O) would
// otherwise take turns with it and stretch it by half. Without
// CAP_SYS_NICE (not root) the priority stays as it is.
func criticalThread() {
	runtime.LockOSThread()
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), -5)
}

// fill makes the current buffer hold unread bytes, moving to the next
// hashed buffer when it is used up.
func (p *prefetcher) fill() error {
	for len(p.cur) == 0 {
		if p.held != nil {
			p.held.release()
			p.held = nil
		}
		if p.err != nil {
			return p.err
		}
		c, ok := <-p.out
		if !ok {
			p.err = io.ErrUnexpectedEOF // cancelled
			return p.err
		}
		c.buf.refs.Store(1)
		p.held, p.cur, p.err = c.buf, c.buf.b[:c.n], c.err
	}
	return nil
}

// Read implements io.Reader over the hashed buffers.
func (p *prefetcher) Read(b []byte) (int, error) {
	if err := p.fill(); err != nil {
		return 0, err
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

// ReadChunk returns up to max of the next bytes where they lie, without
// copying them. They stay valid until the next Read or ReadChunk, and
// longer for the writes that pinned them.
func (p *prefetcher) ReadChunk(max int) ([]byte, error) {
	if err := p.fill(); err != nil {
		return nil, err
	}
	n := min(max, len(p.cur))
	b := p.cur[:n]
	p.cur = p.cur[n:]
	return b, nil
}

// Peek returns the first unread bytes of the current buffer (at most n)
// without consuming them.
func (p *prefetcher) Peek(n int) []byte {
	if p.fill() != nil {
		return nil
	}
	return p.cur[:min(n, len(p.cur))]
}

// Pin keeps the buffer holding b from being reused until release is
// called. It fails for bytes that are not in the buffer the consumer
// holds (copied bytes, or a bug).
func (p *prefetcher) Pin(b []byte) (release func(), ok bool) {
	h := p.held
	if h == nil || len(b) == 0 {
		return nil, false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(h.b)))
	at := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if at < start || at+uintptr(len(b)) > start+uintptr(len(h.b)) {
		return nil, false
	}
	h.refs.Add(1)
	return h.release, true
}

// Close stops the goroutines and waits until the source is no longer read.
// The caller cancels the source's context first so that a read blocked on
// the network returns, and waits for the writes that pinned buffers.
func (p *prefetcher) Close() {
	p.cancel()
	<-p.downloaded
}
