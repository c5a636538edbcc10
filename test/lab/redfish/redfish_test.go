package redfish

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type nopMachine struct{ on bool }

func (m *nopMachine) Running(context.Context) (bool, error)       { return m.on, nil }
func (m *nopMachine) PowerOn(context.Context) error               { m.on = true; return nil }
func (m *nopMachine) PowerOff(context.Context) error              { m.on = false; return nil }
func (m *nopMachine) Shutdown(context.Context) error              { m.on = false; return nil }
func (m *nopMachine) Reset(context.Context) error                 { return nil }
func (m *nopMachine) InjectNMI(context.Context) error             { return nil }
func (m *nopMachine) SetBootDevice(context.Context, string) error { return nil }

func TestServer(t *testing.T) {
	srv := New(Config{Username: "admin", Password: "pw", Machines: map[string]Machine{"1": &nopMachine{}, "2": &nopMachine{}},
		Hardware: map[string]Hardware{"2": {Storage: "storage", MACs: []string{}}},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil))})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	tests := []struct {
		name, method, path, body string
		auth                     bool
		want                     int
	}{
		{"service root without auth", "GET", "/redfish/v1/", "", false, 200},
		{"systems need auth", "GET", "/redfish/v1/Systems", "", false, 401},
		{"systems", "GET", "/redfish/v1/Systems", "", true, 200},
		{"system", "GET", "/redfish/v1/Systems/1", "", true, 200},
		{"unknown system", "GET", "/redfish/v1/Systems/3", "", true, 404},
		{"manager", "GET", "/redfish/v1/Managers/1", "", true, 200},
		{"chassis", "GET", "/redfish/v1/Chassis/1", "", true, 200},
		{"reset on", "POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", `{"ResetType":"On"}`, true, 204},
		{"reset bad type", "POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", `{"ResetType":"Explode"}`, true, 400},
		{"reset bad json", "POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", `{`, true, 400},
		{"patch boot", "PATCH", "/redfish/v1/Systems/1", `{"Boot":{"BootSourceOverrideTarget":"Pxe","BootSourceOverrideEnabled":"Continuous","BootSourceOverrideMode":"UEFI"}}`, true, 204},
		{"patch bad target", "PATCH", "/redfish/v1/Systems/1", `{"Boot":{"BootSourceOverrideTarget":"Floppy"}}`, true, 400},
		{"patch bad mode", "PATCH", "/redfish/v1/Systems/1", `{"Boot":{"BootSourceOverrideMode":"Weird"}}`, true, 400},
		{"session with bad password", "POST", "/redfish/v1/SessionService/Sessions", `{"UserName":"admin","Password":"x"}`, false, 401},
		{"session", "POST", "/redfish/v1/SessionService/Sessions", `{"UserName":"admin","Password":"pw"}`, false, 201},
		{"processors", "GET", "/redfish/v1/Systems/1/Processors", "", true, 200},
		{"processor", "GET", "/redfish/v1/Systems/1/Processors/cpu0", "", true, 200},
		{"no such processor", "GET", "/redfish/v1/Systems/1/Processors/cpu1", "", true, 404},
		{"processor bad index", "GET", "/redfish/v1/Systems/1/Processors/cpu00", "", true, 404},
		{"memory", "GET", "/redfish/v1/Systems/1/Memory/dimm0", "", true, 200},
		{"nic", "GET", "/redfish/v1/Systems/1/EthernetInterfaces/nic0", "", true, 200},
		{"storage", "GET", "/redfish/v1/Systems/1/Storage/1", "", true, 200},
		{"drive", "GET", "/redfish/v1/Systems/1/Storage/1/Drives/0", "", true, 200},
		{"simple storage", "GET", "/redfish/v1/Systems/1/SimpleStorage/virtio", "", true, 200},
		{"storage-only system", "GET", "/redfish/v1/Systems/2/SimpleStorage", "", true, 404},
		{"no NICs", "GET", "/redfish/v1/Systems/2/EthernetInterfaces/nic0", "", true, 404},
		{"hardware needs auth", "GET", "/redfish/v1/Systems/1/Processors", "", false, 401},
		{"hardware is read-only", "PATCH", "/redfish/v1/Systems/1/Processors/cpu0", "{}", true, 405},
		{"bios", "GET", "/redfish/v1/Systems/1/Bios", "", true, 200},
		{"bios needs auth", "GET", "/redfish/v1/Systems/1/Bios", "", false, 401},
		{"bios settings", "GET", "/redfish/v1/Systems/1/Bios/Settings", "", true, 200},
		{"bios unknown attribute", "PATCH", "/redfish/v1/Systems/1/Bios/Settings", `{"Attributes":{"Nope":"x"}}`, true, 400},
		{"bios wrong type", "PATCH", "/redfish/v1/Systems/1/Bios/Settings", `{"Attributes":{"ProcCores":"8"}}`, true, 400},
		{"bios apply time", "PATCH", "/redfish/v1/Systems/1/Bios/Settings", `{"Attributes":{"NumLock":"Off"},"@Redfish.SettingsApplyTime":{"ApplyTime":"Immediate"}}`, true, 400},
		{"bios change", "PATCH", "/redfish/v1/Systems/1/Bios/Settings", `{"Attributes":{"NumLock":"Off","ProcCores":4},"@Redfish.SettingsApplyTime":{"ApplyTime":"OnReset"}}`, true, 204},
		{"registries", "GET", "/redfish/v1/Registries", "", true, 200},
		{"bios registry file", "GET", "/redfish/v1/Registries/BiosAttributeRegistry.v1_0_0", "", true, 200},
		{"bios registry", "GET", "/redfish/v1/Registries/BiosAttributeRegistry.v1_0_0/registry", "", true, 200},
		{"no such registry", "GET", "/redfish/v1/Registries/Base.1.0", "", true, 404},
		{"bios value not in list", "PATCH", "/redfish/v1/Systems/1/Bios/Settings", `{"Attributes":{"NumLock":"Maybe"}}`, true, 400},
		{"bios integer out of bounds", "PATCH", "/redfish/v1/Systems/1/Bios/Settings", `{"Attributes":{"ProcCores":100}}`, true, 400},
		{"bios read-only", "PATCH", "/redfish/v1/Systems/1/Bios/Settings", `{"Attributes":{"SystemModelName":"x"}}`, true, 400},
		{"current bios is read-only", "PATCH", "/redfish/v1/Systems/1/Bios", `{"Attributes":{"NumLock":"Off"}}`, true, 405},
		{"secure boot", "GET", "/redfish/v1/Systems/2/SecureBoot", "", true, 200},
		{"secure boot needs UEFI", "PATCH", "/redfish/v1/Systems/2/SecureBoot", `{"SecureBootEnable":true}`, true, 400},
		{"secure boot unknown property", "PATCH", "/redfish/v1/Systems/2/SecureBoot", `{"SecureBootMode":"SetupMode"}`, true, 400},
		{"uefi", "PATCH", "/redfish/v1/Systems/2", `{"Boot":{"BootSourceOverrideMode":"UEFI"}}`, true, 204},
		{"secure boot on", "PATCH", "/redfish/v1/Systems/2/SecureBoot", `{"SecureBootEnable":true}`, true, 204},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, hs.URL+tc.path, strings.NewReader(tc.body))
			if tc.auth {
				req.SetBasicAuth("admin", "pw")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
			}
		})
	}
	b, _ := srv.BootOverride("1")
	if b != (Boot{BootSourceOverrideTarget: "Pxe", BootSourceOverrideEnabled: "Continuous", BootSourceOverrideMode: "UEFI"}) {
		t.Errorf("BootOverride = %+v", b)
	}
	// BIOS changes wait for the next start; a factory reset too.
	attr := func(name string) any { a, _ := srv.BIOS("1"); return a[name] }
	post := func(path, body string) {
		req, _ := http.NewRequest("POST", hs.URL+path, strings.NewReader(body))
		req.SetBasicAuth("admin", "pw")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 204 {
			t.Fatalf("POST %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	if attr("NumLock") != "On" {
		t.Errorf("pending BIOS change applied before a reset")
	}
	post("/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", `{"ResetType":"ForceRestart"}`)
	if attr("NumLock") != "Off" || attr("ProcCores") != float64(4) {
		t.Errorf("after a restart NumLock = %v, ProcCores = %v; want Off, 4", attr("NumLock"), attr("ProcCores"))
	}
	post("/redfish/v1/Systems/1/Bios/Actions/Bios.ResetBios", "{}")
	post("/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", `{"ResetType":"PowerCycle"}`)
	if attr("NumLock") != "On" || attr("ProcCores") != float64(8) {
		t.Errorf("after a BIOS reset and a power cycle NumLock = %v, ProcCores = %v; want the defaults", attr("NumLock"), attr("ProcCores"))
	}
	if on, _ := srv.SecureBoot("2"); !on {
		t.Errorf("secure boot of system 2 not enabled")
	}
	if srv.Sessions() != 1 {
		t.Errorf("Sessions() = %d, want 1", srv.Sessions())
	}
}
