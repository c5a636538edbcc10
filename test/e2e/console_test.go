package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/harness"
	"github.com/ferric-metal/ferric/test/lab"
)

// TestConsoleIPMISim drives a node's serial console (console_interface
// ipmitool-socat) end to end with Debian's openstack CLI: the conductor
// runs the real ipmitool's sol activate against ipmi_sim, whose SOL device
// is a TCP socket this test serves as the machine's serial port (QEMU's
// place in the lab; TestQEMUDeploy reads a real ramdisk's kernel through
// it). What the machine writes reaches the console client, what the client
// types reaches the machine; a conductor restart restores the console;
// console disable closes it.
func TestConsoleIPMISim(t *testing.T) {
	for _, tool := range []string{"ipmi_sim", "ipmitool", harness.OpenStackCLI} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s not installed (packages openipmi, ipmitool, python3-openstackclient python3-ironicclient)", tool)
		}
	}
	dir := t.TempDir()
	serial := newSerialPort(t)
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bmcPort := udp.LocalAddr().(*net.UDPAddr).Port
	udp.Close()
	bmc, err := lab.StartIPMISim(t.Context(), lab.IPMISimConfig{Name: "sol", Dir: dir, Port: bmcPort,
		Username: "admin", Password: "solpw", SOL: "tcp:" + serial.addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer bmc.Stop()
	machine := serial.waitConn(t, 20*time.Second) // ipmi_sim connects to the serial port

	first, last := consolePortRange(t, 4)
	cfg := service.Config{Hostname: "console-e2e", StateDir: t.TempDir(),
		ConsolePortRange: strconv.Itoa(first) + ":" + strconv.Itoa(last)}
	cond := harness.Start(t, cfg)
	c := client{t, cond.URL}
	c.do("POST", "/v1/nodes", map[string]any{"name": "sol", "driver": "ipmi", "console_interface": "ipmitool-socat",
		"driver_info": map[string]any{"ipmi_address": "127.0.0.1", "ipmi_port": bmcPort, "ipmi_username": "admin",
			"ipmi_password": "solpw", "ipmi_cipher_suite": "3"}}, 201)

	cli := func(base string, args ...string) string {
		t.Helper()
		return harness.OpenStack(t, base, nil, append([]string{"baremetal"}, args...)...)
	}
	// wait waits until the API reports the console enabled or not (the
	// start runs on a conductor worker, as Ironic's) and returns the
	// console's URL.
	wait := func(c client, enabled bool) string {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; {
			got := c.do("GET", "/v1/nodes/sol/states/console", nil, 200)
			if got["console_enabled"] == enabled {
				info, _ := got["console_info"].(map[string]any)
				if enabled && info["type"] != "socat" {
					t.Fatalf("console_info %v: want type socat", info)
				}
				u, _ := info["url"].(string)
				return u
			}
			if time.Now().After(deadline) {
				t.Fatalf("console_enabled %v after 20s, want %v", got["console_enabled"], enabled)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	cli(cond.URL, "node", "console", "enable", "sol")
	consoleURL := wait(c, true)
	var shown struct {
		Enabled bool `json:"console_enabled"`
		Info    struct {
			Type string `json:"type"`
			URL  string `json:"url"`
		} `json:"console_info"`
	}
	if out := cli(cond.URL, "node", "console", "show", "sol", "-f", "json"); json.Unmarshal([]byte(out), &shown) != nil ||
		!shown.Enabled || shown.Info.Type != "socat" || shown.Info.URL != consoleURL {
		t.Fatalf("console show = %s, want enabled, type socat, url %s", out, consoleURL)
	}
	u, err := url.Parse(consoleURL)
	if err != nil || u.Scheme != "tcp" {
		t.Fatalf("console url %q: want tcp://host:port", consoleURL)
	}
	if p, _ := strconv.Atoi(u.Port()); p < first || p > last {
		t.Errorf("console port %s not in the range %d:%d", u.Port(), first, last)
	}
	solRoundTrip(t, u.Host, machine, "[    0.000000] Linux version 6.1.0 (console e2e)", "root")

	// A conductor restart restores the enabled console.
	if err := cond.Stop(); err != nil {
		t.Fatal(err)
	}
	if c2, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		c2.Close()
		t.Fatal("the console still accepts with its conductor stopped")
	}
	start := time.Now()
	cond = harness.Start(t, cfg)
	c = client{t, cond.URL}
	consoleURL = wait(c, true)
	u, _ = url.Parse(consoleURL)
	solRoundTrip(t, u.Host, machine, "[    2.500000] Run /init as init process", "ls")
	t.Logf("console restored and used %.1fs after the conductor restarted", time.Since(start).Seconds())

	cli(cond.URL, "node", "console", "disable", "sol")
	wait(c, false)
	if c2, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		c2.Close()
		t.Errorf("%s still accepts after console disable", u.Host)
	}
}

// solRoundTrip connects a console client to addr, checks that a line the
// machine writes on its serial port reaches it and that what it types
// reaches the machine, then leaves.
func solRoundTrip(t *testing.T, addr string, machine net.Conn, line, typed string) {
	t.Helper()
	// The console may start a moment after the API shows it enabled (a
	// restarted conductor restores consoles once it runs).
	var cl net.Conn
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var err error
		if cl, err = net.Dial("tcp", addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	defer cl.Close()
	got := readFor(t, cl, "SOL Session operational", 20*time.Second)
	t.Logf("console client read %q", strings.TrimSpace(got))
	// The BMC forwards serial output once the session is up; write until
	// the line shows (ipmitool's greeting comes before the payload is
	// fully active).
	done := make(chan string, 1)
	go func() {
		var b strings.Builder
		buf := make([]byte, 1024)
		_ = cl.SetReadDeadline(time.Now().Add(20 * time.Second))
		for !strings.Contains(b.String(), line) {
			n, err := cl.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		done <- b.String()
	}()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for wait := true; wait; {
		if _, err := io.WriteString(machine, line+"\r\n"); err != nil {
			t.Fatalf("machine serial write: %v", err)
		}
		select {
		case s := <-done:
			if !strings.Contains(s, line) {
				t.Fatalf("console client read %q, want %q", s, line)
			}
			wait = false
		case <-tick.C:
		}
	}
	// The other way: keystrokes reach the machine (typed again until
	// they do, as a user would: ipmi_sim may drop the first SOL packet).
	arrived := make(chan string, 1)
	go func() {
		var b strings.Builder
		buf := make([]byte, 1024)
		_ = machine.SetReadDeadline(time.Now().Add(20 * time.Second))
		defer machine.SetReadDeadline(time.Time{})
		for !strings.Contains(b.String(), typed) {
			n, err := machine.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		arrived <- b.String()
	}()
	for tries := 1; ; tries++ {
		if _, err := io.WriteString(cl, typed+"\r"); err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-arrived:
			if !strings.Contains(s, typed) {
				t.Fatalf("the machine read %q, want %q", s, typed)
			}
			t.Logf("typed %q reached the machine (%d tries)", typed, tries)
			return
		case <-time.After(time.Second):
		}
	}
}

func readFor(t *testing.T, c net.Conn, want string, d time.Duration) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	var b strings.Builder
	buf := make([]byte, 1024)
	for !strings.Contains(b.String(), want) {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			t.Fatalf("read %q: got %q, then %v", want, b.String(), err)
		}
	}
	return b.String()
}

// serialPort is the machine's serial port as a TCP server (what QEMU's
// serial chardev is in the lab): ipmi_sim's SOL connects to it.
type serialPort struct {
	ln    net.Listener
	conns chan net.Conn
}

func newSerialPort(t *testing.T) *serialPort {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &serialPort{ln: ln, conns: make(chan net.Conn, 4)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns <- c
		}
	}()
	return s
}

func (s *serialPort) addr() string { return s.ln.Addr().String() }

func (s *serialPort) waitConn(t *testing.T, d time.Duration) net.Conn {
	t.Helper()
	select {
	case c := <-s.conns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(d):
		t.Fatalf("the BMC did not connect to the serial port %s within %s", s.addr(), d)
		return nil
	}
}

// consolePortRange returns n consecutive TCP ports free a moment ago.
func consolePortRange(t *testing.T, n int) (int, int) {
	t.Helper()
	for try := 0; try < 50; try++ {
		first := harness.FreePort(t)
		ok := first+n <= 65535
		for p := first; ok && p < first+n; p++ {
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
	t.Fatal("no free range of console ports")
	return 0, 0
}
