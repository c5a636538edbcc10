package manager

import (
	"errors"
	"fmt"
	"testing"

	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
)

func TestUseRunbook(t *testing.T) {
	m, st, ctx := newTestManager(t)
	rb := &store.Runbook{UUID: "99999999-0000-0000-0000-000000000001", Name: "CUSTOM_RB", DisableRamdisk: true,
		Steps: []map[string]any{{"interface": "deploy", "step": "erase_devices_metadata", "order": float64(3)},
			{"interface": "power", "step": "wait", "args": map[string]any{"seconds": float64(1)}, "order": float64(4)}}}
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutRunbook(rb) }); err != nil {
		t.Fatal(err)
	}
	node := &store.Node{UUID: "n1", Traits: []string{"CUSTOM_OTHER", "CUSTOM_RB"}}
	str := func(s string) *string { return &s }
	tests := []struct {
		name    string
		ev      sm.Event
		req     ProvisionRequest
		wantErr error
		clean   string
		service string
	}{
		{"none", sm.EventClean, ProvisionRequest{Version: 92}, nil, "[]", "[]"},
		{"empty is none", sm.EventClean, ProvisionRequest{Version: 92, Runbook: str("")}, nil, "[]", "[]"},
		{"clean by name", sm.EventClean, ProvisionRequest{Version: 92, Runbook: str("CUSTOM_RB")}, nil,
			"[map[args:map[] interface:deploy order:3 step:erase_devices_metadata] map[args:map[seconds:1] interface:power order:4 step:wait]]", "[]"},
		{"service by uuid", sm.EventService, ProvisionRequest{Version: 96, Runbook: str(rb.UUID)}, nil, "[]",
			"[map[args:map[] interface:deploy order:3 step:erase_devices_metadata] map[args:map[seconds:1] interface:power order:4 step:wait]]"},
		{"below 1.92", sm.EventClean, ProvisionRequest{Version: 91, Runbook: str("CUSTOM_RB")}, ErrNotAcceptable, "[]", "[]"},
		{"deploy", sm.EventDeploy, ProvisionRequest{Version: 92, Runbook: str("CUSTOM_RB")}, ErrInvalidInput, "[]", "[]"},
		{"missing", sm.EventClean, ProvisionRequest{Version: 92, Runbook: str("CUSTOM_NONE")}, ErrNotFound, "[]", "[]"},
		{"with clean steps", sm.EventClean, ProvisionRequest{Version: 92, Runbook: str("CUSTOM_RB"),
			CleanSteps: []map[string]any{{"interface": "deploy", "step": "x"}}}, ErrInvalidInput, "[map[interface:deploy step:x]]", "[]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			err := m.useRunbook(node, tc.ev, &req)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("useRunbook() = %v, want %v", err, tc.wantErr)
			}
			if got := fmt.Sprint(req.CleanSteps); got != tc.clean {
				t.Errorf("clean steps = %s, want %s", got, tc.clean)
			}
			if got := fmt.Sprint(req.ServiceSteps); got != tc.service {
				t.Errorf("service steps = %s, want %s", got, tc.service)
			}
			if tc.wantErr == nil && req.Runbook != nil && *req.Runbook != "" && (req.DisableRamdisk == nil || !*req.DisableRamdisk) {
				t.Errorf("disable_ramdisk = %v, want the runbook's (true)", req.DisableRamdisk)
			}
		})
	}
	// Without the trait, nothing is taken.
	req := ProvisionRequest{Version: 92, Runbook: str("CUSTOM_RB")}
	if err := m.useRunbook(&store.Node{UUID: "n2", Traits: []string{"CUSTOM_OTHER"}}, sm.EventClean, &req); !errors.Is(err, ErrInvalidInput) || req.CleanSteps != nil {
		t.Errorf("node without the trait: %v, steps %v", err, req.CleanSteps)
	}
	// The runbook in the store is not changed by what a request does with
	// its steps.
	req = ProvisionRequest{Version: 92, Runbook: str("CUSTOM_RB")}
	if err := m.useRunbook(node, sm.EventClean, &req); err != nil {
		t.Fatal(err)
	}
	req.CleanSteps[1]["args"].(map[string]any)["seconds"] = 99.0
	if got, _ := st.Runbook("CUSTOM_RB"); got.Steps[1]["args"].(map[string]any)["seconds"] != float64(1) {
		t.Errorf("stored runbook changed: %v", got.Steps)
	}
}
