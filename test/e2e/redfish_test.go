package e2e

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// machine is the computer behind the emulated BMC: its power and next
// boot device are what the test observes.
type machine struct {
	mu      sync.Mutex
	on      bool
	boot    string
	resets  int
	powerOn int
	nmis    int
	booted  string // device the machine last (re)started from
}

func (m *machine) Running(context.Context) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.on, nil
}
func (m *machine) PowerOn(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.on {
		m.powerOn++
		m.booted = m.boot
	}
	m.on = true
	return nil
}
func (m *machine) PowerOff(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.on = false
	return nil
}
func (m *machine) Shutdown(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.on = false
	return nil
}
func (m *machine) Reset(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.resets++
	m.booted = m.boot
	return nil
}
func (m *machine) InjectNMI(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nmis++
	return nil
}
func (m *machine) SetBootDevice(_ context.Context, d string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.boot = d
	return nil
}
func (m *machine) state() (bool, string, int, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.on, m.booted, m.resets, m.powerOn
}

// TestRedfishNode drives a redfish node through the API against the
// Redfish BMC emulator over HTTP: verification, power on/off/reboot and
// boot device, observed on the machine behind the BMC.
func TestRedfishNode(t *testing.T) {
	mach := &machine{}
	emu := redfish.New(redfish.Config{Username: "admin", Password: "pw-not-logged",
		Machines: map[string]redfish.Machine{"m1": mach}})
	bmc := httptest.NewServer(emu)
	defer bmc.Close()
	c := client{t, startConductor(t)}

	c.doVersion("1.86", "POST", "/v1/nodes", map[string]any{"driver": "redfish", "name": "rf", "firmware_interface": "redfish",
		"driver_info": map[string]any{"redfish_address": bmc.URL, "redfish_username": "admin",
			"redfish_password": "pw-not-logged", "redfish_system_id": "/redfish/v1/Systems/m1"}}, 201)
	v := c.do("GET", "/v1/nodes/rf/validate", nil, 200)
	if p := v["power"].(map[string]any); p["result"] != true {
		t.Fatalf("validate power = %v", p)
	}
	c.do("PUT", "/v1/nodes/rf/states/provision", map[string]any{"target": "manage"}, 202)
	n := c.waitState("rf", "manageable", 30*time.Second)
	if n["power_state"] != "power off" {
		t.Fatalf("after manage power_state = %v, want power off (read from the BMC)", n["power_state"])
	}
	if p, _ := n["properties"].(map[string]any); p["vendor"] != "ferric" {
		t.Errorf("properties.vendor after verification = %v, want the system's manufacturer", p["vendor"])
	}
	waitPower := func(want string) map[string]any {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			n := c.do("GET", "/v1/nodes/rf", nil, 200)
			if n["target_power_state"] == nil && n["reservation"] == nil {
				if n["power_state"] != want {
					t.Fatalf("power_state %v, want %v (last_error %v)", n["power_state"], want, n["last_error"])
				}
				return n
			}
			if time.Now().After(deadline) {
				t.Fatalf("power change to %s did not finish", want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	c.do("PUT", "/v1/nodes/rf/states/power", map[string]any{"target": "power on"}, 202)
	n = waitPower("power on")
	if on, _, _, _ := mach.state(); !on {
		t.Fatal("machine is off after power on")
	}
	if dii := n["driver_internal_info"].(map[string]any); dii["power_provider"] == nil {
		t.Errorf("the provider that acted is not recorded: %v", dii)
	}
	c.do("PUT", "/v1/nodes/rf/management/boot_device", map[string]any{"boot_device": "pxe"}, 204)
	if b, _ := emu.BootOverride("m1"); b.BootSourceOverrideTarget != "Pxe" {
		t.Fatalf("BMC boot override %+v, want Pxe", b)
	}
	_, _, resets0, ons0 := mach.state()
	c.do("PUT", "/v1/nodes/rf/states/power", map[string]any{"target": "rebooting"}, 202)
	waitPower("power on")
	if on, boot, resets, ons := mach.state(); !on || resets+ons <= resets0+ons0 || boot != "pxe" {
		t.Fatalf("reboot: machine on=%v boot %q resets %d->%d power-ons %d->%d, want on from pxe", on, boot, resets0, resets, ons0, ons)
	}
	c.do("PUT", "/v1/nodes/rf/states/power", map[string]any{"target": "power off"}, 202)
	waitPower("power off")
	if on, _, _, _ := mach.state(); on {
		t.Fatal("machine is on after power off")
	}
	if di := c.do("GET", "/v1/nodes/rf", nil, 200)["driver_info"].(map[string]any); di["redfish_password"] != "******" {
		t.Errorf("redfish_password shown as %v", di["redfish_password"])
	}

	// Firmware versions (redfish firmware interface, 1.86): read when the
	// node was verified.
	fw := c.doVersion("1.86", "GET", "/v1/nodes/rf/firmware", nil, 200)["firmware"].([]any)
	if len(fw) != 2 {
		t.Fatalf("firmware = %v", fw)
	}
	if b := fw[0].(map[string]any); b["component"] != "bios" || b["current_version"] != "1.16.3-ferric" || b["initial_version"] != "1.16.3-ferric" || b["created_at"] == nil {
		t.Errorf("bios firmware = %v", b)
	}
	if b := fw[1].(map[string]any); b["component"] != "bmc" || b["current_version"] != "0.1.0" {
		t.Errorf("bmc firmware = %v", b)
	}

	// Boot mode and Secure Boot: read when the node was verified, changed
	// through the BMC (1.76).
	if n := c.doVersion("1.75", "GET", "/v1/nodes/rf", nil, 200); n["boot_mode"] != "bios" || n["secure_boot"] != false {
		t.Errorf("cached boot_mode %v secure_boot %v, want bios and false (the emulator's)", n["boot_mode"], n["secure_boot"])
	}
	waitIdle := func() map[string]any {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			n := c.doVersion("1.76", "GET", "/v1/nodes/rf", nil, 200)
			if n["reservation"] == nil {
				return n
			}
			if time.Now().After(deadline) {
				t.Fatal("boot mode change did not finish")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	c.doVersion("1.76", "PUT", "/v1/nodes/rf/states/secure_boot", map[string]any{"target": true}, 202)
	if n := waitIdle(); !strings.Contains(fmt.Sprint(n["last_error"]), "requires UEFI") {
		t.Errorf("secure boot in legacy mode: last_error %v", n["last_error"])
	}
	c.doVersion("1.76", "PUT", "/v1/nodes/rf/states/boot_mode", map[string]any{"target": "uefi"}, 202)
	if n := waitIdle(); n["boot_mode"] != "uefi" || n["last_error"] != nil {
		t.Errorf("after boot mode uefi: boot_mode %v last_error %v", n["boot_mode"], n["last_error"])
	}
	if b, _ := emu.BootOverride("m1"); b.BootSourceOverrideMode != "UEFI" {
		t.Errorf("BMC boot mode %+v, want UEFI", b)
	}
	c.doVersion("1.76", "PUT", "/v1/nodes/rf/states/secure_boot", map[string]any{"target": "on"}, 202)
	if n := waitIdle(); n["secure_boot"] != true || n["last_error"] != nil {
		t.Errorf("after secure boot on: secure_boot %v last_error %v", n["secure_boot"], n["last_error"])
	}
	if on, _ := emu.SecureBoot("m1"); !on {
		t.Error("Secure Boot not enabled on the BMC")
	}
}

// TestDeadBMC: a BMC that does not answer gives a clear last_error, not a
// hang.
func TestDeadBMC(t *testing.T) {
	dead := httptest.NewServer(nil)
	url := dead.URL
	dead.Close() // nothing listens there any more
	c := client{t, startConductor(t)}
	c.do("POST", "/v1/nodes", map[string]any{"driver": "redfish", "name": "dead",
		"driver_info": map[string]any{"redfish_address": url, "redfish_username": "a", "redfish_password": "b"}}, 201)
	c.do("PUT", "/v1/nodes/dead/states/provision", map[string]any{"target": "manage"}, 202)
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := c.do("GET", "/v1/nodes/dead", nil, 200)
		if n["provision_state"] == "enroll" && n["reservation"] == nil {
			if n["last_error"] == nil {
				t.Fatal("verification against a dead BMC failed without last_error")
			}
			t.Logf("last_error: %v", n["last_error"])
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node still %v after 60s", n["provision_state"])
		}
		time.Sleep(200 * time.Millisecond)
	}
}
