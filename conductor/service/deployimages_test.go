package service

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/ferric-metal/ferric/conductor/driver"
)

// TestVmediaRamdiskFromURLs: deploy images named by http(s) URL (as
// metal3's baremetal-operator names them) are downloaded for the virtual
// media ISO, revalidated at each use (a 304 keeps the copy, a new version
// replaces it), and a server's refusal fails the boot with its status.
func TestVmediaRamdiskFromURLs(t *testing.T) {
	var mu sync.Mutex
	content := map[string]string{"/k": "kernel v1", "/r": "ramdisk v1"}
	gets := map[string]int{}
	conditional := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		body, ok := content[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		etag := fmt.Sprintf("%q", body)
		if r.Header.Get("If-None-Match") != "" {
			conditional++
			if r.Header.Get("If-None-Match") == etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		gets[r.URL.Path]++
		w.Header().Set("ETag", etag)
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	h := &bootHosts{publicURL: "http://10.99.0.1:6385", deployImages: &deployImages{dir: t.TempDir()}}
	rdf := h.vmediaRamdisk(t.TempDir())
	dn := &driver.Node{UUID: "11111111-2222-3333-4444-555555555555", DriverInfo: map[string]any{"deploy_kernel": srv.URL + "/k", "deploy_ramdisk": srv.URL + "/r"}}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	rd, err := rdf(dn, false)
	if err != nil {
		t.Fatal(err)
	}
	if read(rd.Kernel) != "kernel v1" || read(rd.Initrd) != "ramdisk v1" || !strings.HasSuffix(rd.Params, "boot_method=vmedia") {
		t.Fatalf("first boot: %+v", rd)
	}
	rd2, err := rdf(dn, true)
	if err != nil || rd2.Kernel != rd.Kernel || conditional != 2 || gets["/k"] != 1 || gets["/r"] != 1 {
		t.Errorf("second boot: %+v %v; %d conditional requests, gets %v (want 2 revalidations, no new download)", rd2, err, conditional, gets)
	}
	mu.Lock()
	content["/r"] = "ramdisk v2"
	mu.Unlock()
	rd3, err := rdf(dn, false)
	if err != nil || read(rd3.Initrd) != "ramdisk v2" || gets["/r"] != 2 || gets["/k"] != 1 {
		t.Errorf("after the ramdisk changed: %v, initrd %q, gets %v", err, read(rd3.Initrd), gets)
	}
	dn.DriverInfo["deploy_kernel"] = srv.URL + "/missing"
	if _, err := rdf(dn, false); err == nil || !strings.Contains(err.Error(), "deploy_kernel") || !strings.Contains(err.Error(), "404") {
		t.Errorf("a missing kernel: %v", err)
	}
}
