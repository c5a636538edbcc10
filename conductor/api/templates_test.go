package api

import (
	"fmt"
	"strings"
	"testing"
)

func TestDeployTemplates(t *testing.T) {
	e := newTestEnv(t, nil)
	e.version = "1.55"
	step := func(name string, prio int, args map[string]any) map[string]any {
		return map[string]any{"interface": "deploy", "step": name, "priority": prio, "args": args}
	}
	body := map[string]any{"name": "CUSTOM_WIPE", "steps": []any{step("erase_devices_metadata", 10, map[string]any{"bmc_password": "s3cret"})},
		"extra": map[string]any{"owner": "ops"}}
	r := e.must(201, e.do("POST", "/v1/deploy_templates", body), "create")
	id := r.str("uuid")
	if r.str("name") != "CUSTOM_WIPE" || !strings.HasSuffix(r.h.Get("Location"), "/v1/deploy_templates/"+id) || strings.Contains(string(r.raw), "s3cret") {
		t.Fatalf("create: %s", r.raw)
	}
	e.must(409, e.do("POST", "/v1/deploy_templates", body), "same name")
	tests := []struct {
		name string
		body map[string]any
		want string
	}{
		{"name not a trait", map[string]any{"name": "wipe", "steps": []any{step("x", 1, map[string]any{})}}, "Schema error"},
		{"no steps", map[string]any{"name": "CUSTOM_X"}, "'steps' is a required property"},
		{"empty steps", map[string]any{"name": "CUSTOM_X", "steps": []any{}}, "too short"},
		{"step without priority", map[string]any{"name": "CUSTOM_X", "steps": []any{map[string]any{"interface": "deploy", "step": "x", "args": map[string]any{}}}}, "'priority' is a required property"},
		{"bad interface", map[string]any{"name": "CUSTOM_X", "steps": []any{map[string]any{"interface": "boot", "step": "x", "args": map[string]any{}, "priority": 1}}}, "is not one of"},
		{"duplicate steps", map[string]any{"name": "CUSTOM_X", "steps": []any{step("x", 1, map[string]any{}), step("x", 2, map[string]any{})}}, "Duplicate deploy steps"},
		{"unknown field", map[string]any{"name": "CUSTOM_X", "steps": []any{step("x", 1, map[string]any{})}, "color": "red"}, "'color' was unexpected"},
	}
	for _, tc := range tests {
		if r := e.must(400, e.do("POST", "/v1/deploy_templates", tc.body), tc.name); !strings.Contains(r.fault(), tc.want) {
			t.Errorf("%s: %s, want %q", tc.name, r.fault(), tc.want)
		}
	}
	e.must(201, e.do("POST", "/v1/deploy_templates", map[string]any{"name": "CUSTOM_B", "steps": []any{step("write_image", 80, map[string]any{})}}), "second")
	l := e.must(200, e.do("GET", "/v1/deploy_templates", nil), "list")
	items := l.j["deploy_templates"].([]any)
	if len(items) != 2 {
		t.Fatalf("list: %s", l.raw)
	}
	if first := items[0].(map[string]any); first["name"] != "CUSTOM_WIPE" || first["steps"] != nil || first["links"] == nil {
		t.Errorf("list item: %v", first)
	}
	d := e.must(200, e.do("GET", "/v1/deploy_templates?detail=true&sort_key=name&sort_dir=desc", nil), "detail")
	if dl := d.j["deploy_templates"].([]any); dl[0].(map[string]any)["name"] != "CUSTOM_WIPE" || dl[0].(map[string]any)["steps"] == nil {
		t.Errorf("detail list: %s", d.raw)
	}
	p1 := e.must(200, e.do("GET", "/v1/deploy_templates?limit=1", nil), "page")
	if !strings.Contains(fmt.Sprint(p1.j["next"]), "marker="+id) {
		t.Errorf("page: %s", p1.raw)
	}
	f := e.must(200, e.do("GET", "/v1/deploy_templates/CUSTOM_WIPE?fields=name,steps", nil), "by name with fields")
	if f.str("name") != "CUSTOM_WIPE" || f.j["extra"] != nil || !strings.Contains(string(f.raw), Masked) {
		t.Errorf("get: %s", f.raw)
	}
	p := e.must(200, e.do("PATCH", "/v1/deploy_templates/"+id, []map[string]any{
		{"op": "replace", "path": "/name", "value": "CUSTOM_WIPE_AFTER"},
		{"op": "add", "path": "/steps/-", "value": step("erase_devices_metadata_2", 5, map[string]any{})},
		{"op": "replace", "path": "/steps/0/priority", "value": 20},
	}), "patch")
	if p.str("name") != "CUSTOM_WIPE_AFTER" || len(p.j["steps"].([]any)) != 2 || p.j["steps"].([]any)[0].(map[string]any)["priority"] != float64(20) {
		t.Errorf("patch: %s", p.raw)
	}
	e.must(400, e.do("PATCH", "/v1/deploy_templates/"+id, []map[string]any{{"op": "remove", "path": "/steps/0"}, {"op": "remove", "path": "/steps/0"}}), "patch to no steps")
	e.must(409, e.do("PATCH", "/v1/deploy_templates/"+id, []map[string]any{{"op": "replace", "path": "/name", "value": "CUSTOM_B"}}), "patch to a used name")
	e.must(400, e.do("PATCH", "/v1/deploy_templates/"+id, []map[string]any{{"op": "replace", "path": "/uuid", "value": "x"}}), "patch uuid")
	e.must(404, e.do("GET", "/v1/deploy_templates", nil, hdrLegacyVersion, "1.54"), "below 1.55")
	e.must(405, e.do("POST", "/v1/deploy_templates", body, hdrLegacyVersion, "1.54"), "create below 1.55")
	e.must(204, e.do("DELETE", "/v1/deploy_templates/CUSTOM_B", nil), "delete by name")
	e.must(404, e.do("GET", "/v1/deploy_templates/CUSTOM_B", nil), "deleted")

	// Instance traits select templates; they must be node traits.
	e.createNode(map[string]any{"name": "tn"})
	e.provision("tn", "manage", "manageable")
	e.provision("tn", "provide", "available")
	e.must(200, e.do("PATCH", "/v1/nodes/tn", []map[string]any{{"op": "add", "path": "/instance_info/traits", "value": []string{"CUSTOM_WIPE_AFTER"}}}), "instance traits")
	if r := e.must(400, e.do("PUT", "/v1/nodes/tn/states/provision", map[string]any{"target": "active"}), "trait not on node"); !strings.Contains(r.fault(), "missing traits CUSTOM_WIPE_AFTER") {
		t.Errorf("deploy with instance traits not on the node: %s", r.fault())
	}
	e.must(204, e.do("PUT", "/v1/nodes/tn/traits/CUSTOM_WIPE_AFTER", nil, hdrLegacyVersion, "1.55"), "node trait")
	if r := e.must(400, e.do("PUT", "/v1/nodes/tn/states/provision", map[string]any{"target": "active",
		"deploy_steps": []any{step("erase_devices_metadata", 30, map[string]any{})}}, hdrLegacyVersion, "1.69"), "template and user step clash"); !strings.Contains(r.fault(), "Duplicate deploy steps") {
		t.Errorf("template + user step: %s", r.fault())
	}
}

// Secrets in the arguments of requested steps never come back through
// the API (driver_internal_info keeps the requested steps).
func TestStepArgsMasked(t *testing.T) {
	e := newTestEnv(t, nil)
	e.createNode(map[string]any{"name": "sa"})
	e.toAvailable("sa")
	e.addSecret("s3cret-step")
	e.must(202, e.do("PUT", "/v1/nodes/sa/states/provision", map[string]any{"target": "active",
		"deploy_steps": []any{map[string]any{"interface": "deploy", "step": "erase_devices_metadata", "priority": 90,
			"args": map[string]any{"bmc_password": "s3cret-step", "wipe": true}}}}, hdrLegacyVersion, "1.69"), "deploy with steps")
	e.waitProvision("sa", "active")
	r := e.must(200, e.do("GET", "/v1/nodes/sa", nil), "node")
	dii := fmt.Sprint(r.j["driver_internal_info"])
	if strings.Contains(string(r.raw), "s3cret-step") || !strings.Contains(dii, "erase_devices_metadata") || !strings.Contains(dii, Masked) {
		t.Errorf("driver_internal_info %s", dii)
	}
}
