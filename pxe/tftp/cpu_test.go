package tftp

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/pxe/tftp/tftpload"
)

// TestServeHelper is the server process of BenchmarkServerCPU, not a
// test: with FERRIC_TFTP_SERVE=<root> it serves root on 127.0.0.1:0,
// prints "addr=<address>" and serves until SIGTERM (writing a CPU
// profile to FERRIC_TFTP_CPUPROFILE when set).
func TestServeHelper(t *testing.T) {
	root := os.Getenv("FERRIC_TFTP_SERVE")
	if root == "" {
		t.Skip("the server process of BenchmarkServerCPU")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	s, err := New(Config{Root: root, Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if p := os.Getenv("FERRIC_TFTP_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Printf("addr=%s\n", s.Addr())
	if err := s.Serve(ctx); err != nil {
		t.Fatal(err)
	}
}

// procCPU is the user+system CPU time of process pid, all its threads
// (/proc/<pid>/stat, clock ticks of 10 ms).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 on
	ut, err1 := strconv.ParseInt(f[11], 10, 64)              // field 14
	st, err2 := strconv.ParseInt(f[12], 10, 64)              // field 15
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat: %q", pid, s)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// BenchmarkServerCPU measures the TFTP server's own CPU time per
// transfer: the server runs in a process of its own (TestServeHelper of
// this binary, or of each test binary in FERRIC_TFTP_SERVERS, to compare
// builds), a storm of FERRIC_TFTP_N (default 200) transfers of a 74 KB
// file (undionly.kpxe's size) comes from this process (tftpload), and
// the server process's CPU time over the storm, divided by the
// transfers, is its cost. With several servers the storms go to each in
// turn, FERRIC_TFTP_ROUNDS (default 5) rounds, so that the machine's
// load falls on all alike; the median of the rounds is reported. CPU
// time, not wall time: on a loaded machine it varies less.
//
//	go test -c -o /tmp/new.test ./pxe/tftp/   # and /tmp/old.test from the old tree
//	FERRIC_TFTP_SERVERS="/tmp/old.test /tmp/new.test" /tmp/new.test -test.run '^$' -test.bench ServerCPU -test.benchtime 1x
func BenchmarkServerCPU(b *testing.B) {
	bins := strings.Fields(os.Getenv("FERRIC_TFTP_SERVERS"))
	if len(bins) == 0 {
		bins = []string{os.Args[0]}
	}
	n, rounds := envInt("FERRIC_TFTP_N", 200), envInt("FERRIC_TFTP_ROUNDS", 5)
	root := b.TempDir()
	data := make([]byte, 74_213)
	if _, err := rand.Read(data); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "boot.bin"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	type server struct {
		bin  string
		addr string
		pid  int
		cpu  []time.Duration // per transfer, one per round
	}
	var servers []*server
	for i, bin := range bins {
		cmd := exec.Command(bin, "-test.run", "^TestServeHelper$")
		cmd.Env = append(os.Environ(), "FERRIC_TFTP_SERVE="+root)
		if p := os.Getenv("FERRIC_TFTP_CPUPROFILE"); p != "" {
			cmd.Env = append(cmd.Env, fmt.Sprintf("FERRIC_TFTP_CPUPROFILE=%s.%d", p, i))
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		})
		sc := bufio.NewScanner(out)
		s := &server{bin: bin, pid: cmd.Process.Pid}
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "addr="); ok {
				s.addr = a
				break
			}
		}
		if s.addr == "" {
			b.Fatalf("%s printed no address", bin)
		}
		go func() {
			for sc.Scan() { // drain
			}
		}()
		servers = append(servers, s)
	}
	ctx := context.Background()
	for _, blk := range []int{512, 1468} {
		o := tftpload.Options{BlockSize: blk, TSize: true, Timeout: time.Second, Want: data}
		for _, s := range servers {
			s.cpu = nil
			if _, err := tftpload.Storm(ctx, s.addr, "boot.bin", 20, 0, o); err != nil { // warm: cache, threads
				b.Fatal(err)
			}
		}
		for r := range rounds {
			for i := range servers {
				s := servers[(i+r)%len(servers)] // alternate who goes first
				c0, err := procCPU(s.pid)
				if err != nil {
					b.Fatal(err)
				}
				rep, err := tftpload.Storm(ctx, s.addr, "boot.bin", n, 0, o)
				if err != nil {
					b.Fatal(err)
				}
				time.Sleep(50 * time.Millisecond) // the last transfers' goroutines end
				c1, err := procCPU(s.pid)
				if err != nil {
					b.Fatal(err)
				}
				if rep.Failed > 0 {
					b.Fatalf("%s: %d of %d transfers failed: %v", s.bin, rep.Failed, n, rep.FirstErr)
				}
				s.cpu = append(s.cpu, (c1-c0)/time.Duration(n))
				b.Logf("blksize %d round %d %s: server CPU %v per transfer (%v for %d), wall %v, %d retransmits",
					blk, r, filepath.Base(s.bin), (c1-c0)/time.Duration(n), c1-c0, n, rep.Wall.Round(time.Millisecond), rep.Retransmits)
			}
		}
		for i, s := range servers {
			slices.Sort(s.cpu)
			med := s.cpu[len(s.cpu)/2]
			b.ReportMetric(float64(med.Microseconds()), fmt.Sprintf("cpu-us/xfer-blk%d-srv%d", blk, i))
			b.Logf("blksize %d %s: median server CPU %v per transfer over %d rounds %v", blk, s.bin, med, rounds, s.cpu)
		}
	}
	b.ReportMetric(0, "ns/op")
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
