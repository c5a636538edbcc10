package manager

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/ipa/protocol"
)

func steps(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCheckStepShapes(t *testing.T) {
	tests := []struct {
		kind, steps, wantErr string
	}{
		{"clean", `[{"interface": "deploy", "step": "erase_devices"}]`, ""},
		{"clean", `[{"interface": "raid", "step": "create_configuration", "args": {"x": 1}}]`, ""},
		{"clean", `[{"interface": "deploy"}]`, "Invalid clean_steps: 'step' is a required property"},
		{"clean", `[{"interface": "boot", "step": "x"}]`, "Invalid clean_steps: 'boot' is not one of ['vendor', 'power', 'management', 'firmware', 'deploy', 'bios', 'raid']"},
		{"clean", `[{"interface": "deploy", "step": ""}]`, "Invalid clean_steps: '' is too short"},
		{"clean", `[{"interface": "deploy", "step": 5}]`, "Invalid clean_steps: 5 is not of type 'string'"},
		{"clean", `[{"interface": "deploy", "step": "x", "args": []}]`, "Invalid clean_steps: [] is not of type 'object'"},
		{"clean", `[{"interface": "deploy", "step": "x", "priority": 1}]`, "Invalid clean_steps: Additional properties are not allowed ('priority' was unexpected)"},
		{"clean", `[{"interface": "deploy", "step": "x", "order": 2}]`, ""},
		{"service", `[{"interface": "bios", "step": "apply_configuration", "order": "1"}]`, ""},
		{"runbook", `[{"interface": "power", "step": "wait", "args": {"seconds": 1}, "order": 0}]`, ""},
		{"runbook", `[{"interface": "power", "step": "wait"}]`, "Invalid runbook_steps: 'order' is a required property"},
		{"runbook", `[{"interface": "power", "step": "wait", "order": -1}]`, "Invalid runbook_steps: -1 is not valid under any of the given schemas"},
		{"runbook", `[{"interface": "network", "step": "x", "order": 1}]`, "Invalid runbook_steps: 'network' is not one of ['vendor', 'power', 'management', 'firmware', 'deploy', 'bios', 'raid']"},
		{"runbook", `[{"interface": "deploy", "step": "x", "order": 1, "priority": 1}]`, "Invalid runbook_steps: Additional properties are not allowed ('priority' was unexpected)"},
		{"deploy", `[{"interface": "deploy", "step": "x", "args": {}, "priority": 1, "order": 1}]`, "Invalid deploy_steps: Additional properties are not allowed ('order' was unexpected)"},
		{"deploy", `[{"interface": "deploy", "step": "erase_devices_metadata", "args": {}, "priority": 90}]`, ""},
		{"deploy", `[{"interface": "deploy", "step": "erase_devices_metadata", "args": {}, "priority": "90"}]`, ""},
		{"deploy", `[{"interface": "deploy", "step": "x", "args": {}}]`, "Invalid deploy_steps: 'priority' is a required property"},
		{"deploy", `[{"interface": "deploy", "step": "x", "priority": 1}]`, "Invalid deploy_steps: 'args' is a required property"},
		{"deploy", `[{"interface": "deploy", "step": "x", "args": {}, "priority": -1}]`, "Invalid deploy_steps: -1 is not valid under any of the given schemas"},
		{"deploy", `[{"interface": "deploy", "step": "x", "args": {}, "priority": "ten"}]`, "Invalid deploy_steps: 'ten' is not valid under any of the given schemas"},
	}
	for _, tc := range tests {
		err := checkStepShapes(tc.kind, steps(t, tc.steps))
		if got := errText(err); got != tc.wantErr {
			t.Errorf("%s %s: error %q, want %q", tc.kind, tc.steps, got, tc.wantErr)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestCheckCoreDeploySteps(t *testing.T) {
	tests := []struct{ steps, wantErr string }{
		{`[{"interface": "deploy", "step": "erase_devices_metadata", "args": {}, "priority": 90}]`, ""},
		{`[{"interface": "deploy", "step": "write_image", "args": {}, "priority": 80}]`, ""},
		{`[{"interface": "deploy", "step": "deploy", "args": {}, "priority": 100}]`, "core step and cannot be overridden"},
		{`[{"interface": "deploy", "step": "write_image", "args": {}, "priority": 0}]`, "cannot be reordered or disabled"},
		{`[{"interface": "deploy", "step": "x", "args": {}, "priority": 1}, {"interface": "deploy", "step": "x", "args": {}, "priority": 2}]`, "Duplicate deploy steps for deploy.x"},
	}
	for _, tc := range tests {
		got := errText(checkCoreDeploySteps(steps(t, tc.steps)))
		if tc.wantErr == "" && got != "" || !strings.Contains(got, tc.wantErr) {
			t.Errorf("%s: error %q, want %q", tc.steps, got, tc.wantErr)
		}
	}
}

func TestAgentDeploySteps(t *testing.T) {
	offered := []protocol.Step{{Interface: "deploy", Step: "write_image"}, {Interface: "deploy", Step: "erase_devices_metadata"},
		{Interface: "raid", Step: "apply_configuration"}, {Interface: "management", Step: "clear_job_queue"}}
	user := steps(t, `[
		{"interface": "deploy", "step": "erase_devices_metadata", "args": {}, "priority": 10},
		{"interface": "raid", "step": "apply_configuration", "args": {}, "priority": 90},
		{"interface": "management", "step": "clear_job_queue", "args": {}, "priority": 90},
		{"interface": "deploy", "step": "write_image", "args": {}, "priority": 80}]`)
	before, after, err := agentDeploySteps(user, offered, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(ss []map[string]any) string {
		var out []string
		for _, s := range ss {
			out = append(out, stepID(s))
		}
		return strings.Join(out, ",")
	}
	// Equal priorities: management before raid, as Ironic orders interfaces.
	if ids(before) != "management.clear_job_queue,raid.apply_configuration" || ids(after) != "deploy.erase_devices_metadata" {
		t.Errorf("before %s, after %s", ids(before), ids(after))
	}
	// Priority 0 disables a step.
	before, after, err = agentDeploySteps(steps(t, `[{"interface": "deploy", "step": "erase_devices_metadata", "args": {}, "priority": 0}]`), offered, nil)
	if err != nil || len(before)+len(after) != 0 {
		t.Errorf("disabled step: %v %v %v", before, after, err)
	}
	_, _, err = agentDeploySteps(steps(t, `[{"interface": "bios", "step": "apply_configuration", "args": {}, "priority": 95}]`), offered, nil)
	if !strings.Contains(errText(err), "node does not support this deploy step") || !strings.Contains(errText(err), "apply_configuration") {
		t.Errorf("unknown step: %v", err)
	}
}
