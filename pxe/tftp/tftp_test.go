package tftp

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pin/tftp/v3"
)

// startServer serves a temporary root holding boot.bin (random bytes), a
// subdirectory, and symbolic links pointing inside and outside the root.
// The returned stop function shuts the server down and waits for running
// transfers, so counters read after it are final.
func startServer(t *testing.T) (*Server, func(), []byte) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	outside := filepath.Join(dir, "secret")
	data := make([]byte, 70_000) // not a multiple of any block size tried
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		"root/boot.bin":         data,
		"root/sub/small.txt":    []byte("hi\n"),
		"root/empty":            nil,
		"secret":                []byte("do not serve"),
		"root/sub/.placeholder": nil,
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../secret", filepath.Join(root, "escape-rel")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("boot.bin", filepath.Join(root, "alias.bin")); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Root: root, Addr: "127.0.0.1:0", Timeout: time.Second, Retries: 3,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve() = %v, want nil after cancel", err)
			}
		})
	}
	t.Cleanup(stop)
	return s, stop, data
}

func TestResolve(t *testing.T) {
	tests := []struct {
		in, want string
		refused  bool
	}{
		{in: "undionly.kpxe", want: "undionly.kpxe"},
		{in: "efi//snponly.efi", want: "efi/snponly.efi"},
		{in: "/etc/passwd", refused: true},
		{in: "../etc/passwd", refused: true},
		{in: "a/../../b", refused: true},
		{in: "", refused: true},
		{in: `..\x`, refused: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Resolve(tc.in)
			if tc.refused {
				if !errors.Is(err, ErrRefused) {
					t.Fatalf("Resolve(%q) = %q, %v, want ErrRefused", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Resolve(%q) = %q, %v, want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func FuzzResolve(f *testing.F) {
	for _, s := range []string{"undionly.kpxe", "/abs", "../up", "a/b/../c", "a//b", "pxelinux.cfg/01-aa-bb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := Resolve(name)
		if err != nil {
			return
		}
		if !filepath.IsLocal(got) || strings.HasPrefix(got, "/") {
			t.Fatalf("Resolve(%q) = %q escapes the root", name, got)
		}
	})
}

func TestPinClientReads(t *testing.T) {
	s, stop, data := startServer(t)
	tests := []struct {
		file    string
		blksize int // 0: no option, plain 512-byte blocks
		want    []byte
	}{
		{"boot.bin", 0, data},
		{"boot.bin", 512, data},
		{"boot.bin", 1468, data},
		{"boot.bin", 8192, data},
		{"alias.bin", 1468, data},
		{"sub/small.txt", 1468, []byte("hi\n")},
		{"empty", 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			c, err := tftp.NewClient(s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c.SetTimeout(time.Second)
			if tc.blksize != 0 {
				c.SetBlockSize(tc.blksize)
			}
			c.RequestTSize(true)
			wt, err := c.Receive(tc.file, "octet")
			if err != nil {
				t.Fatalf("Receive(%q): %v", tc.file, err)
			}
			size, ok := wt.(tftp.IncomingTransfer).Size()
			if !ok || size != int64(len(tc.want)) {
				t.Errorf("tsize of %q = %d, %v, want %d, true", tc.file, size, ok, len(tc.want))
			}
			var buf bytes.Buffer
			if _, err := wt.WriteTo(&buf); err != nil {
				t.Fatalf("WriteTo: %v", err)
			}
			if !bytes.Equal(buf.Bytes(), tc.want) {
				t.Fatalf("content of %q: got %d bytes, want %d bytes (equal: false)", tc.file, buf.Len(), len(tc.want))
			}
		})
	}
	stop()
	if st := s.Stats(); st.Completed != uint64(len(tests)) || st.Refused != 0 {
		t.Errorf("Stats() = %+v, want %d completed, 0 refused", st, len(tests))
	}
}

func TestPinClientRefused(t *testing.T) {
	s, stop, _ := startServer(t)
	for _, name := range []string{"../secret", "/etc/passwd", "escape", "escape-rel", "sub", "missing", "sub/../../secret"} {
		t.Run(name, func(t *testing.T) {
			c, err := tftp.NewClient(s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c.SetTimeout(time.Second)
			wt, err := c.Receive(name, "octet")
			if err == nil {
				var buf bytes.Buffer
				_, err = wt.WriteTo(&buf)
			}
			if err == nil {
				t.Fatalf("Receive(%q) succeeded, want a TFTP error", name)
			}
			if !strings.Contains(err.Error(), "code: 1") && !strings.Contains(err.Error(), "refused") && !strings.Contains(err.Error(), "not found") {
				t.Errorf("Receive(%q) error = %v, want a TFTP error packet", name, err)
			}
		})
	}
	t.Run("write", func(t *testing.T) {
		c, err := tftp.NewClient(s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetTimeout(time.Second)
		rf, err := c.Send("upload.bin", "octet")
		if err == nil {
			_, err = rf.ReadFrom(strings.NewReader("data"))
		}
		if err == nil {
			t.Fatal("Send(upload.bin) succeeded, want refusal")
		}
	})
	stop()
	if st := s.Stats(); st.Refused != 8 || st.Completed != 0 {
		t.Errorf("Stats() = %+v, want 8 refused, 0 completed", st)
	}
}

// TestTFTPHPAClient drives the tftp-hpa command-line client (Debian package
// tftp-hpa) against the server.
func TestTFTPHPAClient(t *testing.T) {
	bin, err := exec.LookPath("tftp")
	if err != nil {
		t.Skip("tftp client not installed (Debian package tftp-hpa)")
	}
	s, _, data := startServer(t)
	_, port, _ := net.SplitHostPort(s.Addr().String())
	dir := t.TempDir()
	get := func(remote string, blksize int) ([]byte, string) {
		local := filepath.Join(dir, "out")
		os.Remove(local)
		args := []string{"-m", "binary", "127.0.0.1", port, "-c", "get", remote, local}
		if blksize > 0 {
			args = append([]string{"-v"}, args...)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, _ := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		b, err := os.ReadFile(local)
		if err != nil {
			return nil, string(out)
		}
		return b, string(out)
	}
	t.Run("boot.bin", func(t *testing.T) {
		got, out := get("boot.bin", 0)
		if !bytes.Equal(got, data) {
			t.Fatalf("tftp get boot.bin: got %d bytes, want %d; output %q", len(got), len(data), out)
		}
	})
	for _, name := range []string{"../secret", "/etc/passwd", "escape", "sub/../../secret"} {
		t.Run(name, func(t *testing.T) {
			got, out := get(name, 0)
			if len(got) > 0 {
				t.Fatalf("tftp get %q returned %d bytes, want refusal", name, len(got))
			}
			if !strings.Contains(out, "Error code 1") {
				t.Errorf("tftp get %q output = %q, want a TFTP error code 1", name, out)
			}
		})
	}
}

// TestConcurrentClients fetches one file from many pin clients at once.
func TestConcurrentClients(t *testing.T) {
	s, stop, data := startServer(t)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := tftp.NewClient(s.Addr().String())
			if err != nil {
				errs <- err
				return
			}
			c.SetBlockSize(1468)
			c.SetTimeout(2 * time.Second)
			wt, err := c.Receive("boot.bin", "octet")
			if err != nil {
				errs <- err
				return
			}
			var buf bytes.Buffer
			if _, err := wt.WriteTo(&buf); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(buf.Bytes(), data) {
				errs <- io.ErrUnexpectedEOF
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	stop()
	if got := s.Stats().Completed; got != n {
		t.Errorf("Stats().Completed = %d, want %d", got, n)
	}
}

// TestCachedFileChanges: the in-memory copy of a file is never served once
// the file changed: rewritten in place (same size, new mtime), replaced by
// another file (rename), or shrunk.
func TestCachedFileChanges(t *testing.T) {
	s, _, _ := startServer(t)
	path := filepath.Join(s.cfg.Root, "boot.bin")
	get := func(want []byte) {
		t.Helper()
		c, err := tftp.NewClient(s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetTimeout(time.Second)
		c.SetBlockSize(1468)
		wt, err := c.Receive("boot.bin", "octet")
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		var buf bytes.Buffer
		if _, err := wt.WriteTo(&buf); err != nil {
			t.Fatalf("WriteTo: %v", err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Fatalf("got %d bytes (%q...), want %d bytes (%q...)", buf.Len(), buf.Bytes()[:min(8, buf.Len())], len(want), want[:min(8, len(want))])
		}
	}
	write := func(b []byte, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	base := time.Now().Add(-time.Hour)
	a := bytes.Repeat([]byte("A"), 5000)
	write(a, base)
	get(a)
	get(a) // from the cache
	b := bytes.Repeat([]byte("B"), 5000)
	write(b, base.Add(time.Second)) // same size, in place
	get(b)
	tmp := filepath.Join(s.cfg.Root, "new.tmp")
	c := bytes.Repeat([]byte("C"), 5000)
	if err := os.WriteFile(tmp, c, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, base.Add(time.Second), base.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil { // another inode, same size and mtime
		t.Fatal(err)
	}
	get(c)
	write([]byte("short"), base.Add(2*time.Second))
	get([]byte("short"))
}
