// Package ironicinput holds the inputs sent to the real services to learn
// their argument rules (Ironic 21.4: cases.go; ironic-inspector 11.1:
// inspector.go; Glance 25.1: image.go), the recorder that sends them
// (record/, run by record.sh) and the table tests that replay the recorded
// answers against ferric.
package ironicinput

import (
	"fmt"
	"strings"
)

// Fixed identities of the fixtures every case may refer to.
const (
	NodeUUID      = "11111111-1111-4111-8111-111111111111"
	ChassisUUID   = "22222222-2222-4222-8222-222222222222"
	PortUUID      = "33333333-3333-4333-8333-333333333333"
	PortgroupUUID = "44444444-4444-4444-8444-444444444444"
	AllocUUID     = "55555555-5555-4555-8555-555555555555"
	TemplateUUID  = "66666666-6666-4666-8666-666666666666"
	ConnUUID      = "77777777-7777-4777-8777-777777777777"
	TargetUUID    = "88888888-8888-4888-8888-888888888888"
	MissingUUID   = "99999999-9999-4999-8999-999999999999"
	// Version is the microversion every case is sent with (Ironic 21.4's
	// newest).
	Version = "1.82"
)

// Case is one request. Fixtures are sent first and must succeed.
type Case struct {
	Name    string `json:"name"`
	Method  string `json:"method"`
	Path    string `json:"path"`
	Body    any    `json:"body,omitempty"`
	Fixture bool   `json:"fixture,omitempty"`
}

type obj = map[string]any

func patch(op, path string, value ...any) []any {
	p := obj{"op": op, "path": path}
	if len(value) > 0 {
		p["value"] = value[0]
	}
	return []any{p}
}

var badUUID = "!@#$^*&%^"

// Cases are the fixtures, then the inputs per resource, in the order they
// are sent.
func Cases() []Case {
	long := func(n int) string { return strings.Repeat("a", n) }
	step := obj{"interface": "deploy", "step": "s1", "args": obj{}, "priority": 10}
	cs := []Case{
		{Name: "fixture chassis", Method: "POST", Path: "/v1/chassis", Body: obj{"uuid": ChassisUUID, "description": "fx"}, Fixture: true},
		{Name: "fixture node", Method: "POST", Path: "/v1/nodes", Body: obj{"uuid": NodeUUID, "name": "fx-node", "driver": "fake-hardware"}, Fixture: true},
		{Name: "fixture portgroup", Method: "POST", Path: "/v1/portgroups", Body: obj{"uuid": PortgroupUUID, "node_uuid": NodeUUID, "name": "fx-pg", "address": "52:54:00:00:01:01"}, Fixture: true},
		{Name: "fixture port", Method: "POST", Path: "/v1/ports", Body: obj{"uuid": PortUUID, "node_uuid": NodeUUID, "address": "52:54:00:00:00:01"}, Fixture: true},
		{Name: "fixture allocation", Method: "POST", Path: "/v1/allocations", Body: obj{"uuid": AllocUUID, "name": "fx-alloc", "resource_class": "fx-none"}, Fixture: true},
		{Name: "fixture deploy template", Method: "POST", Path: "/v1/deploy_templates", Body: obj{"uuid": TemplateUUID, "name": "CUSTOM_FX", "steps": []any{step}}, Fixture: true},
		{Name: "fixture volume connector", Method: "POST", Path: "/v1/volume/connectors", Body: obj{"uuid": ConnUUID, "node_uuid": NodeUUID, "type": "iqn", "connector_id": "iqn.2026-01.org.fx:1"}, Fixture: true},
		{Name: "fixture volume target", Method: "POST", Path: "/v1/volume/targets", Body: obj{"uuid": TargetUUID, "node_uuid": NodeUUID, "volume_type": "iscsi", "volume_id": "fx-vol", "boot_index": 0}, Fixture: true},
	}
	add := func(name, method, path string, body any) {
		cs = append(cs, Case{Name: name, Method: method, Path: path, Body: body})
	}
	mac := 0x10
	nextMAC := func() string { mac++; return "52:54:00:00:02:" + hex2(mac) }

	// Nodes: create.
	node := func(kv ...any) obj {
		o := obj{"driver": "fake-hardware"}
		for i := 0; i+1 < len(kv); i += 2 {
			o[kv[i].(string)] = kv[i+1]
		}
		return o
	}
	add("node create uuid garbage", "POST", "/v1/nodes", node("uuid", badUUID))
	add("node create uuid number", "POST", "/v1/nodes", node("uuid", 5))
	add("node create name with space", "POST", "/v1/nodes", node("name", "bad name"))
	add("node create name with !", "POST", "/v1/nodes", node("name", "bad!"))
	add("node create name number", "POST", "/v1/nodes", node("name", 7))
	add("node create name 256", "POST", "/v1/nodes", node("name", long(256)))
	add("node create name 255", "POST", "/v1/nodes", node("name", long(255)))
	add("node create name upper", "POST", "/v1/nodes", node("name", "Upper-Case_1.x~y"))
	add("node create name uuid-like", "POST", "/v1/nodes", node("name", MissingUUID))
	add("node create no driver", "POST", "/v1/nodes", obj{"name": "nodrv"})
	add("node create unknown driver", "POST", "/v1/nodes", node("driver", "nonexistent"))
	add("node create driver number", "POST", "/v1/nodes", node("driver", 3))
	add("node create unknown field", "POST", "/v1/nodes", node("foo", "bar"))
	add("node create read-only field", "POST", "/v1/nodes", node("provision_state", "active"))
	add("node create automated_clean True", "POST", "/v1/nodes", node("automated_clean", "True"))
	add("node create automated_clean off", "POST", "/v1/nodes", node("automated_clean", "off"))
	add("node create automated_clean banana", "POST", "/v1/nodes", node("automated_clean", "banana"))
	add("node create automated_clean 1", "POST", "/v1/nodes", node("automated_clean", 1))
	add("node create maintenance yes", "POST", "/v1/nodes", node("maintenance", "yes"))
	add("node create maintenance banana", "POST", "/v1/nodes", node("maintenance", "banana"))
	add("node create retired t", "POST", "/v1/nodes", node("retired", "t"))
	add("node create console_enabled 0", "POST", "/v1/nodes", node("console_enabled", "0"))
	add("node create resource_class 81", "POST", "/v1/nodes", node("resource_class", long(81)))
	add("node create resource_class 80", "POST", "/v1/nodes", node("resource_class", long(80)))
	add("node create resource_class number", "POST", "/v1/nodes", node("resource_class", 8))
	add("node create description 4097", "POST", "/v1/nodes", node("description", long(4097)))
	add("node create chassis_uuid garbage", "POST", "/v1/nodes", node("chassis_uuid", "banana"))
	add("node create chassis_uuid missing", "POST", "/v1/nodes", node("chassis_uuid", MissingUUID))
	add("node create instance_uuid garbage", "POST", "/v1/nodes", node("instance_uuid", "banana"))
	add("node create properties string", "POST", "/v1/nodes", node("properties", "cpus=4"))
	add("node create extra list", "POST", "/v1/nodes", node("extra", []any{1}))
	add("node create driver_info number", "POST", "/v1/nodes", node("driver_info", 1))
	add("node create conductor_group bad", "POST", "/v1/nodes", node("conductor_group", "bad group!"))
	add("node create conductor_group 256", "POST", "/v1/nodes", node("conductor_group", long(256)))
	add("node create boot_interface unknown", "POST", "/v1/nodes", node("boot_interface", "nope"))
	add("node create network_data bad", "POST", "/v1/nodes", node("network_data", obj{"links": "x"}))
	add("node create owner number", "POST", "/v1/nodes", node("owner", 5))
	add("node create body list", "POST", "/v1/nodes", []any{1})
	add("node create shard number", "POST", "/v1/nodes", node("shard", 1))
	// network_data items, as Ironic's network-data-schema.json shapes them.
	for _, nd := range networkDataInputs() {
		add("node create network_data "+nd.name, "POST", "/v1/nodes", node("network_data", nd.value))
	}

	// Nodes: update.
	np := "/v1/nodes/" + NodeUUID
	add("node patch uuid", "PATCH", np, patch("replace", "/uuid", MissingUUID))
	add("node patch unknown field", "PATCH", np, patch("add", "/foo", "bar"))
	add("node patch provision_state", "PATCH", np, patch("replace", "/provision_state", "active"))
	add("node patch driver_internal_info", "PATCH", np, patch("add", "/driver_internal_info/a", "b"))
	add("node patch bad op", "PATCH", np, patch("move", "/extra/a", "b"))
	add("node patch bad path", "PATCH", np, patch("add", "extra", "b"))
	add("node patch path with space", "PATCH", np, patch("add", "/extra/a b", "b"))
	add("node patch add without value", "PATCH", np, patch("add", "/extra/a"))
	add("node patch remove missing", "PATCH", np, patch("remove", "/extra/nothere"))
	add("node patch not a list", "PATCH", np, obj{"op": "add"})
	add("node patch name bad", "PATCH", np, patch("replace", "/name", "bad name"))
	add("node patch automated_clean True", "PATCH", np, patch("replace", "/automated_clean", "True"))
	add("node patch automated_clean banana", "PATCH", np, patch("replace", "/automated_clean", "banana"))
	add("node patch protected banana", "PATCH", np, patch("replace", "/protected", "banana"))
	add("node patch maintenance True", "PATCH", np, patch("replace", "/maintenance", "True"))
	add("node patch maintenance False", "PATCH", np, patch("replace", "/maintenance", "False"))
	add("node patch instance_uuid garbage", "PATCH", np, patch("add", "/instance_uuid", "banana"))
	add("node patch chassis_uuid missing", "PATCH", np, patch("add", "/chassis_uuid", MissingUUID))
	add("node patch resource_class 81", "PATCH", np, patch("add", "/resource_class", long(81)))
	add("node patch description 4097", "PATCH", np, patch("add", "/description", long(4097)))
	add("node patch properties string", "PATCH", np, patch("replace", "/properties", "x"))
	add("node patch driver unknown", "PATCH", np, patch("replace", "/driver", "nonexistent"))
	add("node patch remove driver", "PATCH", np, patch("remove", "/driver"))
	add("node patch power_interface unknown", "PATCH", np, patch("replace", "/power_interface", "nope"))
	add("node patch traits", "PATCH", np, patch("add", "/traits", []any{"CUSTOM_A"}))
	add("node patch retired banana", "PATCH", np, patch("replace", "/retired", "banana"))
	add("node patch retired_reason not retired", "PATCH", np, patch("replace", "/retired_reason", "why"))
	var bond any
	for _, nd := range networkDataInputs() {
		if nd.name == "bond 802.3ad" { // accepted by ferric: sent last
			bond = nd.value
			continue
		}
		add("node patch network_data "+nd.name, "PATCH", np, patch("add", "/network_data", nd.value))
	}
	add("node patch network_data link item bad", "PATCH", np, patch("add", "/network_data/links/0", obj{"id": "eth1", "type": "phy"}))
	add("node patch network_data link mac", "PATCH", np, patch("replace", "/network_data/links/0/ethernet_mac_address", "52:54:00"))
	add("node patch network_data null", "PATCH", np, patch("replace", "/network_data", nil))
	add("node patch network_data bond 802.3ad", "PATCH", np, patch("add", "/network_data", bond))
	add("node patch unknown node", "PATCH", "/v1/nodes/"+MissingUUID, patch("add", "/extra/a", "b"))
	add("node patch garbage ident", "PATCH", "/v1/nodes/"+"bad%20name", patch("add", "/extra/a", "b"))
	// Node sub-resources.
	add("node traits set foo", "PUT", np+"/traits", obj{"traits": []any{"foo"}})
	add("node traits set lower custom", "PUT", np+"/traits", obj{"traits": []any{"CUSTOM_abc"}})
	add("node traits set not list", "PUT", np+"/traits", obj{"traits": "CUSTOM_A"})
	add("node traits set extra key", "PUT", np+"/traits", obj{"traits": []any{}, "x": 1})
	add("node trait add foo", "PUT", np+"/traits/foo", nil)
	add("node trait add 256", "PUT", np+"/traits/CUSTOM_"+strings.Repeat("A", 249), nil)
	add("node trait add standard", "PUT", np+"/traits/HW_CPU_X86_AVX2", nil)
	add("node power target bogus", "PUT", np+"/states/power", obj{"target": "bogus"})
	add("node power timeout string", "PUT", np+"/states/power", obj{"target": "power on", "timeout": "abc"})
	add("node power timeout negative", "PUT", np+"/states/power", obj{"target": "power on", "timeout": -1})
	add("node provision target bogus", "PUT", np+"/states/provision", obj{"target": "bogus"})
	add("node provision no target", "PUT", np+"/states/provision", obj{})
	add("node maintenance reason number", "PUT", np+"/maintenance", obj{"reason": 5})
	add("node boot_device bogus", "PUT", np+"/management/boot_device", obj{"boot_device": "bogus"})
	add("node boot_device persistent banana", "PUT", np+"/management/boot_device", obj{"boot_device": "pxe", "persistent": "banana"})
	add("node boot_device persistent True", "PUT", np+"/management/boot_device", obj{"boot_device": "pxe", "persistent": "True"})
	add("node vif attach garbage", "POST", np+"/vifs", obj{"id": "bad id!"})
	add("node vif attach no id", "POST", np+"/vifs", obj{})
	add("node list limit abc", "GET", "/v1/nodes?limit=abc", nil)
	add("node list limit -1", "GET", "/v1/nodes?limit=-1", nil)
	add("node list maintenance banana", "GET", "/v1/nodes?maintenance=banana", nil)
	add("node list associated yes", "GET", "/v1/nodes?associated=yes", nil)
	add("node list fields bogus", "GET", "/v1/nodes?fields=bogus", nil)
	add("node list sort_key bogus", "GET", "/v1/nodes?sort_key=bogus", nil)
	add("node list sort_dir bogus", "GET", "/v1/nodes?sort_dir=bogus", nil)
	add("node list marker missing", "GET", "/v1/nodes?marker="+MissingUUID, nil)
	add("node list provision_state bogus", "GET", "/v1/nodes?provision_state=bogus", nil)
	add("node list detail banana", "GET", "/v1/nodes?detail=banana", nil)
	add("node get garbage", "GET", "/v1/nodes/bad%20name", nil)

	// Ports: create.
	port := func(kv ...any) obj {
		o := obj{"node_uuid": NodeUUID, "address": nextMAC()}
		for i := 0; i+1 < len(kv); i += 2 {
			o[kv[i].(string)] = kv[i+1]
		}
		return o
	}
	for _, v := range []any{"True", "true", "False", "yes", "no", "1", "0", "on", "off", "t", "f", "y", "n", "banana", "", 1, 0, 2, nil} {
		add("port create pxe_enabled "+repr(v), "POST", "/v1/ports", port("pxe_enabled", v))
	}
	add("port create is_smartnic True", "POST", "/v1/ports", port("is_smartnic", "True", "local_link_connection", obj{"port_id": "p1", "hostname": "h1"}))
	add("port create is_smartnic banana", "POST", "/v1/ports", port("is_smartnic", "banana"))
	add("port create uuid garbage", "POST", "/v1/ports", port("uuid", badUUID))
	add("port create address garbage", "POST", "/v1/ports", port("address", "bogus"))
	add("port create address upper", "POST", "/v1/ports", port("address", "52:54:00:AA:BB:CC"))
	add("port create address dashes", "POST", "/v1/ports", port("address", "52-54-00-aa-bb-cd"))
	add("port create address number", "POST", "/v1/ports", port("address", 5))
	add("port create address duplicate", "POST", "/v1/ports", port("address", "52:54:00:00:00:01"))
	add("port create no address", "POST", "/v1/ports", obj{"node_uuid": NodeUUID})
	add("port create no node", "POST", "/v1/ports", obj{"address": nextMAC()})
	add("port create node_uuid garbage", "POST", "/v1/ports", port("node_uuid", "banana"))
	add("port create node_uuid missing", "POST", "/v1/ports", port("node_uuid", MissingUUID))
	add("port create node_uuid number", "POST", "/v1/ports", port("node_uuid", 1))
	add("port create portgroup_uuid garbage", "POST", "/v1/ports", port("portgroup_uuid", "banana"))
	add("port create portgroup_uuid missing", "POST", "/v1/ports", port("portgroup_uuid", MissingUUID))
	add("port create physical_network 65", "POST", "/v1/ports", port("physical_network", long(65)))
	add("port create physical_network 64", "POST", "/v1/ports", port("physical_network", long(64)))
	add("port create extra string", "POST", "/v1/ports", port("extra", "x"))
	add("port create unknown field", "POST", "/v1/ports", port("foo", "bar"))
	add("port create llc unknown key", "POST", "/v1/ports", port("local_link_connection", obj{"foo": "bar"}))
	add("port create llc switch_id bad", "POST", "/v1/ports", port("local_link_connection", obj{"switch_id": "bad", "port_id": "p1"}))
	add("port create llc switch_id upper", "POST", "/v1/ports", port("local_link_connection", obj{"switch_id": "AA:BB:CC:DD:EE:FF", "port_id": "p1"}))
	add("port create llc no port_id", "POST", "/v1/ports", port("local_link_connection", obj{"switch_id": "aa:bb:cc:dd:ee:ff"}))
	add("port create llc string", "POST", "/v1/ports", port("local_link_connection", "x"))
	// Ports: update.
	pp := "/v1/ports/" + PortUUID
	add("port patch pxe_enabled True", "PATCH", pp, patch("replace", "/pxe_enabled", "True"))
	add("port patch pxe_enabled banana", "PATCH", pp, patch("replace", "/pxe_enabled", "banana"))
	add("port patch pxe_enabled off", "PATCH", pp, patch("replace", "/pxe_enabled", "off"))
	add("port patch address garbage", "PATCH", pp, patch("replace", "/address", "bogus"))
	add("port patch address upper", "PATCH", pp, patch("replace", "/address", "52:54:00:00:00:AB"))
	add("port patch remove address", "PATCH", pp, patch("remove", "/address"))
	add("port patch uuid", "PATCH", pp, patch("replace", "/uuid", MissingUUID))
	add("port patch unknown field", "PATCH", pp, patch("add", "/foo", "x"))
	add("port patch node_uuid garbage", "PATCH", pp, patch("replace", "/node_uuid", "banana"))
	add("port patch node_uuid missing", "PATCH", pp, patch("replace", "/node_uuid", MissingUUID))
	add("port patch portgroup_uuid garbage", "PATCH", pp, patch("add", "/portgroup_uuid", "banana"))
	add("port patch physical_network 65", "PATCH", pp, patch("add", "/physical_network", long(65)))
	add("port patch llc unknown key", "PATCH", pp, patch("add", "/local_link_connection/foo", "x"))
	add("port patch extra", "PATCH", pp, patch("add", "/extra/k", "v"))
	add("port patch bad op", "PATCH", pp, patch("copy", "/extra/k", "v"))
	add("port list address garbage", "GET", "/v1/ports?address=bogus", nil)
	add("port list node garbage", "GET", "/v1/ports?node=bad%20name", nil)
	add("port list limit abc", "GET", "/v1/ports?limit=abc", nil)
	add("port get garbage", "GET", "/v1/ports/bogus", nil)

	// Port groups.
	pg := func(kv ...any) obj {
		o := obj{"node_uuid": NodeUUID}
		for i := 0; i+1 < len(kv); i += 2 {
			o[kv[i].(string)] = kv[i+1]
		}
		return o
	}
	add("portgroup create uuid garbage", "POST", "/v1/portgroups", pg("uuid", badUUID))
	add("portgroup create address garbage", "POST", "/v1/portgroups", pg("address", "bogus"))
	add("portgroup create address upper", "POST", "/v1/portgroups", pg("address", "52:54:00:00:01:AA"))
	add("portgroup create name bad", "POST", "/v1/portgroups", pg("name", "bad name"))
	add("portgroup create name number", "POST", "/v1/portgroups", pg("name", 1))
	add("portgroup create sps True", "POST", "/v1/portgroups", pg("standalone_ports_supported", "True"))
	add("portgroup create sps banana", "POST", "/v1/portgroups", pg("standalone_ports_supported", "banana"))
	add("portgroup create mode number", "POST", "/v1/portgroups", pg("mode", 1))
	add("portgroup create node_uuid garbage", "POST", "/v1/portgroups", pg("node_uuid", "banana"))
	add("portgroup create node_uuid missing", "POST", "/v1/portgroups", pg("node_uuid", MissingUUID))
	add("portgroup create no node", "POST", "/v1/portgroups", obj{"name": "pg-nonode"})
	add("portgroup create unknown field", "POST", "/v1/portgroups", pg("foo", 1))
	add("portgroup create properties string", "POST", "/v1/portgroups", pg("properties", "x"))
	add("portgroup create name duplicate", "POST", "/v1/portgroups", pg("name", "fx-pg"))
	pgp := "/v1/portgroups/" + PortgroupUUID
	add("portgroup patch sps True", "PATCH", pgp, patch("replace", "/standalone_ports_supported", "True"))
	add("portgroup patch sps banana", "PATCH", pgp, patch("replace", "/standalone_ports_supported", "banana"))
	add("portgroup patch address garbage", "PATCH", pgp, patch("replace", "/address", "bogus"))
	add("portgroup patch name bad", "PATCH", pgp, patch("replace", "/name", "bad name"))
	add("portgroup patch uuid", "PATCH", pgp, patch("replace", "/uuid", MissingUUID))
	add("portgroup patch unknown field", "PATCH", pgp, patch("add", "/foo", 1))
	add("portgroup patch node_uuid garbage", "PATCH", pgp, patch("replace", "/node_uuid", "banana"))

	// Chassis.
	add("chassis create uuid garbage", "POST", "/v1/chassis", obj{"uuid": badUUID})
	add("chassis create description 256", "POST", "/v1/chassis", obj{"description": long(256)})
	add("chassis create description number", "POST", "/v1/chassis", obj{"description": 5})
	add("chassis create extra string", "POST", "/v1/chassis", obj{"extra": "x"})
	add("chassis create unknown field", "POST", "/v1/chassis", obj{"foo": 1})
	cp := "/v1/chassis/" + ChassisUUID
	add("chassis patch description 256", "PATCH", cp, patch("replace", "/description", long(256)))
	add("chassis patch uuid", "PATCH", cp, patch("replace", "/uuid", MissingUUID))
	add("chassis patch unknown field", "PATCH", cp, patch("add", "/foo", 1))
	add("chassis patch extra", "PATCH", cp, patch("add", "/extra/a", 1))
	add("chassis get garbage", "GET", "/v1/chassis/bogus", nil)

	// Allocations.
	add("allocation create uuid garbage", "POST", "/v1/allocations", obj{"resource_class": "rc", "uuid": badUUID})
	add("allocation create resource_class 81", "POST", "/v1/allocations", obj{"resource_class": long(81)})
	add("allocation create trait foo", "POST", "/v1/allocations", obj{"resource_class": "rc", "traits": []any{"foo"}})
	add("allocation create traits string", "POST", "/v1/allocations", obj{"resource_class": "rc", "traits": "CUSTOM_A"})
	add("allocation create candidate banana", "POST", "/v1/allocations", obj{"resource_class": "rc", "candidate_nodes": []any{"banana"}})
	add("allocation create candidate missing uuid", "POST", "/v1/allocations", obj{"resource_class": "rc", "candidate_nodes": []any{MissingUUID}})
	add("allocation create candidate garbage", "POST", "/v1/allocations", obj{"resource_class": "rc", "candidate_nodes": []any{"bad name!"}})
	add("allocation create candidate number", "POST", "/v1/allocations", obj{"resource_class": "rc", "candidate_nodes": []any{1}})
	add("allocation create name bad", "POST", "/v1/allocations", obj{"resource_class": "rc", "name": "bad name"})
	add("allocation create name uuid-like", "POST", "/v1/allocations", obj{"resource_class": "rc", "name": MissingUUID})
	add("allocation create no resource_class", "POST", "/v1/allocations", obj{"name": "no-rc"})
	add("allocation create unknown field", "POST", "/v1/allocations", obj{"resource_class": "rc", "foo": 1})
	add("allocation create extra string", "POST", "/v1/allocations", obj{"resource_class": "rc", "extra": "x"})
	add("allocation create node garbage", "POST", "/v1/allocations", obj{"node": "bad name!"})
	add("allocation create node missing", "POST", "/v1/allocations", obj{"node": MissingUUID})
	add("allocation create name duplicate", "POST", "/v1/allocations", obj{"resource_class": "rc", "name": "fx-alloc"})
	ap := "/v1/allocations/" + AllocUUID
	add("allocation patch name bad", "PATCH", ap, patch("replace", "/name", "bad name"))
	add("allocation patch resource_class", "PATCH", ap, patch("replace", "/resource_class", "x"))
	add("allocation patch uuid", "PATCH", ap, patch("replace", "/uuid", MissingUUID))
	add("allocation patch traits", "PATCH", ap, patch("replace", "/traits", []any{"CUSTOM_A"}))
	add("allocation patch extra", "PATCH", ap, patch("add", "/extra/a", 1))
	add("allocation patch unknown field", "PATCH", ap, patch("add", "/foo", 1))
	add("allocation get garbage", "GET", "/v1/allocations/bad%20name", nil)

	// Deploy templates.
	tpl := func(kv ...any) obj {
		o := obj{"name": "CUSTOM_T1", "steps": []any{step}}
		for i := 0; i+1 < len(kv); i += 2 {
			o[kv[i].(string)] = kv[i+1]
		}
		return o
	}
	withStep := func(k string, v any) obj {
		s := obj{}
		for kk, vv := range step {
			s[kk] = vv
		}
		if v == nil {
			delete(s, k)
		} else {
			s[k] = v
		}
		return tpl("steps", []any{s})
	}
	add("template create uuid garbage", "POST", "/v1/deploy_templates", tpl("uuid", badUUID))
	add("template create name foo", "POST", "/v1/deploy_templates", tpl("name", "foo"))
	add("template create name lower custom", "POST", "/v1/deploy_templates", tpl("name", "CUSTOM_abc"))
	add("template create name 256", "POST", "/v1/deploy_templates", tpl("name", "CUSTOM_"+strings.Repeat("A", 249)))
	add("template create no name", "POST", "/v1/deploy_templates", obj{"steps": []any{step}})
	add("template create no steps", "POST", "/v1/deploy_templates", obj{"name": "CUSTOM_T2"})
	add("template create steps empty", "POST", "/v1/deploy_templates", tpl("steps", []any{}))
	add("template create step interface bad", "POST", "/v1/deploy_templates", withStep("interface", "bogus"))
	add("template create step priority string", "POST", "/v1/deploy_templates", withStep("priority", "10"))
	add("template create step priority garbage", "POST", "/v1/deploy_templates", withStep("priority", "x"))
	add("template create step priority negative", "POST", "/v1/deploy_templates", withStep("priority", -1))
	add("template create step no args", "POST", "/v1/deploy_templates", withStep("args", nil))
	add("template create step unknown key", "POST", "/v1/deploy_templates", withStep("foo", 1))
	add("template create description 256", "POST", "/v1/deploy_templates", tpl("description", long(256)))
	add("template create duplicate steps", "POST", "/v1/deploy_templates", tpl("steps", []any{step, step}))
	add("template create name duplicate", "POST", "/v1/deploy_templates", tpl("name", "CUSTOM_FX"))
	tp := "/v1/deploy_templates/" + TemplateUUID
	add("template patch name foo", "PATCH", tp, patch("replace", "/name", "foo"))
	add("template patch step priority garbage", "PATCH", tp, patch("replace", "/steps/0/priority", "x"))
	add("template patch step unknown key", "PATCH", tp, patch("add", "/steps/0/foo", 1))
	add("template patch uuid", "PATCH", tp, patch("replace", "/uuid", MissingUUID))
	add("template patch unknown field", "PATCH", tp, patch("add", "/foo", 1))
	add("template patch remove steps", "PATCH", tp, patch("remove", "/steps"))
	add("template get garbage", "GET", "/v1/deploy_templates/bad%20name", nil)

	// Volume connectors.
	conn := func(kv ...any) obj {
		o := obj{"node_uuid": NodeUUID, "type": "iqn", "connector_id": "iqn.2026-01.org.fx:" + hex2(mac)}
		mac++
		for i := 0; i+1 < len(kv); i += 2 {
			o[kv[i].(string)] = kv[i+1]
		}
		return o
	}
	add("connector create uuid garbage", "POST", "/v1/volume/connectors", conn("uuid", badUUID))
	add("connector create node_uuid garbage", "POST", "/v1/volume/connectors", conn("node_uuid", "banana"))
	add("connector create node_uuid missing", "POST", "/v1/volume/connectors", conn("node_uuid", MissingUUID))
	add("connector create type bogus", "POST", "/v1/volume/connectors", conn("type", "bogus"))
	add("connector create type number", "POST", "/v1/volume/connectors", conn("type", 1))
	add("connector create no connector_id", "POST", "/v1/volume/connectors", obj{"node_uuid": NodeUUID, "type": "iqn"})
	add("connector create unknown field", "POST", "/v1/volume/connectors", conn("foo", 1))
	add("connector create duplicate", "POST", "/v1/volume/connectors", obj{"node_uuid": NodeUUID, "type": "iqn", "connector_id": "iqn.2026-01.org.fx:1"})
	vcp := "/v1/volume/connectors/" + ConnUUID
	add("connector patch uuid", "PATCH", vcp, patch("replace", "/uuid", MissingUUID))
	add("connector patch node_uuid garbage", "PATCH", vcp, patch("replace", "/node_uuid", "banana"))
	add("connector patch type bogus", "PATCH", vcp, patch("replace", "/type", "bogus"))
	add("connector patch unknown field", "PATCH", vcp, patch("add", "/foo", 1))

	// Volume targets.
	tgt := func(kv ...any) obj {
		o := obj{"node_uuid": NodeUUID, "volume_type": "iscsi", "volume_id": "vol-" + hex2(mac), "boot_index": 1 + mac}
		mac++
		for i := 0; i+1 < len(kv); i += 2 {
			o[kv[i].(string)] = kv[i+1]
		}
		return o
	}
	add("target create uuid garbage", "POST", "/v1/volume/targets", tgt("uuid", badUUID))
	add("target create boot_index string", "POST", "/v1/volume/targets", tgt("boot_index", "3"))
	add("target create boot_index garbage", "POST", "/v1/volume/targets", tgt("boot_index", "x"))
	add("target create boot_index negative", "POST", "/v1/volume/targets", tgt("boot_index", -1))
	add("target create boot_index float", "POST", "/v1/volume/targets", tgt("boot_index", 1.5))
	add("target create node_uuid garbage", "POST", "/v1/volume/targets", tgt("node_uuid", "banana"))
	add("target create no volume_type", "POST", "/v1/volume/targets", obj{"node_uuid": NodeUUID, "volume_id": "v", "boot_index": 9})
	add("target create properties string", "POST", "/v1/volume/targets", tgt("properties", "x"))
	add("target create unknown field", "POST", "/v1/volume/targets", tgt("foo", 1))
	add("target create duplicate boot_index", "POST", "/v1/volume/targets", tgt("boot_index", 0))
	vtp := "/v1/volume/targets/" + TargetUUID
	add("target patch boot_index string", "PATCH", vtp, patch("replace", "/boot_index", "5"))
	add("target patch boot_index garbage", "PATCH", vtp, patch("replace", "/boot_index", "x"))
	add("target patch uuid", "PATCH", vtp, patch("replace", "/uuid", MissingUUID))
	add("target patch node_uuid garbage", "PATCH", vtp, patch("replace", "/node_uuid", "banana"))
	add("target patch unknown field", "PATCH", vtp, patch("add", "/foo", 1))

	// Borderline forms, across resources.
	add("node create uuid upper", "POST", "/v1/nodes", node("uuid", "AAAAAAAA-1111-4111-8111-111111111111"))
	add("node create uuid no dashes", "POST", "/v1/nodes", node("uuid", "bbbbbbbb11114111811111111111111b"))
	add("node create name empty", "POST", "/v1/nodes", node("name", ""))
	add("node create name unreserved", "POST", "/v1/nodes", node("name", "a-b.c_d~e"))
	add("node create maintenance TRUE spaced", "POST", "/v1/nodes", node("maintenance", " TRUE "))
	add("node create automated_clean null", "POST", "/v1/nodes", node("automated_clean", nil))
	add("node create description null", "POST", "/v1/nodes", node("description", nil))
	add("node patch automated_clean on", "PATCH", np, patch("replace", "/automated_clean", "on"))
	add("node patch name uuid-like", "PATCH", np, patch("replace", "/name", MissingUUID))
	add("node power timeout string int", "PUT", np+"/states/power", obj{"target": "power on", "timeout": "10"})
	add("node power timeout float", "PUT", np+"/states/power", obj{"target": "power on", "timeout": 1.5})
	add("node list limit 0", "GET", "/v1/nodes?limit=0", nil)
	add("node list limit float", "GET", "/v1/nodes?limit=1.5", nil)
	add("port create pxe_enabled TRUE", "POST", "/v1/ports", port("pxe_enabled", "TRUE"))
	add("port create pxe_enabled spaced", "POST", "/v1/ports", port("pxe_enabled", " yes "))
	add("port create address empty", "POST", "/v1/ports", port("address", ""))
	add("port create address spaced", "POST", "/v1/ports", port("address", " 52:54:00:00:03:01"))
	add("port create uuid upper", "POST", "/v1/ports", port("uuid", "CCCCCCCC-1111-4111-8111-111111111111"))
	add("port patch pxe_enabled null", "PATCH", pp, patch("replace", "/pxe_enabled", nil))
	add("portgroup create sps 0", "POST", "/v1/portgroups", pg("standalone_ports_supported", "0", "name", "pg-sps0"))
	add("portgroup patch mode number", "PATCH", pgp, patch("replace", "/mode", 5))
	add("chassis create uuid upper", "POST", "/v1/chassis", obj{"uuid": "DDDDDDDD-1111-4111-8111-111111111111"})
	add("allocation create candidate by name", "POST", "/v1/allocations", obj{"resource_class": "rc", "candidate_nodes": []any{"fx-node"}})
	add("allocation create traits duplicate", "POST", "/v1/allocations", obj{"resource_class": "rc", "traits": []any{"CUSTOM_A", "CUSTOM_A"}})
	add("allocation create name empty", "POST", "/v1/allocations", obj{"resource_class": "rc", "name": ""})
	add("template create step priority zero string", "POST", "/v1/deploy_templates", tpl("name", "CUSTOM_T3", "steps", []any{obj{"interface": "bios", "step": "s", "args": obj{}, "priority": "0"}}))
	add("template create step empty name", "POST", "/v1/deploy_templates", withStep("step", ""))
	add("template create extra list", "POST", "/v1/deploy_templates", tpl("name", "CUSTOM_T4", "extra", []any{}))
	add("connector create connector_id number", "POST", "/v1/volume/connectors", conn("connector_id", 5))
	add("target create volume_id number", "POST", "/v1/volume/targets", tgt("volume_id", 5))
	return cs
}

func hex2(n int) string {
	const h = "0123456789abcdef"
	return string([]byte{h[(n>>4)&15], h[n&15]})
}

func repr(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return "'" + v + "'"
	default:
		return strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(fmt.Sprint(v), "\n", ""), " ", ""))
	}
}

// ndInput is a network_data value to send to node create and update.
type ndInput struct {
	name  string
	value any
}

// networkDataInputs are network_data values with one bad (or borderline)
// item each: links (physical, bond, VLAN), networks (IPv4, IPv6, routes)
// and services, as network-data-schema.json of Ironic shapes them.
func networkDataInputs() []ndInput {
	// set sets key, value pairs in o; a nil value deletes the key.
	set := func(o obj, kv []any) obj {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(o, kv[i].(string))
				continue
			}
			o[kv[i].(string)] = kv[i+1]
		}
		return o
	}
	link := func(kv ...any) obj {
		return set(obj{"id": "eth0", "type": "phy", "ethernet_mac_address": "52:54:00:12:34:56"}, kv)
	}
	net4 := func(kv ...any) obj {
		o := obj{"id": "net0", "link": "eth0", "network_id": "n0", "type": "ipv4", "ip_address": "192.168.1.10", "netmask": "255.255.255.0"}
		return set(o, kv)
	}
	nd := func(links, networks, services []any) obj {
		return obj{"links": links, "networks": networks, "services": services}
	}
	l := func(items ...any) []any { return items }
	none := []any{}
	route := obj{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "192.168.1.1"}
	return []ndInput{
		{"valid", nd(l(link(), link("id", "bond0", "type", "bond", "bond_mode", "balance-rr", "bond_links", l("eth0")),
			link("id", "vlan5", "type", "vlan", "ethernet_mac_address", nil, "vlan_mac_address", "52:54:00:12:34:57", "vlan_link", "bond0", "vlan_id", 5)),
			l(net4("routes", l(route)), net4("id", "net1", "type", "ipv6", "ip_address", "2001:db8::10/64", "netmask", "ffff:ffff:ffff:ffff::"),
				net4("id", "net2", "type", "ipv4_dhcp", "ip_address", nil)),
			l(obj{"type": "dns", "address": "8.8.8.8"}, obj{"type": "dns", "address": "2001:4860:4860::8888"}))},
		{"missing services", obj{"links": none, "networks": none}},
		{"links not list", obj{"links": obj{}, "networks": none, "services": none}},
		{"link string", nd(l("eth0"), none, none)},
		{"link type bogus", nd(l(link("type", "bogus")), none, none)},
		{"link mac bad", nd(l(link("ethernet_mac_address", "52:54:00:12:34")), none, none)},
		{"link mac upper dashes", nd(l(link("ethernet_mac_address", "52-54-00-AB-CD-EF")), none, none)},
		{"link without id", nd(l(link("id", nil)), none, none)},
		{"link mtu 70000", nd(l(link("mtu", 70000)), none, none)},
		{"link mtu string", nd(l(link("mtu", "1500")), none, none)},
		{"link mtu null", nd(l(link("mtu", nil)), none, none)},
		// Ironic 21.4's schema lists "802.1ad", a typo later Ironic fixed.
		{"bond 802.3ad", nd(l(link("type", "bond", "bond_mode", "802.3ad", "bond_links", l("eth0"))), none, none)},
		{"bond without links", nd(l(link("type", "bond", "bond_mode", "802.3ad")), none, none)},
		{"bond mode bogus", nd(l(link("type", "bond", "bond_mode", "bogus", "bond_links", l("eth0"))), none, none)},
		{"vlan id string", nd(l(link("type", "vlan", "ethernet_mac_address", nil, "vlan_mac_address", "52:54:00:12:34:57", "vlan_link", "eth0", "vlan_id", "5")), none, none)},
		{"network type bogus", nd(none, l(net4("type", "bogus")), none)},
		{"network ip 300", nd(none, l(net4("ip_address", "300.1.1.1")), none)},
		{"network ipv6 address on ipv4", nd(none, l(net4("ip_address", "2001:db8::1")), none)},
		{"network ipv6 bad", nd(none, l(net4("type", "ipv6", "ip_address", "2001:db8:::1", "netmask", "ffff::")), none)},
		{"network netmask bad", nd(none, l(net4("netmask", "255.0.255.0")), none)},
		{"network without link", nd(none, l(obj{"id": "net0", "network_id": "n0", "type": "ipv4"}), none)},
		{"route without gateway", nd(none, l(net4("routes", l(obj{"network": "0.0.0.0", "netmask": "0.0.0.0"}))), none)},
		{"route gateway bad", nd(none, l(net4("routes", l(obj{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "gw"}))), none)},
		{"service type ntp", nd(none, none, l(obj{"type": "ntp", "address": "8.8.8.8"}))},
		{"service address bad", nd(none, none, l(obj{"type": "dns", "address": "dns.example"}))},
		{"service without address", nd(none, none, l(obj{"type": "dns"}))},
	}
}
