package api

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/conductor/store"
)

// Parent and child nodes (API 1.83): parent_node is resolved to the
// parent's UUID and must name an existing node of the same owner; child
// nodes are listed only on request; /children lists them.
func TestParentChildNodes(t *testing.T) {
	e := newTestEnv(t, nil)
	v := []string{hdrLegacyVersion, "1.83"}
	parent := e.must(201, e.do("POST", "/v1/nodes", map[string]any{"name": "chassis-1", "driver": "fake-hardware"}, v...), "parent").str("uuid")
	e.must(201, e.do("POST", "/v1/nodes", map[string]any{"name": "other", "driver": "fake-hardware", "owner": "proj-b"}, v...), "other owner")
	c1 := e.must(201, e.do("POST", "/v1/nodes", map[string]any{"name": "blade-1", "driver": "fake-hardware", "parent_node": "chassis-1"}, v...), "child by name")
	if got := c1.str("parent_node"); got != parent {
		t.Errorf("parent_node by name stored as %q, want the parent's UUID %s", got, parent)
	}
	e.must(201, e.do("POST", "/v1/nodes", map[string]any{"name": "blade-2", "driver": "fake-hardware"}, v...), "second blade")
	r := e.must(200, e.do("PATCH", "/v1/nodes/blade-2", []map[string]any{{"op": "add", "path": "/parent_node", "value": parent}}, v...), "patch parent")
	if r.str("parent_node") != parent {
		t.Errorf("patched parent_node = %q", r.str("parent_node"))
	}

	refused := "Unable to apply the requested parent_node"
	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   any
		code   int
		msg    string
	}{
		{"missing parent on create", "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "parent_node": "nope"}, 400, refused},
		{"other owner's node", "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "parent_node": "other"}, 400, refused},
		{"too long", "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "parent_node": strings.Repeat("x", 37)}, 400, "too long"},
		{"missing parent on patch", "PATCH", "/v1/nodes/blade-2", []map[string]any{{"op": "replace", "path": "/parent_node", "value": "nope"}}, 400, refused},
		{"below 1.83", "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "parent_node": "chassis-1"}, 406, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hv := v
			if tc.code == 406 {
				hv = []string{hdrLegacyVersion, "1.82"}
			}
			r := e.must(tc.code, e.do(tc.method, tc.path, tc.body, hv...), tc.name)
			if !strings.Contains(r.fault(), tc.msg) {
				t.Errorf("error %q, want it to contain %q", r.fault(), tc.msg)
			}
		})
	}
	if r := e.must(200, e.do("GET", "/v1/nodes/blade-2", nil, v...), "blade-2"); r.str("parent_node") != parent {
		t.Errorf("refused patch changed parent_node to %q", r.str("parent_node"))
	}

	names := func(path string, hv ...string) string {
		t.Helper()
		r := e.must(200, e.do("GET", path, nil, hv...), path)
		var out []string
		for _, n := range r.j["nodes"].([]any) {
			out = append(out, n.(map[string]any)["name"].(string))
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct{ path, want string }{
		{"/v1/nodes", "chassis-1,other"},
		{"/v1/nodes?parent_node=" + parent, "blade-1,blade-2"},
		{"/v1/nodes?include_children=true", "chassis-1,other,blade-1,blade-2"},
		{"/v1/nodes?include_children=True&parent_node=" + parent, "chassis-1,other,blade-1,blade-2"},
		{"/v1/nodes?include_children=false", "chassis-1,other"},
	} {
		if got := names(tc.path, v...); got != tc.want {
			t.Errorf("GET %s = %s, want %s", tc.path, got, tc.want)
		}
	}
	e.must(406, e.do("GET", "/v1/nodes?include_children=true", nil, hdrLegacyVersion, "1.82"), "include_children below 1.83")
	e.must(400, e.do("GET", "/v1/nodes?include_children=maybe", nil, v...), "include_children not a boolean")

	r = e.must(200, e.do("GET", "/v1/nodes/chassis-1/children", nil, v...), "children")
	if got := fmt.Sprint(r.j["children"]); got != fmt.Sprintf("[%s %s]", c1.str("uuid"), r.j["children"].([]any)[1]) || len(r.j["children"].([]any)) != 2 {
		t.Errorf("children = %s", r.raw)
	}
	if l, _ := r.j["links"].(map[string]any); l["rel"] != "children" || !strings.HasSuffix(l["href"].(string), "/v1/nodes?parent_node="+parent) {
		t.Errorf("children links = %v", r.j["links"])
	}
	if r := e.must(200, e.do("GET", "/v1/nodes/blade-1/children", nil, v...), "no children"); fmt.Sprint(r.j["children"]) != "[]" {
		t.Errorf("children of a leaf = %s", r.raw)
	}
	e.must(404, e.do("GET", "/v1/nodes/chassis-1/children", nil, hdrLegacyVersion, "1.82"), "children below 1.83")
	e.must(404, e.do("GET", "/v1/nodes/nope/children", nil, v...), "children of a missing node")
}

// Manual cleaning ends where it started (manageable), automated cleaning
// in available; fake-hardware's fake bios steps do nothing and cache
// nothing, as Ironic's.
func TestManualCleanEndsManageable(t *testing.T) {
	e := newTestEnv(t, nil)
	e.createNode(map[string]any{"name": "mc"})
	e.provision("mc", "manage", "manageable")
	e.must(202, e.do("PUT", "/v1/nodes/mc/states/provision", map[string]any{"target": "clean",
		"clean_steps": []map[string]any{{"interface": "bios", "step": "apply_configuration",
			"args": map[string]any{"settings": []map[string]any{{"name": "NumLock", "value": "Off"}}}}}}, hdrLegacyVersion, "1.15"), "manual clean")
	n := e.waitProvision("mc", "manageable")
	if n["last_error"] != nil {
		t.Errorf("manual clean: last_error %v", n["last_error"])
	}
	if r := e.must(200, e.do("GET", "/v1/nodes/mc/bios", nil, hdrLegacyVersion, "1.40"), "bios"); fmt.Sprint(r.j["bios"]) != "[]" {
		t.Errorf("fake bios cached settings: %s", r.raw)
	}
	e.provision("mc", "provide", "available")
}

// Cached BIOS settings as the API shows them (1.40, detail and fields in
// 1.74, one setting by name).
func TestBIOSListing(t *testing.T) {
	e := newTestEnv(t, nil)
	uuid := e.createNode(map[string]any{"name": "bn"}).str("uuid")
	on, typ, ro := "On", "Enumeration", false
	if err := e.st.Update(context.Background(), func(tx store.Tx) error {
		_, _, _, err := tx.SyncBIOSSettings(uuid, []store.BIOSSetting{
			{Name: "NumLock", Value: &on, AttributeType: &typ, AllowableValues: []string{"On", "Off"}, ReadOnly: &ro},
			{Name: "ProcCores", Value: nil}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	v40 := []string{hdrLegacyVersion, "1.40"}
	v74 := []string{hdrLegacyVersion, "1.74"}
	r := e.must(200, e.do("GET", "/v1/nodes/bn/bios", nil, v40...), "list")
	list := r.j["bios"].([]any)
	first := list[0].(map[string]any)
	if len(list) != 2 || first["name"] != "NumLock" || first["value"] != "On" || first["created_at"] == nil ||
		first["updated_at"] != nil || first["attribute_type"] != nil || len(first["links"].([]any)) != 2 {
		t.Errorf("list: %s", r.raw)
	}
	if second := list[1].(map[string]any); second["value"] != nil {
		t.Errorf("a setting without value: %v", second)
	}
	r = e.must(200, e.do("GET", "/v1/nodes/bn/bios?detail=true", nil, v74...), "detail")
	d := r.j["bios"].([]any)[0].(map[string]any)
	if d["attribute_type"] != "Enumeration" || fmt.Sprint(d["allowable_values"]) != "[On Off]" || d["read_only"] != false || d["upper_bound"] != nil {
		t.Errorf("detail: %v", d)
	}
	r = e.must(200, e.do("GET", "/v1/nodes/bn/bios?fields=name", nil, v74...), "fields")
	if f := r.j["bios"].([]any)[0].(map[string]any); f["name"] != "NumLock" {
		t.Errorf("fields=name: %v", f)
	} else if _, has := f["value"]; has {
		t.Errorf("fields=name also shows value: %v", f)
	}
	e.must(400, e.do("GET", "/v1/nodes/bn/bios?fields=bogus", nil, v74...), "bad field")
	e.must(406, e.do("GET", "/v1/nodes/bn/bios?detail=true", nil, v40...), "detail below 1.74")
	r = e.must(200, e.do("GET", "/v1/nodes/bn/bios/NumLock", nil, v74...), "one")
	if one, _ := r.j["NumLock"].(map[string]any); one["value"] != "On" || one["attribute_type"] != "Enumeration" {
		t.Errorf("one setting: %s", r.raw)
	}
	r = e.must(200, e.do("GET", "/v1/nodes/bn/bios/NumLock", nil, v40...), "one at 1.40")
	if one, _ := r.j["NumLock"].(map[string]any); one["value"] != "On" {
		t.Errorf("one setting at 1.40: %s", r.raw)
	} else if _, has := one["attribute_type"]; has {
		t.Errorf("registry fields below 1.74: %s", r.raw)
	}
	if r := e.must(404, e.do("GET", "/v1/nodes/bn/bios/Nope", nil, v40...), "missing"); !strings.Contains(r.fault(), "doesn't have a BIOS setting 'Nope'") {
		t.Errorf("missing setting: %s", r.raw)
	}
	e.must(404, e.do("GET", "/v1/nodes/bn/bios", nil, hdrLegacyVersion, "1.39"), "below 1.40")
}

// Boot mode and Secure Boot changes (1.76) on a management interface that
// cannot make them (fake): accepted, then last_error says why, as Ironic.
func TestBootModeChanges(t *testing.T) {
	e := newTestEnv(t, nil)
	uuid := e.createNode(map[string]any{"name": "bm"}).str("uuid")
	v := []string{hdrLegacyVersion, "1.76"}
	r := e.must(202, e.do("PUT", "/v1/nodes/bm/states/boot_mode", map[string]any{"target": "uefi"}, v...), "boot mode")
	if !strings.HasSuffix(r.h.Get("Location"), "/v1/nodes/bm/states") {
		t.Errorf("Location %q", r.h.Get("Location"))
	}
	n := e.waitNode("bm", "last_error", func(n map[string]any) bool { return n["last_error"] != nil && n["reservation"] == nil })
	if want := "Failed to change boot mode to 'uefi: Driver fake-hardware does not support set_boot_mode (disabled or not implemented)."; n["last_error"] != want {
		t.Errorf("last_error %q, want %q", n["last_error"], want)
	}
	e.must(202, e.do("PUT", "/v1/nodes/bm/states/secure_boot", map[string]any{"target": "on"}, v...), "secure boot")
	n = e.waitNode("bm", "last_error", func(n map[string]any) bool {
		s, _ := n["last_error"].(string)
		return strings.Contains(s, "secure_boot") && n["reservation"] == nil
	})
	if want := "Failed to change secure_boot state to 'True': Driver fake-hardware does not support set_secure_boot_state (disabled or not implemented)."; n["last_error"] != want {
		t.Errorf("last_error %q, want %q", n["last_error"], want)
	}
	for _, tc := range []struct {
		name, path string
		body       any
		code       int
		msg        string
	}{
		{"bad mode", "boot_mode", map[string]any{"target": "floppy"}, 400, "Invalid boot mode floppy requested for node. Allowed boot modes are: bios, uefi"},
		{"mode not a string", "boot_mode", map[string]any{"target": 5}, 400, "Invalid boot mode 5"},
		{"no target", "boot_mode", map[string]any{}, 400, "Missing mandatory parameter: target"},
		{"unknown argument", "boot_mode", map[string]any{"target": "uefi", "now": true}, 400, "Unknown argument"},
		{"bad boolean", "secure_boot", map[string]any{"target": "maybe"}, 400, "Unrecognized value 'maybe'"},
	} {
		r := e.must(tc.code, e.do("PUT", "/v1/nodes/bm/states/"+tc.path, tc.body, v...), tc.name)
		if !strings.Contains(r.fault(), tc.msg) {
			t.Errorf("%s: %q, want it to contain %q", tc.name, r.fault(), tc.msg)
		}
	}
	e.must(404, e.do("PUT", "/v1/nodes/bm/states/boot_mode", map[string]any{"target": "uefi"}, hdrLegacyVersion, "1.75"), "below 1.76")
	e.setTransit(uuid, "cleaning", "available")
	if r := e.must(409, e.do("PUT", "/v1/nodes/bm/states/boot_mode", map[string]any{"target": "bios"}, v...), "transitioning"); !strings.Contains(r.fault(), "Node is in cleaning state") {
		t.Errorf("409: %s", r.raw)
	}
}

// Adoption takes a running machine as active without deploying it: the
// power state stays what the BMC said, a node deployed through the agent
// boots from disk from now on.
func TestAdoption(t *testing.T) {
	e := newTestEnv(t, nil)
	e.createNode(map[string]any{"name": "ad", "deploy_interface": "direct",
		"driver_info": map[string]any{"deploy_kernel": "http://example.invalid/k", "deploy_ramdisk": "http://example.invalid/r"}})
	e.provision("ad", "manage", "manageable")
	before := e.must(200, e.do("GET", "/v1/nodes/ad", nil), "node").j["power_state"]
	e.provision("ad", "adopt", "active")
	n := e.must(200, e.do("GET", "/v1/nodes/ad", nil), "node")
	if n.j["power_state"] != before || n.j["last_error"] != nil {
		t.Errorf("after adoption power_state %v (was %v), last_error %v", n.j["power_state"], before, n.j["last_error"])
	}
	r := e.must(200, e.do("GET", "/v1/nodes/ad/management/boot_device", nil), "boot device")
	if r.j["boot_device"] != "disk" || r.j["persistent"] != true {
		t.Errorf("boot device after adoption: %s", r.raw)
	}
}
