package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestContinueInspectionAnswers posts inspection data to
// /v1/continue_inspection as Ironic's agents do and checks Ironic's answer
// at each version: ironic-inspector's {"uuid"} with no version (1.1); from
// 1.84 a lookup's {"node", "config"} with a new agent token (shown once,
// masked when the node already had one, e.g. from a lookup); node_uuid
// (1.84+) naming the node; and the refusals, which change nothing.
func TestContinueInspectionAnswers(t *testing.T) {
	c := client{t, startConductor(t)}
	const mac, otherMAC = "52:54:00:ab:cd:41", "52:54:00:ab:cd:42"
	node := c.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "ci", "inspect_interface": "agent",
		"driver_info": map[string]any{"deploy_kernel": "http://example.invalid/k", "deploy_ramdisk": "http://example.invalid/r"}}, 201)
	uuid := node["uuid"].(string)
	c.do("POST", "/v1/ports", map[string]any{"address": mac, "node_uuid": uuid}, 201)
	other := c.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "other"}, 201)["uuid"].(string)
	c.do("POST", "/v1/ports", map[string]any{"address": otherMAC, "node_uuid": other}, 201)
	c.do("PUT", "/v1/nodes/ci/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState("ci", "manageable", 30*time.Second)

	data := func(macs ...string) map[string]any {
		var ifaces []any
		for i, m := range macs {
			ifaces = append(ifaces, map[string]any{"name": "eth" + string(rune('0'+i)), "mac_address": m})
		}
		return map[string]any{"inventory": map[string]any{"interfaces": ifaces,
			"cpu":    map[string]any{"count": 2, "architecture": "x86_64"},
			"memory": map[string]any{"physical_mb": 2048, "total": 2 << 30},
			"disks":  []any{map[string]any{"name": "/dev/sda", "size": 10 << 30}}}}
	}
	inspectWait := func() {
		t.Helper()
		c.do("PUT", "/v1/nodes/ci/states/provision", map[string]any{"target": "inspect"}, 202)
		deadline := time.Now().Add(30 * time.Second)
		for c.do("GET", "/v1/nodes/ci", nil, 200)["provision_state"] != "inspect wait" {
			if time.Now().After(deadline) {
				t.Fatal("node not in inspect wait after 30s")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	token := func(r map[string]any) string {
		cfg, _ := r["config"].(map[string]any)
		s, _ := cfg["agent_token"].(string)
		return s
	}
	checkLookup := func(r map[string]any, what string) {
		t.Helper()
		n, _ := r["node"].(map[string]any)
		cfg, _ := r["config"].(map[string]any)
		if n["uuid"] != uuid || n["links"] == nil || n["driver_internal_info"] == nil || cfg["agent_token_required"] != true || r["uuid"] != nil {
			t.Errorf("%s: answer %v, want a lookup's node and config", what, r)
		}
	}

	// No version: ironic-inspector's answer.
	inspectWait()
	if r := c.doVersion("1.1", "POST", "/v1/continue_inspection", data(mac), 202); r["uuid"] != uuid || r["node"] != nil {
		t.Errorf("at 1.1: %v, want {uuid: %s}", r, uuid)
	}
	c.waitState("ci", "manageable", 30*time.Second)

	// 1.84: a lookup's answer with a new token, issued once.
	inspectWait()
	r := c.doVersion("1.84", "POST", "/v1/continue_inspection", data(mac), 202)
	checkLookup(r, "at 1.84")
	if tok := token(r); len(tok) < 32 || tok == "******" {
		t.Errorf("at 1.84: agent_token %q, want a new token", tok)
	}
	c.waitState("ci", "manageable", 30*time.Second)

	// A node that already has a token (its agent looked it up): masked.
	inspectWait()
	lk := c.doVersion("1.84", "GET", "/v1/lookup?node_uuid="+uuid, nil, 200)
	if tok := token(lk); len(tok) < 32 {
		t.Fatalf("lookup: agent_token %q", tok)
	}
	r = c.doVersion("1.84", "POST", "/v1/continue_inspection", data(mac), 202)
	checkLookup(r, "after a lookup")
	if tok := token(r); tok != "******" {
		t.Errorf("after a lookup: agent_token %q, want ******", tok)
	}
	c.waitState("ci", "manageable", 30*time.Second)

	// node_uuid names the node whatever MACs the data reports, unless they
	// are another node's; it needs 1.84 and a UUID.
	for _, bad := range []struct {
		ver, query string
		body       map[string]any
		code       int
		msg        string
	}{
		{"1.84", "?node_uuid=" + uuid, data(mac), 404, ""}, // not waiting for inspection
		{"1.84", "?node_uuid=not-a-uuid", data(mac), 400, "Expected UUID for node_uuid: not-a-uuid"},
		{"1.1", "?node_uuid=" + uuid, data(mac), 404, "API version 1.84 or newer is required"},
		{"1.83", "", data(mac), 404, "API version 1.84 or newer is required"},
	} {
		got := c.doVersion(bad.ver, "POST", "/v1/continue_inspection"+bad.query, bad.body, bad.code)
		if bad.msg != "" && !strings.Contains(faultString(got), bad.msg) {
			t.Errorf("%s %s: %q, want %q", bad.ver, bad.query, faultString(got), bad.msg)
		}
	}
	inspectWait()
	for _, bad := range []struct {
		body map[string]any
		code int
		msg  string
	}{
		{data(otherMAC), 404, ""},
		{map[string]any{"inventory": map[string]any{"interfaces": []any{}}}, 400, "at least one interface"},
		{map[string]any{"inventory": map[string]any{"interfaces": []any{map[string]any{"name": "eth0"}}}}, 400, "has no mac_address"},
	} {
		got := c.doVersion("1.84", "POST", "/v1/continue_inspection?node_uuid="+uuid, bad.body, bad.code)
		if bad.msg != "" && !strings.Contains(faultString(got), bad.msg) {
			t.Errorf("node_uuid with %v: %q, want %q", bad.body, faultString(got), bad.msg)
		}
	}
	if n := c.do("GET", "/v1/nodes/ci", nil, 200); n["provision_state"] != "inspect wait" {
		t.Fatalf("after refusals: state %v", n["provision_state"])
	} else if dii, _ := n["driver_internal_info"].(map[string]any); dii["agent_secret_token"] != nil {
		t.Errorf("a refused post left an agent token: %v", dii["agent_secret_token"])
	}
	r = c.doVersion("1.84", "POST", "/v1/continue_inspection?node_uuid="+uuid, data("52:54:00:ab:cd:43"), 202)
	checkLookup(r, "with node_uuid")
	if tok := token(r); len(tok) < 32 {
		t.Errorf("with node_uuid: agent_token %q, want a new token", tok)
	}
	c.waitState("ci", "manageable", 30*time.Second)
}
