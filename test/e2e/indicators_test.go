package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// TestIndicators reads and sets a node's indicators (API 1.63) on redfish
// and idrac nodes whose BMC is the Redfish emulator: the system's, its
// chassis' and each drive's IndicatorLED, set through the API and seen on
// the BMC. Then the fake hardware type's fixed indicators, the ipmi type
// without any (as Ironic's ipmitool), and the refusals. gophercloud has no
// indicator calls, so the test speaks HTTP itself.
func TestIndicators(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	emu := redfish.New(redfish.Config{Username: "admin", Password: "pw", Logger: quiet,
		Machines: map[string]redfish.Machine{"m1": &machine{}},
		Hardware: map[string]redfish.Hardware{"m1": {CPUs: 2, Sockets: 1, MemoryGiB: 1, Storage: "storage",
			Disks: []redfish.Disk{{Size: 1 << 30, Model: "d0"}, {Size: 1 << 30, Model: "d1"}}}}})
	bmc := httptest.NewServer(emu)
	defer bmc.Close()
	c := client{t, startConductor(t)}
	info := map[string]any{"redfish_address": bmc.URL, "redfish_username": "admin", "redfish_password": "pw",
		"redfish_system_id": "/redfish/v1/Systems/m1"}
	c.doVersion("1.63", "POST", "/v1/nodes", map[string]any{"driver": "redfish", "name": "rf", "driver_info": info}, 201)
	c.doVersion("1.63", "POST", "/v1/nodes", map[string]any{"driver": "idrac", "name": "dell", "driver_info": info}, 201)
	c.doVersion("1.63", "POST", "/v1/nodes", map[string]any{"driver": "ipmi", "name": "bmc-ipmi",
		"driver_info": map[string]any{"ipmi_address": "127.0.0.1"}}, 201)
	c.doVersion("1.63", "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "fake"}, 201)

	list := func(node string) map[string]map[string]any {
		t.Helper()
		r := c.doVersion("1.63", "GET", "/v1/nodes/"+node+"/management/indicators", nil, 200)
		inds, _ := r["indicators"].([]any)
		out := map[string]map[string]any{}
		for _, i := range inds {
			m := i.(map[string]any)
			out[m["name"].(string)] = m
		}
		return out
	}
	state := func(node, name string) string {
		t.Helper()
		s, _ := c.doVersion("1.63", "GET", "/v1/nodes/"+node+"/management/indicators/"+name, nil, 200)["state"].(string)
		return s
	}

	// The system and chassis by their UUIDs, the drives as storage:drive.
	sysPath, chPath := "/redfish/v1/Systems/m1", "/redfish/v1/Chassis/m1"
	sysUUID := redfishUUID(t, bmc.URL+sysPath)
	chUUID := redfishUUID(t, bmc.URL+chPath)
	want := map[string]string{sysUUID + "@system": sysPath, chUUID + "@chassis": chPath,
		"1:0@disk": sysPath + "/Storage/1/Drives/0", "1:1@disk": sysPath + "/Storage/1/Drives/1"}
	for _, node := range []string{"rf", "dell"} {
		got := list(node)
		if len(got) != len(want) {
			t.Fatalf("%s: indicators %v, want %v", node, keys(got), keys(want))
		}
		for name := range want {
			in, ok := got[name]
			if !ok {
				t.Fatalf("%s: no indicator %s in %v", node, name, keys(got))
			}
			comp := name[strings.Index(name, "@")+1:]
			links, _ := json.Marshal(in["links"])
			if in["component"] != comp || in["readonly"] != false || fmt.Sprint(in["states"]) != "[blinking off on]" ||
				!strings.Contains(string(links), "/v1/nodes/"+node+"/management/indicators/"+name) {
				t.Errorf("%s: indicator %s = %v", node, name, in)
			}
			if s := state(node, name); s != "off" {
				t.Errorf("%s: %s state %q, want off", node, name, s)
			}
		}
	}
	// Set each through the API; the BMC shows it and the API reads it back.
	for i, set := range []struct{ name, state, led string }{
		{sysUUID + "@system", "blinking", "Blinking"},
		{chUUID + "@chassis", "on", "Lit"},
		{"1:1@disk", "on", "Lit"},
		{sysUUID + "@system", "off", "Off"},
	} {
		node := []string{"rf", "dell"}[i%2]
		c.doVersion("1.63", "PUT", "/v1/nodes/"+node+"/management/indicators/"+set.name, map[string]any{"state": set.state}, 204)
		if led := emu.LED(want[set.name]); led != set.led {
			t.Errorf("after setting %s to %s: the BMC's IndicatorLED is %q, want %q", set.name, set.state, led, set.led)
		}
		if s := state("rf", set.name); s != set.state {
			t.Errorf("after setting %s to %s: the API reads %q", set.name, set.state, s)
		}
	}
	if led := emu.LED(want["1:0@disk"]); led != "Off" {
		t.Errorf("drive 0 changed with drive 1: %q", led)
	}

	// Ironic's fake management: a read-only chassis LED and a system LED,
	// always on; it cannot set them.
	fake := list("fake")
	if len(fake) != 2 || fake["led-0@chassis"]["readonly"] != true || fake["led@system"]["readonly"] != false {
		t.Errorf("fake indicators = %v", fake)
	}
	if s := state("fake", "led@system"); s != "on" {
		t.Errorf("fake led@system = %q, want on", s)
	}

	// Refusals: each is a 400 (404 below 1.63) in Ironic's words and
	// changes nothing on the BMC.
	for _, bad := range []struct {
		ver, method, path string
		body              any
		code              int
		msg               string
	}{
		{"1.62", "GET", "/v1/nodes/rf/management/indicators", nil, 404, ""},
		{"1.62", "PUT", "/v1/nodes/rf/management/indicators/1:0@disk", map[string]any{"state": "on"}, 404, ""},
		{"1.63", "GET", "/v1/nodes/nope/management/indicators", nil, 404, "Node nope could not be found."},
		{"1.63", "GET", "/v1/nodes/rf/management/indicators/led", nil, 400, `Malformed indicator name "led"`},
		{"1.63", "PUT", "/v1/nodes/rf/management/indicators/led", map[string]any{"state": "on"}, 400, `Malformed indicator name "led"`},
		{"1.63", "GET", "/v1/nodes/rf/management/indicators/1:7@disk", nil, 400, "Unknown indicator 1:7 for component disk of node "},
		{"1.63", "PUT", "/v1/nodes/rf/management/indicators/" + sysUUID + "@chassis", map[string]any{"state": "on"}, 400, "Unknown indicator " + sysUUID + " for component chassis"},
		{"1.63", "PUT", "/v1/nodes/rf/management/indicators/1:0@disk", map[string]any{"state": "purple"}, 400, "Invalid indicator state purple"},
		{"1.63", "PUT", "/v1/nodes/rf/management/indicators/1:0@disk", map[string]any{}, 400, `Missing argument: "state"`},
		{"1.63", "PUT", "/v1/nodes/rf/management/indicators/1:0@disk", map[string]any{"state": 1}, 400, "Invalid value for state"},
		{"1.63", "GET", "/v1/nodes/bmc-ipmi/management/indicators", nil, 400, "Driver ipmi does not support get_supported_indicators (disabled or not implemented)."},
		{"1.63", "GET", "/v1/nodes/bmc-ipmi/management/indicators/x@system", nil, 400, "Driver ipmi does not support get_indicator_state"},
		{"1.63", "PUT", "/v1/nodes/bmc-ipmi/management/indicators/x@system", map[string]any{"state": "on"}, 400, "Driver ipmi does not support set_indicator_state"},
		{"1.63", "PUT", "/v1/nodes/fake/management/indicators/led@system", map[string]any{"state": "on"}, 400, "Driver fake-hardware does not support set_indicator_state"},
		{"1.63", "GET", "/v1/nodes/fake/management/indicators/led@disk", nil, 400, "Invalid component disk specified."},
	} {
		r := c.doVersion(bad.ver, bad.method, bad.path, bad.body, bad.code)
		if bad.msg != "" && !strings.Contains(faultString(r), bad.msg) {
			t.Errorf("%s %s at %s: %q, want %q", bad.method, bad.path, bad.ver, faultString(r), bad.msg)
		}
	}
	if led := emu.LED(want["1:0@disk"]); led != "Off" {
		t.Errorf("a refused request changed drive 0: %q", led)
	}
}

// redfishUUID reads the UUID of the Redfish resource at url.
func redfishUUID(t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("admin", "pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct{ UUID string }
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.UUID == "" {
		t.Fatalf("%s: no UUID (%v)", url, err)
	}
	return r.UUID
}

// faultString is the faultstring of an Ironic error answer.
func faultString(r map[string]any) string {
	em, _ := r["error_message"].(string)
	var f struct{ Faultstring string }
	_ = json.Unmarshal([]byte(em), &f)
	return f.Faultstring
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
