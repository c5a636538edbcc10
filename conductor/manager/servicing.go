package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
)

// Servicing (API 1.87) runs service steps on an active node, which then
// returns to active, as Ironic's servicing does. The steps offered need no
// ramdisk, as Ironic's redfish interfaces mark them:
//
//   - bios.apply_configuration and bios.factory_reset: the change goes to
//     the BMC, the machine reboots into its instance, and the conductor
//     reads the BMC until the settings show the change (the node is in
//     service wait meanwhile, unlocked, so that it can be aborted);
//   - firmware.update (firmware_interface redfish) and
//     management.update_firmware (management_interface redfish): each image
//     is flashed by the BMC (SimpleUpdate; see firmware.go), the machine
//     reboots into its instance after one that takes effect at the next
//     start, and the firmware versions are read again.

// serviceStepsKey keeps the requested steps in driver_internal_info.
const serviceStepsKey = "service_steps"

// servicePoll is how often the BMC is read while a change is applied.
var servicePoll = 2 * time.Second

// checkServiceSteps refuses the steps the node does not offer, as Ironic
// refuses them, and a bad apply_configuration argument before anything
// starts.
func (m *Manager) checkServiceSteps(n *store.Node, steps []map[string]any) error {
	var errs []string
	for _, st := range steps {
		if isRAIDStep(st) && st["step"] != "create_configuration" && m.raidController(n) != nil {
			continue
		}
		if isFirmwareUpdate(st) && m.firmwareStepOffered(n, st) {
			if _, err := firmwareImages(st); err != nil {
				return userErr(ErrInvalidInput, "%s", err.Error())
			}
			continue
		}
		if isBIOSStep(st) && m.biosSteps(n) {
			if step, _ := st["step"].(string); step == "apply_configuration" {
				args, _ := st["args"].(map[string]any)
				if _, err := biosSettingsArg(args); err != nil {
					return userErr(ErrInvalidInput, "%s", err.Error())
				}
			}
			continue
		}
		b, _ := json.Marshal(st)
		errs = append(errs, "node does not support this service step: "+string(b))
	}
	if len(errs) > 0 {
		return userErr(ErrInvalidInput, "%s", strings.Join(errs, "; "))
	}
	return nil
}

// service runs the node's service steps in order, then returns it to
// active.
func (m *Manager) service(ctx context.Context, n *store.Node) error {
	uuid := n.UUID
	var steps []map[string]any
	if raw, err := json.Marshal(n.DriverInternalInfo[serviceStepsKey]); err == nil {
		_ = json.Unmarshal(raw, &steps)
	}
	enter := func(n *store.Node, st map[string]any) { n.ServiceStep = st }
	for _, st := range steps {
		done, err := m.conductorStep(ctx, uuid, st, sm.ServiceWait, enter)
		if err != nil {
			//lint:ignore ST1005 Ironic's last_error text
			return fmt.Errorf("Node %s failed step %s: %w", uuid, stepName(st), err)
		}
		if !done { // aborted while waiting
			return nil
		}
	}
	// The caches are refreshed before the node leaves servicing (as
	// Ironic refreshes them inside the task): a client that sees the node
	// active reads the new settings and versions.
	m.cacheBIOS(ctx, uuid)
	m.cacheFirmware(ctx, uuid)
	return m.fire(ctx, uuid, sm.EventDone, func(n *store.Node) {
		n.ServiceStep = nil
		delete(n.DriverInternalInfo, serviceStepsKey)
		n.Reservation = nil
	})
}

// conductorStep runs one step the conductor does through the BMC, without
// a ramdisk (a service step, or a clean step of a manual cleaning with
// disable_ramdisk): enter records it on the node, waitState is the state
// the node waits in, unlocked, while a change applies. done is false when
// the node left waitState meanwhile (aborted).
func (m *Manager) conductorStep(ctx context.Context, uuid string, st map[string]any, waitState sm.State, enter func(*store.Node, map[string]any)) (done bool, err error) {
	if err := m.update(ctx, uuid, func(n *store.Node) error { enter(n, st); return nil }); err != nil {
		return false, err
	}
	m.log.Info("manager: step without ramdisk", "node", uuid, "interface", st["interface"], "step", st["step"], "state", waitState)
	switch {
	case isRAIDStep(st):
		_, err = m.raidStep(ctx, uuid, st)
		return true, err
	case isFirmwareUpdate(st):
		return true, m.serviceFirmwareUpdate(ctx, uuid, st)
	default:
		return m.bmcBIOSStep(ctx, uuid, st, waitState)
	}
}

// bmcBIOSStep asks for the change, reboots the machine (into its instance,
// or whatever it boots: no ramdisk is prepared) and waits, in waitState
// (service wait or clean wait), for the BMC to show the change. done is
// false when the node left waitState meanwhile (aborted).
func (m *Manager) bmcBIOSStep(ctx context.Context, uuid string, st map[string]any, waitState sm.State) (done bool, err error) {
	n, b, err := m.nodeBIOS(uuid)
	if err != nil {
		return false, err
	}
	if b == nil { // fake: Ironic's fake bios steps do nothing
		return true, nil
	}
	requested, changed, err := m.biosRequest(ctx, n, b, st)
	if err != nil || !changed {
		return err == nil, err
	}
	pw, err := m.power(n)
	if err != nil {
		return false, err
	}
	if err := pw.SetPowerState(ctx, driverNode(n), driver.TargetReboot, m.cfg.PowerTimeout); err != nil {
		return false, err
	}
	if err := m.fire(ctx, uuid, sm.EventWait, func(n *store.Node) { n.Reservation = nil }); err != nil {
		return false, err
	}
	step, _ := st["step"].(string)
	deadline := time.Now().Add(m.cfg.CleanWaitTimeout)
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(servicePoll):
		}
		n, err := m.st.Node(uuid)
		if err != nil {
			return false, err
		}
		if sm.State(n.ProvisionState) != waitState {
			m.log.Warn("manager: node left its wait state while its BIOS change applied", "node", uuid, "wait", waitState, "state", n.ProvisionState)
			return false, nil
		}
		applied := biosApplied(ctx, b, driverNode(n), step, requested)
		if applied == nil || time.Now().After(deadline) {
			// Take the node back (under its lock) to go on or to fail.
			h := m.host
			if rerr := m.fire(ctx, uuid, sm.EventResume, func(n *store.Node) { n.Reservation = &h }); rerr != nil {
				return false, nil // aborted between the read and now
			}
			if applied != nil {
				return false, fmt.Errorf("timeout reached while waiting for the BIOS settings to apply: %w", applied)
			}
			return true, nil
		}
	}
}

// stepName is interface.step, as Ironic names steps in messages.
func stepName(st map[string]any) string { return fmt.Sprintf("%v.%v", st["interface"], st["step"]) }

// serviceFirmwareUpdate flashes each image in turn; a BIOS image takes
// effect when the machine restarts, so the machine reboots into its
// instance after one.
func (m *Manager) serviceFirmwareUpdate(ctx context.Context, uuid string, st map[string]any) error {
	_, err := m.flashFirmware(ctx, uuid, st, func(n *store.Node) error {
		pw, err := m.power(n)
		if err != nil {
			return err
		}
		return pw.SetPowerState(ctx, driverNode(n), driver.TargetReboot, m.cfg.PowerTimeout)
	})
	return err
}
