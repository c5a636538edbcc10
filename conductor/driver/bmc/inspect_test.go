package bmc

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/lab/redfish"
)

func TestRedfishInventory(t *testing.T) {
	ctx := context.Background()
	f := &fakeMachine{boot: "disk"}
	srv := httptest.NewServer(redfish.New(redfish.Config{Username: "admin", Password: "s3cret", Logger: quietLogger(),
		Machines: map[string]redfish.Machine{"a": f, "b": &fakeMachine{}},
		Hardware: map[string]redfish.Hardware{"a": {CPUs: 4, CPUModel: "Xeon", MemoryGiB: 8.5, Disks: []int64{1 << 30, 20 << 30},
			MACs: []string{"52:54:00:00:00:0A"}, Serial: "SN1"}}}))
	defer srv.Close()
	node := (&emulator{http: srv}).node(map[string]any{KeyRedfishSystemID: "/redfish/v1/Systems/a"})
	inv, err := NewRedfish(testConfig()).Inventory(ctx, node)
	if err != nil {
		t.Fatal(err)
	}
	if inv.CPU.Count != 4 || inv.CPU.ModelName != "Xeon" || inv.Memory.PhysicalMB != 8704 || inv.SystemVendor.SerialNumber != "SN1" {
		t.Errorf("inventory = %+v", inv)
	}
	if len(inv.Disks) != 2 || inv.Disks[1].Size != 20<<30 || len(inv.Interfaces) != 1 || inv.Interfaces[0].MACAddress != "52:54:00:00:00:0a" {
		t.Errorf("disks %+v interfaces %+v", inv.Disks, inv.Interfaces)
	}
	if inv.BMCAddress == nil || *inv.BMCAddress != "127.0.0.1" {
		t.Errorf("bmc_address %v", inv.BMCAddress)
	}
	f.mu.Lock()
	calls := len(f.calls)
	f.mu.Unlock()
	if calls != 0 {
		t.Errorf("inventory acted on the machine: %v", f.calls)
	}

	// Two systems and no redfish_system_id: say which key to set.
	if _, err := NewRedfish(testConfig()).Inventory(ctx, (&emulator{http: srv}).node(nil)); err == nil {
		t.Error("inventory of an ambiguous BMC succeeded")
	}
	// A system without NICs cannot be inspected.
	noNIC := (&emulator{http: srv}).node(map[string]any{KeyRedfishSystemID: "/redfish/v1/Systems/b"})
	if _, err := NewRedfish(testConfig()).Inventory(ctx, noNIC); !errors.Is(err, errNoNICs) {
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
