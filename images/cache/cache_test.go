package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/images/checksum"
)

func TestGetOnceAndServe(t *testing.T) {
	data := bytes.Repeat([]byte("image-bytes "), 50000)
	sum := sha256.Sum256(data)
	want := checksum.Expected{Algorithm: "sha256", Value: hex.EncodeToString(sum[:])}
	var hits atomic.Int64
	release := make(chan struct{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		<-release
		w.Write(data)
	}))
	defer origin.Close()
	c, err := New(t.TempDir(), origin.Client(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	url := origin.URL + "/disk.raw?token=secret"

	// A caller that gives up does not cancel the shared download.
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Get(short, url, want); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get(short deadline) = %v, want DeadlineExceeded", err)
	}
	var wg sync.WaitGroup
	paths := make([]string, 8)
	errs := make([]error, 8)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			paths[i], errs[i] = c.Get(context.Background(), url, want)
		}()
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	for i := range paths {
		if errs[i] != nil || paths[i] != paths[0] {
			t.Fatalf("Get #%d = %q, %v", i, paths[i], errs[i])
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("origin requests = %d, want 1", n)
	}
	if b, _ := os.ReadFile(paths[0]); !bytes.Equal(b, data) {
		t.Errorf("cached file differs from origin")
	}
	if _, err := c.Get(context.Background(), url, want); err != nil || hits.Load() != 1 {
		t.Errorf("cached Get() = %v with %d origin requests, want no new request", err, hits.Load())
	}

	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	for _, tc := range []struct {
		name, path, rng string
		code            int
		want            []byte
	}{
		{"whole", "/" + Key(url), "", 200, data},
		{"range", "/" + Key(url), "bytes=10-19", 206, data[10:20]},
		{"traversal", "/../etc/passwd", "", 404, nil},
		{"unknown", "/" + Key("other"), "", 404, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+tc.path, nil)
			if tc.rng != "" {
				req.Header.Set("Range", tc.rng)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code || (tc.want != nil && !bytes.Equal(b, tc.want)) {
				t.Errorf("GET %s = %d (%d bytes), want %d", tc.path, resp.StatusCode, len(b), tc.code)
			}
		})
	}
}

func TestChecksumMismatchAndErrors(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "tampered")
	}))
	defer origin.Close()
	dir := t.TempDir()
	c, _ := New(dir, nil, nil)
	good := checksum.Expected{Algorithm: "sha256", Value: hex.EncodeToString(make([]byte, 32))}
	for _, tc := range []struct {
		name, path string
		wantErr    error
		msg        string
	}{
		{"mismatch", "/img", checksum.ErrMismatch, "sha256 of image is"},
		{"404", "/missing", nil, "404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Get(context.Background(), origin.URL+tc.path, good)
			if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) || !bytes.Contains([]byte(err.Error()), []byte(tc.msg)) {
				t.Fatalf("Get() error = %v, want %v containing %q", err, tc.wantErr, tc.msg)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 0 {
				t.Errorf("cache dir has %d entries after a failed download, want 0", len(entries))
			}
		})
	}
}
