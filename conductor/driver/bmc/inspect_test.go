package bmc

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// macMachine is a machine that knows its NIC's MAC.
type macMachine struct{ fakeMachine }

func (m *macMachine) MACAddress() string { return "52:54:00:12:34:56" }

func TestRedfishInventory(t *testing.T) {
	ctx := context.Background()
	f := &fakeMachine{boot: "disk"}
	srv := httptest.NewServer(redfish.New(redfish.Config{Username: "admin", Password: "s3cret", Logger: quietLogger(),
		Machines: map[string]redfish.Machine{"a": f, "b": &fakeMachine{}, "c": &fakeMachine{}, "d": &macMachine{}},
		Hardware: map[string]redfish.Hardware{
			"a": {CPUs: 6, Sockets: 2, CPUModel: "Xeon", CPUMHz: 3100, MemoryGiB: 8.5,
				Disks: []redfish.Disk{{Size: 1 << 30, Model: "small"}, {Size: 20 << 30, Model: "big", Vendor: "ACME", Serial: "D2", HDD: true}},
				MACs:  []string{"52:54:00:00:00:0A"}, Serial: "SN1", Manufacturer: "Contoso", Model: "R1"},
			"b": {MACs: []string{}},
			"c": {CPUArch: "ARM-A64", Storage: "simple", Disks: []redfish.Disk{{Size: 5 << 30, Model: "virtio", Vendor: "QEMU"}}},
		}}))
	defer srv.Close()
	sysNode := func(id string) *driver.Node {
		return (&emulator{http: srv}).node(map[string]any{KeyRedfishSystemID: "/redfish/v1/Systems/" + id})
	}

	inv, err := NewRedfish(testConfig()).Inventory(ctx, sysNode("a"))
	if err != nil {
		t.Fatal(err)
	}
	c := inv.CPU
	if c.Count != 6 || c.SocketCount != 2 || c.ModelName != "Xeon" || c.Architecture != "x86_64" || c.Frequency != "3100" {
		t.Errorf("cpu = %+v", c)
	}
	if inv.Memory.PhysicalMB != 8704 || inv.Memory.Total != 8704<<20 {
		t.Errorf("memory = %+v", inv.Memory)
	}
	if v := inv.SystemVendor; v.Manufacturer != "Contoso" || v.ProductName != "R1" || v.SerialNumber != "SN1" {
		t.Errorf("system_vendor = %+v", v)
	}
	// Storage drives (the same disks also listed as SimpleStorage devices
	// are not counted twice).
	if len(inv.Disks) != 2 {
		t.Fatalf("disks = %+v", inv.Disks)
	}
	if d := inv.Disks[1]; d.Name != "sdb" || d.Size != 20<<30 || d.Model != "big" || d.Serial == nil || *d.Serial != "D2" ||
		d.Vendor == nil || *d.Vendor != "ACME" || !d.Rotational || inv.Disks[0].Rotational {
		t.Errorf("disk = %+v", d)
	}
	if len(inv.Interfaces) != 1 || inv.Interfaces[0].MACAddress != "52:54:00:00:00:0a" || inv.Interfaces[0].Name != "nic0" {
		t.Errorf("interfaces %+v", inv.Interfaces)
	}
	if inv.BMCAddress == nil || *inv.BMCAddress != "127.0.0.1" {
		t.Errorf("bmc_address %v", inv.BMCAddress)
	}
	if inv.Boot.CurrentBootMode == "" {
		t.Errorf("no boot mode")
	}
	f.mu.Lock()
	calls := len(f.calls)
	f.mu.Unlock()
	if calls != 0 {
		t.Errorf("inventory acted on the machine: %v", f.calls)
	}

	// SimpleStorage only; another architecture.
	inv, err = NewRedfish(testConfig()).Inventory(ctx, sysNode("c"))
	if err != nil {
		t.Fatal(err)
	}
	if inv.CPU.Architecture != "aarch64" || len(inv.Disks) != 1 || inv.Disks[0].Size != 5<<30 || inv.Disks[0].Serial != nil {
		t.Errorf("cpu %+v disks %+v", inv.CPU, inv.Disks)
	}

	// The emulator's defaults: 2 CPUs, 4 GiB, a 10 GiB disk, one NIC with
	// the machine's MAC.
	inv, err = NewRedfish(testConfig()).Inventory(ctx, sysNode("d"))
	if err != nil {
		t.Fatal(err)
	}
	if inv.CPU.Count != 2 || inv.Memory.PhysicalMB != 4096 || len(inv.Disks) != 1 || inv.Disks[0].Size != 10<<30 ||
		len(inv.Interfaces) != 1 || inv.Interfaces[0].MACAddress != "52:54:00:12:34:56" {
		t.Errorf("default inventory %+v", inv)
	}

	// Several systems and no redfish_system_id: say which key to set.
	if _, err := NewRedfish(testConfig()).Inventory(ctx, (&emulator{http: srv}).node(nil)); err == nil {
		t.Error("inventory of an ambiguous BMC succeeded")
	}
	// A system without NICs cannot be inspected.
	if _, err := NewRedfish(testConfig()).Inventory(ctx, sysNode("b")); !errors.Is(err, errNoNICs) {
		t.Errorf("inventory without NICs = %v", err)
	}
	// A dead BMC gives an error (bounded by the call timeout).
	dead := httptest.NewServer(nil)
	url := dead.URL
	dead.Close()
	cfg := testConfig()
	cfg.CallTimeout = 500 * time.Millisecond
	n := (&emulator{http: &httptest.Server{URL: url}}).node(nil)
	if _, err := NewRedfish(cfg).Inventory(ctx, n); err == nil {
		t.Error("inventory from a dead BMC succeeded")
	}
}

func TestCPUArch(t *testing.T) {
	for _, c := range []struct{ set, arch, want string }{
		{"x86-64", "x86", "x86_64"}, {"", "x86", "x86_64"}, {"ARM-A64", "ARM", "aarch64"}, {"", "ARM", "aarch64"},
		{"PowerISA", "Power", "ppc64le"}, {"OEM", "OEM", ""}, {"", "", ""},
	} {
		if got := cpuArch(c.set, c.arch); got != c.want {
			t.Errorf("cpuArch(%q, %q) = %q, want %q", c.set, c.arch, got, c.want)
		}
	}
}
