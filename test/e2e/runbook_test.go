package e2e

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// TestCleanRunbook: manual cleaning that names a runbook (API 1.92) runs
// the runbook's steps through the agent process: a conductor wait, the
// agent's erase_devices_metadata on the disk, and power_off. A node
// without the runbook's name among its traits is refused and left alone.
func TestCleanRunbook(t *testing.T) {
	base := startConductor(t)
	c := client{t, base}
	disk := newDisk(t, bytes.Repeat([]byte{0xAA}, 8<<20), 8<<20)
	enrollAgentNode(t, c, base, disk, "52:54:00:12:34:89", map[string]any{"name": "rb", "deploy_interface": "direct"})

	c.doVersion("1.92", "POST", "/v1/runbooks", map[string]any{"name": "CUSTOM_WIPE_META", "steps": []map[string]any{
		{"interface": "deploy", "step": "wait", "args": map[string]any{"seconds": 1}, "order": 0},
		{"interface": "deploy", "step": "erase_devices_metadata", "order": 1},
		{"interface": "power", "step": "power_off", "order": 2},
	}}, 201)
	clean := map[string]any{"target": "clean", "runbook": "CUSTOM_WIPE_META"}
	refused := c.doVersion("1.92", "PUT", "/v1/nodes/rb/states/provision", clean, 400)
	if !strings.Contains(refused["error_message"].(string), "This runbook has not been approved for use on this node") {
		t.Errorf("refusal: %v", refused)
	}
	if n := c.do("GET", "/v1/nodes/rb", nil, 200); n["provision_state"] != "manageable" {
		t.Fatalf("refused clean moved the node to %v", n["provision_state"])
	}
	c.doVersion("1.92", "PUT", "/v1/nodes/rb/traits/CUSTOM_WIPE_META", nil, 204)
	c.doVersion("1.92", "PUT", "/v1/nodes/rb/states/provision", clean, 202)
	n := c.waitState("rb", "manageable", 60*time.Second)
	if n["last_error"] != nil || n["power_state"] != "power off" {
		t.Errorf("after the runbook: last_error %v, power_state %v", n["last_error"], n["power_state"])
	}
	head := make([]byte, 512)
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.ReadAt(head, 0)
	f.Close()
	if head[0] == 0xAA {
		t.Error("the runbook's erase_devices_metadata did not run")
	}
}
