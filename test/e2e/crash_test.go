package e2e

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/harness"
)

// startBinary runs ferric-conductor on addr and state and waits until it
// is ready; its log lines go to logs.
func startBinary(t *testing.T, bin, addr, state string, logs *lockedLog) *harness.Process {
	t.Helper()
	cmd := exec.Command(bin, "--api-listen", addr, "--state-dir", state, "--hostname", "crash-test")
	p, err := harness.StartBinary(cmd, logs.add)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKillDuringWork kills the conductor (SIGKILL) while a node is being
// verified through a BMC that never answers and while nodes are being
// created, then restarts it: nothing acknowledged is lost and nothing is
// left stuck or locked.
func TestKillDuringWork(t *testing.T) {
	bin := harness.Build(t)
	state := t.TempDir()
	addr := harness.FreeAddr(t, "127.0.0.1")
	base := "http://" + addr
	c := client{t, base}

	// A BMC that swallows every packet.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	logs := &lockedLog{}
	p := startBinary(t, bin, addr, state, logs)
	c.do("POST", "/v1/nodes", map[string]any{"driver": "ipmi", "name": "stuck",
		"driver_info": map[string]any{"ipmi_address": "127.0.0.1", "ipmi_port": silent.LocalAddr().(*net.UDPAddr).Port,
			"ipmi_username": "admin", "ipmi_password": "secret"}}, 201)
	c.do("PUT", "/v1/nodes/stuck/states/provision", map[string]any{"target": "manage"}, 202)
	n := c.do("GET", "/v1/nodes/stuck", nil, 200)
	if n["provision_state"] != "verifying" || n["reservation"] != "crash-test" {
		t.Fatalf("before the kill: state %v reservation %v, want verifying, locked", n["provision_state"], n["reservation"])
	}
	// Create nodes concurrently; every acknowledged one must survive.
	var mu sync.Mutex
	var created []string
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := c.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": fmt.Sprintf("n%d", i)}, 201)
			mu.Lock()
			created = append(created, n["uuid"].(string))
			mu.Unlock()
		}()
	}
	wg.Wait()
	_ = p.Stop(syscall.SIGKILL, 20*time.Second) // "signal: killed"

	p = startBinary(t, bin, addr, state, logs)
	defer func() {
		if err := p.Stop(syscall.SIGTERM, 20*time.Second); err != nil {
			t.Errorf("conductor exit after SIGTERM: %v", err)
		}
	}()
	n = c.do("GET", "/v1/nodes/stuck", nil, 200)
	if n["provision_state"] != "enroll" || n["reservation"] != nil || !strings.Contains(fmt.Sprint(n["last_error"]), "restarted") {
		t.Fatalf("after restart: state %v reservation %v last_error %v; want enroll, unlocked, last_error saying why",
			n["provision_state"], n["reservation"], n["last_error"])
	}
	if di := n["driver_info"].(map[string]any); di["ipmi_password"] != "******" {
		t.Errorf("ipmi_password returned as %v, want ******", di["ipmi_password"])
	}
	for _, u := range created {
		c.do("GET", "/v1/nodes/"+u, nil, 200)
	}
	list := c.do("GET", "/v1/nodes", nil, 200)
	if got := len(list["nodes"].([]any)); got != 41 {
		t.Fatalf("after restart %d nodes listed, want 41", got)
	}
	// The recovered node can be worked on again: it can be deleted.
	c.do("DELETE", "/v1/nodes/stuck", nil, 204)
	if strings.Contains(logs.String(), "secret") {
		t.Errorf("the BMC password appears in the conductor's log")
	}
}

type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) add(s string) { l.mu.Lock(); l.b.WriteString(s + "\n"); l.mu.Unlock() }
func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
