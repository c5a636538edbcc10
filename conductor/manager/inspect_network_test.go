package manager

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/inspector/process"
)

// TestInspectionNetwork: in-band inspection puts the node on the
// inspection network while the ramdisk runs, when the network interface
// has one, and takes it off when the data came in or the inspection was
// aborted; without one the node is inspected where it is (Ironic's
// unmanaged inspection).
func TestInspectionNetwork(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "inspector", "testdata", "qemu.json"))
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatal(err)
	}
	body["inventory"].(map[string]any)["bmc_address"] = "192.0.2.71"
	data, _ := json.Marshal(body)

	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	net := &recordingNet{inspection: true}
	reg := fakeDrivers("network", "neutron", net)
	ctx, cancel := context.WithCancel(context.Background())
	m := New(Config{Store: st, Hostname: "test-conductor", Drivers: reg,
		Inspect: process.New(process.Config{Store: st, Rules: process.NewRuleStore(st)})})
	done := run(t, ctx, m)
	t.Cleanup(func() { cancel(); <-done; st.Close() })

	const u = "81111111-2222-3333-4444-555555555555"
	const portUUID = "81111111-2222-3333-4444-000000000001"
	n := fakeNode(u)
	n.ProvisionState = string(sm.Manageable)
	n.DriverInfo = store.Object{"ipmi_address": "192.0.2.71"}
	n.Interfaces["inspect"], n.Interfaces["network"] = "agent", "neutron"
	if err := st.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutNode(n); err != nil {
			return err
		}
		return tx.PutPort(&store.Port{UUID: portUUID, NodeUUID: u, Address: "52:54:00:00:81:01", PXEEnabled: true})
	}); err != nil {
		t.Fatal(err)
	}
	key := func() any {
		p, err := st.Port(portUUID)
		if err != nil {
			t.Fatal(err)
		}
		return p.InternalInfo["inspection_vif_port_id"]
	}
	provision := func(target string, want sm.State) {
		t.Helper()
		if err := m.Provision(ctx, u, ProvisionRequest{Target: target, Version: 89}); err != nil {
			t.Fatalf("Provision(%s) = %v", target, err)
		}
		waitNode(t, st, u, func(n *store.Node) bool { return n.ProvisionState == string(want) })
	}

	provision("inspect", sm.InspectWait)
	if got := net.take(); got != "add inspection" {
		t.Errorf("inspect: network calls %q, want %q", got, "add inspection")
	}
	if got := key(); got != "inspection-port-of-"+portUUID {
		t.Errorf("inspect wait: internal_info inspection_vif_port_id = %v", got)
	}
	if _, err := m.ContinueInspection(ctx, data); err != nil {
		t.Fatal(err)
	}
	waitNode(t, st, u, func(n *store.Node) bool { return n.ProvisionState == string(sm.Manageable) })
	if got := net.take(); got != "remove inspection" {
		t.Errorf("inspection done: network calls %q, want %q", got, "remove inspection")
	}
	if got := key(); got != nil {
		t.Errorf("inspected: internal_info inspection_vif_port_id = %v, want none", got)
	}

	provision("inspect", sm.InspectWait)
	provision("abort", sm.InspectFailed)
	if got := net.take(); got != "add inspection, remove inspection" {
		t.Errorf("inspect, abort: network calls %q", got)
	}
	provision("manage", sm.Manageable)

	// No inspection network: the node is inspected where it is.
	net.inspection = false
	provision("inspect", sm.InspectWait)
	if _, err := m.ContinueInspection(ctx, data); err != nil {
		t.Fatal(err)
	}
	waitNode(t, st, u, func(n *store.Node) bool { return n.ProvisionState == string(sm.Manageable) })
	if got := net.take(); got != "" {
		t.Errorf("inspection without an inspection network: network calls %q, want none", got)
	}
}
