package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/harness"
)

// TestInspectThroughAgent inspects a fake-hardware node in-band: the
// "machine" is a ferric-agent process (a sparse file as its disk, the
// node's port MAC as its NIC) that posts its inventory to the conductor's
// /v1/continue_inspection. The node must come back manageable with the
// scheduling properties, the stored inventory and an inspection rule
// applied; the same through ironic-inspector's /v1/continue; then a rule's
// fail action must fail inspection with its message.
func TestInspectThroughAgent(t *testing.T) {
	inspectorURL := "http://" + harness.FreeAddr(t, "127.0.0.1")
	base := harness.Start(t, service.Config{Hostname: "e2e",
		InspectorListen: strings.TrimPrefix(inspectorURL, "http://")}).URL
	c := client{t, base}
	agentBin := buildAgent(t)

	disk := newDisk(t, nil, 5<<30) // sparse

	const mac = "52:54:00:ab:cd:01"
	node := c.do("POST", "/v1/nodes", map[string]any{
		"driver": "fake-hardware", "name": "inspect-node", "inspect_interface": "agent",
		"driver_info": map[string]any{"deploy_kernel": "http://example.invalid/k", "deploy_ramdisk": "http://example.invalid/r"},
	}, 201)
	uuid := node["uuid"].(string)
	c.do("POST", "/v1/ports", map[string]any{"address": mac, "node_uuid": uuid}, 201)

	c.doVersion("1.96", "POST", "/v1/inspection_rules", map[string]any{
		"description": "mark inspected machines",
		"actions": []any{
			map[string]any{"op": "add-trait", "args": map[string]any{"name": "CUSTOM_INSPECTED"}},
			map[string]any{"op": "set-attribute", "args": map[string]any{"path": "/extra/inspected", "value": "by {inventory[boot][pxe_interface]}"}},
		},
	}, 201)

	c.do("PUT", "/v1/nodes/inspect-node/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState("inspect-node", "manageable", 30*time.Second)

	// poll returns the node once done(node) holds.
	poll := func(what string, done func(n map[string]any) bool) map[string]any {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			n := c.do("GET", "/v1/nodes/inspect-node", nil, 200)
			if n["reservation"] == nil && done(n) {
				return n
			}
			if time.Now().After(deadline) {
				t.Fatalf("node not %s after 60s: state %v, last_error %v", what, n["provision_state"], n["last_error"])
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// inspect runs one agent "boot" against the node in inspect wait and
	// returns the node in its final state (not inspect wait/inspecting).
	inspect := func(args ...string) map[string]any {
		t.Helper()
		c.do("PUT", "/v1/nodes/inspect-node/states/provision", map[string]any{"target": "inspect"}, 202)
		poll("in inspect wait", func(n map[string]any) bool { return n["provision_state"] == "inspect wait" })
		port := harness.FreePort(t)
		defer startAgent(t, agentBin, append([]string{"--mac", mac, "--disk", disk, "--listen", fmt.Sprintf("127.0.0.1:%d", port),
			"--advertise-host", "127.0.0.1", "--advertise-port", fmt.Sprint(port), "--lookup-max", "1s"}, args...)...)()
		return poll("done inspecting", func(n map[string]any) bool {
			s := n["provision_state"]
			return s != "inspect wait" && s != "inspecting"
		})
	}

	n := inspect("--inspection-callback-url", base+"/v1/continue_inspection")
	if n["provision_state"] != "manageable" {
		t.Fatalf("after inspection: state %v, last_error %v; want manageable", n["provision_state"], n["last_error"])
	}
	props, _ := n["properties"].(map[string]any)
	for _, k := range []string{"cpus", "memory_mb", "local_gb"} {
		if v, _ := props[k].(float64); v <= 0 {
			t.Errorf("properties[%s] = %v, want a positive number", k, props[k])
		}
	}
	if props["local_gb"] != 4.0 { // 5 GiB disk, one GiB of partitioning spacing
		t.Errorf("properties[local_gb] = %v, want 4", props["local_gb"])
	}
	if a, _ := props["cpu_arch"].(string); a == "" {
		t.Errorf("properties[cpu_arch] = %v, want set", props["cpu_arch"])
	}
	if n["power_state"] != "power off" {
		t.Errorf("power_state = %v, want power off after inspection", n["power_state"])
	}

	inv := c.doVersion("1.81", "GET", "/v1/nodes/inspect-node/inventory", nil, 200)
	inventory, _ := inv["inventory"].(map[string]any)
	ifaces, _ := inventory["interfaces"].([]any)
	if len(ifaces) != 1 || ifaces[0].(map[string]any)["mac_address"] != mac {
		t.Errorf("inventory.interfaces = %v, want one with MAC %s", inventory["interfaces"], mac)
	}
	disks, _ := inventory["disks"].([]any)
	if len(disks) != 1 || disks[0].(map[string]any)["name"] != disk || disks[0].(map[string]any)["size"] != float64(5<<30) {
		t.Errorf("inventory.disks = %v, want %s of 5 GiB", inventory["disks"], disk)
	}
	pd, _ := inv["plugin_data"].(map[string]any)
	if rd, _ := pd["root_disk"].(map[string]any); rd["name"] != disk {
		t.Errorf("plugin_data.root_disk = %v, want %s", pd["root_disk"], disk)
	}

	traits := c.doVersion("1.96", "GET", "/v1/nodes/inspect-node/traits", nil, 200)
	if list, _ := traits["traits"].([]any); !slices.Contains(list, any("CUSTOM_INSPECTED")) {
		t.Errorf("traits = %v, want CUSTOM_INSPECTED from the rule", traits["traits"])
	}
	if extra, _ := n["extra"].(map[string]any); extra["inspected"] != "by "+mac {
		t.Errorf("extra = %v, want inspected: %q from the rule", n["extra"], "by "+mac)
	}
	ports := c.do("GET", "/v1/ports?node_uuid="+uuid, nil, 200)
	if list, _ := ports["ports"].([]any); len(list) != 1 {
		t.Errorf("ports = %v, want just the one with MAC %s", ports["ports"], mac)
	}

	// ironic-inspector's ramdisk endpoint (the agent then looks up at the
	// API URL it is given).
	n = inspect("--inspection-callback-url", inspectorURL+"/v1/continue", "--api-url", base)
	if n["provision_state"] != "manageable" {
		t.Fatalf("after inspection through /v1/continue: state %v, last_error %v; want manageable", n["provision_state"], n["last_error"])
	}
	if ports := c.do("GET", "/v1/ports?node_uuid="+uuid, nil, 200); len(ports["ports"].([]any)) != 1 {
		t.Errorf("after a second inspection: ports = %v, want still one", ports["ports"])
	}

	// A rule whose fail action fires fails inspection with its message.
	c.doVersion("1.96", "POST", "/v1/inspection_rules", map[string]any{
		"description": "refuse small machines",
		"conditions":  []any{map[string]any{"op": "lt", "args": map[string]any{"values": []any{"{inventory[memory][physical_mb]}", 1 << 30}}}},
		"actions":     []any{map[string]any{"op": "fail", "args": map[string]any{"msg": "machine too small for this cloud"}}},
	}, 201)
	n = inspect("--inspection-callback-url", base+"/v1/continue_inspection")
	if n["provision_state"] != "inspect failed" {
		t.Fatalf("after inspection with a failing rule: state %v, want inspect failed", n["provision_state"])
	}
	if e, _ := n["last_error"].(string); !strings.Contains(e, "machine too small for this cloud") {
		t.Errorf("last_error = %q, want the rule's message", e)
	}
}
