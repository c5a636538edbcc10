package e2e

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/harness"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// TestCleanWithoutRamdisk runs a manual cleaning with disable_ramdisk
// (API 1.70) on a redfish node (direct deploy, deploy ramdisk configured)
// behind the lab's Redfish emulator: bios.apply_configuration is asked of
// the BMC and takes effect at the reboot the conductor makes for it, with
// no boot override set, no virtual media inserted and the machine never
// started from the network; the node returns to manageable. A cleaning
// with an agent step and disable_ramdisk is refused with Ironic's message
// and the node stays manageable, untouched.
func TestCleanWithoutRamdisk(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	mach := &machine{}
	emu := redfish.New(redfish.Config{Username: "admin", Password: "pw", Logger: quiet,
		Machines: map[string]redfish.Machine{"m1": mach}})
	bmc := httptest.NewServer(emu)
	defer bmc.Close()
	c := client{t, harness.Start(t, service.Config{Hostname: "e2e", AutomatedClean: true}).URL}
	c.doVersion("1.70", "POST", "/v1/nodes", map[string]any{"driver": "redfish", "name": "nr", "deploy_interface": "direct",
		"driver_info": map[string]any{"redfish_address": bmc.URL, "redfish_username": "admin", "redfish_password": "pw",
			"redfish_system_id": "/redfish/v1/Systems/m1",
			"deploy_kernel":     "http://example.invalid/k", "deploy_ramdisk": "http://example.invalid/r"}}, 201)
	c.doVersion("1.70", "PUT", "/v1/nodes/nr/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState("nr", "manageable", 30*time.Second)
	_, _, resets0, ons0 := mach.state()

	start := time.Now()
	c.doVersion("1.70", "PUT", "/v1/nodes/nr/states/provision", map[string]any{"target": "clean", "disable_ramdisk": true,
		"clean_steps": []map[string]any{{"interface": "bios", "step": "apply_configuration", "args": map[string]any{
			"settings": []map[string]any{{"name": "NumLock", "value": "Off"}, {"name": "ProcCores", "value": "4"}}}}}}, 202)
	n := c.waitState("nr", "manageable", 60*time.Second)
	t.Logf("cleaning without ramdisk took %v", time.Since(start).Round(time.Millisecond))
	if n["last_error"] != nil {
		t.Fatalf("last_error %v", n["last_error"])
	}
	if got, _ := emu.BIOS("m1"); got["NumLock"] != "Off" || got["ProcCores"] != float64(4) {
		t.Errorf("BMC's BIOS after the cleaning: %v", got)
	}
	if b, _ := emu.BootOverride("m1"); b.BootSourceOverrideTarget != "None" || b.BootSourceOverrideEnabled != "Disabled" {
		t.Errorf("boot override %+v: the conductor prepared a ramdisk boot", b)
	}
	if img, inserted := emu.Media("m1"); inserted || img != "" {
		t.Errorf("virtual media %q inserted=%v", img, inserted)
	}
	on, booted, resets, ons := mach.state()
	if strings.Contains(strings.ToLower(booted), "pxe") || strings.Contains(strings.ToLower(booted), "cd") {
		t.Errorf("machine booted from %q", booted)
	}
	if resets+ons-resets0-ons0 != 1 || !on {
		t.Errorf("machine started %d times (on=%v), want once: the BIOS change's reboot", resets+ons-resets0-ons0, on)
	}
	if fmtStep := n["clean_step"]; fmtStep != nil && len(fmtStep.(map[string]any)) != 0 {
		t.Errorf("clean_step %v after cleaning", fmtStep)
	}

	// An agent step cannot run without the ramdisk: refused, nothing changes.
	r := c.doVersion("1.70", "PUT", "/v1/nodes/nr/states/provision", map[string]any{"target": "clean", "disable_ramdisk": true,
		"clean_steps": []map[string]any{{"interface": "deploy", "step": "erase_devices_metadata"}}}, 400)
	if msg := faultString(r); !strings.Contains(msg, "clean step") || !strings.Contains(msg, "erase_devices_metadata") ||
		!strings.HasSuffix(msg, "requires booting a ramdisk") {
		t.Errorf("refusal %q, want Ironic's \"clean step ... requires booting a ramdisk\"", msg)
	}
	n = c.doVersion("1.70", "GET", "/v1/nodes/nr", nil, 200)
	if n["provision_state"] != "manageable" || n["target_provision_state"] != nil || n["last_error"] != nil {
		t.Errorf("after the refusal: state %v, target %v, last_error %v", n["provision_state"], n["target_provision_state"], n["last_error"])
	}
	if _, _, resets2, ons2 := mach.state(); resets2 != resets || ons2 != ons {
		t.Errorf("refused request started the machine")
	}
}
