// Package fetch downloads image bytes for the agent over HTTP(S). Its
// Reader survives broken connections: it re-requests the rest of the
// resource with a Range header and continues where the stream stopped, so a
// hash computed over the stream stays valid.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of Reader.
const (
	DefaultRetries      = 9
	DefaultRetryDelay   = 2 * time.Second
	DefaultStallTimeout = 60 * time.Second
)

// ErrPermanent marks a failure that retrying the same URL cannot fix (4xx).
var ErrPermanent = errors.New("permanent fetch error")

// Fetcher opens a resource at a byte offset. total is the full length of the
// resource, or -1 when unknown.
type Fetcher interface {
	Open(ctx context.Context, rawURL string, off int64) (body io.ReadCloser, total int64, err error)
}

// HTTP is a Fetcher over net/http.
type HTTP struct {
	Client *http.Client
	// Header is added to every request (e.g. Authorization).
	Header http.Header
	// UserAgent defaults to "ferric-agent".
	UserAgent string
}

// get sends the GET with the fetcher's headers and, when rng is set, a
// Range header.
func (h *HTTP) get(ctx context.Context, rawURL, rng string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w: %w", err, ErrPermanent)
	}
	for k, v := range h.Header {
		req.Header[k] = v
	}
	ua := h.UserAgent
	if ua == "" {
		ua = "ferric-agent"
	}
	req.Header.Set("User-Agent", ua)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	c := h.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch: GET %s: %w", Redact(rawURL), err)
	}
	return resp, nil
}

// Open implements Fetcher. A server that ignores Range (answers 200) is
// handled by discarding the first off bytes.
func (h *HTTP) Open(ctx context.Context, rawURL string, off int64) (io.ReadCloser, int64, error) {
	rng := ""
	if off > 0 {
		rng = "bytes=" + strconv.FormatInt(off, 10) + "-"
	}
	resp, err := h.get(ctx, rawURL, rng)
	if err != nil {
		return nil, 0, err
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent && off > 0:
		start, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || start != off {
			resp.Body.Close()
			return nil, 0, fmt.Errorf("fetch: GET %s: bad Content-Range %q for offset %d", Redact(rawURL), resp.Header.Get("Content-Range"), off)
		}
		return resp.Body, total, nil
	case resp.StatusCode == http.StatusOK:
		total := resp.ContentLength
		if off > 0 {
			if _, err := io.CopyN(io.Discard, resp.Body, off); err != nil {
				resp.Body.Close()
				return nil, 0, fmt.Errorf("fetch: GET %s: skipping %d bytes (server ignores Range): %w", Redact(rawURL), off, err)
			}
		}
		return resp.Body, total, nil
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("fetch: GET %s: range from %d not satisfiable (image shrank?): %w", Redact(rawURL), off, ErrPermanent)
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("fetch: GET %s: HTTP %d: %w", Redact(rawURL), resp.StatusCode, ErrPermanent)
	default:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("fetch: GET %s: HTTP %d", Redact(rawURL), resp.StatusCode)
	}
}

// OpenRange requests the n bytes at off and insists on a partial answer
// (206) for exactly them: a server that ignores Range fails with an error,
// for callers that fetch pieces of an image side by side.
func (h *HTTP) OpenRange(ctx context.Context, rawURL string, off, n int64) (io.ReadCloser, error) {
	resp, err := h.get(ctx, rawURL, fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusPartialContent {
		resp.Body.Close()
		err := fmt.Errorf("fetch: GET %s bytes %d-%d: HTTP %d, not a partial answer", Redact(rawURL), off, off+n-1, resp.StatusCode)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 || resp.StatusCode == http.StatusOK {
			err = fmt.Errorf("%w: %w", err, ErrPermanent)
		}
		return nil, err
	}
	if start, _, err := parseContentRange(resp.Header.Get("Content-Range")); err != nil || start != off {
		resp.Body.Close()
		return nil, fmt.Errorf("fetch: GET %s: bad Content-Range %q for offset %d: %w", Redact(rawURL), resp.Header.Get("Content-Range"), off, ErrPermanent)
	}
	return resp.Body, nil
}

func parseContentRange(s string) (start, total int64, err error) {
	// bytes 100-199/200 or bytes 100-199/*
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, errors.New("no bytes unit")
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, errors.New("no total")
	}
	a, _, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, errors.New("no range")
	}
	if start, err = strconv.ParseInt(a, 10, 64); err != nil {
		return 0, 0, err
	}
	if tot == "*" {
		return start, -1, nil
	}
	total, err = strconv.ParseInt(tot, 10, 64)
	return start, total, err
}

// Redact drops user info and the query string of a URL for logs and errors.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "..."
	}
	return u.String()
}

// Reader reads one resource from a list of mirror URLs, resuming with Range
// after errors. It is not safe for concurrent use.
type Reader struct {
	// Retries is how many consecutive failed attempts are tolerated.
	Retries int
	// RetryDelay is the pause between attempts.
	RetryDelay time.Duration
	// StallTimeout aborts a connection that delivers no byte for this long.
	StallTimeout time.Duration
	// OnRetry, if set, is told about every resumed attempt.
	OnRetry func(off int64, err error)

	ctx     context.Context
	f       Fetcher
	urls    []string
	cur     int
	off     int64
	total   int64
	body    io.ReadCloser
	cancel  context.CancelFunc
	stall   *time.Timer
	fails   int
	lastErr error
}

// NewReader returns a Reader over the first URL of urls that can be opened;
// nothing is requested before the first Read.
func NewReader(ctx context.Context, f Fetcher, urls []string) *Reader {
	return &Reader{
		Retries: DefaultRetries, RetryDelay: DefaultRetryDelay, StallTimeout: DefaultStallTimeout,
		ctx: ctx, f: f, urls: urls, total: -1,
	}
}

// Open performs the first request so that Size is known; Read calls it
// implicitly.
func (r *Reader) Open() error {
	if r.body != nil {
		return nil
	}
	for {
		err := r.open()
		if err == nil {
			return nil
		}
		if err := r.failed(err); err != nil {
			return err
		}
	}
}

func (r *Reader) open() error {
	if len(r.urls) == 0 {
		return fmt.Errorf("fetch: no image URLs: %w", ErrPermanent)
	}
	ctx, cancel := context.WithCancel(r.ctx)
	body, total, err := r.f.Open(ctx, r.urls[r.cur], r.off)
	if err != nil {
		cancel()
		return err
	}
	if r.total >= 0 && total >= 0 && total != r.total {
		body.Close()
		cancel()
		return fmt.Errorf("fetch: %s: size changed from %d to %d bytes between requests: %w", Redact(r.urls[r.cur]), r.total, total, ErrPermanent)
	}
	if total >= 0 {
		r.total = total
	}
	r.body, r.cancel = body, cancel
	if r.StallTimeout > 0 {
		r.stall = time.AfterFunc(r.StallTimeout, cancel)
	}
	return nil
}

// failed records err and decides: nil to try again (after a delay, maybe on
// the next URL), or the final error.
func (r *Reader) failed(err error) error {
	r.closeBody()
	if r.ctx.Err() != nil {
		return fmt.Errorf("fetch: %w", r.ctx.Err())
	}
	r.lastErr = err
	r.fails++
	if errors.Is(err, ErrPermanent) || r.fails > r.Retries {
		if r.cur+1 < len(r.urls) {
			r.cur++
			r.fails = 0
			return nil
		}
		if r.fails > r.Retries {
			return fmt.Errorf("fetch: giving up after %d attempts at byte %d: %w", r.fails, r.off, err)
		}
		return err
	}
	if r.OnRetry != nil {
		r.OnRetry(r.off, err)
	}
	t := time.NewTimer(r.RetryDelay)
	defer t.Stop()
	select {
	case <-r.ctx.Done():
		return fmt.Errorf("fetch: %w", r.ctx.Err())
	case <-t.C:
	}
	return nil
}

func (r *Reader) closeBody() {
	if r.stall != nil {
		r.stall.Stop()
		r.stall = nil
	}
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
	if r.cancel != nil {
		r.cancel()
		r.cancel = nil
	}
}

// Read implements io.Reader. It returns io.EOF only once Size bytes (when
// known) have been delivered; a shorter stream is resumed, and a stream that
// cannot be completed fails with an error naming the offset.
func (r *Reader) Read(p []byte) (int, error) {
	for {
		if r.body == nil {
			if r.total >= 0 && r.off >= r.total {
				return 0, io.EOF
			}
			if err := r.open(); err != nil {
				if err := r.failed(err); err != nil {
					return 0, err
				}
				continue
			}
		}
		n, err := r.body.Read(p)
		if n > 0 {
			r.off += int64(n)
			r.fails = 0
			if r.stall != nil {
				r.stall.Reset(r.StallTimeout)
			}
		}
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, io.EOF) && (r.total < 0 || r.off == r.total):
			r.closeBody()
			if n > 0 {
				return n, nil
			}
			return 0, io.EOF
		case r.total >= 0 && r.off > r.total:
			r.closeBody()
			return n, fmt.Errorf("fetch: server sent more than the announced %d bytes: %w", r.total, ErrPermanent)
		default:
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("connection closed at byte %d of %d: %w", r.off, r.total, io.ErrUnexpectedEOF)
			}
			if ferr := r.failed(err); ferr != nil {
				return n, ferr
			}
			if n > 0 {
				return n, nil
			}
		}
	}
}

// Offset returns how many bytes were delivered.
func (r *Reader) Offset() int64 { return r.off }

// Size returns the resource length, or -1 before Open or when unknown.
func (r *Reader) Size() int64 { return r.total }

// URL returns the URL currently read (redacted).
func (r *Reader) URL() string {
	if r.cur < len(r.urls) {
		return Redact(r.urls[r.cur])
	}
	return ""
}

// Close releases the connection.
func (r *Reader) Close() error {
	r.closeBody()
	return nil
}

// ReaderAt reads arbitrary ranges of one resource with Range requests (e.g.
// qcow2 metadata). Each ReadAt is one request, for just the bytes it
// reads when the fetcher can ask for a bounded range (HTTP): the server
// then neither reads ahead nor sends the rest of the resource.
type ReaderAt struct {
	Ctx     context.Context
	Fetcher Fetcher
	URL     string
	Size    int64
}

// ReadAt implements io.ReaderAt.
func (ra *ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= ra.Size {
		return 0, io.EOF
	}
	want := p
	if rem := ra.Size - off; int64(len(want)) > rem {
		want = want[:rem]
	}
	body, err := ra.open(off, int64(len(want)))
	if err != nil {
		return 0, err
	}
	defer body.Close()
	n, err := io.ReadFull(body, want)
	if err == nil && n < len(p) {
		err = io.EOF
	}
	return n, err
}

// open returns the body of the n bytes at off: a bounded range when the
// fetcher asks for them (a server that ignores Range is asked again the
// plain way), the rest of the resource otherwise.
func (ra *ReaderAt) open(off, n int64) (io.ReadCloser, error) {
	if rf, ok := ra.Fetcher.(interface {
		OpenRange(ctx context.Context, url string, off, n int64) (io.ReadCloser, error)
	}); ok && n > 0 {
		body, err := rf.OpenRange(ra.Ctx, ra.URL, off, n)
		if err == nil || !errors.Is(err, ErrPermanent) {
			return body, err
		}
	}
	body, _, err := ra.Fetcher.Open(ra.Ctx, ra.URL, off)
	return body, err
}
