package bmc

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// The redfish bios interface against the lab's emulator: settings read,
// changed at the next start (the driver's reboot), reset to defaults;
// refusals carry the BMC's message.
func TestRedfishBIOS(t *testing.T) {
	ctx := context.Background()
	e := startEmulator(t, false, "1")
	n := e.node(nil)
	d := NewRedfish(testConfig())
	got, err := d.BIOSSettings(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if got["NumLock"] != "On" || got["ProcCores"] != float64(8) || got["SecureBootEnable"] != false {
		t.Fatalf("BIOSSettings = %v", got)
	}
	if err := d.ApplyBIOSSettings(ctx, n, map[string]any{"NumLock": "Off", "ProcCores": float64(4)}); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.BIOSSettings(ctx, n); got["NumLock"] != "On" {
		t.Errorf("settings changed before the machine restarted: %v", got)
	}
	if err := d.SetPowerState(ctx, n, driver.TargetPowerOn, testConfig().PowerTimeout); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.BIOSSettings(ctx, n); got["NumLock"] != "Off" || got["ProcCores"] != float64(4) {
		t.Errorf("after power on: %v", got)
	}
	if err := d.ResetBIOS(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := d.SetPowerState(ctx, n, driver.TargetReboot, testConfig().PowerTimeout); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.BIOSSettings(ctx, n); got["NumLock"] != "On" || got["ProcCores"] != float64(8) {
		t.Errorf("after a factory reset and a reboot: %v", got)
	}
	err = d.ApplyBIOSSettings(ctx, n, map[string]any{"NoSuchSetting": "x"})
	if err == nil || !strings.Contains(err.Error(), "NoSuchSetting is unknown") {
		t.Errorf("unknown setting: %v", err)
	}
	bad := e.node(map[string]any{KeyRedfishPassword: "wrong"})
	if _, err := d.BIOSSettings(ctx, bad); err == nil || errors.Is(err, driver.ErrNoBIOS) {
		t.Errorf("wrong password: %v", err)
	}
}

// Boot mode and Secure Boot against the emulator.
func TestRedfishBootModes(t *testing.T) {
	ctx := context.Background()
	e := startEmulator(t, false, "1")
	n := e.node(nil)
	d := NewRedfish(testConfig())
	if m, err := d.BootMode(ctx, n); err != nil || m != driver.BootModeBIOS {
		t.Fatalf("BootMode = %q, %v; want bios (the emulator starts in Legacy)", m, err)
	}
	if on, err := d.SecureBoot(ctx, n); err != nil || on {
		t.Fatalf("SecureBoot = %v, %v", on, err)
	}
	if err := d.SetSecureBoot(ctx, n, true); err == nil || !strings.Contains(err.Error(), "requires UEFI") {
		t.Errorf("secure boot in legacy mode: %v", err)
	}
	if err := d.SetBootMode(ctx, n, driver.BootModeUEFI); err != nil {
		t.Fatal(err)
	}
	if b, _ := e.srv.BootOverride("1"); b.BootSourceOverrideMode != "UEFI" || b.BootSourceOverrideTarget != "None" {
		t.Errorf("boot override after SetBootMode: %+v (only the mode changes)", b)
	}
	if m, _ := d.BootMode(ctx, n); m != driver.BootModeUEFI {
		t.Errorf("BootMode after SetBootMode(uefi) = %q", m)
	}
	if err := d.SetSecureBoot(ctx, n, true); err != nil {
		t.Fatal(err)
	}
	if on, _ := e.srv.SecureBoot("1"); !on {
		t.Error("secure boot not enabled on the BMC")
	}
	if err := d.SetBootMode(ctx, n, "floppy"); err == nil {
		t.Error("SetBootMode(floppy) accepted")
	}
}

func TestRedfishFirmwareComponents(t *testing.T) {
	e := startEmulator(t, false, "1")
	fw, err := NewRedfish(testConfig()).FirmwareComponents(context.Background(), e.node(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(fw) != 2 || fw[0] != (driver.FirmwareComponent{Component: "bios", Version: "1.16.3-ferric"}) ||
		fw[1] != (driver.FirmwareComponent{Component: "bmc", Version: "0.1.0"}) {
		t.Errorf("FirmwareComponents = %+v", fw)
	}
}

func TestRedfishBIOSRegistry(t *testing.T) {
	e := startEmulator(t, false, "1")
	snap, err := NewRedfish(testConfig()).ReadBIOS(context.Background(), e.node(nil))
	if err == nil {
		err = snap.RegistryErr
	}
	if err != nil {
		t.Fatal(err)
	}
	reg := snap.Registry
	if a := reg["NumLock"]; a.Type != "Enumeration" || strings.Join(a.AllowableValues, ",") != "On,Off" || *a.ReadOnly || a.LowerBound != nil {
		t.Errorf("NumLock = %+v", a)
	}
	if a := reg["ProcCores"]; a.Type != "Integer" || *a.LowerBound != 1 || *a.UpperBound != 64 || !*a.ResetRequired {
		t.Errorf("ProcCores = %+v", a)
	}
	if a := reg["SystemModelName"]; a.Type != "String" || !*a.ReadOnly || *a.MaxLength != 64 {
		t.Errorf("SystemModelName = %+v", a)
	}
	if len(reg) != len(redfish.DefaultBIOS()) {
		t.Errorf("%d registry entries for %d settings", len(reg), len(redfish.DefaultBIOS()))
	}
}

func TestRedfishDetectVendor(t *testing.T) {
	e := startEmulator(t, false, "1")
	if v, err := NewRedfish(testConfig()).DetectVendor(context.Background(), e.node(nil)); err != nil || v != "ferric" {
		t.Errorf("DetectVendor = %q, %v; want the system's manufacturer", v, err)
	}
}
