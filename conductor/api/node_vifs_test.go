package api

import (
	"fmt"
	"strings"
	"testing"
)

// TestVIFsByNetworkInterface: VIF attach, list and detach follow the
// node's network interface as Ironic's: noop accepts every VIF and keeps
// none; flat binds one VIF a free port (PXE-enabled first, or the port
// named), refuses a second copy (409) and a VIF without a free port (400),
// and refuses to detach a VIF it does not hold (400).
func TestVIFsByNetworkInterface(t *testing.T) {
	e := newTestEnv(t, nil)
	type step struct {
		method, path string
		body         map[string]any
		code         int
		fault        string // substring of the error
		vifs         string // GET .../vifs after the step, when set
	}
	port := func(node, mac string, pxe bool) string {
		return e.must(201, e.do("POST", "/v1/ports", map[string]any{"address": mac, "node_uuid": node, "pxe_enabled": pxe}), "port").str("uuid")
	}
	noop := e.createNode(map[string]any{"name": "vn", "network_interface": "noop"}).str("uuid")
	port(noop, "52:54:00:00:01:01", true)
	flat := e.createNode(map[string]any{"name": "vf", "network_interface": "flat"}).str("uuid")
	e.must(400, e.do("POST", "/v1/nodes/vf/vifs", map[string]any{"id": "v0"}), "flat vif without ports")
	p1 := port(flat, "52:54:00:00:02:01", false)
	p2 := port(flat, "52:54:00:00:02:02", true)
	_ = p1
	cases := []struct {
		name  string
		steps []step
	}{
		{"noop", []step{
			{"POST", "/v1/nodes/vn/vifs", map[string]any{"id": "a"}, 204, "", "[]"},
			{"POST", "/v1/nodes/vn/vifs", map[string]any{"id": "b"}, 204, "", "[]"},
			{"POST", "/v1/nodes/vn/vifs", map[string]any{"id": "c"}, 204, "", "[]"},
			{"POST", "/v1/nodes/vn/vifs", map[string]any{"id": "a"}, 204, "", "[]"},
			{"DELETE", "/v1/nodes/vn/vifs/never-attached", nil, 204, "", "[]"},
			{"POST", "/v1/nodes/vn/vifs", map[string]any{}, 400, "'id' is a required property", "[]"},
		}},
		{"flat", []step{
			{"POST", "/v1/nodes/vf/vifs", map[string]any{"id": "a"}, 204, "", "[map[id:a]]"},
			{"POST", "/v1/nodes/vf/vifs", map[string]any{"id": "a"}, 409, "Unable to attach VIF because VIF a is already attached to Ironic Port " + p2, ""},
			{"POST", "/v1/nodes/vf/vifs", map[string]any{"id": "b"}, 204, "", "[map[id:b] map[id:a]]"},
			{"POST", "/v1/nodes/vf/vifs", map[string]any{"id": "c"}, 400, "Unable to attach VIF c, not enough free physical ports.", ""},
			{"DELETE", "/v1/nodes/vf/vifs/never-attached", nil, 400, "Unable to detach VIF never-attached from node " + flat + " because it is not attached to it.", ""},
			{"DELETE", "/v1/nodes/vf/vifs/a", nil, 204, "", "[map[id:b]]"},
			{"DELETE", "/v1/nodes/vf/vifs/a", nil, 400, "because it is not attached to it", ""},
			{"POST", "/v1/nodes/vf/vifs", map[string]any{"id": "c", "port_uuid": p1}, 400, "not enough free physical ports", ""},
			{"POST", "/v1/nodes/vf/vifs", map[string]any{"id": "c", "port_uuid": p2}, 204, "", "[map[id:b] map[id:c]]"},
			{"DELETE", "/v1/nodes/vf/vifs/b", nil, 204, "", "[map[id:c]]"},
			{"DELETE", "/v1/nodes/vf/vifs/c", nil, 204, "", "[]"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			for i, s := range tc.steps {
				what := fmt.Sprintf("step %d %s %s %v", i, s.method, s.path, s.body)
				var body any
				if s.body != nil {
					body = s.body
				}
				r := e.must(s.code, e.do(s.method, s.path, body), what)
				if s.fault != "" && !strings.Contains(r.fault(), s.fault) {
					t.Errorf("%s: fault %q, want %q", what, r.fault(), s.fault)
				}
				if s.vifs == "" {
					continue
				}
				node := strings.Split(s.path, "/")[3]
				got := e.must(200, e.do("GET", "/v1/nodes/"+node+"/vifs", nil), "list").j["vifs"]
				if fmt.Sprint(got) != s.vifs {
					t.Errorf("%s: vifs %v, want %s", what, got, s.vifs)
				}
			}
		})
	}
	// The flat interface keeps the VIF on its port, as Ironic.
	e.t = t
	r := e.must(200, e.do("GET", "/v1/ports/"+p2, nil), "port")
	if ii, _ := r.j["internal_info"].(map[string]any); ii["tenant_vif_port_id"] != nil {
		t.Errorf("port internal_info after detaching all: %v", ii)
	}
}
