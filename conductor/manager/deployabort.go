package manager

import (
	"context"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/store"
)

// abortDeployWait ends a deployment aborted in wait call-back (API 1.110,
// sm.VersionDeployWaitAbort), as Ironic's do_node_deploy_abort: the node
// is already deploy failed; the agent's URL and token are dropped so that
// its heartbeats no longer drive the node, the deploy step and the
// deploy's internal records are cleared, and last_error says which step
// was running. The ramdisk boot is cleaned up when the task ends (spawn
// ejects the media). The power is left as it is (no cleaning either), so
// that the operator can look at the machine or deploy again; a node with
// disable_power_off is rebooted instead, as Ironic's clean_up does, so that
// it no longer runs the ramdisk. ferric's deploy steps are all abortable.
func (m *Manager) abortDeployWait(ctx context.Context, uuid string) error {
	n, err := m.st.Node(uuid)
	if err != nil {
		return err
	}
	msg := "By request, the deploy operation was aborted"
	if len(n.DeployStep) > 0 {
		msg += fmt.Sprintf(" during or after the completion of step \"%s\"", stepName(n.DeployStep))
	}
	if n.DisablePowerOff {
		pw, err := m.power(n)
		if err == nil {
			err = pw.SetPowerState(ctx, driverNode(n), driver.TargetReboot, m.cfg.PowerTimeout)
		}
		if err != nil {
			m.log.Warn("manager: rebooting after a deploy abort", "node", uuid, "err", err)
		}
	}
	err = m.update(ctx, uuid, func(n *store.Node) error {
		n.LastError = &msg
		n.DeployStep = store.Object{}
		for _, k := range []string{"agent_progress", "user_deploy_steps", "deploy_step_index"} {
			delete(n.DriverInternalInfo, k)
		}
		clearAgent(n)
		return nil
	})
	if err != nil {
		return err
	}
	m.log.Info("manager: deploy aborted", "node", uuid, "last_error", msg)
	return nil
}
