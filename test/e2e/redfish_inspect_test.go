package e2e

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// TestRedfishOutOfBandInspection inspects redfish nodes without booting
// them: the inventory comes from the Redfish BMC emulator and goes through
// the same hooks and inspection rules as in-band inspection.
func TestRedfishOutOfBandInspection(t *testing.T) {
	mach, bare, gone := &machine{}, &machine{}, &machine{}
	emu := redfish.New(redfish.Config{Username: "admin", Password: "pw",
		Machines: map[string]redfish.Machine{"m1": mach, "m2": bare},
		Hardware: map[string]redfish.Hardware{
			"m1": {CPUs: 8, Sockets: 2, MemoryGiB: 32, Manufacturer: "Contoso", Serial: "SN-M1",
				Disks: []redfish.Disk{{Size: 3 << 30}, {Size: 100 << 30, HDD: true}, {Size: 50 << 30, Serial: "ROOT"}},
				MACs:  []string{"52:54:00:AB:CD:01", "52:54:00:ab:cd:02"}},
			"m2": {MACs: []string{}}, // a BMC that shows no NIC
		}})
	bmc := httptest.NewServer(emu)
	defer bmc.Close()
	dead := httptest.NewServer(redfish.New(redfish.Config{Username: "admin", Password: "pw",
		Machines: map[string]redfish.Machine{"m3": gone}}))
	c := client{t, startConductor(t)}

	c.doVersion("1.96", "POST", "/v1/inspection_rules", map[string]any{
		"description": "record the vendor",
		"actions": []any{
			map[string]any{"op": "add-trait", "args": map[string]any{"name": "CUSTOM_OOB"}},
			map[string]any{"op": "set-attribute", "args": map[string]any{"path": "/extra/vendor", "value": "{inventory[system_vendor][manufacturer]}"}},
		},
	}, 201)
	enroll := func(name, url, system string) {
		c.do("POST", "/v1/nodes", map[string]any{"driver": "redfish", "name": name, "inspect_interface": "redfish",
			"driver_info": map[string]any{"redfish_address": url, "redfish_username": "admin", "redfish_password": "pw",
				"redfish_system_id": "/redfish/v1/Systems/" + system}}, 201)
		c.do("PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "manage"}, 202)
		c.waitState(name, "manageable", 30*time.Second)
	}
	enroll("oob", bmc.URL, "m1")
	enroll("nonic", bmc.URL, "m2")
	enroll("dead", dead.URL, "m3")
	dead.Close()

	c.do("PUT", "/v1/nodes/oob/states/provision", map[string]any{"target": "inspect"}, 202)
	n := c.waitState("oob", "manageable", 60*time.Second)
	if n["last_error"] != nil {
		t.Fatalf("inspection failed: %v", n["last_error"])
	}
	p := n["properties"].(map[string]any)
	// Root disk: the smallest of at least 4 GiB (50 GiB), local_gb = size - 1.
	if p["cpus"] != 8.0 || p["memory_mb"] != 32768.0 || p["local_gb"] != 49.0 || p["cpu_arch"] != "x86_64" {
		t.Errorf("properties after inspection = %v", p)
	}
	if n["extra"].(map[string]any)["vendor"] != "Contoso" {
		t.Errorf("inspection rule did not run: extra = %v", n["extra"])
	}
	if tr := c.do("GET", "/v1/nodes/oob/traits", nil, 200)["traits"].([]any); len(tr) != 1 || tr[0] != "CUSTOM_OOB" {
		t.Errorf("traits = %v", tr)
	}
	ports := c.do("GET", "/v1/ports?node=oob", nil, 200)["ports"].([]any)
	macs := map[string]bool{}
	for _, pt := range ports {
		macs[pt.(map[string]any)["address"].(string)] = true
	}
	if len(macs) == 0 || !macs["52:54:00:ab:cd:01"] {
		t.Errorf("ports created from the BMC's NICs: %v", macs)
	}
	inv := c.doVersion("1.81", "GET", "/v1/nodes/oob/inventory", nil, 200)
	i := inv["inventory"].(map[string]any)
	ifaces := i["interfaces"].([]any)
	if len(ifaces) != 2 || ifaces[0].(map[string]any)["mac_address"] != "52:54:00:ab:cd:01" {
		t.Errorf("inventory interfaces = %v", ifaces)
	}
	if sv := i["system_vendor"].(map[string]any); sv["serial_number"] != "SN-M1" || sv["manufacturer"] != "Contoso" {
		t.Errorf("inventory system_vendor = %v", sv)
	}
	if d := i["disks"].([]any); len(d) != 3 || d[1].(map[string]any)["rotational"] != true || d[2].(map[string]any)["serial"] != "ROOT" {
		t.Errorf("inventory disks = %v", d)
	}
	if cpu := i["cpu"].(map[string]any); cpu["count"] != 8.0 || cpu["socket_count"] != 2.0 {
		t.Errorf("inventory cpu = %v", cpu)
	}
	if _, ok := inv["plugin_data"]; !ok {
		t.Errorf("no plugin_data in %v", inv)
	}

	// Failures: inspect failed with a last_error saying why.
	for name, want := range map[string]string{"nonic": "no ethernet interface", "dead": "127.0.0.1"} {
		c.do("PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "inspect"}, 202)
		var n map[string]any
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			n = c.do("GET", "/v1/nodes/"+name, nil, 200)
			if n["provision_state"] != "inspecting" && n["reservation"] == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s still inspecting after 60s", name)
			}
		}
		if n["provision_state"] != "inspect failed" {
			t.Errorf("%s: state %v after a failed inspection", name, n["provision_state"])
		}
		if le, _ := n["last_error"].(string); !strings.Contains(le, want) || !strings.Contains(le, "inspection") {
			t.Errorf("%s: last_error = %q, want it to mention %q", name, le, want)
		}
	}

	for name, m := range map[string]*machine{"m1": mach, "m2": bare, "m3": gone} {
		if on, _, _, powerOns := m.state(); on || powerOns != 0 {
			t.Errorf("out-of-band inspection powered %s on (on=%v, power-ons %d)", name, on, powerOns)
		}
	}
}
