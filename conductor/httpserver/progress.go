package httpserver

import (
	"io"
	"net/http"
	"sync"
	"time"
)

// DefaultProgressTimeout is how long a streaming transfer may make no
// progress before its connection is closed.
const DefaultProgressTimeout = 60 * time.Second

// progressChunk is how much a ReadFrom sends under one deadline.
const progressChunk = 4 << 20

// Progress serves h (downloads and uploads of images and boot files) with
// a progress deadline instead of the server's total read and write
// timeouts: the connection's deadlines move timeout ahead as bytes move,
// so a large transfer at any steady rate completes while a stalled one is
// cut after timeout.
func Progress(timeout time.Duration, h http.Handler) http.Handler {
	if timeout <= 0 {
		timeout = DefaultProgressTimeout
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		p := &progress{rc: rc, timeout: timeout}
		p.extendRead(true)
		p.extendWrite(true)
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &progressBody{ReadCloser: r.Body, p: p}
		}
		h.ServeHTTP(&progressWriter{ResponseWriter: w, p: p}, r)
	})
}

// progress moves a connection's deadlines; it sets them again only once
// a quarter of the timeout has passed since the last time.
type progress struct {
	rc      *http.ResponseController
	timeout time.Duration

	mu               sync.Mutex
	lastRead, lastWr time.Time
}

func (p *progress) extendRead(force bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if force || now.Sub(p.lastRead) > p.timeout/4 {
		p.lastRead = now
		_ = p.rc.SetReadDeadline(now.Add(p.timeout))
	}
}

func (p *progress) extendWrite(force bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if force || now.Sub(p.lastWr) > p.timeout/4 {
		p.lastWr = now
		_ = p.rc.SetWriteDeadline(now.Add(p.timeout))
	}
}

type progressBody struct {
	io.ReadCloser
	p *progress
}

func (b *progressBody) Read(buf []byte) (int, error) {
	n, err := b.ReadCloser.Read(buf)
	if n > 0 {
		b.p.extendRead(false)
	}
	return n, err
}

type progressWriter struct {
	http.ResponseWriter
	p *progress
}

func (w *progressWriter) Write(b []byte) (int, error) {
	// A write may be large: give each up to progressChunk bytes its own
	// deadline.
	written := 0
	for len(b) > 0 {
		n := min(len(b), progressChunk)
		w.p.extendWrite(true)
		m, err := w.ResponseWriter.Write(b[:n])
		written += m
		if err != nil {
			return written, err
		}
		b = b[n:]
	}
	return written, nil
}

// ReadFrom sends src in chunks, each under a fresh deadline, keeping the
// underlying writer's ReadFrom (sendfile for files).
func (w *progressWriter) ReadFrom(src io.Reader) (int64, error) {
	var total int64
	for {
		w.p.extendWrite(true)
		n, err := io.Copy(w.ResponseWriter, io.LimitReader(src, progressChunk))
		total += n
		if err != nil {
			return total, err
		}
		if n < progressChunk {
			return total, nil
		}
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *progressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes flushes through.
func (w *progressWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
