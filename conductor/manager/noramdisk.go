package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
)

// Manual cleaning without the ramdisk (disable_ramdisk, API 1.70), as
// Ironic's: the conductor neither prepares nor boots the deploy ramdisk
// (no PXE or virtual media boot, no power action for it) and runs the
// requested steps through its own interfaces, those whose steps need no
// ramdisk (Ironic's requires_ramdisk=False): the bios interface's steps,
// the raid interface's when the BMC builds the volumes, firmware updates
// the BMC flashes. A request holding any other step (an agent step, a
// flow step that waits for the agent) is refused before anything changes.
// At the end the machine is left powered as the steps left it (no ramdisk
// to tear down).
//
// Servicing needs no counterpart: every service step ferric offers is one
// of these, so a servicing never boots a ramdisk, with or without
// disable_ramdisk.

// noRamdiskKey marks, in driver_internal_info, a manual cleaning that runs
// without the ramdisk (Ironic's cleaning_disable_ramdisk).
const noRamdiskKey = "cleaning_disable_ramdisk"

// runsWithoutRamdisk reports whether the node's interfaces run st without
// the ramdisk.
func (m *Manager) runsWithoutRamdisk(n *store.Node, st map[string]any) bool {
	switch {
	case isRAIDStep(st):
		return m.raidController(n) != nil
	case isFirmwareUpdate(st):
		return m.firmwareStepOffered(n, st)
	case isBIOSStep(st):
		return m.biosSteps(n)
	}
	return false
}

// checkNoRamdiskSteps refuses, with Ironic's message, the clean steps that
// need the ramdisk.
func (m *Manager) checkNoRamdiskSteps(n *store.Node, steps []map[string]any) error {
	var errs []string
	for _, st := range steps {
		if !m.runsWithoutRamdisk(n, st) {
			b, _ := json.Marshal(st)
			errs = append(errs, "clean step "+string(b)+" requires booting a ramdisk")
		}
	}
	if len(errs) > 0 {
		return userErr(ErrInvalidInput, "%s", strings.Join(errs, "; "))
	}
	return nil
}

// cleanWithoutRamdisk runs a manual cleaning's steps through the
// conductor's interfaces, then returns the node to manageable.
func (m *Manager) cleanWithoutRamdisk(ctx context.Context, n *store.Node) error {
	uuid := n.UUID
	var steps []map[string]any
	if raw, err := json.Marshal(n.DriverInternalInfo["clean_steps"]); err == nil {
		_ = json.Unmarshal(raw, &steps)
	}
	enter := func(n *store.Node, st map[string]any) { n.CleanStep = st }
	for _, st := range steps {
		done, err := m.conductorStep(ctx, uuid, st, sm.CleanWait, enter)
		if err != nil {
			// Ironic's text when the conductor runs a step itself.
			//lint:ignore ST1005 Ironic's last_error text
			return fmt.Errorf("Node %s failed step %s: %w", uuid, stepName(st), err)
		}
		if !done { // aborted while waiting
			return nil
		}
	}
	m.cacheBIOS(ctx, uuid)
	m.cacheFirmware(ctx, uuid)
	n, err := m.st.Node(uuid)
	if err != nil {
		return err
	}
	return m.fire(ctx, uuid, cleanDone(n), func(n *store.Node) {
		n.CleanStep = store.Object{}
		n.Reservation = nil
		delete(n.DriverInternalInfo, "clean_steps")
		delete(n.DriverInternalInfo, noRamdiskKey)
	})
}
