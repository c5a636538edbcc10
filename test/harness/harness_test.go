package harness

import (
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/ferric-metal/ferric/conductor/service"
)

// A conductor started by the harness serves its API at URL until Stop,
// which returns service.Run's result; a second Stop returns the same.
func TestStartStop(t *testing.T) {
	c := Start(t, service.Config{Hostname: "harness", Log: Logger()})
	if !strings.HasPrefix(c.URL, "http://127.0.0.1:") {
		t.Fatalf("URL %q, want http://127.0.0.1:PORT", c.URL)
	}
	res, err := http.Get(c.URL + "/v1/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/ = %d, want 200", res.StatusCode)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := http.Get(c.URL + "/v1/"); err == nil {
		t.Fatal("the API still answers after Stop")
	}
}

// A conductor that cannot start (its API address is taken) is an error
// from Launch, not a hang.
func TestLaunchError(t *testing.T) {
	c := Start(t, service.Config{Hostname: "harness-a", Log: Logger()})
	addr := strings.TrimPrefix(c.URL, "http://")
	_, err := Launch(service.Config{APIListen: addr, StateDir: t.TempDir(), Hostname: "harness-b", Log: Logger()})
	if err == nil || !strings.Contains(err.Error(), "did not start") {
		t.Fatalf("Launch on a taken address: %v, want a start error", err)
	}
}

// The binary is built, logs its ready line, and stops on SIGTERM with a
// clean exit.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds ferric-conductor")
	}
	bin := Build(t)
	var lines []string
	cmd := exec.Command(bin, "--api-listen", "127.0.0.1:0", "--state-dir", t.TempDir(), "--hostname", "harness-bin",
		"--inspector-listen", "")
	p, err := StartBinary(cmd, func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(syscall.SIGTERM, StartTimeout); err != nil {
		t.Fatalf("stop on SIGTERM: %v", err)
	}
	if len(lines) == 0 {
		t.Fatal("no log line read")
	}
}
