package api

import (
	"fmt"
	"strings"
	"testing"
)

func rbStep(iface, name string, order any, args map[string]any) map[string]any {
	st := map[string]any{"interface": iface, "step": name, "order": order}
	if args != nil {
		st["args"] = args
	}
	return st
}

// Runbooks as Ironic's API keeps them (1.92): create, list, show by UUID
// or name, JSON Patch, delete, the schema's refusals and the version gate.
func TestRunbooksAPI(t *testing.T) {
	e := newTestEnv(t, nil)
	e.version = "1.92"
	body := map[string]any{"name": "CUSTOM_WIPE", "steps": []any{
		rbStep("deploy", "erase_devices_metadata", 1, map[string]any{"bmc_password": "s3cret"}),
		rbStep("power", "wait", "2", nil)},
		"extra": map[string]any{"team": "ops"}, "owner": "p1"}
	r := e.must(201, e.do("POST", "/v1/runbooks", body), "create")
	id := r.str("uuid")
	steps, _ := r.j["steps"].([]any)
	if r.str("name") != "CUSTOM_WIPE" || r.str("owner") != "p1" || r.j["public"] != false || r.j["disable_ramdisk"] != false ||
		!strings.HasSuffix(r.h.Get("Location"), "/v1/runbooks/"+id) || strings.Contains(string(r.raw), "s3cret") || len(steps) != 2 {
		t.Fatalf("create: %s", r.raw)
	}
	// A string order is kept as a number, missing args as {}.
	if second := steps[1].(map[string]any); second["order"] != float64(2) || fmt.Sprint(second["args"]) != "map[]" {
		t.Errorf("second step: %v", second)
	}
	e.must(409, e.do("POST", "/v1/runbooks", body), "same name")
	fixed := "0b0b0b0b-1111-2222-3333-444444444444"
	if r := e.must(201, e.do("POST", "/v1/runbooks", map[string]any{"uuid": fixed, "name": "CUSTOM_B", "public": true, "disable_ramdisk": true,
		"steps": []any{rbStep("bios", "apply_configuration", 0, map[string]any{})}}), "given uuid"); r.str("uuid") != fixed || r.j["public"] != true {
		t.Errorf("create with uuid: %s", r.raw)
	}
	if r := e.do("POST", "/v1/runbooks", map[string]any{"uuid": fixed, "name": "CUSTOM_C", "steps": []any{rbStep("bios", "x", 0, nil)}}); r.code != 409 ||
		r.fault() != "A runbook with UUID "+fixed+" already exists." {
		t.Errorf("same uuid: %d %s", r.code, r.raw)
	}

	bad := []struct {
		name string
		body map[string]any
		want string
	}{
		{"name not a trait", map[string]any{"name": "wipe", "steps": []any{rbStep("deploy", "x", 1, nil)}},
			"Schema error for runbook: 'wipe' does not match '^CUSTOM_[A-Z0-9_]+$' nor a standard trait"},
		{"no name", map[string]any{"steps": []any{rbStep("deploy", "x", 1, nil)}}, "Schema error for runbook: 'name' is a required property"},
		{"no steps", map[string]any{"name": "CUSTOM_X"}, "Schema error for runbook: 'steps' is a required property"},
		{"empty steps", map[string]any{"name": "CUSTOM_X", "steps": []any{}}, "Schema error for runbook: [] is too short"},
		{"step without order", map[string]any{"name": "CUSTOM_X", "steps": []any{map[string]any{"interface": "deploy", "step": "x"}}},
			"Schema error for runbook: 'order' is a required property"},
		{"negative order", map[string]any{"name": "CUSTOM_X", "steps": []any{rbStep("deploy", "x", -1, nil)}},
			"Schema error for runbook: -1 is not valid under any of the given schemas"},
		{"priority", map[string]any{"name": "CUSTOM_X", "steps": []any{map[string]any{"interface": "deploy", "step": "x", "order": 1, "priority": 1}}},
			"Schema error for runbook: Additional properties are not allowed ('priority' was unexpected)"},
		{"bad interface", map[string]any{"name": "CUSTOM_X", "steps": []any{rbStep("boot", "x", 1, nil)}},
			"Schema error for runbook: 'boot' is not one of ['vendor', 'power', 'management', 'firmware', 'deploy', 'bios', 'raid']"},
		{"duplicate steps", map[string]any{"name": "CUSTOM_X", "steps": []any{rbStep("deploy", "x", 1, nil), rbStep("deploy", "x", 2, nil)}},
			"Deploy template invalid: Duplicate deploy steps. A template cannot have multiple deploy steps with the same interface and step. Duplicates: interface: deploy, step: x."},
		{"unknown field", map[string]any{"name": "CUSTOM_X", "steps": []any{rbStep("deploy", "x", 1, nil)}, "description": "d"},
			"Schema error for runbook: Additional properties are not allowed ('description' was unexpected)"},
		{"public not a boolean", map[string]any{"name": "CUSTOM_X", "steps": []any{rbStep("deploy", "x", 1, nil)}, "public": "yes"},
			"Schema error for runbook: 'yes' is not of type 'boolean', 'null'"},
		{"bad uuid", map[string]any{"uuid": "nope", "name": "CUSTOM_X", "steps": []any{rbStep("deploy", "x", 1, nil)}}, "Expected UUID for uuid: nope"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if r := e.must(400, e.do("POST", "/v1/runbooks", tc.body), tc.name); r.fault() != tc.want {
				t.Errorf("POST %v: %q, want %q", tc.body, r.fault(), tc.want)
			}
		})
	}
	if n := len(e.must(200, e.do("GET", "/v1/runbooks", nil), "list").j["runbooks"].([]any)); n != 2 {
		t.Fatalf("refused runbooks were kept: %d runbooks", n)
	}

	l := e.must(200, e.do("GET", "/v1/runbooks", nil), "list")
	first := l.j["runbooks"].([]any)[0].(map[string]any)
	if len(first) != 3 || first["name"] != "CUSTOM_WIPE" || first["links"] == nil {
		t.Errorf("list item: %v", first)
	}
	d := e.must(200, e.do("GET", "/v1/runbooks?detail=true&sort_key=name&sort_dir=desc", nil), "detail")
	if dl := d.j["runbooks"].([]any); dl[0].(map[string]any)["name"] != "CUSTOM_WIPE" || dl[0].(map[string]any)["steps"] == nil {
		t.Errorf("detail list: %s", d.raw)
	}
	if p := e.must(200, e.do("GET", "/v1/runbooks?limit=1", nil), "page"); !strings.Contains(fmt.Sprint(p.j["next"]), "marker="+id) {
		t.Errorf("page: %s", p.raw)
	}
	e.must(400, e.do("GET", "/v1/runbooks?sort_key=steps", nil), "sort by steps")
	e.must(400, e.do("GET", "/v1/runbooks?detail=true&fields=name", nil), "detail and fields")
	f := e.must(200, e.do("GET", "/v1/runbooks/CUSTOM_WIPE?fields=name,owner", nil), "by name with fields")
	if len(f.j) != 3 || f.str("owner") != "p1" || f.j["steps"] != nil {
		t.Errorf("get with fields: %s", f.raw)
	}
	e.must(200, e.do("GET", "/v1/runbooks/"+id, nil), "by uuid")
	if r := e.must(404, e.do("GET", "/v1/runbooks/CUSTOM_NONE", nil), "missing"); r.fault() != "Runbook CUSTOM_NONE could not be found." {
		t.Errorf("missing: %s", r.raw)
	}

	p := e.must(200, e.do("PATCH", "/v1/runbooks/"+id, []map[string]any{
		{"op": "replace", "path": "/name", "value": "CUSTOM_WIPE_AFTER"},
		{"op": "add", "path": "/steps/-", "value": rbStep("management", "clear_job_queue", 3, nil)},
		{"op": "replace", "path": "/steps/0/order", "value": 5},
		{"op": "replace", "path": "/disable_ramdisk", "value": true},
	}), "patch")
	ps := p.j["steps"].([]any)
	if p.str("name") != "CUSTOM_WIPE_AFTER" || len(ps) != 3 || ps[0].(map[string]any)["order"] != float64(5) || p.j["disable_ramdisk"] != true || p.j["updated_at"] == nil {
		t.Errorf("patch: %s", p.raw)
	}
	patchBad := []struct {
		name string
		ops  []map[string]any
		code int
		want string
	}{
		{"uuid", []map[string]any{{"op": "replace", "path": "/uuid", "value": "x"}}, 400,
			"Cannot patch /uuid. Only the following can be updated: disable_ramdisk, extra, name, owner, public, steps"},
		{"to no steps", []map[string]any{{"op": "replace", "path": "/steps", "value": []any{}}}, 400, "Schema error for runbook: [] is too short"},
		{"to a used name", []map[string]any{{"op": "replace", "path": "/name", "value": "CUSTOM_B"}}, 409, "A runbook with name CUSTOM_WIPE_AFTER already exists."},
		{"name not a trait", []map[string]any{{"op": "replace", "path": "/name", "value": "lower"}}, 400,
			"Schema error for runbook: 'lower' does not match '^CUSTOM_[A-Z0-9_]+$' nor a standard trait"},
		{"owner with public", []map[string]any{{"op": "replace", "path": "/public", "value": true}, {"op": "replace", "path": "/owner", "value": "p2"}}, 400,
			"Couldn't apply patch '[{'op': 'replace', 'path': '/public', 'value': True}, {'op': 'replace', 'path': '/owner', 'value': 'p2'}]'. Reason: There cannot be an owner for a public runbook"},
	}
	for _, tc := range patchBad {
		t.Run("patch "+tc.name, func(t *testing.T) {
			if r := e.must(tc.code, e.do("PATCH", "/v1/runbooks/"+id, tc.ops), tc.name); r.fault() != tc.want {
				t.Errorf("PATCH %v: %q, want %q", tc.ops, r.fault(), tc.want)
			}
		})
	}
	// An owner for a public runbook is refused; making it public forgets
	// its owner; an owner goes with public false in one patch.
	if r := e.must(400, e.do("PATCH", "/v1/runbooks/CUSTOM_B", []map[string]any{{"op": "add", "path": "/owner", "value": "p3"}}), "owner of public"); !strings.Contains(r.fault(), "There cannot be an owner for a public runbook") {
		t.Errorf("owner of a public runbook: %s", r.raw)
	}
	if r := e.must(200, e.do("PATCH", "/v1/runbooks/CUSTOM_B", []map[string]any{{"op": "replace", "path": "/public", "value": false}, {"op": "add", "path": "/owner", "value": "p3"}}), "owned"); r.j["public"] != false || r.str("owner") != "p3" {
		t.Errorf("public false with owner: %s", r.raw)
	}
	if r := e.must(200, e.do("PATCH", "/v1/runbooks/CUSTOM_B", []map[string]any{{"op": "replace", "path": "/public", "value": true}}), "public again"); r.j["public"] != true || r.j["owner"] != nil {
		t.Errorf("public forgets owner: %s", r.raw)
	}

	// Below 1.92 runbooks do not exist.
	if r := e.must(404, e.do("GET", "/v1/runbooks", nil, hdrLegacyVersion, "1.91"), "list below 1.92"); !strings.Contains(string(r.raw), "The API version does not allow runbooks") {
		t.Errorf("below 1.92: %s", r.raw)
	}
	e.must(404, e.do("GET", "/v1/runbooks/CUSTOM_B", nil, hdrLegacyVersion, "1.91"), "show below 1.92")
	e.must(405, e.do("POST", "/v1/runbooks", body, hdrLegacyVersion, "1.91"), "create below 1.92")
	e.must(405, e.do("DELETE", "/v1/runbooks/CUSTOM_B", nil, hdrLegacyVersion, "1.91"), "delete below 1.92")
	if v := e.must(200, e.do("GET", "/v1/", nil), "v1 at 1.92"); v.j["runbooks"] == nil {
		t.Errorf("/v1/ at 1.92 lists no runbooks: %s", v.raw)
	}
	if v := e.must(200, e.do("GET", "/v1/", nil, hdrLegacyVersion, "1.91"), "v1 at 1.91"); v.j["runbooks"] != nil {
		t.Errorf("/v1/ at 1.91 lists runbooks: %s", v.raw)
	}

	e.must(204, e.do("DELETE", "/v1/runbooks/CUSTOM_B", nil), "delete by name")
	e.must(404, e.do("GET", "/v1/runbooks/CUSTOM_B", nil), "deleted")
	e.must(204, e.do("DELETE", "/v1/runbooks/"+id, nil), "delete by uuid")
	e.must(404, e.do("DELETE", "/v1/runbooks/"+id, nil), "deleted twice")
}

// A runbook in a manual cleaning or a servicing request: its steps replace
// the request's, on nodes whose traits include its name, with Ironic's
// refusals otherwise.
func TestRunbookProvision(t *testing.T) {
	e := newTestEnv(t, nil)
	e.version = "1.92"
	e.must(201, e.do("POST", "/v1/runbooks", map[string]any{"name": "CUSTOM_RB_CLEAN", "steps": []any{
		rbStep("bios", "apply_configuration", 1, map[string]any{"settings": []any{map[string]any{"name": "NumLock", "value": "Off"}}}),
		rbStep("deploy", "erase_devices_metadata", 2, nil)}}), "runbook")
	e.must(201, e.do("POST", "/v1/runbooks", map[string]any{"name": "CUSTOM_RB_SERVICE", "public": true, "steps": []any{
		rbStep("bios", "apply_configuration", 0, map[string]any{"settings": []any{map[string]any{"name": "NumLock", "value": "On"}}})}}), "service runbook")
	e.must(201, e.do("POST", "/v1/runbooks", map[string]any{"name": "CUSTOM_RB_AGENT", "steps": []any{
		rbStep("deploy", "erase_devices", 0, nil)}}), "agent runbook")
	uuid := e.createNode(map[string]any{"name": "rn"}).str("uuid")
	e.provision("rn", "manage", "manageable")
	clean := func(runbook string, extra map[string]any, hdr ...string) *resp {
		b := map[string]any{"target": "clean", "runbook": runbook}
		for k, v := range extra {
			b[k] = v
		}
		return e.do("PUT", "/v1/nodes/rn/states/provision", b, hdr...)
	}
	refusals := []struct {
		name string
		r    func() *resp
		code int
		want string
	}{
		{"node without the trait", func() *resp { return clean("CUSTOM_RB_CLEAN", nil) }, 400,
			"This runbook has not been approved for use on this node " + uuid + ". Please ask an administrator to add it to your node traits."},
		{"missing runbook", func() *resp { return clean("CUSTOM_NONE", nil) }, 404, "Runbook CUSTOM_NONE could not be found."},
		{"below 1.92", func() *resp { return clean("CUSTOM_RB_CLEAN", nil, hdrLegacyVersion, "1.91") }, 406, "Request not acceptable."},
		{"not for provide", func() *resp {
			return e.do("PUT", "/v1/nodes/rn/states/provision", map[string]any{"target": "provide", "runbook": "CUSTOM_RB_CLEAN"})
		}, 400, "\"runbooks\" is only valid when setting target provision state to any of ['clean', 'service']"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			if r := e.must(tc.code, tc.r(), tc.name); r.fault() != tc.want {
				t.Errorf("%s: %q, want %q", tc.name, r.fault(), tc.want)
			}
			if n := e.must(200, e.do("GET", "/v1/nodes/rn", nil), "node"); n.str("provision_state") != "manageable" || n.j["last_error"] != nil {
				t.Errorf("%s changed the node: %s", tc.name, n.raw)
			}
		})
	}

	e.must(204, e.do("PUT", "/v1/nodes/rn/traits/CUSTOM_RB_CLEAN", nil), "trait")
	if r := e.must(400, clean("CUSTOM_RB_CLEAN", map[string]any{"clean_steps": []any{rbStep("deploy", "x", 0, nil)}}), "both"); r.fault() != "Please provide either \"clean_steps\" or a runbook, but not both." {
		t.Errorf("runbook and clean_steps: %s", r.raw)
	}
	e.must(202, clean("CUSTOM_RB_CLEAN", nil), "manual clean with a runbook")
	n := e.waitProvision("rn", "manageable")
	if n["last_error"] != nil {
		t.Errorf("manual clean: last_error %v", n["last_error"])
	}
	// fake-hardware runs no agent: cleaning was given the runbook's steps,
	// in its order.
	dii, _ := n["driver_internal_info"].(map[string]any)
	got := fmt.Sprint(dii["clean_steps"])
	want := "[map[args:map[settings:[map[name:NumLock value:Off]]] interface:bios order:1 step:apply_configuration] map[args:map[] interface:deploy order:2 step:erase_devices_metadata]]"
	if got != want {
		t.Errorf("clean steps = %s, want %s", got, want)
	}
	// By UUID too.
	rb := e.must(200, e.do("GET", "/v1/runbooks/CUSTOM_RB_CLEAN", nil), "runbook")
	e.must(202, clean(rb.str("uuid"), nil), "manual clean by runbook uuid")
	e.waitProvision("rn", "manageable")

	// Servicing an active node: the public runbook's steps run (fake
	// bios), and those the node does not offer as service steps are
	// refused as Ironic refuses them.
	e.provision("rn", "provide", "available")
	e.provision("rn", "active", "active")
	service := func(runbook string) *resp {
		return e.do("PUT", "/v1/nodes/rn/states/provision", map[string]any{"target": "service", "runbook": runbook})
	}
	if r := e.must(400, service("CUSTOM_RB_SERVICE"), "service without the trait"); !strings.Contains(r.fault(), "has not been approved for use on this node") {
		t.Errorf("service without the trait: %s", r.raw)
	}
	e.must(204, e.do("PUT", "/v1/nodes/rn/traits/CUSTOM_RB_SERVICE", nil), "service trait")
	e.must(204, e.do("PUT", "/v1/nodes/rn/traits/CUSTOM_RB_AGENT", nil), "agent trait")
	if r := e.must(400, service("CUSTOM_RB_AGENT"), "unsupported service step"); r.fault() != `node does not support this service step: {"args":{},"interface":"deploy","order":0,"step":"erase_devices"}` {
		t.Errorf("unsupported service step: %s", r.raw)
	}
	if r := e.must(400, e.do("PUT", "/v1/nodes/rn/states/provision", map[string]any{"target": "service", "runbook": "CUSTOM_RB_SERVICE",
		"service_steps": []any{rbStep("bios", "factory_reset", 0, nil)}}), "both"); r.fault() != "Please provide either \"service_steps\" or a runbook, but not both." {
		t.Errorf("runbook and service_steps: %s", r.raw)
	}
	e.must(202, service("CUSTOM_RB_SERVICE"), "service with a runbook")
	if n := e.waitProvision("rn", "active"); n["last_error"] != nil {
		t.Errorf("service: last_error %v", n["last_error"])
	}
}
