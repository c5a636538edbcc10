package image

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/ferric-metal/ferric/images/checksum"
	"github.com/ferric-metal/ferric/ipa/internal/disk"
	"github.com/ferric-metal/ferric/ipa/internal/fetch"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// testImage is an MBR disk image of size bytes: random data in the first
// and third quarter, zeroes elsewhere.
func testImage(size int) []byte {
	img := make([]byte, size)
	r := rand.NewChaCha8([32]byte{42})
	r.Read(img[disk.MiB : size/4])
	r.Read(img[size/2 : 3*size/4])
	clear(img[:512])
	binary.LittleEndian.PutUint32(img[440:], 0x12345678)
	// One partition from 1 MiB to size/2.
	e := img[446:]
	e[4] = 0x83
	binary.LittleEndian.PutUint32(e[8:], 2048)
	binary.LittleEndian.PutUint32(e[12:], uint32(size/2/512-2048))
	img[510], img[511] = 0x55, 0xAA
	return img
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zst(b []byte) []byte {
	w, _ := zstd.NewWriter(nil)
	return w.EncodeAll(b, nil)
}

func hexSum(algo string, b []byte) string {
	switch algo {
	case "md5":
		s := md5.Sum(b)
		return hex.EncodeToString(s[:])
	case "sha512":
		s := sha512.Sum512(b)
		return hex.EncodeToString(s[:])
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// server serves files by name with Range support; "broken" files cut every
// response after cutEvery bytes (0: never), the first `breaks` times.
type server struct {
	files    map[string][]byte
	breaks   atomic.Int32
	cut      int
	hardCut  bool // cut at absolute byte cut (a server-side truncated file)
	requests atomic.Int32
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	name := strings.TrimPrefix(r.URL.Path, "/")
	data, ok := s.files[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if s.breaks.Add(-1) >= 0 {
		off := 0
		if rg := r.Header.Get("Range"); rg != "" {
			fmt.Sscanf(rg, "bytes=%d-", &off)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, len(data)-1, len(data)))
			w.Header().Set("Content-Length", strconv.Itoa(len(data)-off))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		}
		end := min(off+s.cut, len(data))
		if s.hardCut {
			end = max(off, min(s.cut, len(data)))
		}
		w.Write(data[off:end])
		w.(http.Flusher).Flush()
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
		return
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}

func newDisk(t *testing.T, size int64, fill byte) *disk.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if fill != 0 {
		f.Write(bytes.Repeat([]byte{fill}, int(size)))
	} else {
		f.Truncate(size)
	}
	f.Close()
	d, err := disk.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func readAll(t *testing.T, d disk.BlockDevice) []byte {
	t.Helper()
	b := make([]byte, d.Size())
	if _, err := d.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

func TestWrite(t *testing.T) {
	const size = 16 * disk.MiB
	img := testImage(size)
	srv := &server{files: map[string][]byte{
		"disk.raw": img, "disk.raw.gz": gz(img), "disk.raw.zst": zst(img),
		"disk.qcow2": append([]byte("QFI\xfb"), make([]byte, 1000)...),
		"SHA256SUMS": []byte(hexSum("sha256", img) + "  ./disk.raw\n"),
	}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	u := func(n string) string { return ts.URL + "/" + n }

	tests := []struct {
		name     string
		info     protocol.ImageInfo
		diskFill byte
		breaks   int32
		cut      int
		hardCut  bool
		wantErr  error
		wantText string
	}{
		{name: "raw os_hash sha256", info: protocol.ImageInfo{URLs: []string{u("disk.raw")}, DiskFormat: "raw", OSHashAlgo: "sha256", OSHashValue: hexSum("sha256", img)}},
		{name: "raw legacy md5 onto dirty disk", info: protocol.ImageInfo{URLs: []string{u("disk.raw")}, Checksum: hexSum("md5", img)}, diskFill: 0xEE},
		{name: "raw sha512", info: protocol.ImageInfo{URLs: []string{u("disk.raw")}, OSHashAlgo: "sha512", OSHashValue: hexSum("sha512", img)}},
		{name: "checksum file", info: protocol.ImageInfo{URLs: []string{u("disk.raw")}, Checksum: u("SHA256SUMS")}},
		{name: "mirror fallback", info: protocol.ImageInfo{URLs: []string{u("missing"), u("disk.raw")}, Checksum: hexSum("sha256", img)}},
		{name: "gzip", info: protocol.ImageInfo{URLs: []string{u("disk.raw.gz")}, DiskFormat: "raw", OSHashAlgo: "sha256", OSHashValue: hexSum("sha256", gz(img))}, diskFill: 0xEE},
		{name: "zstd", info: protocol.ImageInfo{URLs: []string{u("disk.raw.zst")}, OSHashAlgo: "sha256", OSHashValue: hexSum("sha256", zst(img))}},
		{name: "resumed after two broken connections", info: protocol.ImageInfo{URLs: []string{u("disk.raw")}, OSHashAlgo: "sha256", OSHashValue: hexSum("sha256", img)}, breaks: 2, cut: 3 * disk.MiB},
		{name: "wrong checksum", info: protocol.ImageInfo{URLs: []string{u("disk.raw")}, OSHashAlgo: "sha256", OSHashValue: hexSum("sha256", []byte("other"))}, wantErr: checksum.ErrMismatch,
			wantText: "sha256 of image is " + hexSum("sha256", img) + ", expected " + hexSum("sha256", []byte("other")) + " (from os_hash_value)"},
		{name: "truncated download", info: protocol.ImageInfo{URLs: []string{u("disk.raw")}, OSHashAlgo: "sha256", OSHashValue: hexSum("sha256", img)}, breaks: 100, cut: 5 * disk.MiB, hardCut: true, wantErr: io.ErrUnexpectedEOF},
		{name: "404", info: protocol.ImageInfo{URLs: []string{u("missing")}, Checksum: hexSum("sha256", img)}, wantText: "HTTP 404"},
		{name: "corrupt qcow2", info: protocol.ImageInfo{URLs: []string{u("disk.qcow2")}, DiskFormat: "qcow2", Checksum: hexSum("sha256", srvFile(srv, "disk.qcow2"))}, wantText: "qcow2"},
		{name: "qcow2 bytes declared raw", info: protocol.ImageInfo{URLs: []string{u("disk.qcow2")}, DiskFormat: "raw", Checksum: hexSum("sha256", srvFile(srv, "disk.qcow2"))}, wantErr: ErrFormat},
		{name: "raw bytes declared qcow2", info: protocol.ImageInfo{URLs: []string{u("disk.raw")}, DiskFormat: "qcow2", Checksum: hexSum("sha256", img)}, wantErr: ErrFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.breaks.Store(tc.breaks)
			srv.cut, srv.hardCut = tc.cut, tc.hardCut
			d := newDisk(t, 64*disk.MiB, tc.diskFill)
			var last protocol.Progress
			res, err := Write(context.Background(), d, tc.info, Options{
				RetryDelay: time.Millisecond, Retries: 3,
				Progress: func(p protocol.Progress) { last = p },
			})
			got := readAll(t, d)
			if tc.wantErr != nil || tc.wantText != "" {
				if err == nil {
					t.Fatalf("Write = %+v, nil error", res)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("Write error = %v, want %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantText) {
					t.Errorf("Write error = %q, want it to contain %q", err, tc.wantText)
				}
				if !disk.IsZero(got[:disk.MiB]) || !disk.IsZero(got[len(got)-disk.MiB:]) {
					t.Errorf("partition table not wiped after failure")
				}
				if _, err := disk.ReadTable(d); err == nil {
					t.Errorf("disk still has a partition table after a failed write")
				}
				return
			}
			if err != nil {
				t.Fatalf("Write: %v", err)
			}
			if !bytes.Equal(got[:size], img) {
				t.Fatalf("disk content differs from the image")
			}
			if !disk.IsZero(got[size:]) && tc.diskFill == 0 {
				t.Errorf("bytes after the image changed")
			}
			if res.Written != size || res.PartitionTable != disk.KindMBR || res.RootPartitionID != "0x12345678" {
				t.Errorf("Write = %+v", res)
			}
			if last.BytesWritten != size {
				t.Errorf("last progress = %+v", last)
			}
			// Raw data goes from the download buffers to the disk (on a
			// dirty disk short zero runs are written from a zero buffer).
			if res.Format == FormatRaw && tc.diskFill == 0 && res.Copied*10 > res.DataWritten {
				t.Errorf("%d of %d data bytes were copied on their way to the disk", res.Copied, res.DataWritten)
			}
		})
	}
}

func srvFile(s *server, n string) []byte { return s.files[n] }

// TestWriteSparse checks that zero runs of the image are not allocated on a
// fresh sparse file.
func TestWriteSparse(t *testing.T) {
	img := make([]byte, 64*disk.MiB)
	copy(img, testImage(4*disk.MiB))
	copy(img[40*disk.MiB:], bytes.Repeat([]byte{9}, disk.MiB))
	ts := httptest.NewServer(&server{files: map[string][]byte{"d": img}})
	defer ts.Close()
	d := newDisk(t, 128*disk.MiB, 0)
	res, err := Write(context.Background(), d, protocol.ImageInfo{URLs: []string{ts.URL + "/d"}, Checksum: hexSum("sha256", img)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, d)[:len(img)], img) {
		t.Fatal("content differs")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(d.Name(), &st); err != nil {
		t.Fatal(err)
	}
	if alloc := st.Blocks * 512; alloc > 8*disk.MiB {
		t.Errorf("%d bytes allocated for %d data bytes: zeroes were written", alloc, res.DataWritten)
	}
	if res.DataWritten > 5*disk.MiB {
		t.Errorf("DataWritten = %d", res.DataWritten)
	}
}

func TestConfigdrive(t *testing.T) {
	iso := make([]byte, 300<<10)
	iso[32768] = 1
	copy(iso[32769:], "CD001")
	copy(iso[32768+40:], "config-2                        ")
	srv := httptest.NewServer(&server{files: map[string][]byte{"cd": gz(iso)}})
	defer srv.Close()
	for _, tc := range []struct {
		name, value string
	}{
		{"base64 gzip", base64.StdEncoding.EncodeToString(gz(iso))},
		{"url", srv.URL + "/cd"},
		{"base64 raw", base64.StdEncoding.EncodeToString(iso)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := DecodeConfigdrive(context.Background(), nil, tc.value)
			if tc.name == "url" {
				data, err = DecodeConfigdrive(context.Background(), httpFetcher(), tc.value)
			}
			if err != nil || !bytes.Equal(data, iso) {
				t.Fatalf("DecodeConfigdrive = %d bytes, %v", len(data), err)
			}
			d := newDisk(t, 256*disk.MiB, 0)
			d.WriteAt(testImage(16*disk.MiB), 0)
			p, err := WriteConfigdrive(d, data)
			if err != nil {
				t.Fatal(err)
			}
			if disk.ProbeISOLabel(d, p.Start) != "config-2" {
				t.Errorf("no config-2 at partition %+v", p)
			}
			// A second write reuses the partition.
			p2, err := WriteConfigdrive(d, data)
			if err != nil || p2.Number != p.Number {
				t.Errorf("second WriteConfigdrive = %+v, %v; want partition %d", p2, err, p.Number)
			}
		})
	}
	if _, err := DecodeConfigdrive(context.Background(), nil, base64.StdEncoding.EncodeToString(gz(make([]byte, MaxConfigdriveSize+1)))); err == nil {
		t.Error("oversized configdrive accepted")
	}
}

func httpFetcher() *fetch.HTTP { return &fetch.HTTP{} }

// TestWriteQCOW2 converts a qemu-img made qcow2 (plain and compressed) while
// streaming, onto a dirty disk.
func TestWriteQCOW2(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img (qemu-utils) not installed")
	}
	img := testImage(16 * disk.MiB)
	dir := t.TempDir()
	raw := filepath.Join(dir, "d.raw")
	os.WriteFile(raw, img, 0o644)
	files := map[string][]byte{}
	for name, args := range map[string][]string{"plain.qcow2": nil, "comp.qcow2": {"-c"}} {
		out := filepath.Join(dir, name)
		cmd := exec.Command("qemu-img", append(append([]string{"convert", "-O", "qcow2"}, args...), raw, out)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("qemu-img: %v %s", err, b)
		}
		files[name], _ = os.ReadFile(out)
	}
	ts := httptest.NewServer(&server{files: files})
	defer ts.Close()
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			d := newDisk(t, 64*disk.MiB, 0xCC)
			res, err := Write(context.Background(), d, protocol.ImageInfo{URLs: []string{ts.URL + "/" + name}, DiskFormat: "qcow2",
				OSHashAlgo: "sha256", OSHashValue: hexSum("sha256", data)}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, d); !bytes.Equal(got[:len(img)], img) {
				t.Fatal("disk differs from the image")
			}
			if res.Format != FormatQCOW2 || res.Written != int64(len(img)) {
				t.Errorf("Write = %+v", res)
			}
			if res.Copied*10 > res.DataWritten {
				t.Errorf("%d of %d data bytes were copied on their way to the disk", res.Copied, res.DataWritten)
			}
		})
	}
}

func TestCriticalThread(t *testing.T) {
	done := make(chan int)
	go func() {
		criticalThread()
		// The kernel's getpriority answers 20 - nice.
		raw, _ := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
		done <- 20 - raw
	}()
	nice := <-done
	outer, _ := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
	if os.Geteuid() != 0 {
		t.Skipf("not root: nice %d kept", nice)
	}
	if nice != -5 {
		t.Errorf("hashing thread nice = %d, want -5", nice)
	}
	if 20-outer == -5 {
		t.Errorf("the test's own thread was boosted too")
	}
}

// Images of at least two pieces come in pieces side by side from servers
// that answer ranges (the pieces reassembled in order, the last one
// short); a server that ignores Range gets the one sequential download.
func TestWritePieces(t *testing.T) {
	const size = 3*ChunkSize + 12345
	img := testImage(size)
	ranged := &server{files: map[string][]byte{"disk.raw": img}}
	plain := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(img)))
		w.Write(img) // Range ignored: always the whole file, 200
	})
	for _, tc := range []struct {
		name         string
		h            http.Handler
		wantRequests func(int32) bool
	}{
		{"ranges", ranged, func(n int32) bool { return n >= 5 }}, // first GET, probe, 4 pieces
		{"range ignored", plain, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := httptest.NewServer(tc.h)
			defer ts.Close()
			ranged.requests.Store(0)
			d := newDisk(t, 32*disk.MiB, 0xEE)
			_, err := Write(context.Background(), d, protocol.ImageInfo{URLs: []string{ts.URL + "/disk.raw"},
				OSHashAlgo: "sha256", OSHashValue: hexSum("sha256", img)}, Options{RetryDelay: time.Millisecond, Retries: 3})
			if err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, d); !bytes.Equal(got[:size], img) {
				t.Fatal("disk content differs from the image")
			}
			if tc.wantRequests != nil && !tc.wantRequests(ranged.requests.Load()) {
				t.Errorf("%d requests: the pieces were not fetched as ranges", ranged.requests.Load())
			}
		})
	}
}
