package store

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newServer(t testing.TB, dir string) (*Store, string) {
	t.Helper()
	s, err := New(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler(""))
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func do(t testing.TB, method, url, ctype string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func createImage(t testing.TB, base, body string) map[string]any {
	t.Helper()
	resp, b := do(t, "POST", base+"/v2/images", "application/json", strings.NewReader(body))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v2/images = %d %s", resp.StatusCode, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLifecycle(t *testing.T) {
	dir := t.TempDir()
	_, base := newServer(t, dir)
	img := createImage(t, base, `{"name": "focal", "disk_format": "raw", "container_format": "bare", "visibility": "public",
		"id": "11111111-2222-3333-4444-555555555555", "min_disk": 2, "tags": ["a"], "hw_firmware_type": "uefi"}`)
	id := img["id"].(string)
	for k, want := range map[string]any{"status": "queued", "name": "focal", "hw_firmware_type": "uefi", "min_disk": 2.0, "file": "/v2/images/" + id + "/file"} {
		if img[k] != want {
			t.Errorf("created image %s = %v, want %v", k, img[k], want)
		}
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 100000)
	t.Run("upload", func(t *testing.T) {
		resp, b := do(t, "PUT", base+"/v2/images/"+id+"/file", "application/octet-stream", bytes.NewReader(data))
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("PUT file = %d %s", resp.StatusCode, b)
		}
		_, b = do(t, "GET", base+"/v2/images/"+id, "", nil)
		var got map[string]any
		json.Unmarshal(b, &got)
		md := md5.Sum(data)
		sh := sha512.Sum512(data)
		for k, want := range map[string]any{"status": "active", "size": float64(len(data)), "virtual_size": float64(len(data)),
			"checksum": hex.EncodeToString(md[:]), "os_hash_algo": "sha512", "os_hash_value": hex.EncodeToString(sh[:])} {
			if got[k] != want {
				t.Errorf("after upload %s = %v, want %v", k, got[k], want)
			}
		}
		if resp, _ := do(t, "PUT", base+"/v2/images/"+id+"/file", "application/octet-stream", strings.NewReader("x")); resp.StatusCode != http.StatusConflict {
			t.Errorf("second upload = %d, want 409", resp.StatusCode)
		}
	})
	t.Run("download", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			hdr  []string
			code int
			want []byte
		}{
			{"whole", nil, 200, data},
			{"range", []string{"Range", "bytes=100-199"}, 206, data[100:200]},
			{"suffix", []string{"Range", "bytes=-10"}, 206, data[len(data)-10:]},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, b := do(t, "GET", base+"/v2/images/"+id+"/file", "", nil, tc.hdr...)
				if resp.StatusCode != tc.code || !bytes.Equal(b, tc.want) {
					t.Errorf("GET file %v = %d, %d bytes; want %d, %d bytes", tc.hdr, resp.StatusCode, len(b), tc.code, len(tc.want))
				}
				if resp.Header.Get("ETag") == "" || resp.Header.Get("Content-MD5") == "" {
					t.Errorf("GET file headers lack ETag/Content-MD5: %v", resp.Header)
				}
			})
		}
		etag := `"` + hex.EncodeToString(func() []byte { s := md5.Sum(data); return s[:] }()) + `"`
		if resp, _ := do(t, "GET", base+"/v2/images/"+id+"/file", "", nil, "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET file If-None-Match = %d, want 304", resp.StatusCode)
		}
	})
	t.Run("patch", func(t *testing.T) {
		for _, tc := range []struct {
			name, body string
			code       int
		}{
			{"replace name, add and remove property", `[{"op":"replace","path":"/name","value":"jammy"},{"op":"add","path":"/os_distro","value":"ubuntu"},{"op":"remove","path":"/hw_firmware_type"}]`, 200},
			{"read-only", `[{"op":"replace","path":"/status","value":"active"}]`, 403},
			{"remove missing", `[{"op":"remove","path":"/nope"}]`, 409},
			{"bad op", `[{"op":"move","path":"/name"}]`, 400},
			{"protect", `[{"op":"replace","path":"/protected","value":true}]`, 200},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, b := do(t, "PATCH", base+"/v2/images/"+id, patchContentType, strings.NewReader(tc.body))
				if resp.StatusCode != tc.code {
					t.Fatalf("PATCH = %d %s, want %d", resp.StatusCode, b, tc.code)
				}
			})
		}
		_, b := do(t, "GET", base+"/v2/images/"+id, "", nil)
		var got map[string]any
		json.Unmarshal(b, &got)
		if got["name"] != "jammy" || got["os_distro"] != "ubuntu" || got["hw_firmware_type"] != nil || got["protected"] != true {
			t.Errorf("after PATCH image = %v", got)
		}
		// Glance names the PATCH media types in Accept-Patch (sorted).
		if resp, _ := do(t, "PATCH", base+"/v2/images/"+id, "application/json", strings.NewReader(`[]`)); resp.StatusCode != http.StatusUnsupportedMediaType ||
			resp.Header.Get("Accept-Patch") != "application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch" {
			t.Errorf("PATCH with application/json = %d, Accept-Patch %q, want 415 and the two patch types", resp.StatusCode, resp.Header.Get("Accept-Patch"))
		}
	})
	t.Run("delete", func(t *testing.T) {
		if resp, _ := do(t, "DELETE", base+"/v2/images/"+id, "", nil); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("DELETE protected = %d, want 403", resp.StatusCode)
		}
		do(t, "PATCH", base+"/v2/images/"+id, patchContentType, strings.NewReader(`[{"op":"replace","path":"/protected","value":false}]`))
		if resp, _ := do(t, "DELETE", base+"/v2/images/"+id, "", nil); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE = %d, want 204", resp.StatusCode)
		}
		resp, b := do(t, "GET", base+"/v2/images/"+id, "", nil)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), `"title":"Not Found"`) {
			t.Errorf("GET deleted = %d %s, want Glance 404", resp.StatusCode, b)
		}
		if _, err := os.Stat(filepath.Join(dir, "images", id)); !os.IsNotExist(err) {
			t.Errorf("image directory still exists: %v", err)
		}
	})
}

func TestListPaging(t *testing.T) {
	s, base := newServer(t, t.TempDir())
	for i := range 7 {
		df := "raw"
		if i%2 == 1 {
			df = "qcow2"
		}
		createImage(t, base, fmt.Sprintf(`{"name": "img-%d", "disk_format": %q, "container_format": "bare"}`, i, df))
	}
	seen := map[string]bool{}
	next := "/v2/images?limit=3"
	pages := 0
	for next != "" {
		pages++
		_, b := do(t, "GET", base+next, "", nil)
		var page struct {
			Images []map[string]any `json:"images"`
			Next   string           `json:"next"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatal(err)
		}
		for _, img := range page.Images {
			seen[img["id"].(string)] = true
		}
		next = page.Next
	}
	if len(seen) != 7 || pages != 3 {
		t.Errorf("paged listing saw %d images in %d pages, want 7 in 3", len(seen), pages)
	}
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"disk_format=qcow2", 3}, {"name=img-4", 1}, {"status=active", 0}, {"status=queued", 7}, {"visibility=shared", 7},
	} {
		t.Run(tc.query, func(t *testing.T) {
			_, b := do(t, "GET", base+"/v2/images?"+tc.query, "", nil)
			var page struct {
				Images []any `json:"images"`
			}
			json.Unmarshal(b, &page)
			if len(page.Images) != tc.want {
				t.Errorf("GET /v2/images?%s = %d images, want %d", tc.query, len(page.Images), tc.want)
			}
		})
	}
	// Glance's index answers a marker it cannot find with a 400.
	if resp, _ := do(t, "GET", base+"/v2/images?marker=99999999-2222-3333-4444-555555555555", "", nil); resp.StatusCode != 400 {
		t.Errorf("unknown marker = %d, want 400", resp.StatusCode)
	}
	_ = s
}

// TestInterruptedUpload cuts the connection mid-body: the image must not
// become active and must accept a new upload.
func TestInterruptedUpload(t *testing.T) {
	dir := t.TempDir()
	s, base := newServer(t, dir)
	id := createImage(t, base, `{"name": "x", "disk_format": "raw", "container_format": "bare"}`)["id"].(string)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT /v2/images/%s/file HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n", id)
	conn.Write(make([]byte, 5000))
	conn.Close()
	// Wait for the server to notice: the image is queued again once the
	// upload it started (saving) failed. The image was queued before the
	// server read the request too, so a queued status counts only after
	// saving was seen or after half a second (a loaded machine may take
	// that long to read it).
	start, sawSaving := time.Now(), false
	for {
		img, _ := s.Get(id)
		sawSaving = sawSaving || img.Status == StatusSaving
		settled := sawSaving || time.Since(start) > 500*time.Millisecond
		if img.Status == StatusQueued && settled {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("status after interrupted upload = %s, want queued", img.Status)
		}
		_, b := do(t, "GET", base+"/v2/images/"+id, "", nil)
		if strings.Contains(string(b), `"status":"queued"`) && settled {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Short body with a declared length.
	if _, err := s.Upload(context.Background(), id, strings.NewReader("abc"), 10); err == nil {
		t.Fatal("Upload(short body) = nil error")
	}
	img, _ := s.Get(id)
	if img.Status != StatusQueued || img.Size != nil {
		t.Fatalf("after short upload status = %s size = %v, want queued with no size", img.Status, img.Size)
	}
	if _, err := os.Stat(s.DataPath(id)); !os.IsNotExist(err) {
		t.Errorf("data file exists after failed upload: %v", err)
	}
	if resp, b := do(t, "PUT", base+"/v2/images/"+id+"/file", "application/octet-stream", strings.NewReader("complete")); resp.StatusCode != 204 {
		t.Fatalf("retry upload = %d %s", resp.StatusCode, b)
	}
	// Metadata survives a restart.
	s2, err := New(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	img, err = s2.Get(id)
	if err != nil || img.Status != StatusActive || *img.Size != 8 {
		t.Fatalf("after restart Get() = %+v, %v", img, err)
	}
	f, _, err := s2.Open(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "complete" {
		t.Errorf("Open() data = %q", b)
	}
}

func TestQcow2VirtualSize(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not found: install Debian package qemu-utils")
	}
	q := filepath.Join(t.TempDir(), "x.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", q, "3G").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v %s", err, out)
	}
	data, _ := os.ReadFile(q)
	s, base := newServer(t, t.TempDir())
	id := createImage(t, base, `{"name": "q", "disk_format": "qcow2", "container_format": "bare"}`)["id"].(string)
	do(t, "PUT", base+"/v2/images/"+id+"/file", "application/octet-stream", bytes.NewReader(data))
	img, _ := s.Get(id)
	if img.VirtualSize == nil || *img.VirtualSize != 3<<30 || *img.Size != int64(len(data)) {
		t.Errorf("virtual_size = %v, size = %v; want %d, %d", img.VirtualSize, img.Size, 3<<30, len(data))
	}
}

func TestVersionsAndErrors(t *testing.T) {
	_, base := newServer(t, t.TempDir())
	for _, tc := range []struct {
		method, path, body string
		code               int
		contains           string
	}{
		{"GET", "/versions", "", 300, `"CURRENT"`},
		{"GET", "/", "", 300, `"v2.9"`},
		{"GET", "/v2/images/nope", "", 404, `"code":"404 Not Found"`},
		{"POST", "/v2/images", `{"disk_format": "floppy"}`, 400, "'floppy' is not one of"},
		{"POST", "/v2/images", `{"status": "active"}`, 403, "read-only"},
		{"POST", "/v2/images", `{"id": "not-a-uuid"}`, 400, "'not-a-uuid' does not match"},
		{"POST", "/v2/images", `[1]`, 400, "is not of type 'object'"},
		{"GET", "/v2/schemas/image", "", 200, `"additionalProperties"`},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp, b := do(t, tc.method, base+tc.path, "application/json", strings.NewReader(tc.body))
			if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.contains) {
				t.Errorf("%s %s = %d %s, want %d containing %q", tc.method, tc.path, resp.StatusCode, b, tc.code, tc.contains)
			}
		})
	}
}

// TestOpenStackCLI drives the store with the real `openstack image` CLI.
func TestOpenStackCLI(t *testing.T) {
	if _, err := exec.LookPath("openstack"); err != nil {
		t.Skip("openstack CLI not found: install Debian package python3-openstackclient")
	}
	s, base := newServer(t, t.TempDir())
	f := filepath.Join(t.TempDir(), "img.raw")
	os.WriteFile(f, bytes.Repeat([]byte{1, 2, 3}, 4096), 0o644)
	cli := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("openstack", append([]string{"--os-auth-type", "none", "--os-endpoint", base}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "OS_IMAGE_ENDPOINT_OVERRIDE="+base)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := cli("image", "create", "--file", f, "--disk-format", "raw", "--container-format", "bare", "-f", "json", "cli-image")
	var created map[string]any
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &created); err != nil {
		t.Fatalf("image create output: %v\n%s", err, out)
	}
	id, _ := created["id"].(string)
	img, err := s.Get(id)
	if err != nil || img.Status != StatusActive || *img.Size != 3*4096 {
		t.Fatalf("after openstack image create: %+v, %v\n%s", img, err, out)
	}
	if out := cli("image", "list", "-f", "value", "-c", "Name"); !strings.Contains(out, "cli-image") {
		t.Errorf("openstack image list = %q, want cli-image", out)
	}
	dl := filepath.Join(t.TempDir(), "dl")
	cli("image", "save", "--file", dl, id)
	if b, _ := os.ReadFile(dl); len(b) != 3*4096 {
		t.Errorf("openstack image save wrote %d bytes, want %d", len(b), 3*4096)
	}
	cli("image", "delete", id)
	if _, err := s.Get(id); err == nil {
		t.Error("image still exists after openstack image delete")
	}
}

func BenchmarkUploadDownload(b *testing.B) {
	_, base := newServer(b, b.TempDir())
	data := make([]byte, 64<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		id := createImage(b, base, `{"name": "bench", "disk_format": "raw", "container_format": "bare"}`)["id"].(string)
		resp, _ := do(b, "PUT", base+"/v2/images/"+id+"/file", "application/octet-stream", bytes.NewReader(data))
		if resp.StatusCode != 204 {
			b.Fatalf("upload = %d", resp.StatusCode)
		}
		r, err := http.Get(base + "/v2/images/" + id + "/file")
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, r.Body)
		r.Body.Close()
		if n != int64(len(data)) {
			b.Fatalf("download = %d bytes", n)
		}
		do(b, "DELETE", base+"/v2/images/"+id, "", nil)
	}
}

// TestUploadSizeCap: an upload past MaxSize is a 413, declared or
// streamed (chunked), and leaves no data and the image queued.
func TestUploadSizeCap(t *testing.T) {
	s, base := newServer(t, t.TempDir())
	s.MaxSize = 1 << 20
	id := createImage(t, base, `{"name": "big", "disk_format": "raw", "container_format": "bare"}`)["id"].(string)
	for _, chunked := range []bool{false, true} {
		var body io.Reader = io.LimitReader(zeroReader{}, 20<<20)
		if !chunked {
			body = bytes.NewReader(make([]byte, 20<<20))
		}
		resp, b := do(t, "PUT", base+"/v2/images/"+id+"/file", "application/octet-stream", body)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("20 MB upload (chunked %v) = %d %s, want 413", chunked, resp.StatusCode, b)
		}
		img, _ := s.Get(id)
		if img.Status != StatusQueued || img.Size != nil {
			t.Errorf("after refused upload: status %s size %v, want queued without data", img.Status, img.Size)
		}
		if _, err := os.Stat(s.DataPath(id)); !os.IsNotExist(err) {
			t.Errorf("data kept after a refused upload: %v", err)
		}
		left, _ := filepath.Glob(filepath.Join(filepath.Dir(s.DataPath(id)), "*.tmp"))
		if len(left) > 0 {
			t.Errorf("temporary files left: %v", left)
		}
	}
	if resp, b := do(t, "PUT", base+"/v2/images/"+id+"/file", "application/octet-stream", bytes.NewReader(make([]byte, 1<<20))); resp.StatusCode != 204 {
		t.Fatalf("upload at the cap = %d %s, want 204", resp.StatusCode, b)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
