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

// TestImageCacheDownloadsOnce: concurrent deploys of one URL image make
// one download; agents are pointed at the conductor's verified copy.
func TestImageCacheDownloadsOnce(t *testing.T) {
	body := strings.Repeat("ferric image ", 100000)
	sum := sha256.Sum256([]byte(body))
	var hits atomic.Int32
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte(body))
	}))
	defer origin.Close()
	images, err := imgstore.New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &imageResolver{images: images, cache: c, publicURL: "http://conductor:6385", client: origin.Client()}
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
