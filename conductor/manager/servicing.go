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
//   - firmware.update (firmware_interface redfish): each image of
//     settings [{"component": "bios"|"bmc", "url": ...}] is flashed by the
//     BMC (SimpleUpdate), the machine reboots into its instance after a
//     BIOS image, and the firmware versions are read again.

// serviceStepsKey keeps the requested steps in driver_internal_info.
const serviceStepsKey = "service_steps"

// servicePoll is how often the BMC is read while a change is applied.
var servicePoll = 2 * time.Second

// checkServiceSteps refuses the steps the node does not offer, as Ironic
// refuses them, and a bad apply_configuration argument before anything
// starts.
func checkServiceSteps(n *store.Node, steps []map[string]any) error {
	var errs []string
	for _, st := range steps {
		if isFirmwareUpdate(st) && n.Interfaces["firmware"] == "redfish" {
			args, _ := st["args"].(map[string]any)
			if _, err := firmwareSettingsArg(args); err != nil {
				return userErr(ErrInvalidInput, "%s", err.Error())
			}
			continue
		}
		bios := n.Interfaces["bios"]
		if isBIOSStep(st) && (bios == "redfish" || bios == "fake") {
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
	for _, st := range steps {
		if err := m.update(ctx, uuid, func(n *store.Node) error { n.ServiceStep = st; return nil }); err != nil {
			return err
		}
		m.log.Info("manager: service step", "node", uuid, "interface", st["interface"], "step", st["step"])
		var done bool
		var err error
		if isFirmwareUpdate(st) {
			done, err = true, m.serviceFirmwareUpdate(ctx, uuid, st)
		} else {
			done, err = m.serviceBIOSStep(ctx, uuid, st)
		}
		if err != nil {
			//lint:ignore ST1005 Ironic's last_error text
			return fmt.Errorf("Node %s failed step %s: %w", uuid, stepName(st), err)
		}
		if !done { // aborted while waiting
			return nil
		}
	}
	defer m.cacheBIOS(ctx, uuid)
	defer m.cacheFirmware(ctx, uuid)
	return m.fire(ctx, uuid, sm.EventDone, func(n *store.Node) {
		n.ServiceStep = nil
		delete(n.DriverInternalInfo, serviceStepsKey)
		n.Reservation = nil
	})
}

// serviceBIOSStep asks for the change, reboots the machine into its
// instance and waits, in service wait, for the BMC to show the change.
// done is false when the node left service wait meanwhile (aborted).
func (m *Manager) serviceBIOSStep(ctx context.Context, uuid string, st map[string]any) (done bool, err error) {
	n, err := m.st.Node(uuid)
	if err != nil {
		return false, err
	}
	b, err := m.bios(n)
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
		if sm.State(n.ProvisionState) != sm.ServiceWait {
			m.log.Warn("manager: node left service wait while its BIOS change applied", "node", uuid, "state", n.ProvisionState)
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

func isFirmwareUpdate(st map[string]any) bool {
	return st["interface"] == "firmware" && st["step"] == "update"
}

// firmwareUpdate is one image of a firmware.update step.
type firmwareUpdate struct{ Component, URL string }

// firmwareSettingsArg reads firmware.update's settings argument.
func firmwareSettingsArg(args map[string]any) ([]firmwareUpdate, error) {
	list, ok := args["settings"].([]any)
	if !ok || len(list) == 0 {
		return nil, fmt.Errorf("firmware.update needs settings: a list of {\"component\": \"bios\" or \"bmc\", \"url\": ...}")
	}
	var out []firmwareUpdate
	for _, item := range list {
		m, _ := item.(map[string]any)
		c, _ := m["component"].(string)
		u, _ := m["url"].(string)
		if (c != "bios" && c != "bmc") || !(strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) {
			return nil, fmt.Errorf("firmware.update settings: %v: want a component bios or bmc and an http(s) url", item)
		}
		out = append(out, firmwareUpdate{c, u})
	}
	return out, nil
}

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

// flashFirmware has the BMC flash each image of a firmware.update step in
// turn, calling afterBIOS (when set) after each BIOS image. bios reports
// that a BIOS image was flashed: it takes effect when the machine
// restarts.
func (m *Manager) flashFirmware(ctx context.Context, uuid string, st map[string]any, afterBIOS func(*store.Node) error) (bios bool, err error) {
	n, err := m.st.Node(uuid)
	if err != nil {
		return false, err
	}
	up, ok := m.cfg.Firmware[n.Interfaces["firmware"]].(driver.FirmwareUpdater)
	if !ok {
		return false, fmt.Errorf("the firmware interface %s of node %s does not update firmware", n.Interfaces["firmware"], uuid)
	}
	args, _ := st["args"].(map[string]any)
	images, err := firmwareSettingsArg(args)
	if err != nil {
		return false, err
	}
	dn := driverNode(n)
	for _, img := range images {
		m.log.Info("manager: firmware update", "node", uuid, "component", img.Component, "url", img.URL)
		if err := up.UpdateFirmware(ctx, dn, img.URL); err != nil {
			return bios, err
		}
		if img.Component == "bios" {
			bios = true
			if afterBIOS != nil {
				if err := afterBIOS(n); err != nil {
					return bios, err
				}
			}
		}
	}
	return bios, nil
}

// updatesFirmware reports whether the node's firmware interface flashes
// images (firmware.update is then one of its clean, deploy and service
// steps).
func (m *Manager) updatesFirmware(n *store.Node) bool {
	_, ok := m.cfg.Firmware[n.Interfaces["firmware"]].(driver.FirmwareUpdater)
	return ok
}

// firmwareStep runs firmware.update as a clean or deploy step, as
// Ironic's redfish firmware interface does with the ramdisk up: the BMC
// flashes every image; after a BIOS image the machine reboots into the
// ramdisk (the step reports wait, the node waits for the new agent, whose
// heartbeat calls the step again). The firmware versions are read again
// at the end.
func (m *Manager) firmwareStep(ctx context.Context, uuid string, st map[string]any) (wait bool, err error) {
	n, err := m.st.Node(uuid)
	if err != nil {
		return false, err
	}
	if state, _ := n.DriverInternalInfo[biosStateKey].(map[string]any); state["firmware_updated"] == true {
		// Back in the ramdisk after the reboot that put the BIOS image in effect.
		if err := m.update(ctx, uuid, func(n *store.Node) error {
			delete(n.DriverInternalInfo, biosStateKey)
			return nil
		}); err != nil {
			return false, err
		}
		m.cacheFirmware(ctx, uuid)
		return false, nil
	}
	bios, err := m.flashFirmware(ctx, uuid, st, nil)
	if err != nil {
		return false, err
	}
	if !bios {
		m.cacheFirmware(ctx, uuid)
		return false, nil
	}
	return true, m.rebootForStep(ctx, uuid, map[string]any{"firmware_updated": true})
}
