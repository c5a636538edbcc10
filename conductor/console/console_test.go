package console

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freeRange returns n consecutive ports that were free a moment ago.
func freeRange(t *testing.T, n int) (int, int) {
	t.Helper()
	for try := 0; try < 50; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		first := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if first+n > 65535 {
			continue
		}
		ok := true
		for p := first; p < first+n; p++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return first, first + n - 1
		}
	}
	t.Fatal("no free port range")
	return 0, 0
}

// attachCmd is a shell standing for ipmitool sol activate: it records its
// pid, greets, then echoes what the client types (cat on a terminal).
func attachCmd(dir string) Command {
	return Command{Path: "/bin/sh", Args: []string{"-c", `echo $$ > "$PIDFILE"; echo "SOL ready: $SECRET_OK"; exec cat`},
		Env: []string{"PIDFILE=" + filepath.Join(dir, "attach.pid"), "SECRET_OK=env-passed"}}
}

// detachCmd stands for sol deactivate: it appends a line to a file.
func detachCmd(dir string) Command {
	return Command{Path: "/bin/sh", Args: []string{"-c", `echo deactivate >> "$1"`, "sh", filepath.Join(dir, "detach.log")}}
}

func readUntil(t *testing.T, c net.Conn, want string) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got strings.Builder
	buf := make([]byte, 512)
	for !strings.Contains(got.String(), want) {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("read %q: got %q, then %v", want, got.String(), err)
		}
	}
	return got.String()
}

func attachedPid(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "attach.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("attached process %d still runs", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	for {
		_, err := c.Read(buf)
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return
		}
		if err != nil {
			t.Fatalf("connection not closed by the server: %v", err)
		}
	}
}

func lines(t *testing.T, path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}

func TestConsoleSession(t *testing.T) {
	dir := t.TempDir()
	lo, hi := freeRange(t, 3)
	s := New(Config{PortMin: lo, PortMax: hi})
	defer s.Close()
	ctx := context.Background()
	port, err := s.Start(ctx, "n1", 0, attachCmd(dir), detachCmd(dir))
	if err != nil {
		t.Fatal(err)
	}
	if port < lo || port > hi {
		t.Fatalf("Start port = %d, want in %d-%d", port, lo, hi)
	}
	if got, want := s.URL(port), "tcp://127.0.0.1:"+strconv.Itoa(port); got != want {
		t.Errorf("URL = %q, want %q", got, want)
	}
	if n := lines(t, filepath.Join(dir, "detach.log")); n != 1 {
		t.Errorf("detach ran %d times at start, want 1", n)
	}
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readUntil(t, c, "SOL ready: env-passed")
	if _, err := io.WriteString(c, "hello console\r"); err != nil {
		t.Fatal(err)
	}
	readUntil(t, c, "hello console")
	pid := attachedPid(t, dir)

	// A second client is refused while the first is attached.
	c2, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(bufio.NewReader(c2))
	c2.Close()
	if !strings.Contains(string(b), "another client is attached") {
		t.Errorf("second client read %q, want the busy message", b)
	}

	// The client leaves: its process goes; a new client gets a new one.
	c.Close()
	waitGone(t, pid)
	c3, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	readUntil(t, c3, "SOL ready")
	pid3 := attachedPid(t, dir)
	if pid3 == pid {
		t.Fatalf("second session reused pid %d", pid)
	}
	if n := lines(t, filepath.Join(dir, "detach.log")); n < 3 {
		t.Errorf("detach ran %d times after two attaches, want 3 (start + before each attach)", n)
	}

	// Stop: the client is cut, the process killed, the port closed.
	if !s.Stop(ctx, "n1") {
		t.Fatal("Stop = false for a running console")
	}
	waitClosed(t, c3)
	waitGone(t, pid3)
	if _, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
		t.Errorf("port %d still accepts after Stop", port)
	}
	if _, ok := s.Port("n1"); ok || len(s.Nodes()) != 0 {
		t.Errorf("console still listed after Stop: %v", s.Nodes())
	}
	if s.Stop(ctx, "n1") {
		t.Error("Stop of a stopped console = true")
	}
}

func TestConsoleIdleTimeout(t *testing.T) {
	dir := t.TempDir()
	s := New(Config{IdleTimeout: 300 * time.Millisecond})
	defer s.Close()
	lo, _ := freeRange(t, 1)
	port, err := s.Start(context.Background(), "n1", lo, attachCmd(dir), Command{})
	if err != nil || port != lo {
		t.Fatalf("Start(port %d) = %d, %v", lo, port, err)
	}
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readUntil(t, c, "SOL ready")
	pid := attachedPid(t, dir)
	start := time.Now()
	waitClosed(t, c)
	waitGone(t, pid)
	if time.Since(start) < 200*time.Millisecond {
		t.Errorf("idle client closed after %s, before the timeout", time.Since(start))
	}
	// The console itself still serves.
	c2, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	readUntil(t, c2, "SOL ready")
}

func TestConsolePorts(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	lo, hi := freeRange(t, 3)
	// Another program holds the first port of the range.
	held, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(lo))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	s := New(Config{PortMin: lo, PortMax: hi})
	defer s.Close()
	p1, err := s.Start(ctx, "a", 0, attachCmd(dir), Command{})
	if err != nil || p1 != lo+1 {
		t.Fatalf("Start a = %d, %v; want %d (the first port is taken)", p1, err, lo+1)
	}
	p2, err := s.Start(ctx, "b", 0, attachCmd(dir), Command{})
	if err != nil || p2 != lo+2 {
		t.Fatalf("Start b = %d, %v; want %d", p2, err, lo+2)
	}
	if _, err := s.Start(ctx, "c", 0, attachCmd(dir), Command{}); !errors.Is(err, ErrNoFreePort) {
		t.Errorf("Start c with the range used up = %v, want ErrNoFreePort", err)
	}
	// Starting a running console again restarts it (same port free again).
	if p, err := s.Start(ctx, "a", 0, attachCmd(dir), Command{}); err != nil || p != lo+1 {
		t.Errorf("restart a = %d, %v; want %d", p, err, lo+1)
	}
	// A port given explicitly that is taken is an error.
	if _, err := s.Start(ctx, "d", lo, attachCmd(dir), Command{}); err == nil || !strings.Contains(err.Error(), "cannot listen on console port") {
		t.Errorf("Start d on a taken port = %v", err)
	}
	if got := strings.Join(s.Nodes(), ","); got != "a,b" {
		t.Errorf("Nodes = %s, want a,b", got)
	}
	// Without a range, a node must give its port.
	if _, err := New(Config{}).Start(ctx, "e", 0, attachCmd(dir), Command{}); err == nil {
		t.Error("Start without port nor range: nil error")
	}
	s.Close()
	if _, err := s.Start(ctx, "f", 0, attachCmd(dir), Command{}); err == nil {
		t.Error("Start after Close: nil error")
	}
	if n := len(s.Nodes()); n != 0 {
		t.Errorf("%d consoles after Close", n)
	}
}

func TestConsoleAttachFails(t *testing.T) {
	s := New(Config{})
	defer s.Close()
	lo, _ := freeRange(t, 1)
	port, err := s.Start(context.Background(), "n1", lo, Command{Path: "/nonexistent/ipmitool"}, Command{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := readUntil(t, c, "cannot attach")
	if !strings.Contains(got, "/nonexistent/ipmitool") {
		t.Errorf("client read %q, want the failing command named", got)
	}
	waitClosed(t, c)
}

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		in          string
		first, last int
		bad         bool
	}{
		{"", 0, 0, false},
		{"10000:20000", 10000, 20000, false},
		{" 7000 : 7000 ", 7000, 7000, false},
		{"20000:10000", 0, 0, true},
		{"10000", 0, 0, true},
		{"0:10", 0, 0, true},
		{"1:70000", 0, 0, true},
		{"a:b", 0, 0, true},
	} {
		first, last, err := ParseRange(tc.in)
		if (err != nil) != tc.bad || first != tc.first || last != tc.last {
			t.Errorf("ParseRange(%q) = %d, %d, %v; want %d, %d, error %v", tc.in, first, last, err, tc.first, tc.last, tc.bad)
		}
	}
}
