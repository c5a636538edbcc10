package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

func payload(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(b)
	return b
}

// breaking serves data with Range support; the first `breaks` responses are
// cut off after `cut` bytes by closing the connection.
func breaking(data []byte, breaks int32, cut int, honourRange bool) (http.Handler, *atomic.Int32) {
	var n atomic.Int32
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		if !honourRange {
			r.Header.Del("Range")
		}
		if i <= breaks {
			off := 0
			if rg := r.Header.Get("Range"); rg != "" {
				fmt.Sscanf(rg, "bytes=%d-", &off)
				w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, len(data)-1, len(data)))
				w.Header().Set("Content-Length", strconv.Itoa(len(data)-off))
				w.WriteHeader(http.StatusPartialContent)
			} else {
				w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			}
			end := min(off+cut, len(data))
			w.Write(data[off:end])
			w.(http.Flusher).Flush()
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		http.ServeContent(w, r, "img", time.Time{}, bytes.NewReader(data))
	}), &n
}

func TestReaderResumes(t *testing.T) {
	data := payload(3<<20 + 17)
	tests := []struct {
		name        string
		breaks      int32
		cut         int
		honourRange bool
		retries     int
		wantErr     bool
		wantReqs    int32
	}{
		{"clean", 0, 0, true, 3, false, 1},
		{"one break", 1, 1 << 20, true, 3, false, 2},
		{"three breaks", 3, 700_000, true, 3, false, 4},
		{"server ignores range", 2, 1 << 20, false, 3, false, 3},
		{"always breaks", 100, 0, true, 2, true, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, reqs := breaking(data, tc.breaks, tc.cut, tc.honourRange)
			srv := httptest.NewServer(h)
			defer srv.Close()
			r := NewReader(context.Background(), &HTTP{}, []string{srv.URL + "/img"})
			r.Retries, r.RetryDelay = tc.retries, time.Millisecond
			got, err := io.ReadAll(r)
			r.Close()
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ReadAll = %d bytes, nil error; want error", len(got))
				}
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("ReadAll error = %v, want io.ErrUnexpectedEOF in chain", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadAll: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("ReadAll = %d bytes, differs from the %d served", len(got), len(data))
			}
			if n := reqs.Load(); n != tc.wantReqs {
				t.Errorf("requests = %d, want %d", n, tc.wantReqs)
			}
		})
	}
}

func TestReaderMirrorsAndStatus(t *testing.T) {
	data := payload(4096)
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "img", time.Time{}, bytes.NewReader(data))
	}))
	defer good.Close()
	missing := httptest.NewServer(http.NotFoundHandler())
	defer missing.Close()
	var fails atomic.Int32
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fails.Add(1)
		http.Error(w, "boom", http.StatusBadGateway)
	}))
	defer broken.Close()

	tests := []struct {
		name    string
		urls    []string
		wantErr error
	}{
		{"404 then good", []string{missing.URL, good.URL}, nil},
		{"502 then good", []string{broken.URL, good.URL}, nil},
		{"only 404", []string{missing.URL}, ErrPermanent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(context.Background(), &HTTP{}, tc.urls)
			r.Retries, r.RetryDelay = 1, time.Millisecond
			got, err := io.ReadAll(r)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ReadAll error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("ReadAll = %d bytes, %v", len(got), err)
			}
		})
	}
}

func TestReaderStall(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.Write(make([]byte, 10))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	r := NewReader(context.Background(), &HTTP{}, []string{srv.URL})
	r.Retries, r.RetryDelay, r.StallTimeout = 1, time.Millisecond, 100*time.Millisecond
	_, err := io.ReadAll(r)
	if err == nil {
		t.Fatal("ReadAll of a stalled stream succeeded")
	}
}

func TestReaderAt(t *testing.T) {
	data := payload(10000)
	for _, honour := range []bool{true, false} {
		t.Run(fmt.Sprintf("range=%v", honour), func(t *testing.T) {
			var ranges []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ranges = append(ranges, r.Header.Get("Range"))
				if !honour {
					r.Header.Del("Range")
				}
				http.ServeContent(w, r, "img", time.Time{}, bytes.NewReader(data))
			}))
			defer srv.Close()
			ra := &ReaderAt{Ctx: context.Background(), Fetcher: &HTTP{}, URL: srv.URL, Size: int64(len(data))}
			for _, off := range []int64{0, 1, 512, 9990} {
				p := make([]byte, 64)
				n, err := ra.ReadAt(p, off)
				want := data[off:min(off+64, int64(len(data)))]
				if !bytes.Equal(p[:n], want) || (n < 64) != (err == io.EOF) {
					t.Errorf("ReadAt(%d) = %d, %v", off, n, err)
				}
			}
			// Bounded ranges: the server sends only the bytes read.
			if honour && fmt.Sprint(ranges) != "[bytes=0-63 bytes=1-64 bytes=512-575 bytes=9990-9999]" {
				t.Errorf("requests asked for %q", ranges)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	if got := Redact("https://u:p@h/x?temp_url_sig=abc"); got != "https://h/x?..." {
		t.Errorf("Redact = %q", got)
	}
}
