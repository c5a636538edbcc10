package api

import (
	"fmt"
	"strings"
	"testing"
)

// Volume connectors and targets (1.32): CRUD, Ironic's refusals, listing
// by node, and their removal with the node.
func TestVolumeConnectorsAndTargets(t *testing.T) {
	e := newTestEnv(t, nil)
	uuid := e.createNode(map[string]any{"name": "vn"}).str("uuid")
	v := []string{hdrLegacyVersion, "1.32"}
	e.must(404, e.do("GET", "/v1/volume", nil, hdrLegacyVersion, "1.31"), "below 1.32")
	if r := e.must(200, e.do("GET", "/v1/volume", nil, v...), "root"); len(r.j["connectors"].([]any)) != 2 || len(r.j["targets"].([]any)) != 2 {
		t.Errorf("volume root: %s", r.raw)
	}
	vc := e.must(201, e.do("POST", "/v1/volume/connectors", map[string]any{"node_uuid": uuid, "type": "iqn",
		"connector_id": "iqn.2010-10.org.openstack:vn"}, v...), "create connector")
	cid := vc.str("uuid")
	if !strings.HasSuffix(vc.h.Get("Location"), "/v1/volume/connectors/"+cid) || vc.j["extra"] == nil {
		t.Errorf("create connector: %s (Location %s)", vc.raw, vc.h.Get("Location"))
	}
	vt := e.must(201, e.do("POST", "/v1/volume/targets", map[string]any{"node_uuid": uuid, "volume_type": "iscsi",
		"boot_index": 0, "volume_id": "vol-0", "properties": map[string]any{"target_lun": 0}}, v...), "create target")
	tid := vt.str("uuid")
	for _, tc := range []struct {
		name, method, path string
		body               any
		code               int
		msg                string
	}{
		{"duplicate connector", "POST", "/v1/volume/connectors", map[string]any{"node_uuid": uuid, "type": "iqn", "connector_id": "iqn.2010-10.org.openstack:vn"}, 409,
			"A volume connector with type iqn and connector ID iqn.2010-10.org.openstack:vn already exists."},
		{"duplicate boot index", "POST", "/v1/volume/targets", map[string]any{"node_uuid": uuid, "volume_type": "iscsi", "boot_index": 0, "volume_id": "vol-1"}, 409,
			"A volume target with boot index '0' for the same node already exists."},
		{"missing property", "POST", "/v1/volume/connectors", map[string]any{"node_uuid": uuid, "type": "ip"}, 400, "'connector_id' is a required property"},
		{"unknown property", "POST", "/v1/volume/connectors", map[string]any{"node_uuid": uuid, "type": "ip", "connector_id": "10.0.0.1", "color": "red"}, 400, "('color' was unexpected)"},
		{"boot index not an integer", "POST", "/v1/volume/targets", map[string]any{"node_uuid": uuid, "volume_type": "iscsi", "boot_index": "one", "volume_id": "v"}, 400, "'one' is not of type 'integer'"},
		{"unknown node", "POST", "/v1/volume/connectors", map[string]any{"node_uuid": "00000000-0000-4000-8000-000000000000", "type": "ip", "connector_id": "10.0.0.2"}, 400, "Invalid input for field/attribute node_uuid"},
		{"node name", "POST", "/v1/volume/connectors", map[string]any{"node_uuid": "vn", "type": "ip", "connector_id": "10.0.0.3"}, 400, "Expected UUID for node_uuid: vn"},
		{"post under a node", "POST", "/v1/nodes/vn/volume/connectors", map[string]any{"node_uuid": uuid, "type": "ip", "connector_id": "10.0.0.4"}, 400, "Malformed request URI."},
		{"update while power unknown", "PATCH", "/v1/volume/connectors/" + cid, []map[string]any{{"op": "add", "path": "/extra/a", "value": "b"}}, 400,
			"The requested action \"volume connector update\" can not be performed on node \"" + uuid + "\" while it is in state \"\"."},
		{"patch uuid", "PATCH", "/v1/volume/targets/" + tid, []map[string]any{{"op": "replace", "path": "/uuid", "value": tid}}, 400, "Cannot patch /uuid"},
		{"missing connector", "GET", "/v1/volume/connectors/00000000-0000-4000-8000-000000000000", nil, 404, "Volume connector 00000000-0000-4000-8000-000000000000 could not be found."},
	} {
		r := e.must(tc.code, e.do(tc.method, tc.path, tc.body, v...), tc.name)
		if !strings.Contains(r.fault(), tc.msg) {
			t.Errorf("%s: %q, want it to contain %q", tc.name, r.fault(), tc.msg)
		}
	}
	// Powered off, the node's connectors and targets can change.
	e.provision("vn", "manage", "manageable")
	e.must(202, e.do("PUT", "/v1/nodes/vn/states/power", map[string]any{"target": "power off"}), "power off")
	e.waitNode("vn", "power off", func(n map[string]any) bool { return n["power_state"] == "power off" && n["reservation"] == nil })
	r := e.must(200, e.do("PATCH", "/v1/volume/targets/"+tid, []map[string]any{{"op": "replace", "path": "/boot_index", "value": 1},
		{"op": "add", "path": "/extra/tier", "value": "gold"}}, v...), "patch target")
	if r.j["boot_index"] != float64(1) || fmt.Sprint(r.j["extra"]) != "map[tier:gold]" || r.j["updated_at"] == nil {
		t.Errorf("patched target: %s", r.raw)
	}
	list := e.must(200, e.do("GET", "/v1/nodes/vn/volume/targets", nil, v...), "node targets").j["targets"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["volume_id"] != "vol-0" {
		t.Errorf("node targets: %v", list)
	}
	if _, has := list[0].(map[string]any)["properties"]; has {
		t.Errorf("default listing shows properties: %v", list[0])
	}
	if d := e.must(200, e.do("GET", "/v1/volume/connectors?detail=True&node="+uuid, nil, v...), "detail").j["connectors"].([]any); len(d) != 1 || d[0].(map[string]any)["extra"] == nil {
		t.Errorf("connectors detail: %v", d)
	}
	e.must(400, e.do("GET", "/v1/volume/connectors?detail=True&fields=uuid", nil, v...), "detail and fields")
	e.must(204, e.do("DELETE", "/v1/volume/connectors/"+cid, nil, v...), "delete connector")
	e.must(404, e.do("GET", "/v1/volume/connectors/"+cid, nil, v...), "deleted connector")
	// The target goes with its node.
	e.must(204, e.do("DELETE", "/v1/nodes/vn", nil), "delete node")
	e.must(404, e.do("GET", "/v1/volume/targets/"+tid, nil, v...), "target of a deleted node")
}

// A patch giving a target the boot index of another of the node's targets
// is refused with Ironic's 409 and changes nothing.
func TestVolumeTargetBootIndexConflict(t *testing.T) {
	e := newTestEnv(t, nil)
	uuid := e.createNode(map[string]any{"name": "vb"}).str("uuid")
	v := []string{hdrLegacyVersion, "1.32"}
	e.provision("vb", "manage", "manageable")
	e.must(202, e.do("PUT", "/v1/nodes/vb/states/power", map[string]any{"target": "power off"}), "power off")
	e.waitNode("vb", "power off", func(n map[string]any) bool { return n["power_state"] == "power off" && n["reservation"] == nil })
	for i, id := range []string{"a", "b"} {
		e.must(201, e.do("POST", "/v1/volume/targets", map[string]any{"node_uuid": uuid, "volume_type": "iscsi", "boot_index": i, "volume_id": id}, v...), "create "+id)
	}
	second := e.must(200, e.do("GET", "/v1/volume/targets?node="+uuid+"&sort_key=boot_index", nil, v...), "list").j["targets"].([]any)[1].(map[string]any)["uuid"].(string)
	r := e.must(409, e.do("PATCH", "/v1/volume/targets/"+second, []map[string]any{{"op": "replace", "path": "/boot_index", "value": 0}}, v...), "conflict")
	if !strings.Contains(r.fault(), "boot index '0' for the same node already exists") {
		t.Errorf("conflict: %s", r.raw)
	}
	if got := e.must(200, e.do("GET", "/v1/volume/targets/"+second, nil, v...), "target").j["boot_index"]; got != float64(1) {
		t.Errorf("boot_index after a refused patch = %v", got)
	}
}
