package manager_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/driver/hardware"
	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/inspector/process"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// fakeInspector hands out inv (or err) and counts the calls.
type fakeInspector struct {
	mu    sync.Mutex
	inv   *protocol.Inventory
	err   error
	calls int
}

func (f *fakeInspector) Inventory(context.Context, *driver.Node) (*protocol.Inventory, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	inv := *f.inv
	return &inv, nil
}

func oobInventory() *protocol.Inventory {
	serial := "D1"
	return &protocol.Inventory{
		CPU:    protocol.CPU{Count: 16, Architecture: "aarch64", Flags: []string{}},
		Memory: protocol.Memory{Total: 65536 << 20, PhysicalMB: 65536},
		Disks:  []protocol.Disk{{Name: "sda", Size: 200 << 30, Serial: &serial}},
		Interfaces: []protocol.Interface{{Name: "nic0", MACAddress: "52:54:00:00:00:01", LLDP: []protocol.TLV{}},
			{Name: "nic1", MACAddress: "52:54:00:00:00:02", LLDP: []protocol.TLV{}}},
		SystemVendor: protocol.SystemVendor{Manufacturer: "Contoso"},
		Boot:         protocol.Boot{CurrentBootMode: "uefi"},
	}
}

func newOOBEnv(t *testing.T, ins driver.Inspector, ports ...*store.Port) *inspectEnv {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "ferric.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rs := process.NewRuleStore(st)
	// fake-hardware, with the test's inspector as its redfish inspect
	// interface.
	drivers := hardware.New(hardware.Config{})
	h := drivers.Lookup("fake-hardware")
	h.Interfaces["inspect"] = h.Interfaces["inspect"].With("redfish", ins)
	mgr := manager.New(manager.Config{Store: st, Hostname: "test",
		Inspect: process.New(process.Config{Store: st, Rules: rs}),
		Drivers: drivers})
	n := &store.Node{UUID: "5d0e7a3c-8f4b-4c61-9a2e-0b1c2d3e4f50", Driver: "fake-hardware", ProvisionState: "manageable",
		DriverInfo: store.Object{}, DriverInternalInfo: store.Object{}, Properties: store.Object{}, Extra: store.Object{},
		InstanceInfo: store.Object{}, Traits: []string{},
		Interfaces: map[string]string{"boot": "fake", "deploy": "fake", "inspect": "redfish", "management": "fake", "power": "fake"}}
	if err := st.Update(context.Background(), func(tx store.Tx) error {
		for _, p := range ports {
			p.NodeUUID = n.UUID
			if err := tx.PutPort(p); err != nil {
				return err
			}
		}
		return tx.PutNode(n)
	}); err != nil {
		t.Fatal(err)
	}
	return &inspectEnv{st: st, mgr: mgr, rules: rs, node: n.UUID}
}

func TestOutOfBandInspection(t *testing.T) {
	ins := &fakeInspector{inv: oobInventory()}
	// The node has a PXE-enabled port: it stays the PXE port.
	e := newOOBEnv(t, ins, &store.Port{UUID: "7c1d2e3f-0000-4000-8000-000000000002", Address: "52:54:00:00:00:02",
		PXEEnabled: true, Extra: store.Object{}})
	if err := e.mgr.Provision(context.Background(), e.node, manager.ProvisionRequest{Target: "inspect", Version: 89}); err != nil {
		t.Fatalf("Provision(inspect) = %v", err)
	}
	n := e.waitState(t, "manageable")
	ins.mu.Lock()
	if ins.calls != 1 {
		t.Errorf("inventory read %d times", ins.calls)
	}
	ins.mu.Unlock()
	if n.LastError != nil || n.InspectionFinishedAt == nil || n.InspectionStartedAt == nil {
		t.Errorf("last_error %v, started %v, finished %v", n.LastError, n.InspectionStartedAt, n.InspectionFinishedAt)
	}
	for k, v := range map[string]any{"cpus": 16.0, "memory_mb": 65536.0, "local_gb": 199.0, "cpu_arch": "aarch64"} {
		if got := n.Properties[k]; got != v {
			if f, ok := got.(int); !ok || float64(f) != v {
				t.Errorf("properties[%s] = %v (%T), want %v", k, got, got, v)
			}
		}
	}
	if n.PowerState != nil {
		t.Errorf("power state changed to %v", *n.PowerState)
	}
	if !strings.Contains(string(n.Inventory), `"pxe_interface":"52:54:00:00:00:02"`) {
		t.Errorf("inventory without the port's PXE MAC: %.300s", n.Inventory)
	}
	ports := e.st.Ports(func(p *store.Port) bool { return p.NodeUUID == e.node })
	if len(ports) != 1 || !ports[0].PXEEnabled {
		t.Errorf("ports = %+v, want the PXE port kept", ports)
	}
}

func TestOutOfBandInspectionFails(t *testing.T) {
	for name, ins := range map[string]*fakeInspector{
		"bmc":           {err: errors.New("bmc: 192.0.2.1 did not answer")},
		"no-interfaces": {inv: func() *protocol.Inventory { i := oobInventory(); i.Interfaces = []protocol.Interface{}; return i }()},
	} {
		t.Run(name, func(t *testing.T) {
			e := newOOBEnv(t, ins)
			if err := e.mgr.Provision(context.Background(), e.node, manager.ProvisionRequest{Target: "inspect", Version: 89}); err != nil {
				t.Fatalf("Provision(inspect) = %v", err)
			}
			n := e.waitState(t, "inspect failed")
			if n.LastError == nil || !strings.Contains(*n.LastError, n.UUID) {
				t.Errorf("last_error = %v", n.LastError)
			}
			t.Logf("last_error: %s", *n.LastError)
			if len(n.Inventory) > 0 && name == "bmc" {
				t.Errorf("inventory stored after a failure: %s", n.Inventory)
			}
		})
	}
}
