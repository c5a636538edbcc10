package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/images/cache"
	imgstore "github.com/ferric-metal/ferric/images/store"
)

// imageFixture is an origin HTTP server serving body (counting its
// downloads), an image store and a cache, closed with the test.
func imageFixture(t *testing.T, body string) (*httptest.Server, *atomic.Int32, *imgstore.Store, *cache.Cache) {
	t.Helper()
	hits := new(atomic.Int32)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte(body))
	}))
	t.Cleanup(origin.Close)
	images, err := imgstore.New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return origin, hits, images, c
}

// TestImageCacheDownloadsOnce: concurrent deploys of one URL image make
// one download; agents are pointed at the conductor's verified copy.
func TestImageCacheDownloadsOnce(t *testing.T) {
	body := strings.Repeat("ferric image ", 100000)
	sum := sha256.Sum256([]byte(body))
	origin, hits, images, c := imageFixture(t, body)
	r := &imageResolver{images: images, cache: c, cacheByDefault: true, publicURL: "http://conductor:6385", client: origin.Client()}
	n := &store.Node{UUID: "n1", InstanceInfo: store.Object{"image_source": origin.URL + "/img.raw",
		"image_os_hash_algo": "sha256", "image_os_hash_value": hex.EncodeToString(sum[:])}}
	var wg sync.WaitGroup
	urls := make([]string, 6)
	for i := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			info, err := r.Resolve(context.Background(), n)
			if err != nil {
				t.Error(err)
				return
			}
			urls[i] = info.URLs[0]
		}()
	}
	wg.Wait()
	if hits.Load() != 1 {
		t.Fatalf("origin served %d downloads, want 1", hits.Load())
	}
	for _, u := range urls {
		if !strings.HasPrefix(u, "http://conductor:6385/images/cache/") {
			t.Fatalf("agent URL %q does not point at the conductor's cache", u)
		}
	}
	// A wrong checksum is refused before any agent sees the image.
	bad := &store.Node{UUID: "n2", InstanceInfo: store.Object{"image_source": origin.URL + "/other.raw",
		"image_os_hash_algo": "sha256", "image_os_hash_value": strings.Repeat("0", 64)}}
	if _, err := r.Resolve(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("Resolve with a wrong checksum = %v, want a checksum error", err)
	}
}

// image_download_source per node: http/local through the cache, swift
// straight to the agent, anything else refused; checking a node's image
// (deploy validation) never downloads it.
func TestImageDownloadSource(t *testing.T) {
	body := "ferric image"
	sum := sha256.Sum256([]byte(body))
	origin, hits, images, c := imageFixture(t, body)
	node := func(ii, di map[string]any) *store.Node {
		n := &store.Node{UUID: "n1", InstanceInfo: store.Object{"image_source": origin.URL + "/img.raw",
			"image_os_hash_algo": "sha256", "image_os_hash_value": hex.EncodeToString(sum[:])}, DriverInfo: store.Object{}}
		for k, v := range ii {
			n.InstanceInfo[k] = v
		}
		for k, v := range di {
			n.DriverInfo[k] = v
		}
		return n
	}
	tests := []struct {
		name       string
		byDefault  bool
		ii, di     map[string]any
		wantCached bool
		wantErr    string
	}{
		{"default direct", false, nil, nil, false, ""},
		{"default cached", true, nil, nil, true, ""},
		{"instance_info http", false, map[string]any{"image_download_source": "http"}, nil, true, ""},
		{"driver_info local", false, nil, map[string]any{"image_download_source": "local"}, true, ""},
		{"instance_info swift wins over driver_info", true, map[string]any{"image_download_source": "swift"}, map[string]any{"image_download_source": "http"}, false, ""},
		{"invalid", false, map[string]any{"image_download_source": "ftp"}, nil, false, "valid values are http, local, swift"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &imageResolver{images: images, cache: c, cacheByDefault: tc.byDefault, publicURL: "http://conductor:6385", client: origin.Client()}
			n := node(tc.ii, tc.di)
			before := hits.Load()
			err := r.Check(context.Background(), n)
			if hits.Load() != before {
				t.Errorf("Check downloaded the image")
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Check = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			info, err := r.Resolve(context.Background(), n)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.HasPrefix(info.URLs[0], "http://conductor:6385/images/cache/"); got != tc.wantCached {
				t.Errorf("agent URL %s, cached %v, want %v", info.URLs[0], got, tc.wantCached)
			}
		})
	}
	noCache := &imageResolver{images: images, publicURL: "http://conductor:6385", client: origin.Client()}
	if err := noCache.Check(context.Background(), node(map[string]any{"image_download_source": "http"}, nil)); err == nil {
		t.Errorf("http without a cache accepted")
	}
}
