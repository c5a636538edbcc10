package api

import (
	"strings"
	"testing"
)

// TestBadInputIsClientError: input Ironic refuses (or its database would)
// is a 4xx with a short message, never a 5xx, and changes nothing.
func TestBadInputIsClientError(t *testing.T) {
	e := newTestEnv(t, nil)
	e.version = "1.96"
	node := e.createNode(map[string]any{"name": "bad-input"}).str("uuid")
	long := strings.Repeat("x", 40000)
	for _, tc := range []struct {
		name, method, path string
		body               any
		code               int
		msg                string
	}{
		{"connector type of 40000 chars", "POST", "/v1/volume/connectors", map[string]any{"node_uuid": node, "type": long, "connector_id": "c1"}, 400, "is too long"},
		{"connector id of 40000 chars", "POST", "/v1/volume/connectors", map[string]any{"node_uuid": node, "type": "iqn", "connector_id": long}, 400, "is too long"},
		{"connector type bogus", "POST", "/v1/volume/connectors", map[string]any{"node_uuid": node, "type": "bogus", "connector_id": "c2"}, 400,
			"'bogus' is not one of ['iqn', 'ip', 'mac', 'wwnn', 'wwpn', 'port', 'portgroup']"},
		{"target volume id of 40000 chars", "POST", "/v1/volume/targets", map[string]any{"node_uuid": node, "volume_type": "iscsi", "volume_id": long, "boot_index": 0}, 400, "is too long"},
		{"node uuid of 40000 chars", "POST", "/v1/volume/connectors", map[string]any{"node_uuid": long, "type": "iqn", "connector_id": "c3"}, 400, "Expected UUID"},
		{"maintenance reason a number", "PUT", "/v1/nodes/" + node + "/maintenance", map[string]any{"reason": 5}, 400, "Expected string for reason: 5"},
		{"maintenance reason an object", "PUT", "/v1/nodes/" + node + "/maintenance", map[string]any{"reason": map[string]any{"a": 1}}, 400, "Expected string for reason: {'a': 1}"},
		{"port name of 40000 chars", "POST", "/v1/ports", map[string]any{"node_uuid": node, "address": "52:54:00:00:00:01", "name": long}, 400, ""},
		{"portgroup name of 40000 chars", "POST", "/v1/portgroups", map[string]any{"node_uuid": node, "name": long}, 400, ""},
		{"allocation name of 40000 chars", "POST", "/v1/allocations", map[string]any{"resource_class": "x", "name": long}, 400, ""},
		{"template name of 40000 chars", "POST", "/v1/deploy_templates", map[string]any{"name": "CUSTOM_" + long, "steps": []any{}}, 400, ""},
		{"runbook name of 40000 chars", "POST", "/v1/runbooks", map[string]any{"name": "CUSTOM_" + long, "steps": []any{map[string]any{"interface": "deploy", "step": "x", "order": 0}}}, 400, ""},
		{"runbook owner of 40000 chars", "POST", "/v1/runbooks", map[string]any{"name": "CUSTOM_RB", "owner": long, "steps": []any{map[string]any{"interface": "deploy", "step": "x", "order": 0}}}, 400, "is too long"},
		{"node name of 40000 chars", "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": long}, 400, ""},
		{"instance uuid of 40000 chars", "PATCH", "/v1/nodes/" + node, []any{map[string]any{"op": "add", "path": "/instance_uuid", "value": long}}, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.body)
			if r.code != tc.code {
				t.Fatalf("%s %s = %d, want %d: %.300s", tc.method, tc.path, r.code, tc.code, r.raw)
			}
			if !strings.Contains(r.fault(), tc.msg) {
				t.Errorf("message %q, want it to contain %q", r.fault(), tc.msg)
			}
			if len(r.raw) > 2048 {
				t.Errorf("answer of %d bytes echoes the input", len(r.raw))
			}
		})
	}
	n := e.do("GET", "/v1/nodes/"+node, nil).j
	if n["maintenance"] != false || n["instance_uuid"] != nil {
		t.Errorf("node changed by refused requests: maintenance %v instance_uuid %v", n["maintenance"], n["instance_uuid"])
	}
	for _, p := range []string{"/v1/volume/connectors", "/v1/volume/targets", "/v1/ports", "/v1/portgroups", "/v1/allocations", "/v1/deploy_templates", "/v1/runbooks"} {
		r := e.must(200, e.do("GET", p, nil), p)
		for _, v := range r.j {
			if l, ok := v.([]any); ok && len(l) > 0 {
				t.Errorf("GET %s after refused creates: %d records", p, len(l))
			}
		}
	}
}
