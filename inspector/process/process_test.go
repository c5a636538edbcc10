package process

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/inspector"
	"github.com/ferric-metal/ferric/inspector/rules"
)

func openStore(t *testing.T) *store.Bolt {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "ferric.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func put(t *testing.T, st store.Store, nodes []*store.Node, ports []*store.Port) {
	t.Helper()
	if err := st.Update(context.Background(), func(tx store.Tx) error {
		for _, n := range nodes {
			if err := tx.PutNode(n); err != nil {
				return err
			}
		}
		for _, p := range ports {
			if err := tx.PutPort(p); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func body(t *testing.T, bmc string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "qemu.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	if bmc != "" {
		m["inventory"].(map[string]any)["bmc_address"] = bmc
	}
	out, _ := json.Marshal(m)
	return out
}

func TestNodes(t *testing.T) {
	st := openStore(t)
	mk := func(id, state string, info store.Object) *store.Node {
		return &store.Node{UUID: id, Driver: "fake-hardware", ProvisionState: state, DriverInfo: info}
	}
	put(t, st, []*store.Node{
		mk("00000000-0000-0000-0000-000000000001", "inspect wait", store.Object{"ipmi_address": "192.0.2.1"}),
		mk("00000000-0000-0000-0000-000000000002", "inspecting", store.Object{"redfish_address": "https://[2001:db8::2]:8443/redfish/v1"}),
		mk("00000000-0000-0000-0000-000000000003", "manageable", store.Object{"ipmi_address": "192.0.2.3"}),
		mk("00000000-0000-0000-0000-000000000004", "inspect wait", store.Object{"redfish_address": "BMC4.example.com:443"}),
	}, []*store.Port{
		{UUID: "10000000-0000-0000-0000-000000000001", NodeUUID: "00000000-0000-0000-0000-000000000001", Address: "52:54:00:00:00:01"},
		{UUID: "10000000-0000-0000-0000-000000000003", NodeUUID: "00000000-0000-0000-0000-000000000003", Address: "52:54:00:00:00:03"},
	})
	n := Nodes{Store: st}
	ctx := context.Background()
	for _, tc := range []struct {
		addrs []string
		want  []string
	}{
		{[]string{"192.0.2.1"}, []string{"00000000-0000-0000-0000-000000000001"}},
		{[]string{"2001:0db8::2"}, []string{"00000000-0000-0000-0000-000000000002"}},
		{[]string{"192.0.2.3"}, nil}, // not being inspected
		{[]string{"bmc4.example.com"}, []string{"00000000-0000-0000-0000-000000000004"}},
		{[]string{"198.51.100.1"}, nil},
	} {
		got, err := n.FindByBMCAddress(ctx, tc.addrs)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("FindByBMCAddress(%v) = %v, %v, want %v", tc.addrs, got, err, tc.want)
		}
	}
	got, err := n.FindByMACs(ctx, []string{"52:54:00:00:00:01", "52:54:00:00:00:03", "52:54:00:00:00:99"})
	if err != nil || !slices.Equal(got, []string{"00000000-0000-0000-0000-000000000001"}) {
		t.Errorf("FindByMACs() = %v, %v", got, err)
	}
}

func TestAutoEnroll(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	rs := NewRuleStore(st)
	r, _ := rules.Parse([]byte(`{"conditions": [{"op": "is-true", "args": {"value": "{plugin_data[auto_discovered]}"}}],
		"actions": [{"op": "set-attribute", "args": {"path": "/extra/discovered", "value": "yes"}}]}`))
	if _, err := rs.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	off := New(Config{Store: st, Rules: rs})
	if _, err := off.Match(ctx, body(t, "192.0.2.50")); !errors.Is(err, inspector.ErrNodeNotFound) {
		t.Fatalf("Match() without auto-enroll = %v, want ErrNodeNotFound", err)
	}
	p := New(Config{Store: st, Rules: rs, Enroll: &Enroll{Driver: "ipmi", DriverInfo: map[string]any{"ipmi_username": "admin"}}})
	_, err := p.Match(ctx, body(t, "192.0.2.50"))
	if !errors.Is(err, ErrEnrolled) {
		t.Fatalf("Match() with auto-enroll = %v, want ErrEnrolled", err)
	}
	nodes := st.Nodes(nil)
	if len(nodes) != 1 {
		t.Fatalf("%d nodes after auto-enroll, want 1", len(nodes))
	}
	n := nodes[0]
	if n.ProvisionState != "enroll" || n.Driver != "ipmi" || n.DriverInfo["ipmi_address"] != "192.0.2.50" || n.DriverInfo["ipmi_username"] != "admin" {
		t.Errorf("enrolled node: state %q driver %q driver_info %v", n.ProvisionState, n.Driver, n.DriverInfo)
	}
	if n.Interfaces["power"] != "ipmitool" || n.Properties["cpu_arch"] != "x86_64" || n.Extra["discovered"] != "yes" {
		t.Errorf("enrolled node: interfaces %v properties %v extra %v", n.Interfaces, n.Properties, n.Extra)
	}
	var pd map[string]any
	_ = json.Unmarshal(n.PluginData, &pd)
	if pd["auto_discovered"] != true {
		t.Errorf("plugin_data = %s, want auto_discovered", n.PluginData)
	}
	if ports := st.Ports(nil); len(ports) != 1 || ports[0].NodeUUID != n.UUID || !ports[0].PXEEnabled {
		t.Errorf("ports = %+v", ports)
	}
	// The same machine again: its MAC is known, no second node.
	if _, err := p.Match(ctx, body(t, "192.0.2.50")); !errors.Is(err, inspector.ErrNodeNotFound) {
		t.Errorf("Match() of an enrolled machine = %v, want ErrNodeNotFound", err)
	}
	if len(st.Nodes(nil)) != 1 {
		t.Errorf("second Match() enrolled another node")
	}
	// With ReturnUUID the new node is returned.
	p2 := New(Config{Store: st, Enroll: &Enroll{Driver: "redfish", ReturnUUID: true}})
	b := body(t, "192.0.2.51")
	b = []byte(string(b)) // same MAC would collide: change it
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	inv := m["inventory"].(map[string]any)
	inv["interfaces"].([]any)[0].(map[string]any)["mac_address"] = "52:54:00:aa:bb:cc"
	inv["boot"].(map[string]any)["pxe_interface"] = "52:54:00:aa:bb:cc"
	b, _ = json.Marshal(m)
	id, err := p2.Match(ctx, b)
	if err != nil || id == "" {
		t.Fatalf("Match() with ReturnUUID = %q, %v", id, err)
	}
	if n, _ := st.Node(id); n == nil || n.DriverInfo["redfish_address"] != "192.0.2.51" {
		t.Errorf("redfish node driver_info = %v", n.DriverInfo)
	}
}

func TestApplyProtectedField(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	rs := rules.NewMemStore()
	r, _ := rules.Parse([]byte(`{"actions": [{"op": "set-attribute", "args": {"path": "/provision_state", "value": "active"}}]}`))
	if _, err := rs.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	put(t, st, []*store.Node{{UUID: "00000000-0000-0000-0000-000000000001", Driver: "fake-hardware", ProvisionState: "inspect wait"}}, nil)
	p := New(Config{Store: st, Rules: rs})
	err := st.Update(ctx, func(tx store.Tx) error {
		n, err := tx.Node("00000000-0000-0000-0000-000000000001")
		if err != nil {
			return err
		}
		return p.Apply(ctx, tx, n, body(t, ""))
	})
	if !errors.Is(err, ErrProtectedField) {
		t.Errorf("Apply() with a rule setting provision_state = %v, want ErrProtectedField", err)
	}
}

func TestRuleStore(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	s := NewRuleStore(st)
	if got, err := s.List(ctx); err != nil || len(got) != 0 {
		t.Fatalf("List() on empty = %v, %v", got, err)
	}
	mk := func(desc string) rules.Rule {
		r, err := rules.Parse([]byte(`{"description": "` + desc + `", "actions": [{"op": "add-trait", "args": {"name": "CUSTOM_X"}}]}`))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, err := s.Create(ctx, mk("a"))
	if err != nil || a.UUID == "" || a.CreatedAt.IsZero() {
		t.Fatalf("Create() = %+v, %v", a, err)
	}
	b := mk("b")
	b.UUID = "8E4F3A57-0000-4000-8000-000000000001"
	if b, err = s.Create(ctx, b); err != nil || b.UUID != "8e4f3a57-0000-4000-8000-000000000001" {
		t.Fatalf("Create(with uuid) = %+v, %v", b, err)
	}
	if _, err := s.Create(ctx, b); !errors.Is(err, rules.ErrExists) {
		t.Errorf("Create(duplicate) = %v, want ErrExists", err)
	}
	bad := mk("bad")
	bad.Actions = nil
	if _, err := s.Create(ctx, bad); !errors.Is(err, rules.ErrInvalidRule) {
		t.Errorf("Create(invalid) = %v, want ErrInvalidRule", err)
	}
	a.Priority = 50
	if u, err := s.Update(ctx, a); err != nil || u.UpdatedAt == nil || !u.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("Update() = %+v, %v", u, err)
	}
	got, err := s.Get(ctx, a.UUID)
	if err != nil || got.Priority != 50 || got.Description != "a" {
		t.Errorf("Get() = %+v, %v", got, err)
	}
	list, _ := s.List(ctx)
	if len(list) != 2 || list[0].UUID != a.UUID || list[1].UUID != b.UUID {
		t.Errorf("List() = %+v, want a then b", list)
	}
	if err := s.Delete(ctx, a.UUID); err != nil {
		t.Errorf("Delete() = %v", err)
	}
	if _, err := s.Get(ctx, a.UUID); !errors.Is(err, rules.ErrNotFound) {
		t.Errorf("Get(deleted) = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, a.UUID); !errors.Is(err, rules.ErrNotFound) {
		t.Errorf("Delete(deleted) = %v, want ErrNotFound", err)
	}
	if _, err := s.Update(ctx, a); !errors.Is(err, rules.ErrNotFound) {
		t.Errorf("Update(deleted) = %v, want ErrNotFound", err)
	}
	if err := s.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(ctx); len(list) != 0 {
		t.Errorf("List() after DeleteAll = %v", list)
	}
}
