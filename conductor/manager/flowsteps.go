package manager

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
)

// Flow steps: step names the conductor resolves itself whatever interface
// a user step names, as Ironic's reserved step handlers: power_on,
// power_off and reboot act on the power (after power_on and reboot the
// next step waits for the ramdisk's new agent), hold parks the node in
// clean hold until the unhold action, wait pauses for args.seconds (at
// most maxWaitStep) or, without seconds, until the agent's next heartbeat.

// maxWaitStep bounds a wait step's pause (Ironic's
// [conductor]max_conductor_wait_step_seconds).
const maxWaitStep = 30 * time.Second

// flowStep runs st if it is a flow step (handled). wait reports that the
// node now waits (hold, or wait without seconds): cleaning resumes after
// step i at the agent's next heartbeat in clean wait.
func (m *Manager) flowStep(ctx context.Context, uuid string, st map[string]any, i int) (wait, handled bool, err error) {
	name, _ := st["step"].(string)
	switch name {
	case "power_on", "power_off", "reboot":
		n, err := m.st.Node(uuid)
		if err != nil {
			return false, true, err
		}
		if name == "power_off" {
			return false, true, m.powerOff(ctx, n) // the ramdisk and its token go with the power
		}
		// The machine (re)boots the ramdisk: its agent looks up again and
		// is issued a new token (Ironic wipes it on reboot); cleaning
		// resumes with the next step at that agent's heartbeat.
		pw, err := m.power(n)
		if err != nil {
			return false, true, err
		}
		if err := m.update(ctx, uuid, func(n *store.Node) error { clearAgent(n); return nil }); err != nil {
			return false, true, err
		}
		target := driver.TargetPowerOn
		if name == "reboot" {
			target = driver.TargetReboot
		}
		if err := pw.SetPowerState(ctx, driverNode(n), target, m.cfg.PowerTimeout); err != nil {
			return false, true, err
		}
		return true, true, m.fire(ctx, uuid, sm.EventWait, func(n *store.Node) {
			on := driver.PowerOn
			n.PowerState = &on
			n.DriverInternalInfo["clean_step_index"] = i + 1
			n.Reservation = nil
		})
	case "hold", "wait":
		args, _ := st["args"].(map[string]any)
		if name == "wait" {
			if raw, ok := args["seconds"]; ok {
				secs, err := strconv.Atoi(fmt.Sprint(raw))
				if err != nil || secs < 0 {
					return false, true, fmt.Errorf("wait: seconds must be a non-negative integer, not %v", raw)
				}
				d := min(time.Duration(secs)*time.Second, maxWaitStep)
				m.log.Info("manager: wait step", "node", uuid, "seconds", d.Seconds())
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return false, true, ctx.Err()
				}
				return false, true, nil
			}
		}
		ev := sm.EventWait
		if name == "hold" {
			ev = sm.EventHold
		}
		return true, true, m.fire(ctx, uuid, ev, func(n *store.Node) {
			n.DriverInternalInfo["clean_step_index"] = i + 1
			n.Reservation = nil
		})
	}
	return false, false, nil
}
