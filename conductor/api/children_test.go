package api

import (
	"fmt"
	"strings"
	"testing"
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
