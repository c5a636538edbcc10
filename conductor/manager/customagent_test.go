package manager

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferric-metal/ferric/ipa/protocol"
)

// TestCustomAgentPlan checks the order of a custom-agent deploy's steps:
// the agent's enabled steps, overridden, disabled or joined by the user's,
// highest priority first, and Ironic's message for a step nobody offers.
func TestCustomAgentPlan(t *testing.T) {
	offered := []protocol.Step{
		{Interface: "deploy", Step: "write_image", Priority: 0},
		{Interface: "deploy", Step: "install_coreos", Priority: 80, Args: map[string]json.RawMessage{"x": json.RawMessage(`1`)}},
		{Interface: "deploy", Step: "erase_devices_metadata", Priority: 0},
		{Interface: "raid", Step: "apply_configuration", Priority: 0},
		{Interface: "deploy", Step: "deploy", Priority: 100}, // the conductor's core step, never the agent's
	}
	step := func(iface, name string, prio float64) map[string]any {
		return map[string]any{"interface": iface, "step": name, "priority": prio, "args": map[string]any{}}
	}
	ids := func(plan []map[string]any) []string {
		var out []string
		for _, st := range plan {
			out = append(out, stepID(st)+"@"+strings.TrimSpace(jsonString(st["priority"])))
		}
		return out
	}
	tests := []struct {
		name    string
		user    []map[string]any
		want    []string
		wantErr string
	}{
		{"agent's enabled steps only", nil, []string{"deploy.install_coreos@80"}, ""},
		{"user steps join and order", []map[string]any{step("deploy", "write_image", 70), step("deploy", "erase_devices_metadata", 90)},
			[]string{"deploy.erase_devices_metadata@90", "deploy.install_coreos@80", "deploy.write_image@70"}, ""},
		{"user disables the agent's step", []map[string]any{step("deploy", "install_coreos", 0)}, nil, ""},
		{"user reorders the agent's step", []map[string]any{step("deploy", "install_coreos", 95), step("raid", "apply_configuration", 95)},
			[]string{"deploy.install_coreos@95", "raid.apply_configuration@95"}, ""},
		{"core steps are the conductor's", []map[string]any{step("deploy", "deploy", 0), step("deploy", "boot_instance", 20)}, []string{"deploy.install_coreos@80"}, ""},
		{"unknown step", []map[string]any{step("deploy", "flash_everything", 50)}, nil, `node does not support this deploy step: {"args":{},"interface":"deploy","priority":50,"step":"flash_everything"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := customAgentPlan(tc.user, offered, nil)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("customAgentPlan() error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, ids(plan)); diff != "" {
				t.Errorf("customAgentPlan() (-want +got):\n%s", diff)
			}
		})
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
