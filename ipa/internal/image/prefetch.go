package image

import (
	"context"
	"errors"
	"io"
	"runtime"

	"golang.org/x/sys/unix"
)

// prefetcher reads an image stream ahead of its consumer on two
// goroutines: one downloads into buffers, the other hashes them, and the
// consumer (decompressor, qcow2 converter, disk writer) reads hashed
// buffers in order. Download, hashing and writing so use the machine's
// cores at once instead of taking turns. Memory is bounded by the buffers
// in flight.
type prefetcher struct {
	cancel context.CancelFunc
	free   chan []byte
	out    chan chunk
	cur    []byte // unread part of the current buffer
	buf    []byte // the current buffer, returned to free once read
	err    error
	// downloaded is closed when the download goroutine has returned: the
	// source is no longer read and may be closed.
	downloaded chan struct{}
}

const prefetchBuffers = 4

func newPrefetcher(ctx context.Context, src io.Reader, hash io.Writer) *prefetcher {
	ctx, cancel := context.WithCancel(ctx)
	p := &prefetcher{cancel: cancel, free: make(chan []byte, prefetchBuffers), out: make(chan chunk, prefetchBuffers),
		downloaded: make(chan struct{})}
	for range prefetchBuffers {
		p.free <- make([]byte, ChunkSize)
	}
	toHash := make(chan chunk, prefetchBuffers)
	go func() { // download
		defer close(p.downloaded)
		defer close(toHash)
		for {
			var buf []byte
			select {
			case buf = <-p.free:
			case <-ctx.Done():
				return
			}
			n, err := io.ReadFull(src, buf)
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = io.EOF
			}
			select {
			case toHash <- chunk{buf, n, err}:
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
				hash.Write(c.buf[:c.n])
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

// Read implements io.Reader over the hashed buffers.
func (p *prefetcher) Read(b []byte) (int, error) {
	for len(p.cur) == 0 {
		if p.buf != nil {
			p.free <- p.buf
			p.buf = nil
		}
		if p.err != nil {
			return 0, p.err
		}
		c, ok := <-p.out
		if !ok {
			p.err = io.ErrUnexpectedEOF // cancelled
			return 0, p.err
		}
		p.buf, p.cur, p.err = c.buf, c.buf[:c.n], c.err
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

// Close stops the goroutines and waits until the source is no longer read.
// The caller cancels the source's context first so that a read blocked on
// the network returns.
func (p *prefetcher) Close() {
	p.cancel()
	<-p.downloaded
}
