package image

import (
	"bytes"
	"context"
	"encoding/binary"

	"io"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/ipa/internal/disk"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// maxBuffered bounds the bytes of one image that may reach the target
// through the page cache (and so be left for the final sync): a few
// unaligned edges, never the data.
const maxBuffered = 64 << 10

// benchLikeImage is an image as ipa/bench.sh makes them: 3/8 random data,
// a quarter zeroes in one run, the rest random, an MBR with one partition.
func benchLikeImage(size int) []byte {
	img := make([]byte, size)
	r := rand.NewChaCha8([32]byte{7})
	data := size * 3 / 8
	r.Read(img[:data])
	r.Read(img[data+size/4:])
	putMBR(img)
	return img
}

// holeyImage is an image of an unaligned size with data runs and zero runs
// of awkward lengths at awkward offsets (4 KiB to 2 MiB holes, some of them
// starting or ending off a 4096 boundary) and a data tail.
func holeyImage(size int) []byte {
	img := make([]byte, size)
	r := rand.NewChaCha8([32]byte{9})
	r.Read(img)
	holes := []struct{ off, n int }{
		{1 << 20, 4096}, {(1 << 20) + 65536, 8192}, {3 << 20, 64 << 10}, {(4 << 20) + 777, 100<<10 + 333},
		{6 << 20, 300 << 10}, {(8 << 20) + 512, 2 << 20}, {13 << 20, 1 << 20}, {(15 << 20) + 4096, 700 << 10},
	}
	for _, h := range holes {
		if h.off+h.n < size {
			clear(img[h.off : h.off+h.n])
		}
	}
	// Sub-4K speckles: data every 16 KiB inside zeroes.
	for off := 18 << 20; off+16384 < size-(1<<20); off += 16384 {
		clear(img[off : off+16384])
		img[off+1000] = 1
	}
	putMBR(img)
	return img
}

func putMBR(img []byte) {
	clear(img[:512])
	binary.LittleEndian.PutUint32(img[440:], 0x5eed5eed)
	e := img[446:]
	e[4] = 0x83
	binary.LittleEndian.PutUint32(e[8:], 2048)
	binary.LittleEndian.PutUint32(e[12:], uint32(len(img)/512-2048))
	img[510], img[511] = 0x55, 0xAA
}

// qcow2Of converts the raw image at raw to qcow2 with qemu-img's extra
// arguments (cluster size, out-of-order writes) and returns its bytes.
func qcow2Of(t testing.TB, raw string, name string, args ...string) []byte {
	t.Helper()
	out := filepath.Join(filepath.Dir(raw), name)
	cmd := exec.Command("qemu-img", append(append([]string{"convert", "-f", "raw", "-O", "qcow2"}, args...), raw, out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v %s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// directTarget is a disk the image is written to.
type directTarget struct {
	name string
	open func(t *testing.T, size int64) disk.BlockDevice
}

// garbage fills a file of size bytes with non-zero bytes, as a disk that
// held another image.
func garbageFile(t testing.TB, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, bytes.Repeat([]byte{0xC3}, int(size)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func openDisk(t *testing.T, p string) disk.BlockDevice {
	t.Helper()
	d, err := disk.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// loopDevice attaches a loop device with direct I/O to a file of size
// bytes filled with garbage; the test is skipped where loop devices cannot
// be set up (not root, no loop driver, a container).
func loopDevice(t testing.TB, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop devices need root")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("losetup (util-linux) not installed")
	}
	back := garbageFile(t, size)
	out, err := exec.Command("losetup", "--direct-io=on", "--find", "--show", back).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device: losetup: %v %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v %s", dev, err, out)
		}
	})
	return dev
}

var directTargets = []directTarget{
	{"sparse-file", func(t *testing.T, size int64) disk.BlockDevice {
		p := filepath.Join(t.TempDir(), "disk.img")
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		return openDisk(t, p)
	}},
	{"garbage-file", func(t *testing.T, size int64) disk.BlockDevice { return openDisk(t, garbageFile(t, size)) }},
	{"loop-device", func(t *testing.T, size int64) disk.BlockDevice { return openDisk(t, loopDevice(t, size)) }},
}

type directImage struct {
	name, format string
	raw          []byte // what the disk must read back
	data         []byte // what is served
}

// directImages makes the images of TestWriteDirect and BenchmarkWriteDirect.
func directImages(t testing.TB, size int) []directImage {
	t.Helper()
	dir := t.TempDir()
	bench, holey := benchLikeImage(size), holeyImage(size/2+12345)
	imgs := []directImage{
		{"raw-bench", FormatRaw, bench, bench},
		{"raw-holes-unaligned", FormatRaw, holey, holey},
	}
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Logf("qemu-img (qemu-utils) not installed: qcow2 cases skipped")
		return imgs
	}
	benchRaw, holeyRaw := filepath.Join(dir, "bench.raw"), filepath.Join(dir, "holey.raw")
	os.WriteFile(benchRaw, bench, 0o644)
	os.WriteFile(holeyRaw, holey, 0o644)
	return append(imgs,
		directImage{"qcow2-bench", FormatQCOW2, bench, qcow2Of(t, benchRaw, "bench.qcow2")},
		// Out of order writes (-W, 8 coroutines) scatter the clusters in
		// the file: the stream sees short runs, out of guest order.
		directImage{"qcow2-short-runs-4k", FormatQCOW2, holey, qcow2Of(t, holeyRaw, "short4k.qcow2", "-W", "-m", "8", "-o", "cluster_size=4096")},
		// 512-byte clusters: data clusters start and end off 4096
		// boundaries.
		directImage{"qcow2-512-clusters", FormatQCOW2, holey, qcow2Of(t, holeyRaw, "c512.qcow2", "-S", "512", "-o", "cluster_size=512")},
		directImage{"qcow2-compressed", FormatQCOW2, holey, qcow2Of(t, holeyRaw, "comp.qcow2", "-c")},
	)
}

// TestWriteDirect writes raw and qcow2 images (holes, an unaligned size,
// short and unaligned cluster runs) to a fresh sparse file, to a file and
// to a direct-I/O loop device that both hold garbage, reads the disk back,
// and checks that all but a bounded remainder of the bytes went around
// the page cache (so the final sync has next to nothing to write).
func TestWriteDirect(t *testing.T) {
	imgs := directImages(t, 48*disk.MiB)
	files := map[string][]byte{}
	for _, im := range imgs {
		files[im.name] = im.data
	}
	ts := httptest.NewServer(&server{files: files})
	defer ts.Close()
	for _, tg := range directTargets {
		for _, im := range imgs {
			t.Run(tg.name+"/"+im.name, func(t *testing.T) {
				size := int64(len(im.raw)+8*disk.MiB) &^ (disk.MiB - 1)
				d := tg.open(t, size)
				res, err := Write(context.Background(), d, protocol.ImageInfo{URLs: []string{ts.URL + "/" + im.name}, DiskFormat: im.format,
					OSHashAlgo: "sha256", OSHashValue: hexSum("sha256", im.data)}, Options{Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(im.raw))
				if _, err := d.ReadAt(got, 0); err != nil && err != io.EOF {
					t.Fatal(err)
				}
				if i := firstDiff(got, im.raw); i >= 0 {
					t.Fatalf("disk differs from the image at byte %d: %#x, want %#x", i, got[i], im.raw[i])
				}
				t.Logf("%s: direct %d, buffered %d, zeroed %d bytes; sync %v (machine dirty+writeback before it: %d bytes)", tg.name+"/"+im.name, res.IO.Direct, res.IO.Buffered, res.IO.Zeroed, res.Sync, res.DirtyAtSync)
				if res.IO.Buffered > maxBuffered {
					t.Errorf("Write(%s) wrote %d bytes through the page cache (direct: %d), want at most %d", im.name, res.IO.Buffered, res.IO.Direct, maxBuffered)
				}
				if res.DirtyAtSync < 0 {
					t.Errorf("Write(%s).DirtyAtSync = %d, want the bytes of /proc/meminfo's Dirty + Writeback", im.name, res.DirtyAtSync)
				}
				if res.IO.Direct < res.DataWritten-maxBuffered {
					t.Errorf("Write(%s) wrote %d bytes with O_DIRECT of %d data bytes", im.name, res.IO.Direct, res.DataWritten)
				}
			})
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := 0; i < len(a); i += 4096 {
		e := min(i+4096, len(a))
		if !bytes.Equal(a[i:e], b[i:e]) {
			for j := i; j < e; j++ {
				if a[j] != b[j] {
					return j
				}
			}
		}
	}
	return -1
}
