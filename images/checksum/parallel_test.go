package checksum

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"io"
	"testing"
)

type failingWriter struct{ after int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after -= len(p); f.after < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestCopyParallel(t *testing.T) {
	data := make([]byte, 5<<20+123)
	rand.Read(data)
	tests := []struct {
		name    string
		bufSize int
	}{{"small buffers", 4096}, {"1MiB buffers", 1 << 20}, {"larger than input", 16 << 20}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			m, s := md5.New(), sha512.New()
			n, err := CopyParallel(bytes.NewReader(data), tc.bufSize, &out, m, s)
			if err != nil || n != int64(len(data)) {
				t.Fatalf("CopyParallel = %d, %v; want %d, nil", n, err, len(data))
			}
			wm, ws := md5.Sum(data), sha512.Sum512(data)
			if !bytes.Equal(out.Bytes(), data) || !bytes.Equal(m.Sum(nil), wm[:]) || !bytes.Equal(s.Sum(nil), ws[:]) {
				t.Fatal("output or hashes differ from the input's")
			}
		})
	}
	t.Run("write error stops the copy", func(t *testing.T) {
		_, err := CopyParallel(bytes.NewReader(data), 1<<16, &failingWriter{after: 1 << 20}, io.Discard)
		if err == nil || err.Error() != "disk full" {
			t.Fatalf("CopyParallel = %v, want disk full", err)
		}
	})
	t.Run("read error", func(t *testing.T) {
		_, err := CopyParallel(io.MultiReader(bytes.NewReader(data[:1000]), errReader{}), 1<<16, io.Discard)
		if err == nil || err.Error() != "connection reset" {
			t.Fatalf("CopyParallel = %v, want connection reset", err)
		}
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func BenchmarkCopyParallel(b *testing.B) {
	data := make([]byte, 64<<20)
	b.SetBytes(int64(len(data)))
	for range b.N {
		CopyParallel(bytes.NewReader(data), 1<<20, io.Discard, md5.New(), sha512.New())
	}
}
