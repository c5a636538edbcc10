package writeback

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWriterWritesEverything(t *testing.T) {
	for _, size := range []int{0, 1, Every - 1, Every, 3*Every + 17} {
		p := filepath.Join(t.TempDir(), "f")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		want := bytes.Repeat([]byte{0xa5, 0x5a, 0x01}, size/3+1)[:size]
		w := &Writer{F: f}
		for rest := want; len(rest) > 0; {
			n := min(len(rest), 1<<20+3)
			if m, err := w.Write(rest[:n]); err != nil || m != n {
				t.Fatalf("Write = %d, %v", m, err)
			}
			rest = rest[n:]
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("size %d: file differs from what was written", size)
		}
	}
}

// TestWriterDirect writes 1 MiB chunks (as checksum.CopyParallel hands
// them) and an unaligned tail with Direct: the file holds every byte, and
// where the filesystem takes O_DIRECT the aligned chunks went that way.
func TestWriterDirect(t *testing.T) {
	dir := t.TempDir()
	probe, err := os.OpenFile(filepath.Join(dir, "probe"), os.O_CREATE|os.O_WRONLY|syscall.O_DIRECT, 0o644)
	directOK := err == nil
	if directOK {
		probe.Close()
	}
	for _, tc := range []struct {
		name   string
		chunks []int
	}{
		{"aligned chunks and a tail", []int{1 << 20, 1 << 20, 1 << 20, 12345}},
		{"unaligned first chunk turns the rest buffered", []int{100, 1 << 20, 1 << 20}},
		{"exact multiple", []int{1 << 20, 1 << 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			w := &Writer{F: f, Direct: true}
			var want []byte
			for i, n := range tc.chunks {
				b := make([]byte, n) // large allocations are page-aligned
				for j := range b {
					b[j] = byte(i*7 + j%251)
				}
				want = append(want, b...)
				if m, err := w.Write(b); err != nil || m != n {
					t.Fatalf("Write = %d, %v", m, err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			f.Close()
			got, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("file (%d bytes) differs from what was written (%d bytes)", len(got), len(want))
			}
			aligned := tc.chunks[0]%Align == 0
			if directOK && aligned && w.DirectLen == 0 {
				t.Errorf("no byte went out with O_DIRECT on a filesystem that takes it")
			}
			if !aligned && w.DirectLen != 0 {
				t.Errorf("DirectLen = %d after an unaligned start, want 0", w.DirectLen)
			}
		})
	}
}
