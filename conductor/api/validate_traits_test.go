package api

import (
	"testing"
)

// TestValidateInstanceTraitsAndTemplates: GET /v1/nodes/{n}/validate runs,
// once the deploy interface validates, Ironic's instance-trait check and
// its deploy-template check, with Ironic's reasons.
func TestValidateInstanceTraitsAndTemplates(t *testing.T) {
	e := newTestEnv(t, nil)
	e.version = "1.69"
	step := func(iface, name string, prio int) map[string]any {
		return map[string]any{"interface": iface, "step": name, "priority": prio, "args": map[string]any{}}
	}
	for _, tpl := range []map[string]any{
		{"name": "CUSTOM_BIOS_A", "steps": []any{step("bios", "apply_configuration", 150)}},
		{"name": "CUSTOM_BIOS_B", "steps": []any{step("bios", "apply_configuration", 140)}},
		{"name": "CUSTOM_CORE", "steps": []any{step("deploy", "deploy", 10)}},
		{"name": "CUSTOM_FINE", "steps": []any{step("raid", "apply_configuration", 0)}},
	} {
		e.must(201, e.do("POST", "/v1/deploy_templates", tpl), "template "+tpl["name"].(string))
	}
	uuid := e.createNode(map[string]any{"name": "vt", "deploy_interface": "fake"}).str("uuid")
	e.must(204, e.do("PUT", "/v1/nodes/vt/traits", map[string]any{"traits": []string{"CUSTOM_GPU", "CUSTOM_BIOS_A", "CUSTOM_BIOS_B", "CUSTOM_CORE", "CUSTOM_FINE"}}), "node traits")
	tpl := "Validation of deploy steps from deploy templates matching this node's instance traits failed. Matching deploy templates: "
	tests := []struct {
		name   string
		traits any // instance_info.traits; nil removes it
		ok     bool
		reason string
	}{
		{"no instance traits", nil, true, ""},
		{"empty list", []any{}, true, ""},
		{"traits set on the node", []any{"CUSTOM_GPU"}, true, ""},
		{"trait missing on the node", []any{"CUSTOM_GPU", "CUSTOM_NVME"}, false,
			"Cannot specify instance traits that are not also set on the node. Node " + uuid + " is missing traits CUSTOM_NVME"},
		{"traits not a list", "CUSTOM_GPU", false,
			"Error parsing traits from Node " + uuid + " instance_info field. A list of strings is expected."},
		{"trait not a string", []any{"CUSTOM_GPU", 7}, false,
			"Error parsing traits from Node " + uuid + " instance_info field. A list of strings is expected."},
		{"one template", []any{"CUSTOM_BIOS_A", "CUSTOM_FINE"}, true, ""},
		{"templates repeat a step", []any{"CUSTOM_BIOS_A", "CUSTOM_BIOS_B"}, false,
			tpl + "CUSTOM_BIOS_A,CUSTOM_BIOS_B. Errors: deploy steps from all deploy templates matching this node's instance traits cannot have the same interface and step. Duplicate deploy steps for bios.apply_configuration"},
		{"template overrides the core step", []any{"CUSTOM_CORE"}, false,
			tpl + "CUSTOM_CORE. Errors: deploy step deploy on interface deploy is a core step and cannot be overridden by user steps. It may be disabled by setting the priority to 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			patch := []any{map[string]any{"op": "add", "path": "/instance_info/traits", "value": tc.traits}}
			if tc.traits == nil {
				patch = []any{map[string]any{"op": "replace", "path": "/instance_info", "value": map[string]any{}}}
			}
			e.must(200, e.do("PATCH", "/v1/nodes/vt", patch), "patch instance_info")
			r := e.must(200, e.do("GET", "/v1/nodes/vt/validate", nil), "validate")
			d, _ := r.j["deploy"].(map[string]any)
			if d["result"] != tc.ok || tc.reason != "" && d["reason"] != tc.reason || tc.reason == "" && d["reason"] != nil {
				t.Errorf("deploy %v, want result %v reason %q", d, tc.ok, tc.reason)
			}
		})
	}
}
