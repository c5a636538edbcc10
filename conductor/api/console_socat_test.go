package api

import (
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeIPMITool puts an ipmitool on PATH that records its arguments and
// environment password and, for sol activate, greets and echoes (the
// terminal's echo) what the client types. The real ipmitool against
// ipmi_sim is in test/e2e (TestConsoleIPMISim).
func fakeIPMITool(t *testing.T) (dir string) {
	t.Helper()
	dir = t.TempDir()
	script := `#!/bin/sh
echo "$*" >> "` + dir + `/calls"
case "$*" in
*"sol activate"*) echo "[SOL Session operational.  Use ~? for help]"; echo "fake BMC pw=$IPMI_PASSWORD"; exec cat ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "ipmitool"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	return dir
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestConsoleIPMISocat(t *testing.T) {
	dir := fakeIPMITool(t)
	e := newTestEnv(t, nil)
	port := freePort(t)
	info := map[string]any{"ipmi_address": "127.0.0.1", "ipmi_port": 6230, "ipmi_username": "admin", "ipmi_password": "s3cr3t-pw"}
	e.addSecret("s3cr3t-pw")
	e.createNode(map[string]any{"name": "sol", "driver": "ipmi", "console_interface": "ipmitool-socat", "driver_info": info})

	// No ipmi_terminal_port and no port range: Ironic's error, nothing changes.
	r := e.must(400, e.do("PUT", "/v1/nodes/sol/states/console", map[string]any{"enabled": true}), "no port")
	if !strings.Contains(r.fault(), "Either missing 'ipmi_terminal_port' parameter in node's driver_info or [console]port_range is not configured") {
		t.Errorf("no port: %s", r.raw)
	}
	if r := e.must(200, e.do("GET", "/v1/nodes/sol/validate", nil), "validate"); !strings.Contains(string(r.raw), "port_range is not configured") {
		t.Errorf("validate without a console port: %s", r.raw)
	}
	e.must(200, e.do("PATCH", "/v1/nodes/sol", []map[string]any{{"op": "add", "path": "/driver_info/ipmi_terminal_port", "value": "not-a-port"}}), "bad port")
	r = e.must(400, e.do("PUT", "/v1/nodes/sol/states/console", map[string]any{"enabled": true}), "bad port")
	if !strings.Contains(r.fault(), `ipmi_terminal_port "not-a-port" is not a valid port.`) {
		t.Errorf("bad port: %s", r.raw)
	}
	e.must(200, e.do("PATCH", "/v1/nodes/sol", []map[string]any{{"op": "add", "path": "/driver_info/ipmi_terminal_port", "value": strconv.Itoa(port)}}), "set port")
	if r := e.must(200, e.do("GET", "/v1/nodes/sol/states/console", nil), "console off"); r.j["console_enabled"] != false || r.j["console_info"] != nil {
		t.Fatalf("console before enable: %s", r.raw)
	}

	e.must(202, e.do("PUT", "/v1/nodes/sol/states/console", map[string]any{"enabled": true}), "enable")
	e.waitNode("sol", "console enabled", func(n map[string]any) bool { return n["console_enabled"] == true })
	r = e.must(200, e.do("GET", "/v1/nodes/sol/states/console", nil), "console on")
	ci, _ := r.j["console_info"].(map[string]any)
	want := "tcp://127.0.0.1:" + strconv.Itoa(port)
	if ci["type"] != "socat" || ci["url"] != want {
		t.Fatalf("console_info = %s, want type socat, url %s", r.raw, want)
	}
	// Enabling again is accepted and changes nothing.
	e.must(202, e.do("PUT", "/v1/nodes/sol/states/console", map[string]any{"enabled": true}), "enable again")

	u, _ := url.Parse(ci["url"].(string))
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	readConsole(t, c, "fake BMC pw=s3cr3t-pw")
	if _, err := io.WriteString(c, "typed by the operator\r"); err != nil {
		t.Fatal(err)
	}
	readConsole(t, c, "typed by the operator")
	calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
	for _, w := range []string{"-I lanplus -H 127.0.0.1 -p 6230 -U admin -E sol deactivate", "-I lanplus -H 127.0.0.1 -p 6230 -U admin -E sol activate"} {
		if !strings.Contains(string(calls), w) {
			t.Errorf("ipmitool calls:\n%s\nwant %q", calls, w)
		}
	}
	if strings.Contains(string(calls), "s3cr3t-pw") {
		t.Errorf("the password is on ipmitool's command line:\n%s", calls)
	}

	// Disable: the client is cut and the port closed.
	e.must(202, e.do("PUT", "/v1/nodes/sol/states/console", map[string]any{"enabled": false}), "disable")
	e.waitNode("sol", "console disabled", func(n map[string]any) bool { return n["console_enabled"] == false })
	waitConsoleGone(t, c, u.Host)

	// Delete with the console on: the console goes with the node.
	e.must(202, e.do("PUT", "/v1/nodes/sol/states/console", map[string]any{"enabled": "yes"}), "enable")
	e.waitNode("sol", "console enabled", func(n map[string]any) bool { return n["console_enabled"] == true })
	c2, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	readConsole(t, c2, "SOL Session operational")
	e.must(204, e.do("DELETE", "/v1/nodes/sol", nil), "delete")
	waitConsoleGone(t, c2, u.Host)
}

func readConsole(t *testing.T, c net.Conn, want string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got strings.Builder
	buf := make([]byte, 512)
	for !strings.Contains(got.String(), want) {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("console: read %q: got %q, then %v", want, got.String(), err)
		}
	}
}

// waitConsoleGone checks that the client c was disconnected and that addr
// no longer accepts.
func waitConsoleGone(t *testing.T, c net.Conn, addr string) {
	t.Helper()
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the console client is still connected")
			}
			break
		}
	}
	if c2, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c2.Close()
		t.Errorf("%s still accepts after the console was stopped", addr)
	}
}
