package api

import (
	"strings"
	"testing"
)

func TestEventsFirmwareDriverPassthru(t *testing.T) {
	e := newTestEnv(t, nil)
	ev := func(kv ...any) map[string]any {
		m := map[string]any{"event": "network.bind_port", "port_id": "11111111-2222-3333-4444-555555555555",
			"mac_address": "52:54:00:aa:bb:cc", "status": "ACTIVE"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
				continue
			}
			m[kv[i].(string)] = kv[i+1]
		}
		return map[string]any{"events": []any{m}}
	}
	v := func(minor string) []string { return []string{hdrLegacyVersion, minor} }
	e.must(204, e.do("POST", "/v1/events", ev("device_id", "66666666-2222-3333-4444-555555555555", "binding:vnic_type", "baremetal"), v("1.54")...), "bind event")
	e.must(204, e.do("POST", "/v1/events", ev("event", "network.delete_port"), v("1.54")...), "delete event")
	tests := []struct {
		name string
		body map[string]any
		want string
	}{
		{"unknown event", ev("event", "network.teleport"), "is not one of"},
		{"no port_id", ev("port_id", nil), "'port_id' is a required property"},
		{"bad port_id", ev("port_id", "port-1"), "Expected UUID for port_id"},
		{"bad MAC", ev("mac_address", "zz"), "Expected valid MAC address"},
		{"extra key", ev("color", "red"), "'color' was unexpected"},
		{"no events", map[string]any{"events": []any{}}, "too short"},
		{"not a list", map[string]any{"events": "x"}, "is not of type 'array'"},
	}
	for _, tc := range tests {
		if r := e.must(400, e.do("POST", "/v1/events", tc.body, v("1.54")...), tc.name); !strings.Contains(r.fault(), tc.want) {
			t.Errorf("%s: %s, want %q", tc.name, r.fault(), tc.want)
		}
	}
	e.must(404, e.do("POST", "/v1/events", ev(), v("1.53")...), "events below 1.54")

	e.createNode(map[string]any{"name": "fw"})
	if r := e.must(200, e.do("GET", "/v1/nodes/fw/firmware", nil, v("1.86")...), "firmware"); string(r.raw) != `{"firmware":[]}`+"\n" && r.j["firmware"] == nil {
		t.Errorf("firmware: %s", r.raw)
	}
	e.must(404, e.do("GET", "/v1/nodes/fw/firmware", nil, v("1.85")...), "firmware below 1.86")

	e.must(200, e.do("GET", "/v1/drivers/ipmi/vendor_passthru/methods", nil), "driver vendor methods")
	e.must(404, e.do("GET", "/v1/drivers/nope/vendor_passthru/methods", nil), "unknown driver")
	if r := e.must(400, e.do("POST", "/v1/drivers/ipmi/vendor_passthru?method=x", map[string]any{}), "driver vendor call"); !strings.Contains(r.fault(), "No handler for method x") {
		t.Errorf("driver vendor call: %s", r.raw)
	}
}
