package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestVersionNegotiation(t *testing.T) {
	e := newTestEnv(t, nil)
	cases := []struct {
		name   string
		hdr    []string
		code   int
		want   string // negotiated version ("" = no check)
		minmax bool   // min/max headers expected
	}{
		{"none means 1.1", []string{hdrLegacyVersion, ""}, 200, "1.1", true},
		{"explicit", []string{hdrLegacyVersion, "1.50"}, 200, "1.50", true},
		{"latest", []string{hdrLegacyVersion, "latest"}, 200, Version(MaxMinor).String(), true},
		{"LATEST case", []string{hdrLegacyVersion, "Latest"}, 200, Version(MaxMinor).String(), true},
		{"too new", []string{hdrLegacyVersion, "1.999"}, 406, "", true},
		{"major 2", []string{hdrLegacyVersion, "2.1"}, 406, "", true},
		{"1.0", []string{hdrLegacyVersion, "1.0"}, 406, "", true},
		// Ironic sends no version headers on an unparseable version.
		{"garbage", []string{hdrLegacyVersion, "banana"}, 406, "", false},
		{"garbage dots", []string{hdrLegacyVersion, "1.2.3"}, 406, "", false},
		{"signed minor", []string{hdrLegacyVersion, "1.+5"}, 406, "", false},
		{"new header wins", []string{hdrLegacyVersion, "1.10", hdrVersion, "baremetal 1.40"}, 200, "1.40", true},
		{"new header other service ignored", []string{hdrLegacyVersion, "1.10", hdrVersion, "compute 2.1"}, 200, "1.10", true},
		{"new header latest", []string{hdrLegacyVersion, "", hdrVersion, "baremetal latest"}, 200, Version(MaxMinor).String(), true},
		{"new header garbage", []string{hdrLegacyVersion, "1.10", hdrVersion, "baremetal x.y"}, 406, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			r := e.do("GET", "/v1/nodes", nil, tc.hdr...)
			if r.code != tc.code {
				t.Fatalf("status %d, want %d: %s", r.code, tc.code, r.raw)
			}
			if tc.want != "" {
				if got := r.h.Get(hdrLegacyVersion); got != tc.want {
					t.Errorf("%s = %q, want %q", hdrLegacyVersion, got, tc.want)
				}
				if got := r.h.Get(hdrVersion); got != "baremetal "+tc.want {
					t.Errorf("%s = %q", hdrVersion, got)
				}
			}
			if tc.minmax {
				if r.h.Get(hdrMinVersion) != "1.1" || r.h.Get(hdrMaxVersion) != Version(MaxMinor).String() {
					t.Errorf("min/max headers: %q %q", r.h.Get(hdrMinVersion), r.h.Get(hdrMaxVersion))
				}
			}
			if tc.code == 406 {
				em, _ := r.j["error_message"].(string)
				if !strings.Contains(em, `"code": 406`) && !strings.Contains(em, `"code":406`) {
					t.Errorf("406 body shape: %s", r.raw)
				}
			}
			if tc.code == 406 && r.h.Get(hdrRequestID) != "" {
				t.Errorf("406 has a request id (Ironic sends none)")
			}
			if tc.code == 200 && !strings.HasPrefix(r.h.Get(hdrRequestID), "req-") {
				t.Errorf("request id: %q", r.h.Get(hdrRequestID))
			}
		})
	}
}

func TestDiscovery(t *testing.T) {
	e := newTestEnv(t, nil)
	r := e.must(200, e.do("GET", "/", nil), "root")
	if r.h.Get(hdrMinVersion) != "" {
		t.Errorf("root has version headers")
	}
	dv, _ := r.j["default_version"].(map[string]any)
	if dv["version"] != Version(MaxMinor).String() || dv["min_version"] != "1.1" || dv["id"] != "v1" {
		t.Errorf("default_version: %v", dv)
	}
	if vs, _ := r.j["versions"].([]any); len(vs) != 1 {
		t.Errorf("versions: %v", r.j["versions"])
	}
	for _, p := range []string{"/v1", "/v1/"} {
		r = e.must(200, e.do("GET", p, nil, hdrLegacyVersion, ""), p)
		for _, k := range []string{"id", "links", "media_types", "chassis", "nodes", "ports", "drivers", "version"} {
			if _, ok := r.j[k]; !ok {
				t.Errorf("%s: missing %s", p, k)
			}
		}
		if _, ok := r.j["allocations"]; ok {
			t.Errorf("%s at 1.1 lists allocations", p)
		}
	}
	r = e.must(200, e.do("GET", "/v1", nil, hdrLegacyVersion, "latest"), "v1 latest")
	for _, k := range []string{"allocations", "conductors", "lookup", "heartbeat", "portgroups", "deploy_templates"} {
		if _, ok := r.j[k]; !ok {
			t.Errorf("v1 latest: missing %s", k)
		}
	}
	for _, p := range []string{"/v1/nonsense", "/nonsense"} {
		r = e.must(404, e.do("GET", p, nil), "unknown path")
		if !strings.Contains(r.str("error_message"), "404") {
			t.Errorf("unknown path body: %s", r.raw)
		}
		if r.h.Get(hdrMinVersion) != "" || r.h.Get(hdrRequestID) != "" {
			t.Errorf("unknown path has version/request-id headers: %v", r.h)
		}
	}
}

func TestNodeCRUD(t *testing.T) {
	e := newTestEnv(t, nil)
	e.addSecret("sup3r-s3cret")
	e.addSecret("other-s3cret")
	r := e.createNode(map[string]any{"name": "node-1", "resource_class": "baremetal",
		"driver_info": map[string]any{"ipmi_password": "sup3r-s3cret", "redfish_password": "other-s3cret", "ipmi_username": "admin"},
		"properties":  map[string]any{"cpus": 4}})
	id := r.str("uuid")
	if loc := r.h.Get("Location"); !strings.HasSuffix(loc, "/v1/nodes/"+id) {
		t.Errorf("Location %q", loc)
	}
	if r.j["provision_state"] != "enroll" || r.j["power_state"] != nil {
		t.Errorf("new node state: %v %v", r.j["provision_state"], r.j["power_state"])
	}
	di, _ := r.j["driver_info"].(map[string]any)
	if di["ipmi_password"] != Masked || di["redfish_password"] != Masked || di["ipmi_username"] != "admin" {
		t.Errorf("driver_info not masked: %v", di)
	}
	if _, ok := r.j["shard"]; ok {
		t.Errorf("1.78 node shows shard")
	}
	// name and uuid lookup
	byName := e.must(200, e.do("GET", "/v1/nodes/node-1", nil), "get by name")
	byUUID := e.must(200, e.do("GET", "/v1/nodes/"+id, nil), "get by uuid")
	e.must(200, e.do("GET", "/v1/nodes/"+strings.ToUpper(id), nil), "get by upper-case uuid")
	if byName.str("uuid") != id || byUUID.str("name") != "node-1" {
		t.Errorf("lookup mismatch")
	}
	if byName.j["conductor"] != "test-conductor" {
		t.Errorf("conductor field: %v", byName.j["conductor"])
	}
	e.must(404, e.do("GET", "/v1/nodes/nope", nil), "unknown node")
	e.must(404, e.do("GET", "/v1/nodes/8a0e1a4c-1111-4111-8111-111111111111", nil), "unknown uuid")

	// fields
	r = e.must(200, e.do("GET", "/v1/nodes/"+id+"?fields=uuid,name", nil), "fields")
	if len(r.j) != 3 { // uuid, name, links
		t.Errorf("fields: %v", r.j)
	}
	e.must(400, e.do("GET", "/v1/nodes/"+id+"?fields=uuid,bogus", nil), "bad field")
	e.must(406, e.do("GET", "/v1/nodes/"+id+"?fields=shard", nil), "field too new")

	bad := []struct {
		name string
		body any
		code int
		msg  string
	}{
		{"unknown field", map[string]any{"driver": "fake-hardware", "bogus": 1}, 400, "Additional properties"},
		{"bad driver", map[string]any{"driver": "nope"}, 400, "No valid host"},
		{"no driver", map[string]any{"name": "x"}, 400, "'driver' is a required property"},
		{"not an object", []int{1}, 400, "is not of type 'object'"},
		{"bad json", "{not json", 400, ""},
		{"duplicate name", map[string]any{"driver": "fake-hardware", "name": "node-1"}, 409, "already exists"},
		{"duplicate uuid", map[string]any{"driver": "fake-hardware", "uuid": id}, 409, "already exists"},
		{"uuid-like name", map[string]any{"driver": "fake-hardware", "name": "8a0e1a4c-1111-4111-8111-111111111112"}, 400, "Cannot create node with invalid name"},
		{"bad interface", map[string]any{"driver": "fake-hardware", "deploy_interface": "nope"}, 400, "interface"},
		{"bad uuid", map[string]any{"driver": "fake-hardware", "uuid": "xyz"}, 400, "UUID"},
		{"field too new", map[string]any{"driver": "fake-hardware", "shard": "a"}, 406, ""},
		{"wrong type", map[string]any{"driver": "fake-hardware", "properties": "x"}, 400, "not of type 'object'"},
		{"wrong bool", map[string]any{"driver": "fake-hardware", "maintenance": "banana"}, 400, "Invalid maintenance: Unrecognized value 'banana'"},
	}
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			e.t = t
			r := e.do("POST", "/v1/nodes", b.body)
			if r.code != b.code || !strings.Contains(r.fault(), b.msg) {
				t.Errorf("status %d (want %d), message %q (want ~%q)", r.code, b.code, r.fault(), b.msg)
			}
		})
	}
	e.t = t
	// DELETE /v1/nodes is 400 (Ironic), unknown node 404
	e.must(400, e.do("DELETE", "/v1/nodes", nil), "delete collection")
	e.must(404, e.do("DELETE", "/v1/nodes/nope", nil), "delete unknown")
	e.must(204, e.do("DELETE", "/v1/nodes/node-1", nil), "delete by name")
	e.must(404, e.do("GET", "/v1/nodes/"+id, nil), "gone")
	// name free again
	e.createNode(map[string]any{"name": "node-1"})
}

func TestNodePatch(t *testing.T) {
	e := newTestEnv(t, nil)
	id := e.createNode(map[string]any{"name": "p1", "properties": map[string]any{"a": 1},
		"driver_info": map[string]any{"ipmi_password": "pw-one"}}).str("uuid")
	e.addSecret("pw-one")
	e.addSecret("pw-two")
	patch := func(ops any) *resp { return e.do("PATCH", "/v1/nodes/"+id, ops) }
	op := func(o, p string, v ...any) map[string]any {
		m := map[string]any{"op": o, "path": p}
		if len(v) > 0 {
			m["value"] = v[0]
		}
		return m
	}
	ok := []struct {
		name  string
		ops   []any
		check func(map[string]any) bool
	}{
		{"add property", []any{op("add", "/properties/memory_mb", 16384)}, func(n map[string]any) bool {
			return n["properties"].(map[string]any)["memory_mb"] == float64(16384)
		}},
		{"replace property", []any{op("replace", "/properties/a", "x")}, func(n map[string]any) bool {
			return n["properties"].(map[string]any)["a"] == "x"
		}},
		{"remove property", []any{op("remove", "/properties/a")}, func(n map[string]any) bool {
			_, ok := n["properties"].(map[string]any)["a"]
			return !ok
		}},
		{"replace name", []any{op("replace", "/name", "p2")}, func(n map[string]any) bool { return n["name"] == "p2" }},
		{"add extra object", []any{op("add", "/extra", map[string]any{"k": []any{1, 2}})}, func(n map[string]any) bool {
			return len(n["extra"].(map[string]any)["k"].([]any)) == 2
		}},
		{"array insert", []any{op("add", "/extra/k/0", 0)}, func(n map[string]any) bool {
			return len(n["extra"].(map[string]any)["k"].([]any)) == 3
		}},
		{"secret set stays masked", []any{op("add", "/driver_info/ipmi_password", "pw-two")}, func(n map[string]any) bool {
			return n["driver_info"].(map[string]any)["ipmi_password"] == Masked
		}},
		{"multiple ops", []any{op("add", "/extra/a", 1), op("add", "/extra/b", 2), op("remove", "/extra/a")}, func(n map[string]any) bool {
			x := n["extra"].(map[string]any)
			_, a := x["a"]
			return !a && x["b"] == float64(2)
		}},
		{"instance_uuid set", []any{op("add", "/instance_uuid", "a0a0a0a0-0000-4000-8000-000000000001")}, func(n map[string]any) bool {
			return n["instance_uuid"] == "a0a0a0a0-0000-4000-8000-000000000001"
		}},
		{"instance_uuid same again", []any{op("replace", "/instance_uuid", "a0a0a0a0-0000-4000-8000-000000000001")}, func(n map[string]any) bool {
			return true
		}},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			r := e.must(200, patch(tc.ops), tc.name)
			if !tc.check(r.j) {
				t.Errorf("unexpected result: %s", r.raw)
			}
		})
	}
	bad := []struct {
		name string
		ops  any
		code int
		msg  string
	}{
		{"read-only uuid", []any{op("replace", "/uuid", "x")}, 400, "Cannot patch /uuid"},
		{"read-only provision_state", []any{op("replace", "/provision_state", "active")}, 400, "Cannot patch"},
		{"bad op", []any{op("move", "/extra/b", 1)}, 400, "is not one of"},
		{"test op", []any{op("test", "/extra/b", 1)}, 400, "is not one of"},
		{"not a list", op("add", "/extra/x", 1), 400, "is not of type 'array'"},
		{"not json", "[{", 400, ""},
		{"remove missing", []any{op("remove", "/properties/nope")}, 400, "Couldn't apply patch"},
		{"replace missing", []any{op("replace", "/extra/nope", 1)}, 400, "Couldn't apply patch"},
		{"missing value", []any{op("add", "/extra/x")}, 400, "The operation does not contain a 'value' member"},
		{"missing path", []any{map[string]any{"op": "add", "value": 1}}, 400, "'path'"},
		{"bad path", []any{op("add", "extra/x", 1)}, 400, "does not match"},
		{"root path", []any{op("add", "/", 1)}, 400, "does not match"},
		{"item not object", []any{"x"}, 400, "not of type 'object'"},
		{"instance_uuid twice", []any{op("replace", "/instance_uuid", "a0a0a0a0-0000-4000-8000-000000000002")}, 409, "associated with instance"},
		{"bad driver", []any{op("replace", "/driver", "nope")}, 400, "No valid host"},
		{"bad type", []any{op("replace", "/maintenance", "banana")}, 400, "Invalid maintenance: Unrecognized value"},
		{"too new", []any{op("add", "/shard", "x")}, 406, ""},
		{"index out of range", []any{op("add", "/extra/k/99", 1)}, 400, "Couldn't apply patch"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			r := patch(tc.ops)
			if r.code != tc.code || !strings.Contains(r.fault(), tc.msg) {
				t.Errorf("status %d (want %d), message %q (want ~%q)", r.code, tc.code, r.fault(), tc.msg)
			}
		})
	}
	e.t = t
	// duplicate name via PATCH
	e.createNode(map[string]any{"name": "other"})
	if r := patch([]any{op("replace", "/name", "other")}); r.code != 409 {
		t.Errorf("duplicate name patch: %d %s", r.code, r.raw)
	}
	// unknown node
	e.must(404, e.do("PATCH", "/v1/nodes/nope", []any{op("add", "/extra/x", 1)}), "patch unknown")
	// remove instance_uuid then a new one is fine
	e.must(200, patch([]any{op("remove", "/instance_uuid")}), "remove instance_uuid")
	e.must(200, patch([]any{op("add", "/instance_uuid", "a0a0a0a0-0000-4000-8000-000000000002")}), "new instance_uuid")
	e.must(200, patch([]any{op("remove", "/instance_uuid")}), "remove instance_uuid again")
	// the password was really changed (stored unmasked)
	n, _ := e.st.Node(id)
	if n.DriverInfo["ipmi_password"] != "pw-two" {
		t.Errorf("stored password %v", n.DriverInfo["ipmi_password"])
	}

	// patch while in transition: hold the node in "cleaning"-like transit by
	// setting target state directly in the store.
	e.setTransit(id, "deploying", "active")
	if r := patch([]any{op("add", "/extra/z", 1)}); r.code != 409 {
		t.Errorf("patch in transition: %d %s", r.code, r.raw)
	}
}

func TestNodeListing(t *testing.T) {
	e := newTestEnv(t, nil)
	var ids []string
	for i := range 7 {
		rc := "small"
		if i%2 == 1 {
			rc = "large"
		}
		r := e.createNode(map[string]any{"name": fmt.Sprintf("n%d", 6-i), "resource_class": rc})
		ids = append(ids, r.str("uuid"))
	}
	r := e.must(200, e.do("GET", "/v1/nodes", nil), "list")
	nodes := r.j["nodes"].([]any)
	if len(nodes) != 7 {
		t.Fatalf("list: %d nodes", len(nodes))
	}
	keys := keysOf(nodes[0])
	want := []string{"instance_uuid", "links", "maintenance", "name", "power_state", "provision_state", "uuid"}
	if !slices.Equal(keys, want) {
		t.Errorf("list keys %v, want %v", keys, want)
	}
	if _, ok := r.j["next"]; ok {
		t.Errorf("short list has next")
	}
	for _, p := range []string{"/v1/nodes/detail", "/v1/nodes?detail=True"} {
		r = e.must(200, e.do("GET", p, nil), p)
		if n := r.j["nodes"].([]any)[0].(map[string]any); n["driver"] != "fake-hardware" {
			t.Errorf("%s not detailed", p)
		}
	}
	e.must(406, e.do("GET", "/v1/nodes?detail=True", nil, hdrLegacyVersion, "1.42"), "detail param too old")
	e.must(400, e.do("GET", "/v1/nodes/detail?detail=True", nil), "detail twice")
	e.must(400, e.do("GET", "/v1/nodes?detail=True&fields=uuid", nil), "detail + fields")
	// filters
	r = e.must(200, e.do("GET", "/v1/nodes?resource_class=large", nil), "filter rc")
	if n := len(r.j["nodes"].([]any)); n != 3 {
		t.Errorf("resource_class filter: %d", n)
	}
	r = e.must(200, e.do("GET", "/v1/nodes?provision_state=enroll&driver=fake-hardware", nil), "filter state")
	if n := len(r.j["nodes"].([]any)); n != 7 {
		t.Errorf("provision_state filter: %d", n)
	}
	e.must(400, e.do("GET", "/v1/nodes?provision_state=bogus", nil), "bad state filter")
	e.must(400, e.do("GET", "/v1/nodes?maintenance=perhaps", nil), "bad bool filter")
	r = e.must(200, e.do("GET", "/v1/nodes?maintenance=false&associated=false", nil), "bool filters")
	if n := len(r.j["nodes"].([]any)); n != 7 {
		t.Errorf("bool filters: %d", n)
	}
	e.must(406, e.do("GET", "/v1/nodes?shard=x", nil), "filter too new")
	r = e.must(200, e.do("GET", "/v1/nodes?fields=uuid,resource_class", nil), "fields")
	if k := keysOf(r.j["nodes"].([]any)[0]); !slices.Equal(k, []string{"links", "resource_class", "uuid"}) {
		t.Errorf("fields keys %v", k)
	}
	// pagination in creation (id) order
	var seen []string
	next := "/v1/nodes?limit=3"
	pages := 0
	for next != "" {
		r = e.must(200, e.do("GET", next, nil), "page")
		pages++
		for _, n := range r.j["nodes"].([]any) {
			seen = append(seen, n.(map[string]any)["uuid"].(string))
		}
		next = ""
		if nx, ok := r.j["next"].(string); ok {
			next = strings.TrimPrefix(nx, e.url)
			nl, _ := r.j["nodes_links"].([]any)
			if len(nl) != 1 || nl[0].(map[string]any)["href"] != nx || nl[0].(map[string]any)["rel"] != "next" {
				t.Errorf("nodes_links %v", r.j["nodes_links"])
			}
			if !strings.Contains(nx, "limit=3") || !strings.Contains(nx, "marker=") {
				t.Errorf("next %q", nx)
			}
		}
		if pages > 10 {
			t.Fatal("pagination loops")
		}
	}
	if !slices.Equal(seen, ids) || pages != 3 {
		t.Errorf("paged %d pages: %v, want %v", pages, seen, ids)
	}
	// sort
	r = e.must(200, e.do("GET", "/v1/nodes?sort_key=name&sort_dir=asc", nil), "sort name")
	var names []string
	for _, n := range r.j["nodes"].([]any) {
		names = append(names, n.(map[string]any)["name"].(string))
	}
	if !slices.IsSorted(names) {
		t.Errorf("sort by name: %v", names)
	}
	// sort desc + marker
	r = e.must(200, e.do("GET", "/v1/nodes?sort_key=name&sort_dir=desc&limit=2", nil), "sort desc")
	first := r.j["nodes"].([]any)
	if first[0].(map[string]any)["name"] != "n6" || first[1].(map[string]any)["name"] != "n5" {
		t.Errorf("desc: %v", first)
	}
	nx := strings.TrimPrefix(r.j["next"].(string), e.url)
	r = e.must(200, e.do("GET", nx, nil), "sort desc page 2")
	if r.j["nodes"].([]any)[0].(map[string]any)["name"] != "n4" {
		t.Errorf("desc page 2: %v", r.j["nodes"])
	}
	e.must(400, e.do("GET", "/v1/nodes?sort_key=bogus", nil), "invalid sort key")
	e.must(400, e.do("GET", "/v1/nodes?sort_key=properties", nil), "unsortable key")
	e.must(400, e.do("GET", "/v1/nodes?sort_dir=sideways", nil), "bad sort dir")
	e.must(400, e.do("GET", "/v1/nodes?limit=-1", nil), "bad limit")
	e.must(400, e.do("GET", "/v1/nodes?limit=abc", nil), "bad limit")
	e.must(404, e.do("GET", "/v1/nodes?marker=nope", nil), "unknown marker (Ironic looks it up as a node: 404)")
}

func keysOf(v any) []string {
	m, _ := v.(map[string]any)
	var k []string
	for x := range m {
		k = append(k, x)
	}
	slices.Sort(k)
	return k
}

func TestNodeDeleteRules(t *testing.T) {
	e := newTestEnv(t, nil)
	id := e.createNode(map[string]any{"name": "d1"}).str("uuid")
	e.toAvailable(id)
	e.provision(id, "active", "active")
	r := e.must(409, e.do("DELETE", "/v1/nodes/"+id, nil), "delete active")
	if !strings.Contains(r.fault(), "active") {
		t.Errorf("message: %s", r.fault())
	}
	// protected: 403 even in maintenance
	e.must(200, e.do("PATCH", "/v1/nodes/"+id, []any{map[string]any{"op": "replace", "path": "/protected", "value": true}}), "protect")
	e.must(202, e.do("PUT", "/v1/nodes/"+id+"/maintenance", map[string]any{"reason": "bye"}), "maintenance on")
	r = e.do("GET", "/v1/nodes/"+id, nil)
	if r.j["maintenance"] != true || r.j["maintenance_reason"] != "bye" {
		t.Errorf("maintenance: %v %v", r.j["maintenance"], r.j["maintenance_reason"])
	}
	e.must(403, e.do("DELETE", "/v1/nodes/"+id, nil), "delete protected")
	e.must(200, e.do("PATCH", "/v1/nodes/"+id, []any{map[string]any{"op": "replace", "path": "/protected", "value": false}}), "unprotect")
	e.must(204, e.do("DELETE", "/v1/nodes/"+id, nil), "delete active in maintenance")
	// protected_reason without protected
	id2 := e.createNode(map[string]any{}).str("uuid")
	e.must(400, e.do("PATCH", "/v1/nodes/"+id2, []any{map[string]any{"op": "add", "path": "/protected_reason", "value": "x"}}), "reason without protected")
}

func TestProvisionAndPower(t *testing.T) {
	e := newTestEnv(t, nil)
	id := e.createNode(map[string]any{"name": "pp"}).str("uuid")
	put := func(what string, body any) *resp { return e.do("PUT", "/v1/nodes/pp/states/"+what, body) }
	cases := []struct {
		name string
		what string
		body any
		code int
	}{
		{"unknown target", "provision", map[string]any{"target": "bogus"}, 400},
		{"invalid transition", "provision", map[string]any{"target": "active"}, 400},
		{"no target", "provision", map[string]any{}, 400},
		{"not object", "provision", []any{}, 400},
		{"configdrive without active", "provision", map[string]any{"target": "manage", "configdrive": "abc"}, 400},
		{"bad power target", "power", map[string]any{"target": "sideways"}, 400},
		{"soft power below 1.27", "power", map[string]any{"target": "soft power off"}, 406},
		{"timeout below 1.27 ok at 1.78", "power", map[string]any{"target": "power on", "timeout": 0}, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			hdr := []string{}
			if tc.name == "soft power below 1.27" {
				hdr = []string{hdrLegacyVersion, "1.26"}
			}
			r := e.do("PUT", "/v1/nodes/pp/states/"+tc.what, tc.body, hdr...)
			if r.code != tc.code {
				t.Errorf("status %d, want %d: %s", r.code, tc.code, r.raw)
			}
		})
	}
	e.t = t
	r := e.must(202, put("power", map[string]any{"target": "power on"}), "power on")
	if loc := r.h.Get("Location"); !strings.HasSuffix(loc, "/v1/nodes/pp/states") {
		t.Errorf("Location %q", loc)
	}
	if len(r.raw) != 0 || r.h.Get("Content-Type") != "" {
		t.Errorf("202 body %q content-type %q", r.raw, r.h.Get("Content-Type"))
	}
	e.waitNode(id, "power on", func(n map[string]any) bool { return n["power_state"] == "power on" })
	e.must(202, put("power", map[string]any{"target": "soft power off"}), "soft off at 1.78")
	e.waitNode(id, "power off", func(n map[string]any) bool { return n["power_state"] == "power off" })
	r = e.must(200, e.do("GET", "/v1/nodes/pp/states", nil), "states")
	if r.j["power_state"] != "power off" || r.j["provision_state"] != "enroll" {
		t.Errorf("states: %s", r.raw)
	}
	e.provision("pp", "manage", "manageable")
	e.provision("pp", "provide", "available")
	// maintenance: deploy refused with 400
	e.must(202, e.do("PUT", "/v1/nodes/pp/maintenance", nil), "maintenance on without body")
	e.must(400, put("provision", map[string]any{"target": "active"}), "deploy in maintenance")
	e.must(202, e.do("DELETE", "/v1/nodes/pp/maintenance", nil), "maintenance off")
	r = e.do("GET", "/v1/nodes/pp", nil)
	if r.j["maintenance"] != false || r.j["maintenance_reason"] != nil {
		t.Errorf("maintenance off: %s", r.raw)
	}
	e.addSecret("cfg-drive-secret-content")
	e.must(202, put("provision", map[string]any{"target": "active", "configdrive": "http://192.0.2.1/cfg-drive-secret-content"}), "deploy with configdrive")
	e.waitProvision(id, "active")
	e.must(400, put("provision", map[string]any{"target": "manage"}), "manage on active")
	e.provision("pp", "deleted", "available")
	e.must(404, e.do("PUT", "/v1/nodes/nope/states/provision", map[string]any{"target": "manage"}), "unknown node")
}

func TestTraitsAndVIFs(t *testing.T) {
	e := newTestEnv(t, nil)
	id := e.createNode(map[string]any{"name": "tv"}).str("uuid")
	e.must(204, e.do("PUT", "/v1/nodes/tv/traits", map[string]any{"traits": []string{"CUSTOM_A", "HW_CPU_X86_AVX2"}}), "put traits")
	e.must(204, e.do("PUT", "/v1/nodes/tv/traits/CUSTOM_B", nil), "add trait")
	e.must(204, e.do("PUT", "/v1/nodes/tv/traits/CUSTOM_B", nil), "add trait again")
	r := e.must(200, e.do("GET", "/v1/nodes/tv/traits", nil), "get traits")
	if got := fmt.Sprint(r.j["traits"]); got != "[CUSTOM_A HW_CPU_X86_AVX2 CUSTOM_B]" {
		t.Errorf("traits %s", got)
	}
	e.must(400, e.do("PUT", "/v1/nodes/tv/traits/custom_lower", nil), "invalid trait")
	e.must(400, e.do("PUT", "/v1/nodes/tv/traits", map[string]any{"traits": []string{"bad trait"}}), "invalid trait in list")
	e.must(400, e.do("PUT", "/v1/nodes/tv/traits", map[string]any{"traits": "CUSTOM_A"}), "traits not list")
	var many []string
	for i := range 51 {
		many = append(many, fmt.Sprintf("CUSTOM_T%d", i))
	}
	e.must(400, e.do("PUT", "/v1/nodes/tv/traits", map[string]any{"traits": many}), "51 traits")
	e.must(204, e.do("PUT", "/v1/nodes/tv/traits", map[string]any{"traits": many[:50]}), "50 traits")
	e.must(400, e.do("PUT", "/v1/nodes/tv/traits/CUSTOM_X", nil), "51st trait")
	e.must(204, e.do("DELETE", "/v1/nodes/tv/traits/CUSTOM_T0", nil), "delete trait")
	e.must(404, e.do("DELETE", "/v1/nodes/tv/traits/CUSTOM_T0", nil), "delete missing trait")
	e.must(204, e.do("DELETE", "/v1/nodes/tv/traits", nil), "delete all traits")
	e.must(404, e.do("GET", "/v1/nodes/tv/traits", nil, hdrLegacyVersion, "1.36"), "traits below 1.37")
	// VIFs: TestVIFsByNetworkInterface.
	_ = id
}

func TestPortsPortgroupsChassis(t *testing.T) {
	e := newTestEnv(t, nil)
	ch := e.must(201, e.do("POST", "/v1/chassis", map[string]any{"description": "rack 1"}), "chassis").str("uuid")
	n1 := e.createNode(map[string]any{"name": "a", "chassis_uuid": ch}).str("uuid")
	n2 := e.createNode(map[string]any{"name": "b"}).str("uuid")
	e.must(400, e.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "chassis_uuid": "8a0e1a4c-1111-4111-8111-111111111111"}), "node with unknown chassis")
	r := e.must(200, e.do("GET", "/v1/chassis/"+ch+"/nodes", nil), "chassis nodes")
	if len(r.j["nodes"].([]any)) != 1 {
		t.Errorf("chassis nodes %s", r.raw)
	}
	e.must(400, e.do("DELETE", "/v1/chassis/"+ch, nil), "delete chassis with nodes")
	pg := e.must(201, e.do("POST", "/v1/portgroups", map[string]any{"node_uuid": n1, "name": "bond0", "address": "52:54:00:aa:00:00"}), "portgroup").str("uuid")
	p1 := e.must(201, e.do("POST", "/v1/ports", map[string]any{"address": "52:54:00:00:00:01", "node_uuid": n1, "portgroup_uuid": pg}), "port 1")
	if !strings.HasSuffix(p1.h.Get("Location"), "/v1/ports/"+p1.str("uuid")) {
		t.Errorf("port Location %q", p1.h.Get("Location"))
	}
	e.must(201, e.do("POST", "/v1/ports", map[string]any{"address": "52:54:00:00:00:02", "node_uuid": n2}), "port 2")
	e.must(409, e.do("POST", "/v1/ports", map[string]any{"address": "52:54:00:00:00:02", "node_uuid": n1}), "duplicate MAC")
	e.must(409, e.do("POST", "/v1/ports", map[string]any{"address": "52:54:00:00:00:02", "node_uuid": n1}), "duplicate MAC upper")
	e.must(400, e.do("POST", "/v1/ports", map[string]any{"address": "zz:54:00:00:00:02", "node_uuid": n1}), "bad MAC")
	e.must(400, e.do("POST", "/v1/ports", map[string]any{"address": "52:54:00:00:00:09"}), "port without node")
	e.must(400, e.do("POST", "/v1/ports", map[string]any{"address": "52:54:00:00:00:09", "node_uuid": n1, "bogus": 1}), "port unknown field")
	r = e.must(200, e.do("GET", "/v1/ports", nil), "ports")
	if len(r.j["ports"].([]any)) != 2 || !slices.Equal(keysOf(r.j["ports"].([]any)[0]), []string{"address", "links", "uuid"}) {
		t.Errorf("port list %s", r.raw)
	}
	for _, q := range []string{"node=a", "node_uuid=" + n1, "address=52:54:00:00:00:01", "portgroup=bond0"} {
		r = e.must(200, e.do("GET", "/v1/ports/?"+q, nil), "ports filter "+q)
		if len(r.j["ports"].([]any)) != 1 {
			t.Errorf("filter %s: %s", q, r.raw)
		}
	}
	r = e.must(200, e.do("GET", "/v1/nodes/a/ports", nil), "node ports")
	if len(r.j["ports"].([]any)) != 1 {
		t.Errorf("node ports %s", r.raw)
	}
	r = e.must(200, e.do("GET", "/v1/portgroups/bond0/ports", nil), "pg ports")
	if len(r.j["ports"].([]any)) != 1 {
		t.Errorf("pg ports %s", r.raw)
	}
	e.must(200, e.do("PATCH", "/v1/ports/"+p1.str("uuid"), []any{map[string]any{"op": "add", "path": "/extra/x", "value": 1}}), "patch port")
	e.must(409, e.do("PATCH", "/v1/ports/"+p1.str("uuid"), []any{map[string]any{"op": "replace", "path": "/address", "value": "52:54:00:00:00:02"}}), "patch port dup MAC")
	e.must(400, e.do("DELETE", "/v1/ports/52:54:00:00:00:01", nil), "delete port by MAC")
	e.must(400, e.do("DELETE", "/v1/portgroups/"+pg, nil), "delete portgroup with ports")
	e.must(204, e.do("DELETE", "/v1/ports/"+p1.str("uuid"), nil), "delete port")
	e.must(404, e.do("GET", "/v1/ports/"+p1.str("uuid"), nil), "port gone")
	e.must(204, e.do("DELETE", "/v1/portgroups/"+pg, nil), "delete portgroup")
	e.must(200, e.do("PATCH", "/v1/chassis/"+ch, []any{map[string]any{"op": "replace", "path": "/description", "value": "rack 2"}}), "patch chassis")
	e.must(200, e.do("PATCH", "/v1/nodes/a", []any{map[string]any{"op": "remove", "path": "/chassis_uuid"}}), "unlink chassis")
	e.must(204, e.do("DELETE", "/v1/chassis/"+ch, nil), "delete chassis")
	// deleting a node deletes its ports
	e.must(204, e.do("DELETE", "/v1/nodes/b", nil), "delete node b")
	r = e.must(200, e.do("GET", "/v1/ports", nil), "ports after delete")
	if len(r.j["ports"].([]any)) != 0 {
		t.Errorf("ports left: %s", r.raw)
	}
}

func TestDriversConductors(t *testing.T) {
	e := newTestEnv(t, nil)
	r := e.must(200, e.do("GET", "/v1/drivers", nil), "drivers")
	var names []string
	for _, d := range r.j["drivers"].([]any) {
		m := d.(map[string]any)
		names = append(names, m["name"].(string))
		if hosts := fmt.Sprint(m["hosts"]); hosts != "[test-conductor]" {
			t.Errorf("hosts %s", hosts)
		}
	}
	if !slices.Contains(names, "fake-hardware") || !slices.Contains(names, "ipmi") {
		t.Errorf("drivers %v", names)
	}
	r = e.must(200, e.do("GET", "/v1/drivers/?detail=True", nil), "drivers detail")
	if _, ok := r.j["drivers"].([]any)[0].(map[string]any)["enabled_deploy_interfaces"]; !ok {
		t.Errorf("detail: %s", r.raw)
	}
	e.must(200, e.do("GET", "/v1/drivers/fake-hardware", nil), "driver")
	e.must(404, e.do("GET", "/v1/drivers/nope", nil), "unknown driver")
	r = e.must(200, e.do("GET", "/v1/drivers/ipmi/properties", nil), "properties")
	if _, ok := r.j["ipmi_address"]; !ok {
		t.Errorf("ipmi properties: %s", r.raw)
	}
	r = e.must(200, e.do("GET", "/v1/conductors", nil), "conductors")
	cs := r.j["conductors"].([]any)
	if len(cs) != 1 || cs[0].(map[string]any)["hostname"] != "test-conductor" || cs[0].(map[string]any)["alive"] != true {
		t.Errorf("conductors %s", r.raw)
	}
	e.must(200, e.do("GET", "/v1/conductors/test-conductor", nil), "conductor")
	e.must(404, e.do("GET", "/v1/conductors/nope", nil), "unknown conductor")
	e.must(404, e.do("GET", "/v1/conductors", nil, hdrLegacyVersion, "1.48"), "conductors below 1.49")
}

func TestAllocations(t *testing.T) {
	e := newTestEnv(t, nil)
	mk := func(name, rc string, traits ...string) string {
		id := e.createNode(map[string]any{"name": name, "resource_class": rc}).str("uuid")
		if len(traits) > 0 {
			e.must(204, e.do("PUT", "/v1/nodes/"+id+"/traits", map[string]any{"traits": traits}), "traits")
		}
		e.toAvailable(id)
		return id
	}
	small1 := mk("s1", "small")
	small2 := mk("s2", "small", "CUSTOM_GPU")
	large := mk("l1", "large")
	waitAlloc := func(id string) map[string]any {
		var r *resp
		for range 500 {
			r = e.must(200, e.do("GET", "/v1/allocations/"+id, nil), "get allocation")
			if r.j["state"] != "allocating" {
				return r.j
			}
			sleep()
		}
		t.Fatalf("allocation %s stuck: %s", id, r.raw)
		return nil
	}
	// traits match
	r := e.must(201, e.do("POST", "/v1/allocations", map[string]any{"resource_class": "small", "traits": []string{"CUSTOM_GPU"}, "name": "gpu"}), "alloc traits")
	if r.j["state"] != "allocating" || !strings.HasSuffix(r.h.Get("Location"), r.str("uuid")) {
		t.Errorf("create: %s", r.raw)
	}
	a := waitAlloc(r.str("uuid"))
	if a["state"] != "active" || a["node_uuid"] != small2 {
		t.Errorf("traits allocation: %v", a)
	}
	n := e.do("GET", "/v1/nodes/"+small2, nil)
	if n.j["allocation_uuid"] != r.str("uuid") || n.j["instance_uuid"] != r.str("uuid") {
		t.Errorf("node after allocation: %v %v", n.j["allocation_uuid"], n.j["instance_uuid"])
	}
	// candidates
	r = e.must(201, e.do("POST", "/v1/allocations", map[string]any{"resource_class": "large", "candidate_nodes": []string{"l1"}}), "alloc candidates")
	if a = waitAlloc(r.str("uuid")); a["node_uuid"] != large {
		t.Errorf("candidate allocation: %v", a)
	}
	// no match
	r = e.must(201, e.do("POST", "/v1/allocations", map[string]any{"resource_class": "large"}), "alloc no match")
	if a = waitAlloc(r.str("uuid")); a["state"] != "error" || a["last_error"] == nil || a["node_uuid"] != nil {
		t.Errorf("no-match allocation: %v", a)
	}
	e.must(400, e.do("POST", "/v1/allocations", map[string]any{"traits": []string{"CUSTOM_A"}}), "no resource class")
	e.must(400, e.do("POST", "/v1/allocations", map[string]any{"resource_class": "x", "bogus": 1}), "unknown field")
	e.must(400, e.do("POST", "/v1/allocations", map[string]any{"resource_class": "x", "candidate_nodes": []string{"nope"}}), "unknown candidate")
	e.must(409, e.do("POST", "/v1/allocations", map[string]any{"resource_class": "x", "name": "gpu"}), "duplicate name")
	r = e.must(200, e.do("GET", "/v1/allocations?state=active", nil), "list active")
	if len(r.j["allocations"].([]any)) != 2 {
		t.Errorf("active allocations: %s", r.raw)
	}
	r = e.must(200, e.do("GET", "/v1/allocations?node=s2", nil), "list by node")
	if len(r.j["allocations"].([]any)) != 1 {
		t.Errorf("by node: %s", r.raw)
	}
	e.must(200, e.do("GET", "/v1/nodes/s2/allocation", nil), "node allocation")
	e.must(200, e.do("PATCH", "/v1/allocations/gpu", []any{map[string]any{"op": "add", "path": "/extra/x", "value": 1}}), "patch allocation")
	e.must(400, e.do("PATCH", "/v1/allocations/gpu", []any{map[string]any{"op": "replace", "path": "/node_uuid", "value": small1}}), "patch allocation node")
	// PATCH instance_uuid on a taken node
	e.must(409, e.do("PATCH", "/v1/nodes/s2", []any{map[string]any{"op": "replace", "path": "/instance_uuid", "value": "a0a0a0a0-0000-4000-8000-000000000009"}}), "instance_uuid on allocated node")
	e.must(204, e.do("DELETE", "/v1/allocations/gpu", nil), "delete allocation")
	n = e.do("GET", "/v1/nodes/"+small2, nil)
	if n.j["allocation_uuid"] != nil || n.j["instance_uuid"] != nil {
		t.Errorf("node after allocation delete: %s", n.raw)
	}
	e.must(404, e.do("GET", "/v1/allocations/gpu", nil), "allocation gone")
	e.must(404, e.do("GET", "/v1/allocations", nil, hdrLegacyVersion, "1.51"), "allocations below 1.52")
	_ = small1
}

func TestAllocationsConcurrent(t *testing.T) {
	e := newTestEnv(t, nil)
	const nodes, allocs = 6, 10
	for i := range nodes {
		id := e.createNode(map[string]any{"resource_class": "c"}).str("uuid")
		e.toAvailable(id)
		_ = i
	}
	var wg sync.WaitGroup
	ids := make([]string, allocs)
	for i := range allocs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.do("POST", "/v1/allocations", map[string]any{"resource_class": "c"})
			if r.code != 201 {
				t.Errorf("create: %d %s", r.code, r.raw)
				return
			}
			ids[i] = r.str("uuid")
		}()
	}
	wg.Wait()
	got := map[string]string{}
	active := 0
	for _, id := range ids {
		var a *resp
		for range 500 {
			a = e.do("GET", "/v1/allocations/"+id, nil)
			if a.j["state"] != "allocating" {
				break
			}
			sleep()
		}
		switch a.j["state"] {
		case "active":
			active++
			node := a.str("node_uuid")
			if other, dup := got[node]; dup {
				t.Errorf("node %s given to %s and %s", node, other, id)
			}
			got[node] = id
		case "error":
		default:
			t.Errorf("allocation %s: %s", id, a.raw)
		}
	}
	if active != nodes {
		t.Errorf("%d active allocations, want %d", active, nodes)
	}
}

func TestLookupHeartbeat(t *testing.T) {
	e := newTestEnv(t, nil)
	id := e.createNode(map[string]any{"name": "agent", "driver_info": map[string]any{"fast_track": true}}).str("uuid")
	e.must(201, e.do("POST", "/v1/ports", map[string]any{"address": "52:54:00:12:34:56", "node_uuid": id}), "port")
	e.must(400, e.do("GET", "/v1/lookup", nil), "lookup without params")
	e.must(404, e.do("GET", "/v1/lookup?addresses=52:54:00:00:00:99", nil), "lookup unknown")
	e.must(404, e.do("GET", "/v1/lookup?node_uuid="+id, nil, hdrLegacyVersion, "1.21"), "lookup below 1.22 (Ironic's NotFound)")
	r := e.must(200, e.do("GET", "/v1/lookup?addresses=52:54:00:12:34:56", nil), "first lookup")
	token, _ := r.j["config"].(map[string]any)["agent_token"].(string)
	if token == "" || token == Masked {
		t.Fatalf("first lookup token %q", token)
	}
	e.addSecret(token)
	r = e.must(200, e.do("GET", "/v1/lookup?node_uuid="+id, nil), "second lookup")
	if r.j["config"].(map[string]any)["agent_token"] != Masked {
		t.Errorf("second lookup: %s", r.raw)
	}
	if dii := r.j["node"].(map[string]any)["driver_internal_info"].(map[string]any); dii["agent_secret_token"] != Masked {
		t.Errorf("lookup driver_internal_info %v", dii)
	}
	hb := func(tok string) *resp {
		body := map[string]any{"callback_url": "http://127.0.0.1:9999", "agent_version": "9.0.0"}
		if tok != "" {
			body["agent_token"] = tok
		}
		return e.do("POST", "/v1/heartbeat/"+id, body)
	}
	e.must(400, hb(""), "heartbeat without token")
	e.must(400, hb("wrong"), "heartbeat with wrong token")
	r = e.must(202, hb(token), "heartbeat")
	if len(r.raw) != 0 {
		t.Errorf("heartbeat body %q", r.raw)
	}
	e.must(400, e.do("POST", "/v1/heartbeat/"+id, map[string]any{"agent_token": token}), "heartbeat without callback_url")
	e.must(404, e.do("POST", "/v1/heartbeat/8a0e1a4c-1111-4111-8111-111111111111", map[string]any{"callback_url": "http://x", "agent_token": token, "agent_version": "1"}), "heartbeat unknown node")
	r = e.must(200, e.do("GET", "/v1/nodes/"+id, nil), "node")
	if r.j["driver_internal_info"].(map[string]any)["agent_secret_token"] != Masked {
		t.Errorf("node shows token: %s", r.raw)
	}
	e.must(200, e.do("GET", "/v1/nodes/detail", nil), "detail list (secret scan)")
}

func TestHTTPBasicAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pa55"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	f := t.TempDir() + "/htpasswd"
	if err := os.WriteFile(f, []byte("# users\nadmin:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newTestEnv(t, func(c *Config) { c.Auth = "http_basic"; c.Htpasswd = f })
	cases := []struct {
		name, path, user, pass string
		code                   int
		msg                    string
	}{
		{"no credentials", "/v1/nodes", "", "", 401, "Authorization required"},
		{"wrong password", "/v1/nodes", "admin", "nope", 401, "Incorrect username or password"},
		{"unknown user", "/v1/nodes", "root", "pa55", 401, "Incorrect username or password"},
		{"good", "/v1/nodes", "admin", "pa55", 200, ""},
		{"root is public", "/", "", "", 200, ""},
		{"v1 is public", "/v1", "", "", 200, ""},
		{"lookup needs no user auth", "/v1/lookup?addresses=52:54:00:00:00:01", "", "", 404, ""},
		{"unknown paths need credentials", "/v2/nowhere", "", "", 401, "Authorization required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.url+tc.path, nil)
			req.Header.Set(hdrLegacyVersion, "1.78")
			if tc.user != "" {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.code {
				t.Errorf("status %d, want %d", res.StatusCode, tc.code)
			}
			if tc.code == 401 {
				if res.Header.Get("WWW-Authenticate") != `Basic realm="Baremetal API"` {
					t.Errorf("WWW-Authenticate %q", res.Header.Get("WWW-Authenticate"))
				}
				// Ironic's basic-auth refusal inside its error middleware.
				var outer map[string]string
				var inner struct {
					Error struct {
						Message string `json:"message"`
						Code    int    `json:"code"`
					} `json:"error"`
				}
				if json.Unmarshal(body, &outer) != nil || json.Unmarshal([]byte(outer["error_message"]), &inner) != nil ||
					inner.Error.Code != 401 || inner.Error.Message != tc.msg {
					t.Errorf("body %s, want error_message {error: {message: %q, code: 401}}", body, tc.msg)
				}
			}
		})
	}
	bad := t.TempDir() + "/md5"
	os.WriteFile(bad, []byte("u:$apr1$abc$def\n"), 0o600)
	if _, err := New(Config{Auth: "http_basic", Htpasswd: bad}); err == nil {
		t.Errorf("non-bcrypt htpasswd accepted")
	}
	if _, err := New(Config{Auth: "http_basic", Htpasswd: "/nonexistent"}); err == nil {
		t.Errorf("missing htpasswd accepted")
	}
}

// The heartbeat's body is decoded once: fields newer than the request's
// version are refused (with their keys escaped too), and what is not an
// object, not JSON or of the wrong types gets Ironic's errors.
func TestHeartbeatBody(t *testing.T) {
	e := newTestEnv(t, nil)
	id := e.createNode(map[string]any{"name": "agent", "driver_info": map[string]any{"fast_track": true}}).str("uuid")
	r := e.must(200, e.do("GET", "/v1/lookup?node_uuid="+id, nil), "lookup")
	token, _ := r.j["config"].(map[string]any)["agent_token"].(string)
	e.addSecret(token)
	for _, tc := range []struct {
		name, ver, body string
		code            int
		fault           string
	}{
		{"accepted", "1.68", `{"callback_url":"http://127.0.0.1:9999","agent_token":"` + token + `","agent_version":"10.0.0"}`, 202, ""},
		{"agent_status at 1.72", "1.72", `{"callback_url":"http://127.0.0.1:9999","agent_token":"` + token + `","agent_version":"10.0.0","agent_status":"start"}`, 202, ""},
		{"agent_status before 1.72", "1.68", `{"callback_url":"http://127.0.0.1:9999","agent_token":"` + token + `","agent_version":"10.0.0","agent_status":"start"}`, 400,
			"Field agent_status is not supported by version 1.68."},
		{"escaped key before 1.72", "1.68", `{"callback_url":"http://127.0.0.1:9999","agent_token":"` + token + `","agent_version":"10.0.0","agent\u005fstatus":"start"}`, 400,
			"Field agent_status is not supported by version 1.68."},
		{"null field before 1.68", "1.62", `{"callback_url":"http://127.0.0.1:9999","agent_token":"` + token + `","agent_version":"10.0.0","agent_verify_ca":null}`, 400,
			"Field agent_verify_ca is not supported by version 1.62."},
		{"not an object", "1.68", `[1]`, 400, "Schema error for heartbeat: [1] is not of type 'object'"},
		{"not JSON", "1.68", `{"callback_url":`, 400, "Invalid JSON in request body: unexpected end of JSON input"},
		{"wrong type", "1.68", `{"callback_url":5}`, 400, "Invalid heartbeat: json: cannot unmarshal number into Go struct field HeartbeatRequest.callback_url of type string"},
		{"no callback_url", "1.68", `{"agent_token":"` + token + `"}`, 400, "Schema error for heartbeat: 'callback_url' is a required property"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/v1/heartbeat/"+id, tc.body, hdrLegacyVersion, tc.ver)
			if r.code != tc.code {
				t.Fatalf("POST heartbeat %s at %s: %d %s, want %d", tc.body, tc.ver, r.code, r.raw, tc.code)
			}
			if tc.fault != "" && r.fault() != tc.fault {
				t.Errorf("POST heartbeat %s: %q, want %q", tc.body, r.fault(), tc.fault)
			}
		})
	}
}
