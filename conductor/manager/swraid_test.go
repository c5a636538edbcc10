package manager

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

func TestSoftwareRAID(t *testing.T) {
	st, err := store.OpenBolt(t.TempDir() + "/ferric.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := New(Config{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Hostname: "c1", Drivers: fakeDrivers("raid", "bmcraid", &fakeController{})})
	ctx := context.Background()
	const id = "66666666-6666-4666-8666-666666666666"
	put := func(target map[string]any) *store.Node {
		t.Helper()
		var n *store.Node
		if err := st.Update(ctx, func(tx store.Tx) error {
			var err error
			if n, err = tx.Node(id); err != nil {
				n = fakeNode(id)
			}
			n.Interfaces["raid"] = "agent"
			n.TargetRAIDConfig = target
			return tx.PutNode(n)
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var cfg = func(s string) map[string]any {
		var c map[string]any
		if err := json.Unmarshal([]byte(s), &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	mirror := `{"logical_disks":[{"raid_level":"1","size_gb":10,"controller":"software","is_root_volume":true}]}`
	n := put(nil)
	for _, tc := range []struct{ name, cfg, want string }{
		{"mirror", mirror, ""},
		{"RAID-0 first", `{"logical_disks":[{"raid_level":"0","size_gb":"MAX","controller":"software"}]}`,
			"Could not validate Software RAID config for " + id + ": Software RAID Configuration requires RAID-1 for the first logical disk"},
		{"RAID-5 second", `{"logical_disks":[{"raid_level":"1","size_gb":10,"controller":"software"},{"raid_level":"5","size_gb":"MAX","controller":"software"}]}`,
			"Could not validate Software RAID config for " + id + ": Software RAID configuration does not support RAID level 5"},
		{"hardware RAID through the agent is the agent's business", `{"logical_disks":[{"raid_level":"5","size_gb":10}]}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := m.CheckRAIDConfig(n, cfg(tc.cfg))
			if got := errText(err); got != tc.want {
				t.Errorf("CheckRAIDConfig = %q, want %q", got, tc.want)
			}
		})
	}

	create := []map[string]any{{"interface": "raid", "step": "create_configuration"}}
	if err := m.checkRAIDSteps(ctx, n, "clean", create); errText(err) != "Node "+id+" has no target RAID configuration." {
		t.Errorf("create_configuration without a target = %v", err)
	}
	n = put(cfg(mirror))
	if err := m.checkRAIDSteps(ctx, n, "clean", create); err != nil {
		t.Errorf("create_configuration with a target = %v", err)
	}
	// Inspection found one disk: a mirror is refused before cleaning.
	if err := st.Update(ctx, func(tx store.Tx) error {
		n, err := tx.Node(id)
		if err != nil {
			return err
		}
		n.Inventory = json.RawMessage(`{"disks":[{"name":"/dev/vda","size":10737418240}]}`)
		return tx.PutNode(n)
	}); err != nil {
		t.Fatal(err)
	}
	n, _ = st.Node(id)
	if err := m.checkRAIDSteps(ctx, n, "clean", create); errText(err) != "Could not validate Software RAID config for "+id+": Software RAID level 1 needs at least 2 disks, the machine has 1" {
		t.Errorf("create_configuration of a mirror on one disk = %v", err)
	}
	apply := []map[string]any{{"interface": "raid", "step": "apply_configuration", "args": map[string]any{"raid_config": cfg(`{"logical_disks":[{"raid_level":"0","size_gb":"MAX","controller":"software"}]}`)}}}
	if err := m.checkRAIDSteps(ctx, n, "deploy", apply); err == nil {
		t.Errorf("apply_configuration with a RAID-0 first volume was accepted")
	}
	if !m.softwareRAIDTarget(n) {
		t.Errorf("softwareRAIDTarget = false for %v", n.TargetRAIDConfig)
	}
	if got := agentNode(n)["target_raid_config"]; got == nil {
		t.Errorf("the node sent to the agent has no target_raid_config")
	}

	// The agent's result becomes raid_config; delete_configuration empties it.
	b, _ := json.Marshal(protocol.ExecuteStepResult{Kind: protocol.KindClean, Step: protocol.Step{Step: "create_configuration", Interface: "raid"},
		Result: json.RawMessage(mirror)})
	if err := m.afterAgentRAIDStep(ctx, id, create[0], &protocol.CommandResult{CommandResult: b}); err != nil {
		t.Fatal(err)
	}
	got, _ := st.Node(id)
	if lds, _ := got.RAIDConfig["logical_disks"].([]any); len(lds) != 1 || got.RAIDConfig["last_updated"] == nil || got.Properties["local_gb"] == nil {
		t.Errorf("after create_configuration: raid_config %v, local_gb %v", got.RAIDConfig, got.Properties["local_gb"])
	}
	if err := m.afterAgentRAIDStep(ctx, id, create[0], &protocol.CommandResult{}); err == nil {
		t.Errorf("a create_configuration without a result was accepted")
	}
	if err := m.afterAgentRAIDStep(ctx, id, map[string]any{"interface": "raid", "step": "delete_configuration"}, &protocol.CommandResult{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Node(id); len(got.RAIDConfig) != 0 {
		t.Errorf("raid_config after delete_configuration = %v, want empty", got.RAIDConfig)
	}
}
