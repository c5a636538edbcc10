package e2e

import (
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The serial console of TestQEMUDeploy's ipmi machines: QEMU serves the
// machine's ttyS0 as a TCP server (lab.MachineConfig.SOLListen), its
// ipmi_sim BMC offers it as serial-over-LAN (lab.IPMISimConfig.SOL), and
// the node's ipmitool-socat console (enabled before the machine first
// boots) serves that on a conductor port from --console-port-range. A
// client attached to it all along must see the deploy ramdisk's kernel
// (console=ttyS0,115200n8 on the ramdisk's command line) boot.

const (
	// qemuSOLPort + i is where vm<i>'s QEMU serves its serial port for
	// its BMC's SOL.
	qemuSOLPort = 6430
	// qemuConsolePorts is the conductor's console port range.
	qemuConsolePorts = "6530:6539"
)

// kernelLine is a line of the Linux kernel's log on a console.
var kernelLine = regexp.MustCompile(`\[\s*\d+\.\d{6}\] `)

// consoleCapture is a console client that stays attached: it reconnects
// when the console closes (ipmitool's session ends when the machine
// restarts) and keeps everything it read.
type consoleCapture struct {
	addr    string
	mu      sync.Mutex
	buf     strings.Builder
	attach  int // connections made
	stop    chan struct{}
	stopped chan struct{}
}

func newConsoleCapture(t *testing.T, consoleURL string) *consoleCapture {
	t.Helper()
	u, err := url.Parse(consoleURL)
	if err != nil || u.Scheme != "tcp" || u.Port() == "" {
		t.Fatalf("console_info url %q: want tcp://host:port", consoleURL)
	}
	cc := &consoleCapture{addr: u.Host, stop: make(chan struct{}), stopped: make(chan struct{})}
	go cc.run()
	return cc
}

func (cc *consoleCapture) run() {
	defer close(cc.stopped)
	buf := make([]byte, 4096)
	for {
		select {
		case <-cc.stop:
			return
		default:
		}
		conn, err := net.DialTimeout("tcp", cc.addr, 2*time.Second)
		if err != nil {
			select {
			case <-cc.stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			continue
		}
		cc.mu.Lock()
		cc.attach++
		cc.mu.Unlock()
		done := make(chan struct{})
		go func() {
			select {
			case <-cc.stop:
			case <-done:
			}
			conn.Close()
		}()
		for {
			n, err := conn.Read(buf)
			cc.mu.Lock()
			cc.buf.Write(buf[:n])
			cc.mu.Unlock()
			if err != nil {
				break
			}
		}
		close(done)
	}
}

// text returns what the console showed from offset on, and the end.
func (cc *consoleCapture) text(from int) (string, int) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	s := cc.buf.String()
	if from > len(s) {
		from = len(s)
	}
	return s[from:], len(s)
}

// waitKernel waits until the console showed, after offset from, the
// kernel's first line and its command line with the serial console;
// it returns those lines and the number of kernel log lines seen.
func (cc *consoleCapture) waitKernel(t *testing.T, from int, d time.Duration) (banner, cmdline string, lines int) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		s, _ := cc.text(from)
		banner, cmdline = "", ""
		lines = 0
		for _, l := range strings.Split(s, "\n") {
			l = strings.TrimRight(l, "\r")
			if !kernelLine.MatchString(l) {
				continue
			}
			lines++
			if banner == "" && strings.Contains(l, "Linux version") {
				banner = l
			}
			if cmdline == "" && strings.Contains(l, "Kernel command line:") && strings.Contains(l, "console=ttyS0,115200") {
				cmdline = l
			}
		}
		if banner != "" && cmdline != "" {
			return banner, cmdline, lines
		}
		if time.Now().After(deadline) {
			if len(s) > 3000 {
				s = s[len(s)-3000:]
			}
			t.Fatalf("the console did not show the ramdisk kernel's boot (banner %q, command line %q, %d kernel lines) in %s; it showed (tail):\n%s",
				banner, cmdline, lines, d, s)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (cc *consoleCapture) close() {
	select {
	case <-cc.stop:
	default:
		close(cc.stop)
	}
	<-cc.stopped
}

// qemuEnableConsole enables node's console, waits until the API shows it
// enabled and attaches a capturing client.
func qemuEnableConsole(t *testing.T, c client, node string) *consoleCapture {
	t.Helper()
	c.do("PUT", "/v1/nodes/"+node+"/states/console", map[string]any{"enabled": true}, 202)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		got := c.do("GET", "/v1/nodes/"+node+"/states/console", nil, 200)
		if got["console_enabled"] == true {
			info, _ := got["console_info"].(map[string]any)
			u, _ := info["url"].(string)
			if info["type"] != "socat" {
				t.Fatalf("%s: console_info %v, want type socat", node, info)
			}
			t.Logf("%s: console at %s", node, u)
			cc := newConsoleCapture(t, u)
			t.Cleanup(cc.close)
			return cc
		}
		if time.Now().After(deadline) {
			n := c.do("GET", "/v1/nodes/"+node, nil, 200)
			t.Fatalf("%s: console not enabled after 30s; last_error %v", node, n["last_error"])
		}
	}
}

// qemuDisableConsole disables node's console and checks that its port
// closed.
func qemuDisableConsole(t *testing.T, c client, node string, cc *consoleCapture) {
	t.Helper()
	c.do("PUT", "/v1/nodes/"+node+"/states/console", map[string]any{"enabled": false}, 202)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if got := c.do("GET", "/v1/nodes/"+node+"/states/console", nil, 200); got["console_enabled"] == false {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: console still enabled 30s after disable", node)
		}
	}
	cc.close()
	if conn, err := net.DialTimeout("tcp", cc.addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s: console port %s still accepts after disable", node, cc.addr)
	}
}

// connections is the number of times the client attached.
func (cc *consoleCapture) connections() int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.attach
}
