package tftp

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pin/tftp/v3"
)

// TestIPv6: UEFI PXE over IPv6 fetches its first stage from
// tftp://[addr]/file: the server listens on an IPv6 address and serves
// with blksize and tsize there.
func TestIPv6(t *testing.T) {
	ln, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
	root := t.TempDir()
	data := bytes.Repeat([]byte("snponly"), 10_000)
	if err := os.WriteFile(filepath.Join(root, "snponly.efi"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Root: root, Addr: "[::1]:0", Timeout: time.Second, Retries: 3, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	for _, blk := range []int{512, 1428} {
		c, err := tftp.NewClient(s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetBlockSize(blk)
		c.SetTimeout(2 * time.Second)
		c.RequestTSize(true)
		wt, err := c.Receive("snponly.efi", "octet")
		if err != nil {
			t.Fatalf("blksize %d: RRQ to %s: %v", blk, s.Addr(), err)
		}
		if n, ok := wt.(tftp.IncomingTransfer).Size(); !ok || n != int64(len(data)) {
			t.Errorf("blksize %d: tsize %d (%v), want %d", blk, n, ok, len(data))
		}
		var got bytes.Buffer
		if _, err := wt.WriteTo(&got); err != nil {
			t.Fatalf("blksize %d: transfer: %v", blk, err)
		}
		if !bytes.Equal(got.Bytes(), data) {
			t.Errorf("blksize %d: got %d bytes, want the file's %d", blk, got.Len(), len(data))
		}
	}
}
