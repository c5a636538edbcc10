package dhcp

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/pxe/dhcp/dhcpload"
	"github.com/ferric-metal/ferric/test/netnstest"
)

// crashHelperEnv makes TestCrashHelper run a full-mode server (in the
// network namespace it was started in) with the lease log named by it.
const crashHelperEnv = "FERRIC_DHCP_CRASH_HELPER_LEASES"

// TestCrashHelper is the server process TestKill9KeepsAckedLeasesNetns
// kills; it does nothing in a normal run.
func TestCrashHelper(t *testing.T) {
	path := os.Getenv(crashHelperEnv)
	if path == "" {
		t.Skip("helper process of TestKill9KeepsAckedLeasesNetns")
	}
	leases, err := OpenLogLeases(path, LogOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), Config{
		Mode: ModeFull, Interface: "veth0",
		RangeStart: netip.MustParseAddr("10.78.1.0"), RangeEnd: netip.MustParseAddr("10.78.255.254"),
		Boot: testBoot, Hosts: hosts(), AllowUnknown: true, Leases: leases,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	_ = s.Serve(context.Background()) // until killed
}

// TestKill9KeepsAckedLeasesNetns runs DORA exchanges as fast as a relay
// can against a server in another process, kills that process with
// SIGKILL in the middle of the load and checks that every lease the
// client got an ACK for is in the lease log afterwards.
func TestKill9KeepsAckedLeasesNetns(t *testing.T) {
	netnstest.Skip(t)
	srvNS, cliNS := netnstest.Pair(t, "10.78.0.1/16", "10.78.0.2/16")
	path := filepath.Join(t.TempDir(), "leases.log")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", srvNS.Name, os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "ready" {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("helper server exited before it was ready")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("helper server not ready after 30 s")
	}

	// The client is a relay agent (giaddr 10.78.0.2): replies come back
	// unicast to port 67.
	var conn *net.UDPConn
	if err := cliNS.Do(func() error {
		var err error
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 78, 0, 2), Port: 67})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	relay := dhcpload.NewRelay(conn, &net.UDPAddr{IP: net.IPv4(10, 78, 0, 1), Port: 67}, 0x55)
	defer relay.Close()

	// Discover from new MACs at about 4,000/s until 1,500 leases are
	// ACKed, then kill the server while the replies are in flight.
	lctx, lcancel := context.WithTimeout(ctx, 20*time.Second)
	defer lcancel()
	if err := relay.Run(lctx, 4000, 1<<20, func(n int) bool { return n >= 1500 }); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed = true
	time.Sleep(100 * time.Millisecond) // ACKs already in flight
	relay.Close()
	acked, sent := relay.Acked(), relay.Sent()

	leases, err := OpenLogLeases(path, LogOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("reopen lease log after kill -9: %v", err)
	}
	defer leases.Close()
	stored, err := leases.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	have := map[netip.Addr]string{}
	for _, l := range stored {
		have[l.IP] = l.MAC.String()
	}
	missing := 0
	for ip, mac := range acked {
		if have[ip] != mac {
			missing++
			if missing <= 5 {
				t.Errorf("ACKed lease %v -> %s not in the log after kill -9 (log has %q)", ip, mac, have[ip])
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d ACKed leases lost", missing, len(acked))
	}
	if leases.Corrupt() != 0 {
		t.Errorf("lease log has %d damaged records after kill -9, want 0 (a torn tail is not damage)", leases.Corrupt())
	}
	t.Logf("%d ACKed leases (%d DISCOVERs sent), all %d in the log of %d leases after kill -9", len(acked), sent, len(acked), len(stored))
}
