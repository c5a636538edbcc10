package tftpload

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/pxe/tftp"
)

// root writes boot.bin (random, 70,001 bytes: not a multiple of any block
// size) and exact.bin (a multiple of 512 and of 1468) into a new directory
// every user can read.
func root(t *testing.T) (string, []byte, []byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	boot := make([]byte, 70_001)
	exact := make([]byte, 512*1468)
	for name, b := range map[string][]byte{"boot.bin": boot, "exact.bin": exact} {
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if strings.HasPrefix(d, os.TempDir()+"/") {
			_ = os.Chmod(d, 0o755) // tftpd-hpa runs as user tftp
		}
	}
	return dir, boot, exact
}

func ferricServer(t *testing.T, dir string) string {
	t.Helper()
	s, err := tftp.New(tftp.Config{Root: dir, Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s.Addr().String()
}

// hpaServer starts tftpd-hpa on a free loopback port, or skips.
func hpaServer(t *testing.T, dir string) string {
	t.Helper()
	bin, err := exec.LookPath("in.tftpd")
	if err != nil {
		t.Skip("needs in.tftpd (Debian package tftpd-hpa)")
	}
	if os.Geteuid() != 0 {
		t.Skip("tftpd-hpa wants root to change to user tftp")
	}
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.LocalAddr().String()
	l.Close()
	cmd := exec.Command(bin, "-L", "-a", addr, "-s", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	time.Sleep(300 * time.Millisecond)
	return addr
}

// TestGet reads files from real servers (ferric's, and tftpd-hpa when
// installed) with and without options and checks every byte.
func TestGet(t *testing.T) {
	dir, boot, exact := root(t)
	servers := map[string]func(*testing.T, string) string{"ferric": ferricServer, "tftpd-hpa": hpaServer}
	for _, srvName := range []string{"ferric", "tftpd-hpa"} {
		t.Run(srvName, func(t *testing.T) {
			addr := servers[srvName](t, dir)
			for _, tc := range []struct {
				file    string
				want    []byte
				blksize int
				tsize   bool
			}{
				{"boot.bin", boot, 512, false},
				{"boot.bin", boot, 512, true},
				{"boot.bin", boot, 1468, true},
				{"exact.bin", exact, 512, true},
				{"exact.bin", exact, 1468, false},
			} {
				t.Run(fmt.Sprintf("%s/%d/tsize=%v", tc.file, tc.blksize, tc.tsize), func(t *testing.T) {
					r := Get(context.Background(), addr, tc.file, Options{BlockSize: tc.blksize, TSize: tc.tsize, Want: tc.want})
					if r.Err != nil {
						t.Fatal(r.Err)
					}
					if r.Bytes != int64(len(tc.want)) || r.BlockSize != tc.blksize || r.WindowSize != 1 {
						t.Errorf("got %d bytes blksize %d windowsize %d, want %d, %d, 1", r.Bytes, r.BlockSize, r.WindowSize, len(tc.want), tc.blksize)
					}
					if tc.tsize && r.TSize != int64(len(tc.want)) {
						t.Errorf("tsize %d, want %d", r.TSize, len(tc.want))
					}
				})
			}
			t.Run("missing file", func(t *testing.T) {
				r := Get(context.Background(), addr, "nope.bin", Options{BlockSize: 1468, Timeout: 200 * time.Millisecond, Retries: 2})
				if r.Err == nil || !strings.Contains(r.Err.Error(), "server error") {
					t.Errorf("Get(missing) error = %v, want a TFTP error from the server", r.Err)
				}
			})
			t.Run("wrong content detected", func(t *testing.T) {
				other := append([]byte(nil), boot...)
				other[len(other)-1] ^= 1
				if r := Get(context.Background(), addr, "boot.bin", Options{BlockSize: 1468, Want: other}); r.Err == nil {
					t.Error("a file differing in its last byte passed verification")
				}
			})
		})
	}
}

// TestStorm runs 300 concurrent transfers against ferric's server.
func TestStorm(t *testing.T) {
	dir, boot, _ := root(t)
	addr := ferricServer(t, dir)
	rep, err := Storm(context.Background(), addr, "boot.bin", 300, 0, Options{BlockSize: 1468, TSize: true, Want: boot})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 0 || rep.Transfers != 300 || rep.Bytes != 300*int64(len(boot)) {
		t.Fatalf("storm: %v, want 300 transfers of %d bytes, none failed", rep, len(boot))
	}
	if rep.P50 <= 0 || rep.P50 > rep.P99 || rep.P99 > rep.Max || rep.Max > rep.Wall {
		t.Errorf("percentiles out of order: %v", rep)
	}
	t.Log(rep)
}

// windowServer is a minimal RFC 7440 sender for the client's windowsize
// path (no server in Debian implements windowsize): it agrees to the
// asked blksize and windowsize, sends each window at once, and leaves out
// block drop the first time it would send it, so the client must report
// the gap.
func windowServer(t *testing.T, data []byte, drop uint16) string {
	t.Helper()
	l, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		buf := make([]byte, 2048)
		n, client, err := l.ReadFromUDP(buf)
		if err != nil {
			return
		}
		parts := strings.Split(string(buf[2:n]), "\x00")
		opts := map[string]int{}
		for i := 2; i+1 < len(parts); i += 2 {
			opts[parts[i]], _ = strconv.Atoi(parts[i+1])
		}
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return
		}
		defer c.Close()
		bs, ws := opts["blksize"], opts["windowsize"]
		oack := []byte{0, opOACK}
		oack = append(oack, fmt.Sprintf("blksize\x00%d\x00windowsize\x00%d\x00tsize\x00%d\x00", bs, ws, len(data))...)
		c.WriteToUDP(oack, client)
		blocks := uint16(len(data)/bs + 1)
		next := uint16(1)
		dropped := false
		for {
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, _, err := c.ReadFromUDP(buf)
			if err != nil || n < 4 || binary.BigEndian.Uint16(buf) != opACK {
				return
			}
			acked := binary.BigEndian.Uint16(buf[2:])
			if acked == blocks {
				return
			}
			next = acked + 1
			for b := next; b < next+uint16(ws) && b <= blocks; b++ {
				if b == drop && !dropped {
					dropped = true
					continue
				}
				lo := int(b-1) * bs
				hi := min(lo+bs, len(data))
				pkt := binary.BigEndian.AppendUint16([]byte{0, opDATA}, b)
				c.WriteToUDP(append(pkt, data[lo:hi]...), client)
			}
		}
	}()
	return l.LocalAddr().String()
}

func TestGetWindowSize(t *testing.T) {
	data := make([]byte, 100*1024+5)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	addr := windowServer(t, data, 7)
	r := Get(context.Background(), addr, "x", Options{BlockSize: 1024, WindowSize: 8, TSize: true, Want: data, Timeout: 500 * time.Millisecond})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if r.WindowSize != 8 || r.BlockSize != 1024 || r.Bytes != int64(len(data)) {
		t.Errorf("got %+v, want windowsize 8, blksize 1024, %d bytes", r, len(data))
	}
}
