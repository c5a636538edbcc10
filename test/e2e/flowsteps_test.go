package e2e

import (
	"bytes"
	"os"
	"testing"
	"time"
)

// TestCleanFlowSteps: manual cleaning through the agent process with the
// conductor's flow steps: wait (a pause), hold (the node parks in clean
// hold until unhold, then the agent's next heartbeat resumes with the next
// step), reboot (the agent is looked up again with a new token before the
// next, in-band, step), and power_off at the end.
func TestCleanFlowSteps(t *testing.T) {
	base := startConductor(t)
	c := client{t, base}
	disk := newDisk(t, bytes.Repeat([]byte{0xAA}, 8<<20), 8<<20)
	enrollAgentNode(t, c, base, disk, "52:54:00:12:34:88", map[string]any{"name": "flow", "deploy_interface": "direct"})

	c.doVersion("1.15", "PUT", "/v1/nodes/flow/states/provision", map[string]any{"target": "clean", "clean_steps": []map[string]any{
		{"interface": "deploy", "step": "wait", "args": map[string]any{"seconds": 1}},
		{"interface": "deploy", "step": "hold"},
		{"interface": "power", "step": "reboot"},
		{"interface": "deploy", "step": "erase_devices_metadata"},
		{"interface": "power", "step": "power_off"},
	}}, 202)
	// clean hold keeps its target (manageable), so waitState does not fit.
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := c.do("GET", "/v1/nodes/flow", nil, 200)
		if n["provision_state"] == "clean hold" && n["reservation"] == nil {
			if n["target_provision_state"] != "manageable" {
				t.Errorf("clean hold target = %v, want manageable", n["target_provision_state"])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not in clean hold: %v (last_error %v)", n["provision_state"], n["last_error"])
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // heartbeats come and go; nothing moves
	if n := c.do("GET", "/v1/nodes/flow", nil, 200); n["provision_state"] != "clean hold" {
		t.Fatalf("held node moved to %v", n["provision_state"])
	}
	head := make([]byte, 512)
	f, _ := os.Open(disk)
	f.ReadAt(head, 0)
	f.Close()
	if head[0] != 0xAA {
		t.Fatal("a step after hold ran before unhold")
	}
	c.doVersion("1.85", "PUT", "/v1/nodes/flow/states/provision", map[string]any{"target": "unhold"}, 202)
	n := c.waitState("flow", "manageable", 60*time.Second)
	if n["power_state"] != "power off" {
		t.Errorf("power_state after cleaning = %v", n["power_state"])
	}
	f, _ = os.Open(disk)
	f.ReadAt(head, 0)
	f.Close()
	if head[0] == 0xAA {
		t.Error("erase_devices_metadata after unhold did not run")
	}
}
