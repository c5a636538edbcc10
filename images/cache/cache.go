// Package cache keeps local copies of remote images: given an http(s) URL
// and its expected checksum it downloads the image once, verifies it, and
// serves the kept file afterwards. Concurrent callers asking for the same
// URL wait for the single download (golang.org/x/sync/singleflight); a
// caller whose context ends stops waiting without cancelling the download
// for the others.
//
// Files are kept as <dir>/<sha256(url)> with the verified digest in
// <dir>/<sha256(url)>.sum; an entry whose digest differs from the one asked
// for is downloaded again.
package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sync/singleflight"

	"github.com/ferric-metal/ferric/images/checksum"
	"github.com/ferric-metal/ferric/images/internal/writeback"
)

// Cache is a directory of downloaded images.
type Cache struct {
	dir    string
	client *http.Client
	log    *slog.Logger
	group  singleflight.Group
}

// New returns a cache in dir (created if needed). A nil client means
// http.DefaultClient.
func New(dir string, client *http.Client, log *slog.Logger) (*Cache, error) {
	if client == nil {
		client = http.DefaultClient
	}
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return &Cache{dir: dir, client: client, log: log}, nil
}

// Key returns the file name used for a URL.
func Key(rawURL string) string {
	s := sha256.Sum256([]byte(rawURL))
	return hex.EncodeToString(s[:])
}

// Get returns the path of a verified local copy of rawURL, downloading it if
// needed. The returned file must not be modified.
func (c *Cache) Get(ctx context.Context, rawURL string, want checksum.Expected) (string, error) {
	key := Key(rawURL)
	path := filepath.Join(c.dir, key)
	if c.valid(key, want) {
		return path, nil
	}
	ch := c.group.DoChan(key, func() (any, error) {
		if c.valid(key, want) {
			return path, nil
		}
		// Detached from the first caller: others may still be waiting.
		return path, c.download(context.WithoutCancel(ctx), rawURL, key, want)
	})
	select {
	case <-ctx.Done():
		return "", fmt.Errorf("cache: %s: %w", redact(rawURL), ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return path, nil
	}
}

func (c *Cache) valid(key string, want checksum.Expected) bool {
	b, err := os.ReadFile(filepath.Join(c.dir, key+".sum"))
	if err != nil || strings.TrimSpace(string(b)) != want.String() {
		return false
	}
	_, err = os.Stat(filepath.Join(c.dir, key))
	return err == nil
}

func (c *Cache) download(ctx context.Context, rawURL, key string, want checksum.Expected) error {
	v, err := checksum.NewVerifier(want)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("cache: %s: %w", redact(rawURL), err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("cache: %s: %w", redact(rawURL), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cache: %s: HTTP %s", redact(rawURL), resp.Status)
	}
	tmp, err := os.CreateTemp(c.dir, key+"-*.tmp")
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	out := &writeback.Writer{F: tmp, Direct: true}
	defer out.Close()
	n, err := checksum.CopyParallel(resp.Body, 1<<20, out, v)
	if err != nil {
		return fmt.Errorf("cache: %s: download failed after %d bytes: %w", redact(rawURL), n, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return fmt.Errorf("cache: %s: got %d bytes, Content-Length was %d", redact(rawURL), n, resp.ContentLength)
	}
	if err := v.Verify(); err != nil {
		return fmt.Errorf("cache: %s: %w", redact(rawURL), err)
	}
	// On disk before it gets its final name: a crash never leaves a
	// cached file shorter than its digest says.
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	path := filepath.Join(c.dir, key)
	// Drop the old digest first so a crash between the renames never pairs
	// new bytes with a stale digest.
	_ = os.Remove(path + ".sum")
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if err := os.WriteFile(path+".sum", []byte(want.String()+"\n"), 0o640); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	c.log.Info("cache: image downloaded", "url", redact(rawURL), "bytes", n)
	return nil
}

// Handler serves cached files as /<key> (Range and conditional requests
// supported); the conductor mounts it where agents fetch images.
func (c *Cache) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.URL.Path, "/")
		if len(key) != 64 || strings.Trim(key, "0123456789abcdef") != "" {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, filepath.Join(c.dir, key))
	})
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid URL>"
	}
	u.User = nil
	u.RawQuery = ""
	return u.String()
}
