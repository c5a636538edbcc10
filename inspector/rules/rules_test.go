package rules

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fixture loads ../testdata/dell.json into a Context.
func fixture(t testing.TB) Context {
	t.Helper()
	b, err := os.ReadFile("../testdata/dell.json")
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]any
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	inv := top["inventory"].(map[string]any)
	delete(top, "inventory")
	return Context{
		Node: map[string]any{
			"uuid":        "1be26c0b-03f2-4d2e-ae87-c02d7f33c123",
			"driver":      "ipmi",
			"properties":  map[string]any{"capabilities": "boot_mode:bios"},
			"driver_info": map[string]any{"ipmi_username": "root"},
			"extra":       map[string]any{},
		},
		Inventory:  inv,
		PluginData: top,
		Traits:     []string{"CUSTOM_OLD"},
	}
}

func mustParse(t *testing.T, js string) Rule {
	t.Helper()
	r, err := Parse([]byte(js))
	if err != nil {
		t.Fatalf("Parse(%s) error = %v", js, err)
	}
	return r
}

func TestConditions(t *testing.T) {
	tests := []struct {
		name string
		cond string
		want bool
		err  error
	}{
		{"eq number ref", `{"op": "eq", "args": {"values": ["{inventory[cpu][count]}", 80]}}`, true, nil},
		{"eq string ref", `{"op": "eq", "args": {"values": ["{inventory[cpu][count]}", "80"]}}`, true, nil},
		{"eq in text", `{"op": "eq", "args": {"values": ["cpus={inventory[cpu][count]}", "cpus=80"]}}`, true, nil},
		{"not eq", `{"op": "!eq", "args": {"values": ["{inventory[system_vendor][manufacturer]}", "Dell Inc."]}}`, false, nil},
		{"ne", `{"op": "ne", "args": {"values": ["{inventory[system_vendor][manufacturer]}", "HPE"]}}`, true, nil},
		{"gt", `{"op": "gt", "args": {"values": ["{inventory[memory][physical_mb]}", 65536]}}`, true, nil},
		{"lt chain", `{"op": "lt", "args": {"values": [1, "{inventory[cpu][count]}", 100]}}`, true, nil},
		{"le", `{"op": "le", "args": {"values": [80, "{inventory[cpu][count]}"]}}`, true, nil},
		{"ge false", `{"op": "ge", "args": {"values": [79, "{inventory[cpu][count]}"]}}`, false, nil},
		{"lt mixed types", `{"op": "lt", "args": {"values": ["abc", 3]}}`, false, ErrEvaluation},
		{"string order", `{"op": "lt", "args": {"values": ["abc", "abd"]}}`, true, nil},
		{"matches", `{"op": "matches", "args": {"value": "{inventory[system_vendor][product_name]}", "regex": "PowerEdge R6.0"}}`, true, nil},
		{"matches anchored", `{"op": "matches", "args": {"value": "{inventory[system_vendor][product_name]}", "regex": "R640"}}`, false, nil},
		{"contains", `{"op": "contains", "args": {"value": "{inventory[system_vendor][product_name]}", "regex": "R64"}}`, true, nil},
		{"in-net", `{"op": "in-net", "args": {"address": "{inventory[bmc_address]}", "subnet": "10.10.0.0/24"}}`, true, nil},
		{"in-net no", `{"op": "in-net", "args": {"address": "{inventory[bmc_address]}", "subnet": "10.11.0.0/16"}}`, false, nil},
		{"in-net bad subnet", `{"op": "in-net", "args": {"address": "10.0.0.1", "subnet": "nope"}}`, false, ErrEvaluation},
		{"is-empty missing", `{"op": "is-empty", "args": {"value": "{inventory[nothing]}"}}`, true, nil},
		{"is-empty null", `{"op": "is-empty", "args": {"value": "{plugin_data[error]}"}}`, true, nil},
		{"is-empty list", `{"op": "is-empty", "args": {"value": "{inventory[disks]}"}}`, false, nil},
		{"is-none", `{"op": "is-none", "args": {"value": "{plugin_data[error]}"}}`, true, nil},
		{"is-true", `{"op": "is-true", "args": {"value": "{inventory[interfaces][0][has_carrier]}"}}`, true, nil},
		{"is-false", `{"op": "is-false", "args": {"value": "{inventory[interfaces][1][has_carrier]}"}}`, true, nil},
		{"one-of", `{"op": "one-of", "args": {"value": "{node.driver}", "values": ["redfish", "ipmi"]}}`, true, nil},
		{"node field", `{"op": "eq", "args": {"values": ["{node[driver_info][ipmi_username]}", "root"]}}`, true, nil},
		{"loop any", `{"op": "eq", "args": {"values": ["{item[vendor]}", "SEAGATE"]}, "loop": "{inventory[disks]}", "multiple": "any"}`, true, nil},
		{"loop literal all", `{"op": "gt", "args": {"values": ["{item}", 0]}, "loop": [1, 2, 3], "multiple": "all"}`, true, nil},
		{"loop literal all fails", `{"op": "gt", "args": {"values": ["{item}", 1]}, "loop": [1, 2, 3], "multiple": "all"}`, false, nil},
		{"loop first", `{"op": "eq", "args": {"values": ["{item}", "a"]}, "loop": ["a", "b"], "multiple": "first"}`, true, nil},
		{"loop last", `{"op": "eq", "args": {"values": ["{item}", "a"]}, "loop": ["a", "b"], "multiple": "last"}`, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := fixture(t)
			js := `{"conditions": [` + tt.cond + `], "actions": [{"op": "add-trait", "args": {"name": "CUSTOM_HIT"}}]}`
			r := mustParse(t, js)
			ch, err := Apply([]Rule{r}, ctx)
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("Apply() error = %v, want %v", err, tt.err)
			}
			got := len(ch.AddTraits) == 1
			if got != tt.want {
				t.Errorf("condition %s held = %t, want %t", tt.cond, got, tt.want)
			}
		})
	}
}

func TestActions(t *testing.T) {
	tests := []struct {
		name    string
		actions string
		patch   []PatchOp
		add     []string
		remove  []string
		plugin  map[string]any
		logs    []LogEntry
		err     error
	}{
		{
			name:    "set-attribute existing parent",
			actions: `[{"op": "set-attribute", "args": {"path": "driver_info/ipmi_address", "value": "{inventory[bmc_address]}"}}]`,
			patch:   []PatchOp{{Op: "add", Path: "/driver_info/ipmi_address", Value: "10.10.0.21"}},
		},
		{
			name:    "set-attribute new subtree keeps type",
			actions: `[{"op": "set-attribute", "args": {"path": "/extra/hw/cpus", "value": "{inventory[cpu][count]}"}}]`,
			patch:   []PatchOp{{Op: "add", Path: "/extra/hw", Value: map[string]any{"cpus": float64(80)}}},
		},
		{
			name:    "set-attribute dotted top level",
			actions: `[{"op": "set-attribute", "args": {"path": "resource_class", "value": "baremetal-{inventory[cpu][architecture]}"}}]`,
			patch:   []PatchOp{{Op: "add", Path: "/resource_class", Value: "baremetal-x86_64"}},
		},
		{
			name:    "extend-attribute unique",
			actions: `[{"op": "extend-attribute", "args": {"path": "extra/tags", "value": "dell"}}, {"op": "extend-attribute", "args": {"path": "extra/tags", "value": "dell", "unique": true}}]`,
			patch: []PatchOp{
				{Op: "add", Path: "/extra/tags", Value: []any{"dell"}},
				{Op: "add", Path: "/extra/tags", Value: []any{"dell"}},
			},
		},
		{
			name:    "extend non-list",
			actions: `[{"op": "extend-attribute", "args": {"path": "driver", "value": "x"}}]`,
			err:     ErrEvaluation,
		},
		{
			name:    "del-attribute",
			actions: `[{"op": "del-attribute", "args": {"path": "driver_info/ipmi_username"}}]`,
			patch:   []PatchOp{{Op: "remove", Path: "/driver_info/ipmi_username"}},
		},
		{
			name:    "del-attribute missing",
			actions: `[{"op": "del-attribute", "args": {"path": "driver_info/nothing"}}]`,
			err:     ErrEvaluation,
		},
		{
			name:    "capabilities",
			actions: `[{"op": "set-capability", "args": {"name": "boot_mode", "value": "{inventory[boot][current_boot_mode]}"}}, {"op": "set-capability", "args": {"name": "cpu_vt", "value": "true"}}, {"op": "unset-capability", "args": {"name": "cpu_vt"}}]`,
			patch: []PatchOp{
				{Op: "add", Path: "/properties/capabilities", Value: "boot_mode:uefi"},
				{Op: "add", Path: "/properties/capabilities", Value: "boot_mode:uefi,cpu_vt:true"},
				{Op: "add", Path: "/properties/capabilities", Value: "boot_mode:uefi"},
			},
		},
		{
			name:    "traits",
			actions: `[{"op": "add-trait", "args": {"name": "CUSTOM_DELL"}}, {"op": "add-trait", "args": {"name": "CUSTOM_DELL"}}, {"op": "remove-trait", "args": {"name": "CUSTOM_OLD"}}]`,
			add:     []string{"CUSTOM_DELL"},
			remove:  []string{"CUSTOM_OLD"},
		},
		{
			name:    "plugin data",
			actions: `[{"op": "set-plugin-data", "args": {"path": "site/rack", "value": "r12"}}, {"op": "extend-plugin-data", "args": {"path": "seen", "value": "{inventory[hostname]}"}}, {"op": "unset-plugin-data", "args": {"path": "boot_interface"}}]`,
			plugin:  map[string]any{"site": map[string]any{"rack": "r12"}, "seen": []any{"localhost.localdomain"}},
		},
		{
			name:    "log",
			actions: `[{"op": "log", "args": {"msg": "found {inventory[system_vendor][product_name]}", "level": "WARNING"}}]`,
			logs:    []LogEntry{{Rule: "r", Level: "warning", Msg: "found PowerEdge R640"}},
		},
		{
			name:    "fail",
			actions: `[{"op": "set-attribute", "args": {"path": "extra/a", "value": 1}}, {"op": "fail", "args": {"msg": "unsupported vendor {inventory[system_vendor][manufacturer]}"}}]`,
			patch:   []PatchOp{{Op: "add", Path: "/extra/a", Value: float64(1)}},
			err:     ErrFailed,
		},
		{
			name:    "loop action",
			actions: `[{"op": "set-attribute", "args": {"path": "{item[path]}", "value": "{item[value]}"}, "loop": [{"path": "driver_info/ipmi_address", "value": "{inventory[bmc_address]}"}, {"path": "properties/vendor", "value": "dell"}]}]`,
			patch: []PatchOp{
				{Op: "add", Path: "/driver_info/ipmi_address", Value: "10.10.0.21"},
				{Op: "add", Path: "/properties/vendor", Value: "dell"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustParse(t, `{"uuid": "r", "actions": `+tt.actions+`}`)
			ch, err := Apply([]Rule{r}, fixture(t))
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("Apply() error = %v, want %v", err, tt.err)
			}
			if diff := cmp.Diff(tt.patch, ch.Patch); diff != "" {
				t.Errorf("Patch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.add, ch.AddTraits); diff != "" {
				t.Errorf("AddTraits (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.remove, ch.RemoveTraits); diff != "" {
				t.Errorf("RemoveTraits (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.logs, ch.Logs); diff != "" {
				t.Errorf("Logs (-want +got):\n%s", diff)
			}
			for k, v := range tt.plugin {
				if diff := cmp.Diff(v, ch.PluginData[k]); diff != "" {
					t.Errorf("PluginData[%s] (-want +got):\n%s", k, diff)
				}
			}
			if tt.plugin != nil {
				if _, ok := ch.PluginData["boot_interface"]; ok {
					t.Errorf("PluginData still has boot_interface")
				}
			}
		})
	}
}

func TestApplyOrderAndInputsUntouched(t *testing.T) {
	ctx := fixture(t)
	low := mustParse(t, `{"uuid": "low", "priority": 1, "actions": [{"op": "set-attribute", "args": {"path": "extra/who", "value": "low"}}]}`)
	high := mustParse(t, `{"uuid": "high", "priority": 50, "actions": [{"op": "set-attribute", "args": {"path": "extra/who", "value": "high"}}]}`)
	skip := mustParse(t, `{"uuid": "skip", "priority": 10, "conditions": [{"op": "eq", "args": {"values": [1, 2]}}], "actions": [{"op": "fail", "args": {"msg": "no"}}]}`)
	ch, err := Apply([]Rule{low, skip, high}, ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"high", "low"}, ch.Applied); diff != "" {
		t.Errorf("Applied (-want +got):\n%s", diff)
	}
	if last := ch.Patch[len(ch.Patch)-1]; last.Value != "low" {
		t.Errorf("last patch = %+v, want the low-priority rule last", last)
	}
	if _, ok := ctx.Node["extra"].(map[string]any)["who"]; ok {
		t.Errorf("Apply modified the caller's node")
	}
}

func TestLegacyRules(t *testing.T) {
	tests := []struct {
		name string
		rule string
		want []string
	}{
		{"eq field", `{"conditions": [{"op": "eq", "field": "data://inventory.cpu.count", "value": 80}], "actions": [{"action": "add-trait", "name": "CUSTOM_A"}]}`, []string{"CUSTOM_A"}},
		{"bare path", `{"conditions": [{"op": "ge", "field": "inventory.memory.physical_mb", "value": 1024}], "actions": [{"action": "add-trait", "name": "CUSTOM_A"}]}`, []string{"CUSTOM_A"}},
		{"inverted", `{"conditions": [{"op": "eq", "field": "data://inventory.cpu.count", "value": 80, "invert": true}], "actions": [{"action": "add-trait", "name": "CUSTOM_A"}]}`, nil},
		{"multiple any", `{"conditions": [{"op": "eq", "field": "data://inventory.disks[*].vendor", "value": "ATA"}], "actions": [{"action": "add-trait", "name": "CUSTOM_A"}]}`, []string{"CUSTOM_A"}},
		{"multiple all", `{"conditions": [{"op": "eq", "field": "data://inventory.disks[*].vendor", "value": "ATA", "multiple": "all"}], "actions": [{"action": "add-trait", "name": "CUSTOM_A"}]}`, nil},
		{"multiple first", `{"conditions": [{"op": "eq", "field": "data://inventory.disks[*].vendor", "value": "DELL", "multiple": "first"}], "actions": [{"action": "add-trait", "name": "CUSTOM_A"}]}`, []string{"CUSTOM_A"}},
		{"node field", `{"conditions": [{"op": "eq", "field": "node://driver", "value": "ipmi"}], "actions": [{"action": "add-trait", "name": "CUSTOM_A"}]}`, []string{"CUSTOM_A"}},
		{"is-empty", `{"conditions": [{"op": "is-empty", "field": "node://properties.root_device"}], "actions": [{"action": "add-trait", "name": "CUSTOM_A"}]}`, []string{"CUSTOM_A"}},
		{"in-net", `{"conditions": [{"op": "in-net", "field": "data://inventory.bmc_address", "value": "10.10.0.0/16"}], "actions": [{"action": "add-trait", "name": "CUSTOM_A"}]}`, []string{"CUSTOM_A"}},
		{"matches", `{"conditions": [{"op": "matches", "field": "data://inventory.interfaces[*].name", "value": "eno[0-9]", "multiple": "all"}], "actions": [{"action": "add-trait", "name": "CUSTOM_A"}]}`, []string{"CUSTOM_A"}},
		{"data format", `{"conditions": [], "actions": [{"action": "add-trait", "name": "CUSTOM_{data[inventory][cpu][architecture]}"}]}`, []string{"CUSTOM_x86_64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustParse(t, tt.rule)
			ch, err := Apply([]Rule{r}, fixture(t))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, ch.AddTraits); diff != "" {
				t.Errorf("AddTraits (-want +got):\n%s", diff)
			}
		})
	}
	r := mustParse(t, `{"actions": [{"action": "fail", "message": "stop"}]}`)
	if _, err := Apply([]Rule{r}, fixture(t)); !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "stop") {
		t.Errorf("legacy fail: Apply() error = %v, want ErrFailed with message", err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, body, msg string
	}{
		{"not object", `[]`, "not a JSON object"},
		{"unknown field", `{"actions": [{"op": "log", "args": {"msg": "x"}}], "bogus": 1}`, "bogus"},
		{"no actions", `{"conditions": []}`, "at least one action"},
		{"unknown op", `{"conditions": [{"op": "bigger", "args": {}}], "actions": [{"op": "log", "args": {"msg": "x"}}]}`, `unsupported operator "bigger"`},
		{"double invert", `{"conditions": [{"op": "!!eq", "args": {"values": []}}], "actions": [{"op": "log", "args": {"msg": "x"}}]}`, "only one leading !"},
		{"missing arg", `{"conditions": [{"op": "matches", "args": {"value": "x"}}], "actions": [{"op": "log", "args": {"msg": "x"}}]}`, "missing required argument(s): regex"},
		{"extra arg", `{"conditions": [{"op": "eq", "args": {"values": [], "field": 1}}], "actions": [{"op": "log", "args": {"msg": "x"}}]}`, "unexpected argument(s): field"},
		{"values not list", `{"conditions": [{"op": "eq", "args": {"values": 3}}], "actions": [{"op": "log", "args": {"msg": "x"}}]}`, "values must be a list"},
		{"bad regex", `{"conditions": [{"op": "matches", "args": {"value": "x", "regex": "("}}], "actions": [{"op": "log", "args": {"msg": "x"}}]}`, "invalid regular expression"},
		{"bad multiple", `{"conditions": [{"op": "eq", "args": {"values": []}, "multiple": "most"}], "actions": [{"op": "log", "args": {"msg": "x"}}]}`, "multiple must be"},
		{"unknown action", `{"actions": [{"op": "explode", "args": {}}]}`, `unsupported action "explode"`},
		{"action missing arg", `{"actions": [{"op": "set-attribute", "args": {"path": "extra/x"}}]}`, "missing required argument(s): value"},
		{"empty path", `{"actions": [{"op": "set-attribute", "args": {"path": "/", "value": 1}}]}`, "path must be a non-empty string"},
		{"bad level", `{"actions": [{"op": "log", "args": {"msg": "x", "level": "loud"}}]}`, "invalid log level"},
		{"priority", `{"priority": 10000, "actions": [{"op": "log", "args": {"msg": "x"}}]}`, "priority 10000"},
		{"phase", `{"phase": "early", "actions": [{"op": "log", "args": {"msg": "x"}}]}`, "invalid phase"},
		{"loop type", `{"actions": [{"op": "log", "args": {"msg": "x"}, "loop": 3}]}`, "loop must be"},
		{"legacy bad scheme", `{"conditions": [{"op": "eq", "field": "http://x", "value": 1}], "actions": [{"action": "fail", "message": "x"}]}`, "scheme must be"},
		{"legacy no action name", `{"conditions": [{"op": "eq", "field": "x", "value": 1}], "actions": [{"action": 3}]}`, "action must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.body))
			if !errors.Is(err, ErrInvalidRule) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Parse(%s) error = %v, want ErrInvalidRule mentioning %q", tt.body, err, tt.msg)
			}
		})
	}
}

func TestMemStore(t *testing.T) {
	ctx := context.Background()
	s := NewMemStore()
	var _ Store = s
	r := mustParse(t, `{"description": "a", "actions": [{"op": "log", "args": {"msg": "x"}}]}`)
	a, err := s.Create(ctx, r)
	if err != nil || a.UUID == "" || a.Phase != PhaseMain {
		t.Fatalf("Create() = %+v, %v", a, err)
	}
	r.UUID = "9f2ac8a5-7c1e-4bf1-9a43-2a9a2d7d4c11"
	if _, err := s.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, r); !errors.Is(err, ErrExists) {
		t.Errorf("Create(duplicate) error = %v, want ErrExists", err)
	}
	bad := r
	bad.UUID = "not-a-uuid"
	if _, err := s.Create(ctx, bad); !errors.Is(err, ErrInvalidRule) {
		t.Errorf("Create(bad uuid) error = %v, want ErrInvalidRule", err)
	}
	if _, err := s.Create(ctx, Rule{}); !errors.Is(err, ErrInvalidRule) {
		t.Errorf("Create(empty) error = %v, want ErrInvalidRule", err)
	}
	list, _ := s.List(ctx)
	if len(list) != 2 || list[0].UUID != a.UUID || list[1].UUID != r.UUID {
		t.Errorf("List() = %+v, want creation order", list)
	}
	if got, err := s.Get(ctx, r.UUID); err != nil || got.Description != "a" {
		t.Errorf("Get() = %+v, %v", got, err)
	}
	if err := s.Delete(ctx, a.UUID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, a.UUID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(deleted) error = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, a.UUID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete(deleted) error = %v, want ErrNotFound", err)
	}
	if err := s.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(ctx); len(list) != 0 {
		t.Errorf("List() after DeleteAll = %d rules", len(list))
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"conditions": [{"op": "eq", "args": {"values": ["{inventory[cpu][count]}", 4]}}], "actions": [{"op": "set-attribute", "args": {"path": "extra/x", "value": "{inventory[bmc_address]}"}}]}`))
	f.Add([]byte(`{"conditions": [{"op": "eq", "field": "data://inventory.disks[*].size", "value": 1, "multiple": "all"}], "actions": [{"action": "fail", "message": "x"}]}`))
	f.Add([]byte(`{"conditions": [{"op": "!matches", "args": {"value": "{item}", "regex": "a+"}, "loop": ["a", "b"]}], "actions": [{"op": "extend-plugin-data", "args": {"path": "a.b", "value": "{{x}}"}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidRule) {
				t.Fatalf("Parse error %v does not wrap ErrInvalidRule", err)
			}
			return
		}
		if err := Validate(r); err != nil {
			t.Fatalf("Parse returned a rule Validate rejects: %v", err)
		}
		_, err = Apply([]Rule{r}, fixture(t))
		if err != nil && !errors.Is(err, ErrEvaluation) && !errors.Is(err, ErrFailed) {
			t.Fatalf("Apply error %v wraps neither ErrEvaluation nor ErrFailed", err)
		}
	})
}
