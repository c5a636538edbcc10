package qcow2

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// rangeReaderAt reads an HTTP resource with Range requests, as the agent does.
type rangeReaderAt struct {
	ctx      context.Context
	url      string
	requests atomic.Int64
}

func (r *rangeReaderAt) ReadAt(p []byte, off int64) (int, error) {
	r.requests.Add(1)
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return 0, fmt.Errorf("range GET: %s", resp.Status)
	}
	return io.ReadFull(resp.Body, p)
}

func needQemu(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not found: install Debian package qemu-utils to run the qcow2 interop tests")
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// makeRaw writes a raw disk of random, compressible and zero regions.
func makeRaw(t testing.TB, path string, size int) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, size)
	for off := 0; off < size; {
		n := min(size-off, 4096+rng.IntN(300<<10))
		switch rng.IntN(3) {
		case 0: // random
			for i := off; i < off+n; i++ {
				b[i] = byte(rng.Uint32())
			}
		case 1: // compressible text
			for i := off; i < off+n; i++ {
				b[i] = "ferric qcow2 "[i%13]
			}
		}
		off += n
	}
	b[size-1] = 0x7e // data in the last, partial cluster
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// serve starts a loopback HTTP server for path (http.ServeFile supports Range).
func serve(t *testing.T, path string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, path)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/img"
}

// chunkSource is a ChunkReader over r handing out chunks of the sizes it
// cycles through, from one buffer it scribbles over before each refill:
// bytes kept past their validity show up as wrong output.
type chunkSource struct {
	r       io.Reader
	sizes   []int
	i       int
	buf     []byte
	pending []byte
}

func (c *chunkSource) ReadChunk(max int) ([]byte, error) {
	if len(c.pending) == 0 {
		if c.buf == nil {
			c.buf = make([]byte, slices.Max(c.sizes))
		}
		for i := range c.buf {
			c.buf[i] = 0xee
		}
		m, err := io.ReadFull(c.r, c.buf[:c.sizes[c.i%len(c.sizes)]])
		c.i++
		c.pending = c.buf[:m]
		if m == 0 {
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			return nil, err
		}
	}
	n := min(max, len(c.pending))
	b := c.pending[:n]
	c.pending = c.pending[n:]
	return b, nil
}

func (c *chunkSource) Read(p []byte) (int, error) {
	b, err := c.ReadChunk(len(p))
	return copy(p, b), err
}

// chunked makes a reader a ChunkReader with chunks of awkward sizes (not
// cluster-aligned, shorter and longer than clusters and runs).
func chunked(r io.Reader) io.Reader {
	return &chunkSource{r: r, sizes: []int{4 << 20, 1000, 65537, 3 * 512, 1<<20 + 7, 64 << 10}}
}

// convertHTTP opens the image with Range reads and converts it from one GET.
func convertHTTP(t *testing.T, url string, size int64, out string, fill byte, opt Options) (*Image, Stats, int64) {
	return convertHTTPVia(t, url, size, out, fill, opt, nil)
}

// convertHTTPVia is convertHTTP reading the body through wrap.
func convertHTTPVia(t *testing.T, url string, size int64, out string, fill byte, opt Options, wrap func(io.Reader) io.Reader) (*Image, Stats, int64) {
	t.Helper()
	ctx := context.Background()
	ra := &rangeReaderAt{ctx: ctx, url: url}
	img, err := Open(ctx, ra, size)
	if err != nil {
		t.Fatalf("Open() error = %v", err)
	}
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fill != 0 {
		if _, err := f.Write(bytes.Repeat([]byte{fill}, int(img.VirtualSize()))); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(img.VirtualSize()); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-", img.DataStart()))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	if wrap != nil {
		body = wrap(body)
	}
	st, err := img.Convert(ctx, body, img.DataStart(), f, opt)
	if err != nil {
		t.Fatalf("Convert() error = %v", err)
	}
	return img, st, ra.requests.Load()
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func compareFiles(t *testing.T, got string, want []byte) {
	t.Helper()
	b, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != len(want) {
		t.Fatalf("converted size = %d, want %d", len(b), len(want))
	}
	if !bytes.Equal(b, want) {
		for i := range b {
			if b[i] != want[i] {
				t.Fatalf("converted image differs from raw at offset %#x: got %#x, want %#x", i, b[i], want[i])
			}
		}
	}
}

func TestConvertQemuImages(t *testing.T) {
	needQemu(t)
	dir := t.TempDir()
	rawPath := filepath.Join(dir, "disk.raw")
	const size = 6<<20 + 3*512
	raw := makeRaw(t, rawPath, size)
	for _, tc := range []struct {
		name    string
		args    []string
		version uint32
		compr   bool
	}{
		{"v2 compat 0.10", []string{"-o", "compat=0.10"}, 2, false},
		{"v3 default", nil, 3, false},
		{"v3 compressed deflate", []string{"-c"}, 3, true},
		{"v2 compressed", []string{"-c", "-o", "compat=0.10"}, 2, true},
		{"cluster 512", []string{"-o", "cluster_size=512"}, 3, false},
		{"cluster 512 compressed", []string{"-c", "-o", "cluster_size=512"}, 3, true},
		{"cluster 4k compressed", []string{"-c", "-o", "cluster_size=4096"}, 3, true},
		{"cluster 2M", []string{"-o", "cluster_size=2M"}, 3, false},
		{"cluster 2M compressed", []string{"-c", "-o", "cluster_size=2M"}, 3, true},
		{"zstd compressed", []string{"-c", "-o", "compression_type=zstd"}, 3, true},
		{"extended l2", []string{"-o", "extended_l2=on"}, 3, false},
		{"extended l2 compressed", []string{"-c", "-o", "extended_l2=on,cluster_size=128k"}, 3, true},
		{"preallocation metadata", []string{"-o", "preallocation=metadata"}, 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := filepath.Join(t.TempDir(), "disk.qcow2")
			run(t, "qemu-img", append(append([]string{"convert", "-f", "raw", "-O", "qcow2"}, tc.args...), rawPath, q)...)
			url := serve(t, q)
			out := filepath.Join(t.TempDir(), "out.raw")
			img, st, reqs := convertHTTP(t, url, fileSize(t, q), out, 0, Options{})
			if img.Header.Version != tc.version {
				t.Errorf("Header.Version = %d, want %d", img.Header.Version, tc.version)
			}
			if img.VirtualSize() != size {
				t.Errorf("VirtualSize() = %d, want %d", img.VirtualSize(), size)
			}
			if wantZstd := strings.Contains(tc.name, "zstd"); wantZstd != (img.Header.CompressionType == CompressionZstd) {
				t.Errorf("Header.CompressionType = %d, want zstd=%v", img.Header.CompressionType, wantZstd)
			}
			if tc.compr != (st.CompressedClusters > 0) {
				t.Errorf("CompressedClusters = %d, want compressed=%v", st.CompressedClusters, tc.compr)
			}
			compareFiles(t, out, raw)
			t.Logf("clusters=%d compressed=%d zero=%d read=%d written=%d rangeRequests=%d",
				st.DataClusters, st.CompressedClusters, st.ZeroClusters, st.BytesRead, st.BytesWritten, reqs)

			// Writing zeros over a dirty target gives the same bytes.
			out2 := filepath.Join(t.TempDir(), "out2.raw")
			_, st2, _ := convertHTTP(t, url, fileSize(t, q), out2, 0xff, Options{WriteZeroes: true})
			compareFiles(t, out2, raw)
			if st2.BytesWritten != size {
				t.Errorf("WriteZeroes: BytesWritten = %d, want %d", st2.BytesWritten, size)
			}

			// A source handing out its own buffers in awkward chunks.
			out3 := filepath.Join(t.TempDir(), "out3.raw")
			convertHTTPVia(t, url, fileSize(t, q), out3, 0, Options{}, chunked)
			compareFiles(t, out3, raw)
		})
	}
}

// TestConvertQemuIOImages checks images edited by qemu-io (zero clusters,
// subclusters), with `qemu-img convert -O raw` as the reference.
func TestConvertQemuIOImages(t *testing.T) {
	needQemu(t)
	if _, err := exec.LookPath("qemu-io"); err != nil {
		t.Skip("qemu-io not found: install Debian package qemu-utils")
	}
	for _, tc := range []struct {
		name   string
		create string
		cmds   []string
	}{
		{"zero clusters v3", "compat=1.1", []string{"write -P 0xaa 0 1M", "write -z 64k 128k", "write -P 0x55 512k 4k", "write -z -u 768k 64k"}},
		{"zero clusters v2", "compat=0.10", []string{"write -P 0xaa 0 1M", "write -z 64k 128k"}},
		{"subclusters", "extended_l2=on", []string{"write -P 0xab 4k 8k", "write -P 0xcd 200k 2k", "write -P 0x11 1M 64k", "write -z 1M 4k"}},
		{"out of order", "cluster_size=4k", []string{"write -P 0x01 900k 4k", "write -P 0x02 0 4k", "write -P 0x03 500k 8k"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			q := filepath.Join(dir, "disk.qcow2")
			run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", tc.create, q, "2M")
			args := []string{"-f", "qcow2"}
			for _, c := range tc.cmds {
				args = append(args, "-c", c)
			}
			run(t, "qemu-io", append(args, q)...)
			ref := filepath.Join(dir, "ref.raw")
			run(t, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", q, ref)
			want, err := os.ReadFile(ref)
			if err != nil {
				t.Fatal(err)
			}
			url := serve(t, q)
			out := filepath.Join(dir, "out.raw")
			convertHTTP(t, url, fileSize(t, q), out, 0, Options{})
			compareFiles(t, out, want)
			out2 := filepath.Join(dir, "out2.raw")
			convertHTTP(t, url, fileSize(t, q), out2, 0x5a, Options{WriteZeroes: true})
			compareFiles(t, out2, want)
			out3 := filepath.Join(dir, "out3.raw")
			convertHTTPVia(t, url, fileSize(t, q), out3, 0, Options{}, chunked)
			compareFiles(t, out3, want)
		})
	}
}

func TestRefused(t *testing.T) {
	needQemu(t)
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", base, "1M")
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"backing file", []string{"-b", base, "-F", "qcow2"}, "backing file"},
		{"luks encryption", []string{"--object", "secret,id=sec0,data=pw", "-o", "encrypt.format=luks,encrypt.key-secret=sec0"}, "encrypted"},
		{"external data file", []string{"-o", "data_file=" + filepath.Join(dir, "data.raw")}, "external file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := filepath.Join(t.TempDir(), "x.qcow2")
			args := append(append([]string{"create", "-q", "-f", "qcow2"}, tc.args...), q, "1M")
			out, err := exec.Command("qemu-img", args...).CombinedOutput()
			if err != nil && bytes.Contains(out, []byte("accurate CPU usage")) {
				// qemu times its PBKDF benchmark with per-thread CPU
				// clocks, which some sandboxes do not provide.
				t.Skipf("qemu-img cannot create LUKS images here: %s", out)
			}
			if err != nil {
				t.Fatalf("qemu-img %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			f, err := os.Open(q)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, err = Open(context.Background(), f, fileSize(t, q))
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Open() error = %v, want ErrUnsupported mentioning %q", err, tc.msg)
			}
		})
	}
}

// TestRefusedCryptMethod marks a plain qemu-img image as encrypted in its
// header (crypt_method 1 = legacy AES, 2 = LUKS) and expects a refusal
// before any data is read.
func TestRefusedCryptMethod(t *testing.T) {
	needQemu(t)
	for _, method := range []uint32{1, 2} {
		t.Run(fmt.Sprint("method ", method), func(t *testing.T) {
			q := filepath.Join(t.TempDir(), "x.qcow2")
			run(t, "qemu-img", "create", "-q", "-f", "qcow2", q, "1M")
			b, err := os.ReadFile(q)
			if err != nil {
				t.Fatal(err)
			}
			binary.BigEndian.PutUint32(b[32:], method)
			_, err = Open(context.Background(), bytes.NewReader(b), int64(len(b)))
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "encrypted") {
				t.Fatalf("Open() error = %v, want ErrUnsupported mentioning encryption", err)
			}
		})
	}
}

// buildImage makes a small v3 image by hand: header in cluster 0, L1 in
// cluster 1, one L2 table in cluster 2, data clusters from cluster 3.
func buildImage(clusterBits uint32, vsize uint64, clusters map[int][]byte) []byte {
	cs := 1 << clusterBits
	img := make([]byte, 3*cs)
	be := binary.BigEndian
	be.PutUint32(img[0:], Magic)
	be.PutUint32(img[4:], 3)
	be.PutUint32(img[20:], clusterBits)
	be.PutUint64(img[24:], vsize)
	be.PutUint32(img[36:], 1)
	be.PutUint64(img[40:], uint64(cs))
	be.PutUint32(img[96:], 4)
	be.PutUint32(img[100:], 104)
	be.PutUint64(img[cs:], uint64(2*cs)|1<<63)
	next := 3
	for idx := 0; idx < cs/8; idx++ {
		data, ok := clusters[idx]
		if !ok {
			continue
		}
		be.PutUint64(img[2*cs+idx*8:], uint64(next*cs)|1<<63)
		c := make([]byte, cs)
		copy(c, data)
		img = append(img, c...)
		next++
	}
	return img
}

type boundedWriter struct {
	t    *testing.T
	size int64
	buf  []byte
}

func (w *boundedWriter) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > w.size {
		w.t.Fatalf("WriteAt(%d bytes, %d) outside virtual size %d", len(p), off, w.size)
	}
	if w.buf != nil {
		copy(w.buf[off:], p)
	}
	return len(p), nil
}

func TestHandBuiltAndTruncated(t *testing.T) {
	data := buildImage(9, 4096, map[int][]byte{0: []byte("boot"), 5: bytes.Repeat([]byte{7}, 512)})
	ctx := context.Background()
	img, err := Open(ctx, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("Open() error = %v", err)
	}
	if img.DataStart() != 3*512 || img.DataClusters() != 2 {
		t.Fatalf("DataStart() = %d, DataClusters() = %d, want 1536, 2", img.DataStart(), img.DataClusters())
	}
	for _, tc := range []struct {
		name    string
		src     []byte
		off     int64
		wantErr error
	}{
		{"whole file from 0", data, 0, nil},
		{"from data start", data[img.DataStart():], img.DataStart(), nil},
		{"truncated stream", data[:len(data)-100], 0, io.ErrUnexpectedEOF},
	} {
		for _, via := range []string{"reader", "chunks"} {
			t.Run(tc.name+" "+via, func(t *testing.T) {
				w := &boundedWriter{t: t, size: 4096, buf: make([]byte, 4096)}
				var src io.Reader = bytes.NewReader(tc.src)
				if via == "chunks" {
					src = &chunkSource{r: src, sizes: []int{700, 1, 512, 4096}}
				}
				_, err := img.Convert(ctx, src, tc.off, w, Options{})
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Convert() error = %v, want %v", err, tc.wantErr)
				}
				if err == nil && (string(w.buf[:4]) != "boot" || w.buf[5*512] != 7 || w.buf[6*512] != 0) {
					t.Errorf("Convert() wrote wrong bytes")
				}
			})
		}
	}
	if _, err := img.Convert(ctx, bytes.NewReader(data[2000:]), 2000, &boundedWriter{t: t, size: 4096}, Options{}); err == nil {
		t.Error("Convert(stream starting after data) = nil error, want error")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := img.Convert(cctx, bytes.NewReader(data), 0, &boundedWriter{t: t, size: 4096}, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Convert(cancelled) = %v, want context.Canceled", err)
	}
}

func TestParseHeaderErrors(t *testing.T) {
	good := buildImage(16, 1<<20, nil)
	mod := func(f func(b []byte)) []byte {
		b := bytes.Clone(good[:4096])
		f(b)
		return b
	}
	be := binary.BigEndian
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrNotQcow2},
		{"raw", make([]byte, 512), ErrNotQcow2},
		{"version 1", mod(func(b []byte) { be.PutUint32(b[4:], 1) }), ErrUnsupported},
		{"cluster bits 30", mod(func(b []byte) { be.PutUint32(b[20:], 30) }), ErrCorrupt},
		{"l1 too small", mod(func(b []byte) { be.PutUint64(b[24:], 1<<40) }), ErrCorrupt},
		{"truncated v3", good[:80], ErrCorrupt},
		{"header length", mod(func(b []byte) { be.PutUint32(b[100:], 50) }), ErrCorrupt},
		{"extension overflow", mod(func(b []byte) { be.PutUint32(b[104:], extFeatureNames); be.PutUint32(b[108:], 1<<20) }), ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseHeader(tc.b); !errors.Is(err, tc.want) {
				t.Errorf("ParseHeader() error = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	iso := make([]byte, DetectSize)
	copy(iso[32769:], "CD001")
	vdi := make([]byte, 512)
	binary.LittleEndian.PutUint32(vdi[0x40:], 0xbeda107f)
	for _, tc := range []struct {
		name string
		b    []byte
		want Format
	}{
		{"qcow2", buildImage(9, 512, nil)[:512], FormatQcow2},
		{"gzip", []byte{0x1f, 0x8b, 8, 0}, FormatGzip},
		{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd, 0}, FormatZstd},
		{"xz", []byte("\xfd7zXZ\x00\x00"), FormatXZ},
		{"bzip2", []byte("BZh91AY"), FormatBzip2},
		{"vmdk", []byte("KDMV\x01"), FormatVMDK},
		{"vhdx", []byte("vhdxfile"), FormatVHDX},
		{"vdi", vdi, FormatVDI},
		{"iso", iso, FormatISO},
		{"iso short prefix", iso[:512], FormatRaw},
		{"mbr", append(make([]byte, 510), 0x55, 0xaa), FormatRaw},
		{"empty", nil, FormatRaw},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Detect(tc.b); got != tc.want {
				t.Errorf("Detect() = %s, want %s", got, tc.want)
			}
		})
	}
}

func FuzzOpenConvert(f *testing.F) {
	f.Add(buildImage(9, 4096, map[int][]byte{0: []byte("x"), 3: []byte("y")}))
	f.Add(buildImage(12, 1<<20, map[int][]byte{1: []byte("z")}))
	cmp := buildImage(9, 2048, nil)
	binary.BigEndian.PutUint64(cmp[2*512:], 1<<62|uint64(len(cmp)))
	f.Add(append(cmp, 0x03, 0x00)) // deflate of an empty block
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		img, err := Open(ctx, bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		if img.VirtualSize() > 64<<20 {
			return // keep the WriteZeroes pass small
		}
		w := &boundedWriter{t: t, size: img.VirtualSize()}
		ds := img.DataStart()
		img.Convert(ctx, bytes.NewReader(data[ds:]), ds, w, Options{})
		img.Convert(ctx, bytes.NewReader(data), 0, w, Options{WriteZeroes: true})
		img.Convert(ctx, &chunkSource{r: bytes.NewReader(data[ds:]), sizes: []int{513, 4096, 1}}, ds, w, Options{})
	})
}
