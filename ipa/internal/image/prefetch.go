package image

import (
	"context"
	"errors"
	"io"
	"runtime"
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

func newPrefetcher(ctx context.Context, src io.Reader, hash io.Writer) *prefetcher {
	ctx, cancel := context.WithCancel(ctx)
	p := &prefetcher{cancel: cancel, free: make(chan *pbuf, prefetchBuffers), out: make(chan pchunk, prefetchBuffers),
		downloaded: make(chan struct{})}
	for range prefetchBuffers {
		raw := make([]byte, ChunkSize+bufAlign)
		skip := int(-uintptr(unsafe.Pointer(&raw[0])) & (bufAlign - 1))
		b := &pbuf{b: raw[skip : skip+ChunkSize : skip+ChunkSize], free: p.free}
		p.free <- b
	}
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
	return p
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
