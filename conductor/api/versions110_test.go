package api

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/conductor/store"
)

// TestVersions97to110 checks, version by version, what Ironic's
// microversions 1.97 to 1.110 add: each refused or hidden just below its
// version and served from it, with Ironic's messages.
func TestVersions97to110(t *testing.T) {
	e := newTestEnv(t, nil)
	e.version = "1.110"
	node := e.createNode(map[string]any{"name": "v-a", "shard": "s1"}).str("uuid")
	// A group no conductor serves: set in the store, as a conductor of
	// that group would have taken it.
	if err := e.st.Update(context.Background(), func(tx store.Tx) error {
		n, err := tx.Node(node)
		if err != nil {
			return err
		}
		n.ConductorGroup = "g1"
		return tx.PutNode(n)
	}); err != nil {
		t.Fatal(err)
	}
	other := e.createNode(map[string]any{"name": "v-b"}).str("uuid")
	mac := 0
	port := func(v string, extra map[string]any) *resp {
		mac++
		body := map[string]any{"node_uuid": node, "address": fmt.Sprintf("52:54:00:aa:00:%02x", mac)}
		for k, val := range extra {
			body[k] = val
		}
		return e.do("POST", "/v1/ports", body, hdrLegacyVersion, v)
	}
	pg := func(v string, n string, extra map[string]any) *resp {
		body := map[string]any{"node_uuid": n}
		for k, val := range extra {
			body[k] = val
		}
		return e.do("POST", "/v1/portgroups", body, hdrLegacyVersion, v)
	}
	vtep := map[string]any{"local_link_connection": map[string]any{"port_id": "p1", "vtep-logical-switch": "ls", "vtep-physical-switch": "ps"}}

	cases := []struct {
		name string
		r    func() *resp
		code int
		want string // in the body
	}{
		// 1.97, 1.100, 1.101: port description, vendor, category.
		{"port description at 1.96", func() *resp { return port("1.96", map[string]any{"description": "d"}) }, 406, "description"},
		{"port description at 1.97", func() *resp { return port("1.97", map[string]any{"description": "uplink one"}) }, 201, `"description":"uplink one"`},
		{"port description too long", func() *resp { return port("1.97", map[string]any{"description": strings.Repeat("x", 256)}) }, 400, "is too long"},
		{"port vendor at 1.99", func() *resp { return port("1.99", map[string]any{"vendor": "acme"}) }, 406, "vendor"},
		{"port vendor at 1.100", func() *resp { return port("1.100", map[string]any{"vendor": "acme"}) }, 201, `"vendor":"acme"`},
		{"port vendor too long", func() *resp { return port("1.100", map[string]any{"vendor": strings.Repeat("v", 33)}) }, 400, "is too long"},
		{"port category at 1.100", func() *resp { return port("1.100", map[string]any{"category": "nic"}) }, 406, "category"},
		{"port category at 1.101", func() *resp { return port("1.101", map[string]any{"category": "nic"}) }, 201, `"category":"nic"`},
		{"port description hidden at 1.96", func() *resp { return e.do("GET", "/v1/ports/detail", nil, hdrLegacyVersion, "1.96") }, 200, ""},
		{"description_contains", func() *resp {
			return e.do("GET", "/v1/ports?description_contains=link&fields=description", nil, hdrLegacyVersion, "1.97")
		}, 200, `"description":"uplink one"`},
		// 1.99: conductor_groups on port and port group listings.
		{"ports by conductor group", func() *resp {
			return e.do("GET", "/v1/ports?conductor_groups=G1,other&fields=node_uuid", nil, hdrLegacyVersion, "1.99")
		}, 200, node},
		{"ports by conductor group and node", func() *resp {
			return e.do("GET", "/v1/ports?conductor_groups=g1&node="+node, nil, hdrLegacyVersion, "1.99")
		}, 400, "Filtering by conductor_groups cannot be combined with node_ident, portgroup_ident, or node address filters."},
		// 1.102, 1.103: port group physical_network and category.
		{"portgroup physnet and category at 1.103", func() *resp {
			return pg("1.103", node, map[string]any{"name": "bond0", "physical_network": "physnet1", "category": "bond"})
		}, 201, `"category":"bond"`},
		{"portgroup physnet too long", func() *resp {
			return pg("1.103", node, map[string]any{"physical_network": strings.Repeat("p", 65)})
		}, 400, "is too long"},
		{"portgroup of the other node", func() *resp { return pg("1.106", other, map[string]any{"name": "bond1"}) }, 201, `"name":"bond1"`},
		{"portgroup category hidden at 1.102", func() *resp { return e.do("GET", "/v1/portgroups/bond0", nil, hdrLegacyVersion, "1.102") }, 200, `"physical_network":"physnet1"`},
		// 1.106: port groups by shard.
		{"portgroups by shard at 1.105", func() *resp { return e.do("GET", "/v1/portgroups?shard=s1", nil, hdrLegacyVersion, "1.105") }, 406,
			"Request not acceptable. The minimal required API version should be 1.106"},
		{"portgroups by shard at 1.106", func() *resp { return e.do("GET", "/v1/portgroups?shard=s1", nil, hdrLegacyVersion, "1.106") }, 200, `"name":"bond0"`},
		{"portgroups by shard and node", func() *resp {
			return e.do("GET", "/v1/portgroups?shard=s1&node="+node, nil, hdrLegacyVersion, "1.106")
		}, 400, "Filtering by node, address, or shard simultaneously is not supported."},
		{"portgroups by conductor group", func() *resp {
			return e.do("GET", "/v1/portgroups?conductor_groups=g1", nil, hdrLegacyVersion, "1.99")
		}, 200, `"name":"bond0"`},
		// 1.104: node instance_name.
		{"instance_name at 1.103", func() *resp {
			return e.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "instance_name": "vm"}, hdrLegacyVersion, "1.103")
		}, 406, "instance_name"},
		{"instance_name at 1.104", func() *resp {
			return e.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "v-c", "instance_name": "vm-c"}, hdrLegacyVersion, "1.104")
		}, 201, `"instance_name":"vm-c"`},
		{"instance_name empty", func() *resp {
			return e.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "instance_name": ""}, hdrLegacyVersion, "1.104")
		}, 400, "is too short"},
		{"filter by instance_name at 1.103", func() *resp { return e.do("GET", "/v1/nodes?instance_name=vm-c", nil, hdrLegacyVersion, "1.103") }, 406,
			"instance_name is not acceptable in this API version"},
		{"filter by instance_name", func() *resp { return e.do("GET", "/v1/nodes?instance_name=vm-c", nil, hdrLegacyVersion, "1.104") }, 200, `"name":"v-c"`},
		{"instance_name from display_name", func() *resp {
			return e.do("PATCH", "/v1/nodes/v-b", []map[string]any{{"op": "add", "path": "/instance_info/display_name", "value": "nova-vm"}}, hdrLegacyVersion, "1.90")
		}, 200, ""},
		{"instance_name synced", func() *resp { return e.do("GET", "/v1/nodes/v-b?fields=instance_name", nil, hdrLegacyVersion, "1.104") }, 200, `"instance_name":"nova-vm"`},
		// 1.105: OVN VTEP switches only from 1.90 to 1.104.
		{"vtep at 1.89", func() *resp { return port("1.89", vtep) }, 406, "vtep-logical-switch"},
		{"vtep at 1.104", func() *resp { return port("1.104", vtep) }, 201, `"vtep-logical-switch":"ls"`},
		{"vtep at 1.105", func() *resp { return port("1.105", vtep) }, 406, "vtep-logical-switch"},
		// 1.108: disable_ramdisk with servicing.
		{"disable_ramdisk service at 1.107", func() *resp {
			return e.do("PUT", "/v1/nodes/v-b/states/provision", map[string]any{"target": "service", "service_steps": []any{}, "disable_ramdisk": true}, hdrLegacyVersion, "1.107")
		}, 406, "disable_ramdisk is not acceptable in this API version"},
		{"disable_ramdisk clean at 1.69", func() *resp {
			return e.do("PUT", "/v1/nodes/v-b/states/provision", map[string]any{"target": "clean", "clean_steps": []any{}, "disable_ramdisk": true}, hdrLegacyVersion, "1.69")
		}, 406, "disable_ramdisk is not acceptable in this API version"},
		{"disable_ramdisk with manage", func() *resp {
			return e.do("PUT", "/v1/nodes/v-b/states/provision", map[string]any{"target": "manage", "disable_ramdisk": true}, hdrLegacyVersion, "1.108")
		}, 400, "disable_ramdisk is supported only with manual cleaning or servicing"},
		{"disable_ramdisk service at 1.108 passes the check", func() *resp {
			return e.do("PUT", "/v1/nodes/v-b/states/provision", map[string]any{"target": "service", "service_steps": []any{}, "disable_ramdisk": true}, hdrLegacyVersion, "1.108")
		}, 400, "can not be performed on node"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r()
			if r.code != tc.code || !strings.Contains(string(r.raw), tc.want) {
				t.Fatalf("%d %s, want %d with %q", r.code, r.raw, tc.code, tc.want)
			}
		})
	}

	// Hidden below their versions.
	for _, tc := range []struct{ path, v, field string }{
		{"/v1/ports/detail", "1.96", `"description"`}, {"/v1/ports/detail", "1.99", `"vendor"`},
		{"/v1/ports/detail", "1.100", `"category"`}, {"/v1/portgroups/bond0", "1.101", `"physical_network"`},
		{"/v1/portgroups/bond0", "1.102", `"category"`}, {"/v1/nodes/v-c", "1.103", `"instance_name"`},
		{"/v1/nodes/v-c", "1.108", `"health"`},
	} {
		if r := e.must(200, e.do("GET", tc.path, nil, hdrLegacyVersion, tc.v), tc.path); strings.Contains(string(r.raw), tc.field) {
			t.Errorf("%s at %s shows %s: %.300s", tc.path, tc.v, tc.field, r.raw)
		}
	}
	// A port with OVN VTEP switches shows an empty local_link_connection
	// outside 1.90-1.104.
	for v, want := range map[string]bool{"1.89": false, "1.104": true, "1.105": false} {
		r := e.must(200, e.do("GET", "/v1/ports/detail", nil, hdrLegacyVersion, v), "ports at "+v)
		if got := strings.Contains(string(r.raw), "vtep-logical-switch"); got != want {
			t.Errorf("ports at %s show VTEP switches: %v, want %v", v, got, want)
		}
	}
	// 1.107: X-OpenStack-Request-Id mirrors OpenStack-Request-Id.
	r := e.must(200, e.do("GET", "/v1/nodes", nil), "list")
	if id := r.h.Get("X-OpenStack-Request-Id"); id == "" || id != r.h.Get(hdrRequestID) {
		t.Errorf("X-OpenStack-Request-Id %q, OpenStack-Request-Id %q", id, r.h.Get(hdrRequestID))
	}
	// Undeploy clears instance_name, as Ironic's tear down.
	e.toAvailable("v-c")
	e.provision("v-c", "active", "active")
	if n, _ := e.st.Node("v-c"); deref(n.InstanceName) != "vm-c" {
		t.Fatalf("deployed v-c: instance_name %v", n.InstanceName)
	}
	e.provision("v-c", "deleted", "available")
	if n, _ := e.st.Node("v-c"); n.InstanceName != nil {
		t.Errorf("undeployed v-c: instance_name %q, want null", *n.InstanceName)
	}
}

// TestAbortDeployWaitVersion: abort in wait call-back is 1.110's (a 406
// at 1.109), as Ironic's allow_deploy_abort.
func TestAbortDeployWaitVersion(t *testing.T) {
	e := newTestEnv(t, nil)
	id := e.createNode(map[string]any{}).str("uuid")
	err := e.st.Update(context.Background(), func(tx store.Tx) error {
		n, err := tx.Node(id)
		if err != nil {
			return err
		}
		tgt := "active"
		n.ProvisionState, n.TargetProvisionState = "wait call-back", &tgt
		return tx.PutNode(n)
	})
	if err != nil {
		t.Fatal(err)
	}
	r := e.do("PUT", "/v1/nodes/"+id+"/states/provision", map[string]any{"target": "abort"}, hdrLegacyVersion, "1.109")
	if r.code != 406 {
		t.Fatalf("abort in wait call-back at 1.109: %d %s, want 406", r.code, r.raw)
	}
	e.must(202, e.do("PUT", "/v1/nodes/"+id+"/states/provision", map[string]any{"target": "abort"}, hdrLegacyVersion, "1.110"), "abort at 1.110")
	e.waitNode(id, "deploy failed", func(n map[string]any) bool { return n["provision_state"] == "deploy failed" })
}
