package disk

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fileDisk opens a regular file holding content as a disk, closed with the test.
func fileDisk(t *testing.T, content []byte) *File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(p, content, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

type w struct{ off, n int }

func TestStreamWrites(t *testing.T) {
	seq := func(start, size, count int) []w {
		var ws []w
		for i := range count {
			ws = append(ws, w{start + i*size, size})
		}
		return ws
	}
	tests := []struct {
		name   string
		size   int
		writes []w
	}{
		{"aligned sequential", 12 * MiB, seq(0, MiB, 12)},
		{"one write larger than a buffer", 9 * MiB, []w{{0, 9 * MiB}}},
		{"unaligned start and lengths", 6 * MiB, append([]w{{0, 100}, {100, 5000}}, seq(5100, 65_000, 80)...)},
		{"gaps (skipped zero runs)", 10 * MiB, []w{{0, 4096}, {MiB, 3 * MiB}, {5*MiB + 512, 7}, {6 * MiB, 4*MiB - 1}}},
		{"backwards, not overlapping", 4 * MiB, []w{{3 * MiB, MiB}, {0, MiB}, {2 * MiB, 512}, {MiB, MiB}}},
		{"small writes", MiB, seq(0, 512, 2048)},
		// More partly written blocks than a stream keeps (maxEdges):
		// 512 bytes in each of 400 blocks, backwards, then the rest of
		// some of them.
		{"scattered sub-block writes", 4 * MiB, scattered(400)},
	}
	for _, mode := range []string{"direct", "page cache only", "pinned"} {
		for _, tc := range tests {
			name := tc.name
			if mode != "direct" {
				name += " (" + mode + ")"
			}
			t.Run(name, func(t *testing.T) {
				d := fileDisk(t, bytes.Repeat([]byte{0xee}, tc.size))
				want := bytes.Repeat([]byte{0xee}, tc.size)
				rng := rand.New(rand.NewPCG(7, uint64(len(tc.writes))))
				s := d.NewStream()
				if mode == "page cache only" && s.direct != nil {
					s.direct.Close()
					s.direct = nil
				}
				// Pinned: every write's bytes are a buffer of their own,
				// scribbled over as soon as the stream may no longer read
				// them (when WriteAt returns, or at release once pinned).
				var outstanding, pinnedWrites atomic.Int32
				var cur []byte
				pinnedNow := false
				if mode == "pinned" {
					s.Pin = func(b []byte) (func(), bool) {
						if len(b) == 0 || unsafe.SliceData(b) != unsafe.SliceData(cur) {
							t.Errorf("Pin got bytes that are not the write's")
							return nil, false
						}
						mine := cur
						outstanding.Add(1)
						pinnedWrites.Add(1)
						pinnedNow = true
						return func() {
							for i := range mine {
								mine[i] = 0xdd
							}
							outstanding.Add(-1)
						}, true
					}
				}
				buf := make([]byte, 9*MiB)
				for _, x := range tc.writes {
					data := buf[:x.n]
					if mode == "pinned" {
						data = alignedBuffer(x.n)
						cur, pinnedNow = data, false
					}
					for i := range data {
						data[i] = byte(rng.Uint32())
					}
					copy(want[x.off:], data)
					if n, err := s.WriteAt(data, int64(x.off)); err != nil || n != x.n {
						t.Fatalf("WriteAt(%d bytes at %d) = %d, %v", x.n, x.off, n, err)
					}
					if mode == "pinned" && !pinnedNow {
						for i := range data {
							data[i] = 0xcc
						}
					}
				}
				if err := s.Close(); err != nil {
					t.Fatalf("Close() = %v", err)
				}
				if n := outstanding.Load(); n != 0 {
					t.Errorf("%d pinned writes not released after Close", n)
				}
				if mode == "pinned" && tc.writes[0].n >= minPinned && tc.writes[0].off%directAlign == 0 && pinnedWrites.Load() == 0 {
					t.Errorf("no write was pinned")
				}
				if err := d.Sync(); err != nil {
					t.Fatal(err)
				}
				// Every write lies within the file: nothing for the page
				// cache when the device takes O_DIRECT.
				if io := d.IOStats(); s.Direct() && io.Buffered != 0 {
					t.Errorf("%d bytes written through the page cache, want 0 (direct: %d)", io.Buffered, io.Direct)
				}
				got := make([]byte, tc.size)
				if _, err := d.ReadAt(got, 0); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					for i := range got {
						if got[i] != want[i] {
							t.Fatalf("byte %d = %#x, want %#x (direct I/O %v)", i, got[i], want[i], s.Direct())
						}
					}
				}
			})
		}
	}
}

// scattered returns n writes of 512 bytes, one in every other 8 KiB,
// backwards, then the other 3584 bytes of every third of those blocks.
func scattered(n int) []w {
	var ws []w
	for i := n - 1; i >= 0; i-- {
		ws = append(ws, w{i*8192 + 1024, 512})
	}
	for i := 0; i < n; i += 3 {
		ws = append(ws, w{i * 8192, 1024}, w{i*8192 + 1536, 2560})
	}
	return ws
}

func TestStreamGrowsFile(t *testing.T) {
	d := fileDisk(t, nil)
	s := d.NewStream()
	if _, err := s.WriteAt(bytes.Repeat([]byte{1}, 3*MiB+5), 4096); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := d.Size(), int64(4096+3*MiB+5); got != want {
		t.Fatalf("Size() = %d, want %d", got, want)
	}
	// The last block would grow the file past its end if written whole:
	// its 5 bytes go through the page cache, the rest with O_DIRECT.
	if io := d.IOStats(); s.Direct() && io.Buffered != 5 {
		t.Errorf("IOStats() = %+v, want 5 bytes buffered", io)
	}
	got := make([]byte, d.Size())
	if _, err := d.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !IsZero(got[:4096]) || !bytes.Equal(got[4096:], bytes.Repeat([]byte{1}, 3*MiB+5)) {
		t.Fatal("file differs from what was written")
	}
}

// A sparse file as disk: the stream reserves blocks only where it writes
// (before its direct writes), so holes stay holes and the size stays.
func TestStreamSparseFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "disk")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(16 * MiB); err != nil {
		t.Fatal(err)
	}
	f.Close()
	d, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := d.NewStream()
	a, b := bytes.Repeat([]byte{0xa5}, 2*MiB), bytes.Repeat([]byte{0x5a}, 2*MiB+100)
	if _, err := s.WriteAt(a, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteAt(b, 10*MiB); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	if d.Size() != 16*MiB {
		t.Fatalf("Size() = %d, want %d", d.Size(), 16*MiB)
	}
	got := make([]byte, 16*MiB)
	if _, err := d.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 16*MiB)
	copy(want, a)
	copy(want[10*MiB:], b)
	if !bytes.Equal(got, want) {
		t.Fatal("read back differs from what was written")
	}
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	// 4 MiB written; allow metadata and filesystem rounding, not the 16 MiB.
	if used := st.Blocks * 512; used > 6*MiB {
		t.Fatalf("%d bytes allocated for 4 MiB written: the holes were filled", used)
	}
}

func TestStreamAllocate(t *testing.T) {
	d := fileDisk(t, nil)
	if err := d.Truncate(8 * MiB); err != nil {
		t.Fatal(err)
	}
	s := d.NewStream()
	defer s.Close()
	blocks := func() int64 {
		var st unix.Stat_t
		if err := unix.Fstat(int(d.f.Fd()), &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks * 512
	}
	before := blocks()
	s.allocate(2*MiB, 4*MiB)
	if s.noAlloc.Load() {
		t.Skip("this filesystem has no fallocate")
	}
	if grew := blocks() - before; grew < 4*MiB {
		t.Fatalf("allocate(2 MiB, 4 MiB) reserved %d bytes", grew)
	}
	if fi, err := d.f.Stat(); err != nil || fi.Size() != 8*MiB {
		t.Fatalf("size after allocate = %v, %v; want %d", fi.Size(), err, 8*MiB)
	}
	got := make([]byte, 8*MiB)
	if _, err := d.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if !IsZero(got) {
		t.Fatal("reserved blocks do not read back as zeroes")
	}
}

func TestStreamErrorIsSticky(t *testing.T) {
	d := fileDisk(t, make([]byte, MiB))
	s := d.NewStream()
	d.f.Close() // every buffered write now fails
	if s.direct != nil {
		s.direct.Close()
	}
	if _, err := s.WriteAt(make([]byte, 3*StreamChunk), 0); err != nil {
		// the failure may already be known
		t.Logf("WriteAt: %v", err)
	}
	if err := s.Close(); err == nil {
		t.Fatal("Close() = nil after failed writes")
	}
	if _, err := s.WriteAt([]byte{1}, 0); err == nil {
		t.Fatal("WriteAt after a failure = nil error")
	}
}

func TestAlignedBuffer(t *testing.T) {
	for range 20 {
		b := alignedBuffer(StreamChunk + directAlign)
		if uintptr(unsafe.Pointer(&b[0]))%directAlign != 0 || len(b) != StreamChunk+directAlign {
			t.Fatalf("buffer at %p of %d bytes", &b[0], len(b))
		}
	}
}

// TestStreamDirectRefused: a device that answers EINVAL to aligned O_DIRECT
// writes gets every byte through the page cache instead.
func TestStreamDirectRefused(t *testing.T) {
	d := fileDisk(t, make([]byte, 8*MiB))
	s := d.NewStream()
	if s.direct == nil {
		t.Skip("no O_DIRECT on this filesystem")
	}
	var refused atomic.Int32
	s.writeDirect = func([]byte, int64) error {
		refused.Add(1)
		return fmt.Errorf("disk: test: %w", unix.EINVAL)
	}
	want := make([]byte, 8*MiB)
	for i := range want {
		want[i] = byte(i*7 + i>>12)
	}
	if _, err := s.WriteAt(want[100:], 100); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want the page cache to take over", err)
	}
	if refused.Load() == 0 || s.Direct() {
		t.Fatalf("O_DIRECT refusals %d, Direct() %v; want at least one refusal and Direct() false", refused.Load(), s.Direct())
	}
	got := make([]byte, 8*MiB)
	if _, err := d.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	clear(want[:100])
	if !bytes.Equal(got, want) {
		t.Fatal("disk differs from what was written")
	}
}
