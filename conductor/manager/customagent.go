package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// The custom-agent deploy, as Ironic's: the conductor boots the agent's
// ramdisk as for a direct deploy, but writes no image of its own. When the
// agent heartbeats, the conductor asks it for its deploy steps
// (deploy.get_deploy_steps) and runs those with a priority above 0, with
// the user's and the deploy templates' steps (which may reorder, disable
// or add the agent's steps), highest priority first; then the machine
// boots from its disk and the node is active.

// customAgentOwnSteps are the steps of the custom-agent deploy interface
// itself (Ironic's CustomAgentDeploy): the conductor's, not the agent's.
var customAgentOwnSteps = map[string]bool{"deploy.deploy": true, "deploy.tear_down_agent": true,
	"deploy.switch_to_tenant_network": true, "deploy.boot_instance": true, "deploy.prepare_instance_boot": true}

// customAgent reports whether the node's deploy interface is custom-agent.
func (m *Manager) customAgent(n *store.Node) bool {
	_, ok := capability[driver.CustomAgentDeploy](m, n, "deploy")
	return ok
}

// continueCustomAgent runs the agent's deploy steps and boots the node
// from its disk (the node is deploying, locked by this task).
func (m *Manager) continueCustomAgent(ctx context.Context, n *store.Node) error {
	uuid := n.UUID
	res, err := m.runAgent(ctx, uuid, "deploy.get_deploy_steps", map[string]any{"node": customAgentNode(n), "ports": []any{}})
	if err != nil {
		return fmt.Errorf("getting deploy steps from the agent of node %s: %w", uuid, err)
	}
	var gs protocol.GetStepsResult
	if err := json.Unmarshal(res.CommandResult, &gs); err != nil {
		return fmt.Errorf("deploy steps of node %s: %w", uuid, err)
	}
	var offered []protocol.Step
	for _, mgr := range slices.Sorted(maps.Keys(gs.Steps)) {
		offered = append(offered, gs.Steps[mgr]...)
	}
	plan, err := customAgentPlan(userDeploySteps(n), offered, func(st map[string]any) bool { return m.rebootingStep(n, st) != nil })
	if err != nil {
		//lint:ignore ST1005 Ironic's last_error text
		return fmt.Errorf("Validation of deploy steps failed for node %s: %w", uuid, err)
	}
	m.log.Info("manager: custom-agent deploy steps", "node", uuid, "steps", len(plan))
	for i := stepIndex(n, "deploy_step_index"); i < len(plan); i++ {
		st := plan[i]
		m.enterStep(ctx, uuid, false, i, st)
		if step := m.rebootingStep(n, st); step != nil {
			wait, err := step(ctx, uuid, st)
			if err != nil {
				//lint:ignore ST1005 Ironic's last_error text, word for word
				return fmt.Errorf("Deploy step %s failed on node %s: %w", stepID(st), uuid, err)
			}
			if wait {
				return nil // rebooting into the ramdisk; its agent's heartbeat resumes
			}
			continue
		}
		m.log.Info("manager: deploy step", "node", uuid, "step", stepID(st), "priority", st["priority"])
		params := map[string]any{"step": st, "node": customAgentNode(n), "ports": []any{}, "deploy_version": gs.HardwareManagerVersion}
		if _, err := m.runAgent(ctx, uuid, "deploy.execute_deploy_step", params); err != nil {
			//lint:ignore ST1005 Ironic's last_error text, word for word
			return fmt.Errorf("Deploy step %s failed on node %s: %w", stepID(st), uuid, err)
		}
	}
	return m.bootFromDisk(ctx, uuid, n)
}

// customAgentPlan is the order of a custom-agent deploy's in-band steps:
// the agent's steps with a priority above 0, overridden (priority, args)
// by the user's steps of the same interface and name, plus the user's
// other steps, which the agent must offer or the conductor run
// (conductorSide); priority 0 disables a step. Highest priority first,
// ties broken by interface as Ironic does.
func customAgentPlan(user []map[string]any, offered []protocol.Step, conductorSide func(map[string]any) bool) ([]map[string]any, error) {
	byID := map[string]map[string]any{}
	var order []string
	for _, s := range offered {
		id := s.Interface + "." + s.Step
		if customAgentOwnSteps[id] || byID[id] != nil {
			continue
		}
		args := map[string]any{}
		for k, v := range s.Args {
			args[k] = v
		}
		byID[id] = map[string]any{"interface": s.Interface, "step": s.Step, "priority": float64(s.Priority), "args": args}
		order = append(order, id)
	}
	var errs []string
	for _, st := range user {
		id := stepID(st)
		if customAgentOwnSteps[id] {
			continue
		}
		if byID[id] == nil {
			if conductorSide == nil || !conductorSide(st) {
				b, _ := json.Marshal(st)
				errs = append(errs, "node does not support this deploy step: "+string(b))
				continue
			}
			order = append(order, id)
		}
		byID[id] = maps.Clone(st)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	var run []map[string]any
	for _, id := range order {
		if p, _ := stepPriority(byID[id]["priority"]); p > 0 {
			run = append(run, byID[id])
		}
	}
	sortSteps(run)
	return run, nil
}

// customAgentNode is the node as a custom-agent deploy's steps get it: as
// Ironic sends it, with its instance_info (image_source, root_device, ...,
// which a custom hardware manager's steps read), without the config
// drive.
func customAgentNode(n *store.Node) map[string]any {
	node := agentNode(n)
	ii := map[string]any{}
	for k, v := range n.InstanceInfo {
		if k != "configdrive" {
			ii[k] = v
		}
	}
	node["instance_info"] = ii
	return node
}

// conductorSteps drops from a deploy's steps those that are the agent's
// own with the node's deploy interface: with custom-agent, write_image is
// the agent's step, run at the priority the user gives.
func (m *Manager) conductorSteps(n *store.Node, steps []map[string]any) []map[string]any {
	if !m.customAgent(n) {
		return steps
	}
	return slices.DeleteFunc(slices.Clone(steps), func(st map[string]any) bool { return stepID(st) == "deploy.write_image" })
}
