package qcow2

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

type discardAt struct{}

func (discardAt) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }

// BenchmarkConvert measures conversion of a 64 MiB qemu-img image held in
// memory (stream parsing, decompression, zero detection; no disk I/O).
func BenchmarkConvert(b *testing.B) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		b.Skip("qemu-img not found: install Debian package qemu-utils")
	}
	for _, bc := range []struct {
		name string
		args []string
	}{{"plain", nil}, {"deflate", []string{"-c"}}, {"zstd", []string{"-c", "-o", "compression_type=zstd"}}} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			raw := filepath.Join(dir, "r.raw")
			makeRaw(b, raw, 64<<20)
			q := filepath.Join(dir, "q.qcow2")
			args := append(append([]string{"convert", "-f", "raw", "-O", "qcow2"}, bc.args...), raw, q)
			if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
				b.Fatalf("qemu-img: %v %s", err, out)
			}
			data, err := os.ReadFile(q)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.SetBytes(64 << 20)
			for b.Loop() {
				img, err := Open(ctx, bytes.NewReader(data), int64(len(data)))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := img.Convert(ctx, bytes.NewReader(data), 0, discardAt{}, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
