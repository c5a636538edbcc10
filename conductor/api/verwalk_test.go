package api

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/inspector/process"
	"github.com/ferric-metal/ferric/inspector/ruleapi"
)

// The microversion walk: every route Ironic serves, with the microversion
// it appeared in (Ironic's webapi version history), is called at every
// version from 1.1 to the advertised maximum. At or after its version a
// route must exist (no 404 for want of a route, never a 405); below it, the
// answer is Ironic's 404, 405 or 406. Writes carry bodies a real server
// refuses or that change nothing lasting, and DELETEs act on records made
// for the call, so the fixtures stay.

// walkRoute is one Ironic route. Path parameters are {node}, {port},
// {portgroup}, {chassis}, {allocation}, {template}, {runbook},
// {connector}, {target}, {rule}, {driver}, {conductor}, {hnode} and
// its history {event}; a
// {fresh:KIND} parameter is a record of KIND made for this call.
type walkRoute struct {
	method, path string
	min          Version
	body         string
	// noRecord: a 404 naming a missing record (not a missing route) is
	// the right answer (e.g. a node without an allocation).
	noRecord bool
	// below is Ironic's status below min where checked against its source
	// (0: any of 404, 405 and 406).
	below int
	// belowFrom: below is checked from this version on (the resource
	// itself answers 404 before it).
	belowFrom Version
	// also is one more version the route is served at below min (Ironic
	// takes continue_inspection at 1.1, as ironic-inspector's callback).
	also Version
	// missing names a route ferric does not serve yet: the walk logs it
	// instead of failing, so the table says what is still to build.
	missing string
}

var walkRoutes = []walkRoute{
	// 1.1: the initial API.
	{method: "GET", path: "/v1/nodes", min: 1},
	{method: "GET", path: "/v1/nodes/detail", min: 1},
	{method: "POST", path: "/v1/nodes", min: 1, body: `{"bogus_field":1}`},
	{method: "GET", path: "/v1/nodes/{node}", min: 1},
	{method: "PATCH", path: "/v1/nodes/{node}", min: 1, body: `[{"op":"add","path":"/extra/walk","value":"x"}]`},
	{method: "DELETE", path: "/v1/nodes/{fresh:node}", min: 1},
	{method: "GET", path: "/v1/nodes/{node}/states", min: 1},
	{method: "PUT", path: "/v1/nodes/{node}/states/power", min: 1, body: `{"target":"bogus"}`},
	{method: "PUT", path: "/v1/nodes/{node}/states/provision", min: 1, body: `{"target":"bogus"}`},
	{method: "GET", path: "/v1/nodes/{node}/states/console", min: 1},
	{method: "PUT", path: "/v1/nodes/{node}/states/console", min: 1, body: `{"enabled":"maybe"}`},
	{method: "GET", path: "/v1/nodes/{node}/management/boot_device", min: 1},
	{method: "PUT", path: "/v1/nodes/{node}/management/boot_device", min: 1, body: `{"boot_device":"bogus"}`},
	{method: "GET", path: "/v1/nodes/{node}/management/boot_device/supported", min: 1},
	{method: "GET", path: "/v1/nodes/{node}/validate", min: 1},
	{method: "PUT", path: "/v1/nodes/{node}/maintenance", min: 1, body: `{"reason":"walk"}`},
	{method: "DELETE", path: "/v1/nodes/{node}/maintenance", min: 1},
	{method: "GET", path: "/v1/nodes/{node}/vendor_passthru/methods", min: 1},
	{method: "POST", path: "/v1/nodes/{node}/vendor_passthru?method=no_such_method", min: 1, body: `{}`},
	{method: "GET", path: "/v1/nodes/{node}/ports", min: 1},
	{method: "GET", path: "/v1/nodes/{node}/ports/detail", min: 1},
	{method: "GET", path: "/v1/ports", min: 1},
	{method: "GET", path: "/v1/ports/detail", min: 1},
	{method: "POST", path: "/v1/ports", min: 1, body: `{"bogus_field":1}`},
	{method: "GET", path: "/v1/ports/{port}", min: 1},
	{method: "PATCH", path: "/v1/ports/{port}", min: 1, body: `[{"op":"add","path":"/extra/walk","value":"x"}]`},
	{method: "DELETE", path: "/v1/ports/{fresh:port}", min: 1},
	{method: "GET", path: "/v1/chassis", min: 1},
	{method: "GET", path: "/v1/chassis/detail", min: 1},
	{method: "POST", path: "/v1/chassis", min: 1, body: `{"bogus_field":1}`},
	{method: "GET", path: "/v1/chassis/{chassis}", min: 1},
	{method: "PATCH", path: "/v1/chassis/{chassis}", min: 1, body: `[{"op":"add","path":"/extra/walk","value":"x"}]`},
	{method: "DELETE", path: "/v1/chassis/{fresh:chassis}", min: 1},
	{method: "GET", path: "/v1/chassis/{chassis}/nodes", min: 1},
	{method: "GET", path: "/v1/chassis/{chassis}/nodes/detail", min: 1},
	{method: "GET", path: "/v1/drivers", min: 1},
	{method: "GET", path: "/v1/drivers/{driver}", min: 1},
	{method: "GET", path: "/v1/drivers/{driver}/properties", min: 1},
	{method: "GET", path: "/v1/drivers/{driver}/vendor_passthru/methods", min: 1},
	{method: "POST", path: "/v1/drivers/{driver}/vendor_passthru?method=no_such_method", min: 1, body: `{}`},
	// 1.12 RAID.
	{method: "PUT", path: "/v1/nodes/{node}/states/raid", min: 12, body: `{"logical_disks":"not a list"}`, below: 406},
	{method: "GET", path: "/v1/drivers/{driver}/raid/logical_disk_properties", min: 12, below: 406},
	// 1.22 the ramdisk's lookup and heartbeat (Ironic's 404 below).
	{method: "GET", path: "/v1/lookup?addresses=52:54:00:00:00:99", min: 22, noRecord: true, below: 404},
	{method: "POST", path: "/v1/heartbeat/{node}", min: 22, body: `{"callback_url":""}`, below: 404},
	// 1.23 portgroups; 1.24 their sub-resources.
	{method: "GET", path: "/v1/portgroups", min: 23},
	{method: "GET", path: "/v1/portgroups/detail", min: 23},
	{method: "POST", path: "/v1/portgroups", min: 23, body: `{"bogus_field":1}`},
	{method: "GET", path: "/v1/portgroups/{portgroup}", min: 23},
	{method: "PATCH", path: "/v1/portgroups/{portgroup}", min: 23, body: `[{"op":"add","path":"/extra/walk","value":"x"}]`},
	{method: "DELETE", path: "/v1/portgroups/{fresh:portgroup}", min: 23},
	{method: "GET", path: "/v1/portgroups/{portgroup}/ports", min: 24, below: 404},
	{method: "GET", path: "/v1/portgroups/{portgroup}/ports/detail", min: 24, below: 404},
	{method: "GET", path: "/v1/nodes/{node}/portgroups", min: 24},
	{method: "GET", path: "/v1/nodes/{node}/portgroups/detail", min: 24},
	// 1.28 VIFs, 1.29 NMI.
	{method: "GET", path: "/v1/nodes/{node}/vifs", min: 28},
	{method: "POST", path: "/v1/nodes/{node}/vifs", min: 28, body: `{}`},
	{method: "DELETE", path: "/v1/nodes/{node}/vifs/not-attached", min: 28, noRecord: true},
	{method: "PUT", path: "/v1/nodes/{node}/management/inject_nmi", min: 29, body: `{"x":1}`, below: 404},
	// 1.32 volume.
	{method: "GET", path: "/v1/volume", min: 32},
	{method: "GET", path: "/v1/volume/connectors", min: 32},
	{method: "POST", path: "/v1/volume/connectors", min: 32, body: `{"bogus_field":1}`},
	{method: "GET", path: "/v1/volume/connectors/{connector}", min: 32},
	{method: "PATCH", path: "/v1/volume/connectors/{connector}", min: 32, body: `[{"op":"add","path":"/extra/walk","value":"x"}]`},
	{method: "DELETE", path: "/v1/volume/connectors/{fresh:connector}", min: 32},
	{method: "GET", path: "/v1/volume/targets", min: 32},
	{method: "POST", path: "/v1/volume/targets", min: 32, body: `{"bogus_field":1}`},
	{method: "GET", path: "/v1/volume/targets/{target}", min: 32},
	{method: "PATCH", path: "/v1/volume/targets/{target}", min: 32, body: `[{"op":"add","path":"/extra/walk","value":"x"}]`},
	{method: "DELETE", path: "/v1/volume/targets/{fresh:target}", min: 32},
	{method: "GET", path: "/v1/nodes/{node}/volume", min: 32},
	{method: "GET", path: "/v1/nodes/{node}/volume/connectors", min: 32},
	{method: "GET", path: "/v1/nodes/{node}/volume/targets", min: 32},
	// 1.37 traits.
	{method: "GET", path: "/v1/nodes/{node}/traits", min: 37},
	{method: "PUT", path: "/v1/nodes/{node}/traits", min: 37, body: `{"traits":["CUSTOM_WALK"]}`},
	{method: "PUT", path: "/v1/nodes/{node}/traits/CUSTOM_WALK2", min: 37},
	{method: "DELETE", path: "/v1/nodes/{node}/traits/CUSTOM_WALK2", min: 37},
	{method: "DELETE", path: "/v1/nodes/{node}/traits", min: 37},
	// 1.40 BIOS.
	{method: "GET", path: "/v1/nodes/{node}/bios", min: 40},
	{method: "GET", path: "/v1/nodes/{node}/bios/no_such_setting", min: 40, noRecord: true},
	// 1.49 conductors.
	{method: "GET", path: "/v1/conductors", min: 49},
	{method: "GET", path: "/v1/conductors/{conductor}", min: 49},
	// 1.52 allocations (1.57 PATCH).
	{method: "GET", path: "/v1/allocations", min: 52},
	{method: "POST", path: "/v1/allocations", min: 52, body: `{"bogus_field":1}`},
	{method: "GET", path: "/v1/allocations/{allocation}", min: 52},
	{method: "PATCH", path: "/v1/allocations/{allocation}", min: 57, below: 405, belowFrom: 52, body: `[{"op":"add","path":"/extra/walk","value":"x"}]`},
	{method: "DELETE", path: "/v1/allocations/{fresh:allocation}", min: 52},
	{method: "GET", path: "/v1/nodes/{node}/allocation", min: 52, noRecord: true},
	{method: "DELETE", path: "/v1/nodes/{node}/allocation", min: 52, noRecord: true},
	// 1.54 events, 1.55 deploy templates.
	{method: "POST", path: "/v1/events", min: 54, body: `{"events":[]}`},
	{method: "GET", path: "/v1/deploy_templates", min: 55},
	{method: "POST", path: "/v1/deploy_templates", min: 55, body: `{"bogus_field":1}`},
	{method: "GET", path: "/v1/deploy_templates/{template}", min: 55},
	{method: "PATCH", path: "/v1/deploy_templates/{template}", min: 55, body: `[{"op":"add","path":"/extra/walk","value":"x"}]`},
	{method: "DELETE", path: "/v1/deploy_templates/{fresh:template}", min: 55},
	// 1.63 indicators.
	{method: "GET", path: "/v1/nodes/{node}/management/indicators", min: 63},
	{method: "GET", path: "/v1/nodes/{node}/management/indicators/led@system", min: 63},
	{method: "PUT", path: "/v1/nodes/{node}/management/indicators/led@system", min: 63, body: `{"state":"bogus"}`},
	// 1.76 boot mode and secure boot.
	{method: "PUT", path: "/v1/nodes/{node}/states/boot_mode", min: 76, body: `{"target":"bogus"}`},
	{method: "PUT", path: "/v1/nodes/{node}/states/secure_boot", min: 76, body: `{"target":"bogus"}`},
	// 1.78 history, 1.81 inventory, 1.82 shards, 1.83 children,
	// 1.84 continue_inspection, 1.86 firmware.
	{method: "GET", path: "/v1/nodes/{node}/history", min: 78},
	{method: "GET", path: "/v1/nodes/{hnode}/history/{event}", min: 78},
	{method: "GET", path: "/v1/nodes/{node}/inventory", min: 81, noRecord: true},
	{method: "GET", path: "/v1/shards", min: 82},
	{method: "GET", path: "/v1/nodes/{node}/children", min: 83},
	{method: "POST", path: "/v1/continue_inspection", min: 84, body: `{}`, below: 404, also: 1},
	{method: "GET", path: "/v1/nodes/{node}/firmware", min: 86},
	// 1.89 virtual media attach/detach, 1.93 its listing.
	{method: "POST", path: "/v1/nodes/{node}/vmedia", min: 89, body: `{"device_type":"bogus"}`},
	{method: "DELETE", path: "/v1/nodes/{node}/vmedia", min: 89},
	{method: "GET", path: "/v1/nodes/{node}/vmedia", min: 93},
	// 1.92 runbooks, 1.96 inspection rules.
	{method: "GET", path: "/v1/runbooks", min: 92},
	{method: "POST", path: "/v1/runbooks", min: 92, body: `{"bogus_field":1}`},
	{method: "GET", path: "/v1/runbooks/{runbook}", min: 92},
	{method: "PATCH", path: "/v1/runbooks/{runbook}", min: 92, body: `[{"op":"add","path":"/extra/walk","value":"x"}]`},
	{method: "DELETE", path: "/v1/runbooks/{fresh:runbook}", min: 92},
	{method: "GET", path: "/v1/inspection_rules", min: 96},
	{method: "POST", path: "/v1/inspection_rules", min: 96, body: `{"bogus_field":1}`},
	{method: "GET", path: "/v1/inspection_rules/{rule}", min: 96},
	{method: "PATCH", path: "/v1/inspection_rules/{rule}", min: 96, body: `[{"op":"replace","path":"/description","value":"walk"}]`},
	{method: "DELETE", path: "/v1/inspection_rules/{fresh:rule}", min: 96},
}

// walkFixtures makes the records the walk's routes name.
type walkFixtures struct {
	e    *testEnv
	node string
	ids  map[string]string
	n    int
}

// makeRecord creates a record of a kind at the maximum version and
// returns its id.
func (f *walkFixtures) makeRecord(kind string) string {
	f.e.t.Helper()
	f.n++
	var path, body string
	switch kind {
	case "node":
		path, body = "/v1/nodes", `{"driver":"fake-hardware"}`
	case "port":
		path, body = "/v1/ports", fmt.Sprintf(`{"node_uuid":%q,"address":"52:54:00:%02x:%02x:%02x"}`, f.node, f.n>>16&0xff, f.n>>8&0xff, f.n&0xff)
	case "portgroup":
		path, body = "/v1/portgroups", fmt.Sprintf(`{"node_uuid":%q}`, f.node)
	case "chassis":
		path, body = "/v1/chassis", `{"description":"walk"}`
	case "allocation":
		path, body = "/v1/allocations", `{"resource_class":"walk-none-matches"}`
	case "template":
		path, body = "/v1/deploy_templates", fmt.Sprintf(`{"name":"CUSTOM_WALK_T%d","steps":[{"interface":"bios","step":"apply_configuration","args":{"settings":[]},"priority":10}]}`, f.n)
	case "runbook":
		path, body = "/v1/runbooks", fmt.Sprintf(`{"name":"CUSTOM_WALK_R%d","steps":[{"interface":"deploy","step":"erase_devices_metadata","order":0}]}`, f.n)
	case "connector":
		path, body = "/v1/volume/connectors", fmt.Sprintf(`{"node_uuid":%q,"type":"iqn","connector_id":"iqn.walk.%d"}`, f.node, f.n)
	case "target":
		path, body = "/v1/volume/targets", fmt.Sprintf(`{"node_uuid":%q,"volume_type":"iscsi","volume_id":"walk-%d","boot_index":%d}`, f.node, f.n, f.n)
	case "rule":
		path, body = "/v1/inspection_rules", `{"actions":[{"op":"set-attribute","args":{"path":"/extra/a","value":1}}],"description":"walk"}`
	default:
		f.e.t.Fatalf("no fixture kind %q", kind)
	}
	r := f.e.must(201, f.e.do("POST", path, body, hdrLegacyVersion, Version(MaxMinor).String()), "fixture "+kind)
	return r.str("uuid")
}

// expand fills a route's parameters.
func (f *walkFixtures) expand(path string) string {
	for {
		i := strings.Index(path, "{")
		if i < 0 {
			return path
		}
		j := strings.Index(path[i:], "}") + i
		name := path[i+1 : j]
		var val string
		if kind, ok := strings.CutPrefix(name, "fresh:"); ok {
			val = f.makeRecord(kind)
		} else if v, ok := f.ids[name]; ok {
			val = v
		} else {
			f.e.t.Fatalf("no fixture for {%s}", name)
		}
		path = path[:i] + val + path[j+1:]
	}
}

// routeMissing reports whether a 404 is a router's (no such route or a
// version-hidden resource) rather than a handler's about a missing record.
func routeMissing(r *resp) bool {
	if r.code != http.StatusNotFound {
		return false
	}
	m := r.fault()
	return m == "" || m == errNoRoute.Msg
}

func newWalkEnv(t *testing.T) *walkFixtures {
	e := newTestEnv(t, nil)
	rm := (&ruleapi.Handler{Rules: process.NewRuleStore(e.st)}).Routes()
	e.srv.MountV1(Version(ruleapi.MinVersion), rm, rm.Routes())
	e.version = Version(MaxMinor).String()
	f := &walkFixtures{e: e, ids: map[string]string{}}
	f.node = e.createNode(map[string]any{"name": "walk"}).str("uuid")
	f.ids["node"] = f.node
	for _, k := range []string{"port", "portgroup", "chassis", "allocation", "template", "runbook", "connector", "target", "rule"} {
		f.ids[k] = f.makeRecord(k)
	}
	f.ids["driver"] = "fake-hardware"
	f.ids["conductor"] = "test-conductor"
	// A node with a chassis, so the chassis' node listings have one.
	e.must(201, e.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "chassis_uuid": f.ids["chassis"]}), "node in chassis")
	// A node with a history event: verifying IPMI without an address fails.
	f.ids["hnode"] = e.createNode(map[string]any{"driver": "ipmi"}).str("uuid")
	e.provision(f.ids["hnode"], "manage", "")
	e.waitNode(f.ids["hnode"], "verify failure", func(n map[string]any) bool { return n["last_error"] != nil })
	h := e.must(200, e.do("GET", "/v1/nodes/"+f.ids["hnode"]+"/history", nil), "history")
	if hist, _ := h.j["history"].([]any); len(hist) > 0 {
		f.ids["event"], _ = hist[0].(map[string]any)["uuid"].(string)
	}
	if f.ids["event"] == "" {
		t.Fatalf("no history event to walk: %s", h.raw)
	}
	return f
}

// TestMicroversionWalk calls every route of walkRoutes at every version
// from 1.1 to the maximum GET / advertises.
func TestMicroversionWalk(t *testing.T) {
	f := newWalkEnv(t)
	e := f.e
	root := e.must(200, e.do("GET", "/", nil, hdrLegacyVersion, ""), "GET /")
	dv, _ := root.j["default_version"].(map[string]any)
	maxS, _ := dv["version"].(string)
	var maxV int
	if _, err := fmt.Sscanf(maxS, "1.%d", &maxV); err != nil || maxV < 1 {
		t.Fatalf("GET / advertises %q", maxS)
	}
	if Version(maxV) != MaxMinor {
		t.Errorf("GET / advertises 1.%d, MaxMinor is %d", maxV, MaxMinor)
	}
	missing := map[string]bool{}
	// Failures by route and kind, reported once with their versions.
	type fail struct {
		versions []string
		sample   string
	}
	fails := map[string]*fail{}
	var order []string
	report := func(key, vs, sample string) {
		fl := fails[key]
		if fl == nil {
			fl = &fail{sample: sample}
			fails[key] = fl
			order = append(order, key)
		}
		fl.versions = append(fl.versions, vs)
	}
	calls := 0
	for v := 1; v <= maxV; v++ {
		vs := fmt.Sprintf("1.%d", v)
		for _, rt := range walkRoutes {
			var body any
			if rt.body != "" {
				body = rt.body
			}
			r := e.do(rt.method, f.expand(rt.path), body, hdrLegacyVersion, vs)
			calls++
			route := fmt.Sprintf("%s %s (since 1.%d)", rt.method, rt.path, rt.min)
			sample := fmt.Sprintf("%d %.300s", r.code, r.raw)
			switch {
			case r.code >= 500:
				report(route+": server error", vs, sample)
			case Version(v) < rt.min && Version(v) != rt.also:
				if rt.below != 0 && Version(v) >= rt.belowFrom && r.code != rt.below {
					report(fmt.Sprintf("%s: below its version want %d", route, rt.below), vs, sample)
				} else if r.code != 404 && r.code != 405 && r.code != 406 {
					report(route+": served below its version (want 404/405/406)", vs, sample)
				}
			case r.code == 405 || routeMissing(r) || (r.code == 404 && !rt.noRecord):
				if rt.missing != "" {
					missing[rt.missing] = true
				} else {
					report(route+": missing at its version", vs, sample)
				}
			case rt.missing != "":
				report(route+": served, but the table marks "+rt.missing+" missing: flip the table", vs, sample)
			}
		}
	}
	for _, k := range order {
		fl := fails[k]
		t.Errorf("%s: at %d versions (%s .. %s), e.g. %s", k, len(fl.versions), fl.versions[0], fl.versions[len(fl.versions)-1], fl.sample)
	}
	for _, m := range slices.Sorted(maps.Keys(missing)) {
		t.Logf("EXPECTED MISSING (advertised but not built yet): %s", m)
	}
	t.Logf("%d calls over %d routes and versions 1.1 to 1.%d", calls, len(walkRoutes), maxV)
}

// walkField is a field Ironic added to a resource at a microversion.
type walkField struct {
	name string
	min  Version
}

// walkFields are, by resource, the fields Ironic shows from a version on
// (its versioned-field tables and hide-in-older-versions rules); base
// fields are there from 1.1.
var walkFields = map[string][]walkField{
	"node": {
		{"uuid", 1}, {"driver", 1}, {"driver_info", 1}, {"extra", 1}, {"instance_info", 1}, {"instance_uuid", 1},
		{"last_error", 1}, {"maintenance", 1}, {"maintenance_reason", 1}, {"power_state", 1}, {"provision_state", 1},
		{"target_power_state", 1}, {"target_provision_state", 1}, {"properties", 1}, {"reservation", 1},
		{"console_enabled", 1}, {"chassis_uuid", 1}, {"ports", 1}, {"links", 1},
		{"driver_internal_info", 3}, {"name", 5}, {"inspection_started_at", 6}, {"inspection_finished_at", 6},
		{"clean_step", 7}, {"raid_config", 12}, {"target_raid_config", 12}, {"states", 14},
		{"network_interface", 20}, {"resource_class", 21}, {"portgroups", 24},
		{"boot_interface", 31}, {"console_interface", 31}, {"deploy_interface", 31}, {"inspect_interface", 31},
		{"management_interface", 31}, {"power_interface", 31}, {"raid_interface", 31}, {"vendor_interface", 31},
		{"volume", 32}, {"storage_interface", 33}, {"traits", 37}, {"rescue_interface", 38}, {"bios_interface", 40},
		{"fault", 42}, {"deploy_step", 44}, {"conductor_group", 46}, {"automated_clean", 47},
		{"protected", 48}, {"protected_reason", 48}, {"conductor", 49}, {"owner", 50}, {"description", 51},
		{"allocation_uuid", 52}, {"retired", 61}, {"retired_reason", 61}, {"lessee", 65}, {"network_data", 66},
		{"boot_mode", 75}, {"secure_boot", 75}, {"shard", 82}, {"parent_node", 83}, {"firmware_interface", 86},
		{"service_step", 87}, {"disable_power_off", 95}, {"instance_name", 104}, {"health", 109},
	},
	"port": {
		{"uuid", 1}, {"address", 1}, {"node_uuid", 1}, {"extra", 1}, {"links", 1},
		{"internal_info", 18}, {"local_link_connection", 19}, {"pxe_enabled", 19}, {"portgroup_uuid", 24},
		{"physical_network", 34}, {"is_smartnic", 53}, {"name", 88}, {"description", 97}, {"vendor", 100},
		{"category", 101},
	},
	"portgroup": {
		{"uuid", 23}, {"address", 23}, {"name", 23}, {"node_uuid", 23}, {"extra", 23}, {"internal_info", 23},
		{"standalone_ports_supported", 23}, {"ports", 23}, {"mode", 26}, {"properties", 26},
		{"physical_network", 102}, {"category", 103},
	},
	"allocation": {
		{"uuid", 52}, {"name", 52}, {"node_uuid", 52}, {"state", 52}, {"last_error", 52}, {"resource_class", 52},
		{"candidate_nodes", 52}, {"traits", 52}, {"extra", 52}, {"owner", 60},
	},
}

// walkResourcePath is where one record of a resource is read.
var walkResourcePath = map[string]string{
	"node": "/v1/nodes/{node}", "port": "/v1/ports/{port}", "portgroup": "/v1/portgroups/{portgroup}",
	"allocation": "/v1/allocations/{allocation}",
}

// walkDetailPath is the detailed listing of a resource, which must show
// the same fields as one record (the node listing renders through a cache).
var walkDetailPath = map[string]string{
	"node": "/v1/nodes/detail", "port": "/v1/ports/detail", "portgroup": "/v1/portgroups/detail",
	"allocation": "/v1/allocations",
}

// TestMicroversionFields reads one record of each resource at every
// version from 1.1 to the maximum: each field of walkFields is shown from
// its version on and hidden before, and asking for it with ?fields= below
// its version is refused with 406, as Ironic does.
func TestMicroversionFields(t *testing.T) {
	f := newWalkEnv(t)
	e := f.e
	for _, res := range slices.Sorted(maps.Keys(walkFields)) {
		fields := walkFields[res]
		path := f.expand(walkResourcePath[res])
		var early, late []string
		for v := Version(1); v <= MaxMinor; v++ {
			r := e.do("GET", path, nil, hdrLegacyVersion, v.String())
			if r.code == 404 || r.code == 406 {
				if fields[0].min <= v {
					t.Errorf("%s %s at %s: %d", res, path, v, r.code)
				}
				continue
			}
			e.must(200, r, res+" at "+v.String())
			d := e.must(200, e.do("GET", walkDetailPath[res], nil, hdrLegacyVersion, v.String()), res+" detail at "+v.String())
			var listed map[string]any
			items, _ := d.j[res+"s"].([]any)
			for _, it := range items {
				if m, _ := it.(map[string]any); m["uuid"] == r.j["uuid"] {
					listed = m
				}
			}
			if listed == nil {
				t.Fatalf("%s %s not in %s at %s: %.300s", res, r.j["uuid"], walkDetailPath[res], v, d.raw)
			}
			for _, fd := range fields {
				for where, obj := range map[string]map[string]any{"record": r.j, "detail list": listed} {
					_, has := obj[fd.name]
					switch {
					case fd.min <= v && !has:
						late = append(late, fmt.Sprintf("%s (1.%d) absent from the %s at %s", fd.name, fd.min, where, v))
					case fd.min > v && has:
						early = append(early, fmt.Sprintf("%s (1.%d) shown in the %s at %s", fd.name, fd.min, where, v))
					}
				}
			}
		}
		for _, s := range slices.Compact(late) {
			t.Errorf("%s: field %s", res, s)
		}
		for _, s := range slices.Compact(early) {
			t.Errorf("%s: field %s", res, s)
		}
		// ?fields= (1.8) names a field: 406 just below its version, shown
		// from it.
		for _, fd := range fields {
			if fd.min <= 8 || fd.name == "links" || fd.name == "ports" || fd.name == "portgroups" || fd.name == "states" || fd.name == "volume" {
				continue
			}
			below := e.do("GET", path+"?fields="+fd.name, nil, hdrLegacyVersion, (fd.min - 1).String())
			if below.code != 406 && !(res != "node" && below.code == 404) {
				t.Errorf("%s ?fields=%s at %s: %d, want 406: %.200s", res, fd.name, fd.min-1, below.code, below.raw)
			}
			at := e.do("GET", path+"?fields="+fd.name, nil, hdrLegacyVersion, fd.min.String())
			if _, ok := at.j[fd.name]; at.code != 200 || !ok {
				t.Errorf("%s ?fields=%s at %s: %d %.200s", res, fd.name, fd.min, at.code, at.raw)
			}
		}
	}
}
