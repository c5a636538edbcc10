package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// deployImages keeps local copies of deploy kernels and ramdisks that a
// node names by http(s) URL (as metal3's baremetal-operator does), for
// boots that put them on an ISO (virtual media), as Ironic's image cache
// does: one copy per URL, revalidated with its server at each use
// (If-None-Match / If-Modified-Since), so a changed image is fetched again.
type deployImages struct {
	dir    string
	client *http.Client
	mu     sync.Mutex // one fetch at a time: the images are few and shared
}

// fetchTimeout bounds one download of a deploy image (the ramdisk
// interface that asks for it has no context of its own).
const fetchTimeout = 10 * time.Minute

// isFetchable reports whether v is an http(s) URL.
func isFetchable(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// local returns the path of an up-to-date copy of rawURL.
func (d *deployImages) local(ctx context.Context, rawURL string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	sum := sha256.Sum256([]byte(rawURL))
	path := filepath.Join(d.dir, hex.EncodeToString(sum[:]))
	meta := path + ".validator"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", fmt.Errorf("deploy image %s: %w", redactURL(rawURL), err)
	}
	if _, err := os.Stat(path); err == nil {
		if v, err := os.ReadFile(meta); err == nil {
			etag, modified, _ := strings.Cut(string(v), "\n")
			if etag != "" {
				req.Header.Set("If-None-Match", etag)
			}
			if modified != "" {
				req.Header.Set("If-Modified-Since", modified)
			}
		}
	}
	client := d.client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("deploy image %s: %w", redactURL(rawURL), err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return path, nil
	case http.StatusOK:
	default:
		return "", fmt.Errorf("deploy image %s: the server answered %s", redactURL(rawURL), resp.Status)
	}
	if err := os.MkdirAll(d.dir, 0o750); err != nil {
		return "", fmt.Errorf("deploy image: %w", err)
	}
	tmp, err := os.CreateTemp(d.dir, ".part-")
	if err != nil {
		return "", fmt.Errorf("deploy image: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, resp.Body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("deploy image %s: %w", redactURL(rawURL), err)
	}
	_ = os.Remove(meta) // a stale validator must not outlive its file
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("deploy image: %w", err)
	}
	v := resp.Header.Get("ETag") + "\n" + resp.Header.Get("Last-Modified")
	if err := os.WriteFile(meta, []byte(v), 0o640); err != nil {
		return "", fmt.Errorf("deploy image: %w", err)
	}
	return path, nil
}

// redactURL drops a URL's credentials and query for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}
