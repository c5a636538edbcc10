package manager_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/inspector/process"
	"github.com/ferric-metal/ferric/inspector/rules"
)

// inspectFixture is inspector/testdata/qemu.json with a BMC address, so the
// node is matched by BMC and its port is created by inspection.
func inspectFixture(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "inspector", "testdata", "qemu.json"))
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatal(err)
	}
	body["inventory"].(map[string]any)["bmc_address"] = "192.0.2.10"
	out, _ := json.Marshal(body)
	return out
}

type inspectEnv struct {
	st    *store.Bolt
	mgr   *manager.Manager
	rules *process.RuleStore
	node  string
}

func newInspectEnv(t *testing.T) *inspectEnv {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "ferric.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rs := process.NewRuleStore(st)
	mgr := manager.New(manager.Config{Store: st, Hostname: "test",
		Inspect: process.New(process.Config{Store: st, Rules: rs})})
	n := &store.Node{UUID: "1be26c0b-03f2-4d2e-ae87-c02d7f33c123", Driver: "fake-hardware", ProvisionState: "manageable",
		DriverInfo: store.Object{"ipmi_address": "192.0.2.10"}, DriverInternalInfo: store.Object{},
		Properties: store.Object{}, Extra: store.Object{}, InstanceInfo: store.Object{}, Traits: []string{},
		Interfaces: map[string]string{"boot": "fake", "deploy": "fake", "inspect": "agent", "management": "fake", "power": "fake"}}
	if err := st.Update(context.Background(), func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
		t.Fatal(err)
	}
	return &inspectEnv{st: st, mgr: mgr, rules: rs, node: n.UUID}
}

// waitState polls the node until it reaches state.
func (e *inspectEnv) waitState(t *testing.T, state string) *store.Node {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := e.st.Node(e.node)
		if err != nil {
			t.Fatal(err)
		}
		if n.ProvisionState == state && n.Reservation == nil {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("node in state %q (reservation %v, last_error %v), want %q", n.ProvisionState, n.Reservation, n.LastError, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *inspectEnv) startInspection(t *testing.T) {
	t.Helper()
	if err := e.mgr.Provision(context.Background(), e.node, manager.ProvisionRequest{Target: "inspect", Version: 89}); err != nil {
		t.Fatalf("Provision(inspect) = %v", err)
	}
	n := e.waitState(t, "inspect wait")
	if n.InspectionStartedAt == nil {
		t.Error("inspection_started_at not set")
	}
}

func TestInBandInspection(t *testing.T) {
	e := newInspectEnv(t)
	e.startInspection(t)
	got, err := e.mgr.ContinueInspection(context.Background(), inspectFixture(t))
	if err != nil {
		t.Fatalf("ContinueInspection() = %v", err)
	}
	if got.UUID != e.node {
		t.Errorf("ContinueInspection() node = %s, want %s", got.UUID, e.node)
	}
	// The node stays locked in inspecting until the machine is off.
	if got.ProvisionState != "inspecting" || got.Reservation == nil {
		t.Errorf("ContinueInspection() node in %q with reservation %v, want inspecting and locked until powered off",
			got.ProvisionState, got.Reservation)
	}
	// The agent looks the node up after posting (as IPA); the token it may
	// get dies with the ramdisk at the power off, so that the next ramdisk
	// (cleaning after provide) is issued its own.
	if _, _, err := e.mgr.Lookup(context.Background(), []string{"52:54:00:12:34:56"}, ""); err != nil {
		t.Logf("lookup while inspecting: %v", err)
	}
	n := e.waitState(t, "manageable")
	if n.PowerState == nil || *n.PowerState != "power off" {
		t.Errorf("manageable after inspection with power_state %v, want power off", n.PowerState)
	}
	if tok, ok := n.DriverInternalInfo["agent_secret_token"]; ok {
		t.Errorf("agent token %v kept after the inspection power off", tok)
	}
	want := map[string]float64{"cpus": 2, "memory_mb": 4096, "local_gb": 19}
	for k, v := range want {
		if f, _ := n.Properties[k].(float64); f != v {
			t.Errorf("properties[%s] = %v, want %v", k, n.Properties[k], v)
		}
	}
	if n.Properties["cpu_arch"] != "x86_64" {
		t.Errorf("properties[cpu_arch] = %v, want x86_64", n.Properties["cpu_arch"])
	}
	if caps, _ := n.Properties["capabilities"].(string); !strings.Contains(caps, "boot_mode:bios") {
		t.Errorf("properties[capabilities] = %q, want boot_mode:bios in it", caps)
	}
	if n.InspectionFinishedAt == nil || n.LastError != nil {
		t.Errorf("inspection_finished_at = %v, last_error = %v; want set and nil", n.InspectionFinishedAt, n.LastError)
	}
	if !strings.Contains(string(n.Inventory), "52:54:00:12:34:56") {
		t.Errorf("inventory not stored: %.200s", n.Inventory)
	}
	var pd map[string]any
	if err := json.Unmarshal(n.PluginData, &pd); err != nil || pd["root_disk"] == nil {
		t.Errorf("plugin_data = %s (%v), want root_disk in it", n.PluginData, err)
	}
	ports := e.st.Ports(func(p *store.Port) bool { return p.NodeUUID == e.node })
	if len(ports) != 1 || ports[0].Address != "52:54:00:12:34:56" || !ports[0].PXEEnabled {
		t.Fatalf("ports = %+v, want one pxe-enabled port 52:54:00:12:34:56", ports)
	}

	// Inspecting again matches by the port's MAC (the BMC address is gone
	// from the node) and keeps the one port.
	if err := e.st.Update(context.Background(), func(tx store.Tx) error {
		n, err := tx.Node(e.node)
		if err != nil {
			return err
		}
		n.DriverInfo = store.Object{}
		return tx.PutNode(n)
	}); err != nil {
		t.Fatal(err)
	}
	e.startInspection(t)
	if _, err := e.mgr.ContinueInspection(context.Background(), inspectFixture(t)); err != nil {
		t.Fatalf("second ContinueInspection() = %v", err)
	}
	e.waitState(t, "manageable")
	if ports := e.st.Ports(func(p *store.Port) bool { return p.NodeUUID == e.node }); len(ports) != 1 {
		t.Errorf("after second inspection: %d ports, want 1", len(ports))
	}
}

func TestInBandInspectionRules(t *testing.T) {
	ctx := context.Background()
	e := newInspectEnv(t)
	for _, body := range []string{
		`{"description": "tag QEMU", "priority": 10,
		  "conditions": [{"op": "eq", "args": {"values": ["{inventory[system_vendor][manufacturer]}", "QEMU"]}}],
		  "actions": [{"op": "add-trait", "args": {"name": "CUSTOM_QEMU"}},
		              {"op": "set-attribute", "args": {"path": "/extra/vendor", "value": "{inventory[system_vendor][manufacturer]}"}}]}`,
	} {
		r, err := rules.Parse([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.rules.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	e.startInspection(t)
	if _, err := e.mgr.ContinueInspection(ctx, inspectFixture(t)); err != nil {
		t.Fatalf("ContinueInspection() = %v", err)
	}
	n := e.waitState(t, "manageable")
	if len(n.Traits) != 1 || n.Traits[0] != "CUSTOM_QEMU" {
		t.Errorf("traits = %v, want [CUSTOM_QEMU]", n.Traits)
	}
	if n.Extra["vendor"] != "QEMU" {
		t.Errorf("extra = %v, want vendor QEMU", n.Extra)
	}

	// A failing rule fails inspection and writes nothing.
	r, err := rules.Parse([]byte(`{"description": "no VMs", "conditions": [{"op": "eq", "args": {"values": ["{inventory[cpu][architecture]}", "x86_64"]}}],
		"actions": [{"op": "fail", "args": {"msg": "virtual machines are not welcome"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.rules.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	e.startInspection(t)
	before, _ := e.st.Node(e.node)
	if _, err := e.mgr.ContinueInspection(ctx, inspectFixture(t)); err == nil {
		t.Fatal("ContinueInspection() with a failing rule = nil error, want one")
	}
	n = e.waitState(t, "inspect failed")
	if n.LastError == nil || !strings.Contains(*n.LastError, "virtual machines are not welcome") {
		t.Errorf("last_error = %v, want the rule's message", n.LastError)
	}
	if string(n.PluginData) != string(before.PluginData) {
		t.Errorf("plugin_data changed by a failed inspection")
	}
}

func TestInBandInspectionRamdiskError(t *testing.T) {
	e := newInspectEnv(t)
	e.startInspection(t)
	var body map[string]any
	_ = json.Unmarshal(inspectFixture(t), &body)
	body["error"] = "lshw failed"
	raw, _ := json.Marshal(body)
	if _, err := e.mgr.ContinueInspection(context.Background(), raw); err == nil {
		t.Fatal("ContinueInspection() with a ramdisk error = nil, want an error")
	}
	n := e.waitState(t, "inspect failed")
	if n.LastError == nil || !strings.Contains(*n.LastError, "lshw failed") {
		t.Errorf("last_error = %v, want the ramdisk's error", n.LastError)
	}
}

func TestContinueInspectionUnknownNode(t *testing.T) {
	e := newInspectEnv(t)
	// The node is manageable, not being inspected: nothing matches.
	if _, err := e.mgr.ContinueInspection(context.Background(), inspectFixture(t)); err == nil {
		t.Fatal("ContinueInspection() for a node not being inspected = nil, want an error")
	}
	if n, _ := e.st.Node(e.node); n.ProvisionState != "manageable" {
		t.Errorf("state = %q, want manageable", n.ProvisionState)
	}
}
