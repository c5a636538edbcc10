package e2e

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// TestRedfishOutOfBandInspection inspects a redfish node without booting
// it: the inventory comes from the Redfish BMC emulator and goes through
// the same hooks as in-band inspection.
func TestRedfishOutOfBandInspection(t *testing.T) {
	mach := &machine{}
	emu := redfish.New(redfish.Config{Username: "admin", Password: "pw",
		Machines: map[string]redfish.Machine{"m1": mach},
		Hardware: map[string]redfish.Hardware{"m1": {CPUs: 8, MemoryGiB: 32, Disks: []int64{3 << 30, 100 << 30, 50 << 30},
			MACs: []string{"52:54:00:AB:CD:01", "52:54:00:ab:cd:02"}}}})
	bmc := httptest.NewServer(emu)
	defer bmc.Close()
	c := client{t, startConductor(t)}
	c.do("POST", "/v1/nodes", map[string]any{"driver": "redfish", "name": "oob",
		"driver_info": map[string]any{"redfish_address": bmc.URL, "redfish_username": "admin", "redfish_password": "pw",
			"redfish_system_id": "/redfish/v1/Systems/m1"}}, 201)
	c.do("PUT", "/v1/nodes/oob/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState("oob", "manageable", 30*time.Second)
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
	ports := c.do("GET", "/v1/ports?node=oob", nil, 200)["ports"].([]any)
	if len(ports) == 0 {
		t.Errorf("no port created from the BMC's NICs")
	}
	inv := c.doVersion("1.81", "GET", "/v1/nodes/oob/inventory", nil, 200)
	ifaces := inv["inventory"].(map[string]any)["interfaces"].([]any)
	if len(ifaces) != 2 || ifaces[0].(map[string]any)["mac_address"] != "52:54:00:ab:cd:01" {
		t.Errorf("inventory interfaces = %v", ifaces)
	}
	if on, _, _, powerOns := mach.state(); on || powerOns != 0 {
		t.Errorf("out-of-band inspection powered the machine on (on=%v, power-ons %d)", on, powerOns)
	}
}
