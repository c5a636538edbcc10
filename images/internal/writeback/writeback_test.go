package writeback

import (
	"bytes"
	"os"
	"path/filepath"
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
