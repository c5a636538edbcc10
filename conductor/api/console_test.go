package api

import (
	"fmt"
	"strings"
	"testing"
)

func TestConsoleBIOSShards(t *testing.T) {
	e := newTestEnv(t, nil)
	e.createNode(map[string]any{"name": "fk"})
	e.createNode(map[string]any{"name": "im", "driver": "ipmi"})
	e.must(201, e.do("POST", "/v1/nodes", map[string]any{"name": "s1", "driver": "fake-hardware", "shard": "rack-1"}, hdrLegacyVersion, "1.82"), "node in a shard")
	// Console: fake-hardware's fake console can be enabled; no-console refused.
	if r := e.must(200, e.do("GET", "/v1/nodes/fk/states/console", nil), "console off"); r.j["console_enabled"] != false || r.j["console_info"] != nil {
		t.Errorf("console of a new node: %s", r.raw)
	}
	r := e.must(202, e.do("PUT", "/v1/nodes/fk/states/console", map[string]any{"enabled": true}), "enable console")
	if !strings.HasSuffix(r.h.Get("Location"), "/v1/nodes/fk/states/console") {
		t.Errorf("Location %q", r.h.Get("Location"))
	}
	if r := e.must(200, e.do("GET", "/v1/nodes/fk/states/console", nil), "console on"); r.j["console_enabled"] != true || r.j["console_info"] == nil {
		t.Errorf("console after enable: %s", r.raw)
	}
	if r := e.must(200, e.do("GET", "/v1/nodes/fk/states", nil), "states"); r.j["console_enabled"] != true {
		t.Errorf("states: %s", r.raw)
	}
	e.must(202, e.do("PUT", "/v1/nodes/fk/states/console", map[string]any{"enabled": "off"}), "disable console")
	if r := e.must(200, e.do("GET", "/v1/nodes/fk", nil), "node"); r.j["console_enabled"] != false {
		t.Errorf("console_enabled after disable: %v", r.j["console_enabled"])
	}
	if r := e.must(400, e.do("PUT", "/v1/nodes/im/states/console", map[string]any{"enabled": true}), "no-console"); !strings.Contains(r.fault(), "does not support console") {
		t.Errorf("no-console: %s", r.raw)
	}
	e.must(400, e.do("PUT", "/v1/nodes/fk/states/console", map[string]any{}), "enabled missing")
	e.must(400, e.do("PUT", "/v1/nodes/fk/states/console", map[string]any{"enabled": "maybe"}), "enabled invalid")
	// BIOS: no interface here caches settings.
	if r := e.must(200, e.do("GET", "/v1/nodes/fk/bios", nil, hdrLegacyVersion, "1.40"), "bios"); fmt.Sprint(r.j["bios"]) != "[]" {
		t.Errorf("bios: %s", r.raw)
	}
	e.must(404, e.do("GET", "/v1/nodes/fk/bios/ProcVirtualization", nil, hdrLegacyVersion, "1.40"), "bios setting")
	e.must(404, e.do("GET", "/v1/nodes/fk/bios", nil, hdrLegacyVersion, "1.39"), "bios below 1.40")
	e.must(406, e.do("GET", "/v1/nodes/fk/bios?detail=true", nil, hdrLegacyVersion, "1.73"), "bios detail below 1.74")
	e.must(200, e.do("GET", "/v1/nodes/fk/bios?detail=true", nil, hdrLegacyVersion, "1.74"), "bios detail")
	// Shards.
	r = e.must(200, e.do("GET", "/v1/shards", nil, hdrLegacyVersion, "1.82"), "shards")
	if got := fmt.Sprint(r.j["shards"]); got != "[map[count:2 name:None] map[count:1 name:rack-1]]" {
		t.Errorf("shards %s", got)
	}
	e.must(404, e.do("GET", "/v1/shards", nil, hdrLegacyVersion, "1.81"), "shards below 1.82")
	// Vendor passthru: fake-hardware has no vendor methods.
	if r := e.must(200, e.do("GET", "/v1/nodes/fk/vendor_passthru/methods", nil), "vendor methods"); string(r.raw) != "{}\n" && string(r.raw) != "{}" {
		t.Errorf("vendor methods: %q", r.raw)
	}
	if r := e.must(400, e.do("POST", "/v1/nodes/fk/vendor_passthru", map[string]any{}), "no method"); !strings.Contains(r.fault(), "Method not specified") {
		t.Errorf("no method: %s", r.raw)
	}
	if r := e.must(400, e.do("POST", "/v1/nodes/fk/vendor_passthru?method=send_raw", map[string]any{"raw_bytes": "0x06 0x01"}), "no handler"); !strings.Contains(r.fault(), "No handler for method send_raw") {
		t.Errorf("no handler: %s", r.raw)
	}
	e.must(404, e.do("GET", "/v1/nodes/missing/vendor_passthru/methods", nil), "missing node")
}

// Servicing: no interface here offers service steps, so a service request
// is refused as Ironic refuses steps the node does not offer (it used to
// report success without doing anything).
func TestServiceRefused(t *testing.T) {
	e := newTestEnv(t, nil)
	e.createNode(map[string]any{"name": "sv"})
	e.toAvailable("sv")
	e.provision("sv", "active", "active")
	v := []string{hdrLegacyVersion, "1.87"}
	step := map[string]any{"interface": "deploy", "step": "erase_devices_metadata", "args": map[string]any{}}
	tests := []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"target": "service"}, "\"service_steps\" is required"},
		{map[string]any{"target": "service", "service_steps": []any{map[string]any{"interface": "deploy"}}}, "Invalid service_steps: 'step' is a required property"},
		{map[string]any{"target": "service", "service_steps": []any{step}}, "node does not support this service step"},
		{map[string]any{"target": "deleted", "service_steps": []any{step}}, "only valid when setting target provision state to service"},
	}
	for _, tc := range tests {
		if r := e.must(400, e.do("PUT", "/v1/nodes/sv/states/provision", tc.body, v...), fmt.Sprint(tc.body)); !strings.Contains(r.fault(), tc.want) {
			t.Errorf("%v: %s, want %q", tc.body, r.fault(), tc.want)
		}
	}
	if n := e.must(200, e.do("GET", "/v1/nodes/sv", nil), "node"); n.str("provision_state") != "active" {
		t.Errorf("node left active: %s", n.str("provision_state"))
	}
}

// inject_nmi: fake management accepts it; manual-management's noop
// management cannot send one and says so as Ironic does.
func TestInjectNMIRefusedWithoutSupport(t *testing.T) {
	e := newTestEnv(t, nil)
	e.createNode(map[string]any{"name": "nmi-fake"})
	e.createNode(map[string]any{"name": "nmi-noop", "driver": "manual-management"})
	v := []string{hdrLegacyVersion, "1.29"}
	e.must(204, e.do("PUT", "/v1/nodes/nmi-fake/management/inject_nmi", map[string]any{}, v...), "fake")
	if r := e.must(400, e.do("PUT", "/v1/nodes/nmi-noop/management/inject_nmi", map[string]any{}, v...), "noop"); !strings.Contains(r.fault(), "does not support inject_nmi") {
		t.Errorf("noop management: %s", r.raw)
	}
}
