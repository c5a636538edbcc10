package manager

import (
	"errors"
	"maps"
	"slices"

	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
)

// Runbooks (API 1.92): a manual cleaning or a servicing may name a runbook
// instead of listing its steps. As in Ironic before runbook traits
// (1.112), a node may run a runbook when one of its traits is the
// runbook's name; the runbook's owner and public flag only decide who may
// see and use it, and ferric's users are all admins.

// runbookMinVersion is the API version that brought runbooks.
const runbookMinVersion = 92

// useRunbook replaces the request's clean or service steps with those of
// the runbook it names, after the checks Ironic makes.
func (m *Manager) useRunbook(n *store.Node, ev sm.Event, req *ProvisionRequest) error {
	if req.Runbook == nil || *req.Runbook == "" {
		return nil // as Ironic, an empty runbook is none
	}
	if req.Version < runbookMinVersion {
		return userErr(ErrNotAcceptable, "Request not acceptable.")
	}
	if ev != sm.EventClean && ev != sm.EventService {
		return userErr(ErrInvalidInput, "\"runbooks\" is only valid when setting target provision state to any of ['clean', 'service']")
	}
	rb, err := m.st.Runbook(*req.Runbook)
	if errors.Is(err, store.ErrNotFound) {
		return userErr(ErrNotFound, "Runbook %s could not be found.", *req.Runbook)
	}
	if err != nil {
		return err
	}
	if !slices.Contains(n.Traits, rb.Name) {
		return userErr(ErrInvalidInput, "This runbook has not been approved for use on this node %s. Please ask an administrator to add it to your node traits.", n.UUID)
	}
	steps := runbookSteps(rb)
	if ev == sm.EventClean {
		if len(req.CleanSteps) > 0 {
			return userErr(ErrInvalidInput, "Please provide either \"clean_steps\" or a runbook, but not both.")
		}
		req.CleanSteps = steps
	} else {
		if len(req.ServiceSteps) > 0 {
			return userErr(ErrInvalidInput, "Please provide either \"service_steps\" or a runbook, but not both.")
		}
		req.ServiceSteps = steps
	}
	disable := rb.DisableRamdisk
	req.DisableRamdisk = &disable
	return nil
}

// runbookSteps returns a runbook's steps as a cleaning or a servicing runs
// them (copies: interface, step, args and order), in the runbook's order.
func runbookSteps(rb *store.Runbook) []map[string]any {
	out := make([]map[string]any, len(rb.Steps))
	for i, st := range rb.Steps {
		c := map[string]any{"interface": st["interface"], "step": st["step"], "args": st["args"], "order": st["order"]}
		if a, ok := st["args"].(map[string]any); ok {
			c["args"] = maps.Clone(a)
		} else {
			c["args"] = map[string]any{}
		}
		out[i] = c
	}
	return out
}
