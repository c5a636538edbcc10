package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/raid"
	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// Hardware RAID through the BMC, as Ironic's redfish (and idrac-redfish)
// raid interfaces do it: raid.create_configuration (clean step),
// raid.apply_configuration (deploy and service step, with the config in
// its raid_config argument) and raid.delete_configuration (clean, deploy
// and service step) run in the conductor. The node's target_raid_config
// is checked when it is set; a create step's config is planned against
// the machine's drives when the clean, deploy or servicing is asked for,
// so what the drives cannot hold is refused before anything starts. The
// controller builds each volume at once; if it refuses one, the volumes
// the step built are deleted again and the step fails with the BMC's
// message (volumes removed by delete_existing stay removed). After each
// step the node's raid_config shows the volumes the controller has.
// Controllers that build volumes only at the next reset (apply time
// OnReset, with a task, as iDRACs) get the requests, then the machine
// reboots into the ramdisk and the step checks the result (not in
// servicing, which refuses them).

// raidController returns the node's raid interface when the BMC builds
// its volumes, nil otherwise (no-raid, agent: the ramdisk's steps).
func (m *Manager) raidController(n *store.Node) driver.RAIDController {
	rc, _ := capability[driver.RAIDController](m, n, "raid")
	return rc
}

// isRAIDStep reports whether st is a raid step the conductor runs for a
// RAIDController.
func isRAIDStep(st map[string]any) bool {
	if st["interface"] != "raid" {
		return false
	}
	switch st["step"] {
	case "create_configuration", "apply_configuration", "delete_configuration":
		return true
	}
	return false
}

// CheckRAIDConfig checks a target_raid_config for the node, as Ironic's
// raid interfaces' validate_raid_config do. An empty config (which clears
// it) is always accepted.
func (m *Manager) CheckRAIDConfig(n *store.Node, cfg map[string]any) error {
	if len(cfg) == 0 {
		return nil
	}
	if m.offersNothing(n, "raid") {
		return userErr(ErrInvalidInput, "%s", (&driver.UnsupportedError{Driver: n.Driver, Extension: "raid"}).Error())
	}
	if err := raid.Validate(cfg); err != nil {
		return userErr(ErrInvalidInput, "%s", err.Error())
	}
	if err := m.checkSoftwareRAID(n, cfg); err != nil {
		return err
	}
	if m.raidController(n) != nil {
		for _, ld := range raid.Parse(cfg) {
			if ld.Interface == "scsi" {
				return userErr(ErrInvalidInput, "interface type `scsi` not supported by Redfish RAID")
			}
		}
	}
	return nil
}

// raidStepConfig returns the configuration a create or apply step builds:
// the node's target_raid_config, or apply_configuration's raid_config.
func raidStepConfig(n *store.Node, st map[string]any) (map[string]any, error) {
	if st["step"] == "apply_configuration" {
		args, _ := st["args"].(map[string]any)
		cfg, ok := args["raid_config"].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("raid.apply_configuration needs the argument raid_config, a RAID configuration")
		}
		if err := raid.Validate(cfg); err != nil {
			return nil, err
		}
		return cfg, nil
	}
	if len(n.TargetRAIDConfig) == 0 {
		return nil, fmt.Errorf("Node %s has no target RAID configuration.", n.UUID) //lint:ignore ST1005 Ironic's message
	}
	cfg := map[string]any(n.TargetRAIDConfig)
	if err := raid.Validate(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// boolArg reads a step's boolean argument (a JSON boolean or its text).
func boolArg(args map[string]any, key string, def bool) (bool, error) {
	v, ok := args[key]
	if !ok || v == nil {
		return def, nil
	}
	if b, ok := protocol.ParseBool(v); ok {
		return b, nil
	}
	return false, fmt.Errorf("%s must be a boolean, not %v", key, v)
}

// raidPlan reads the step's config and arguments and plans its volumes
// against the machine's drives; it also returns the inventory read.
func (m *Manager) raidPlan(ctx context.Context, n *store.Node, rc driver.RAIDController, st map[string]any) ([]raid.Volume, driver.RAIDInventory, bool, error) {
	args, _ := st["args"].(map[string]any)
	cfg, err := raidStepConfig(n, st)
	if err != nil {
		return nil, driver.RAIDInventory{}, false, err
	}
	root, err := boolArg(args, "create_root_volume", true)
	if err != nil {
		return nil, driver.RAIDInventory{}, false, err
	}
	// apply_configuration builds only the root volume unless asked.
	nonroot, err := boolArg(args, "create_nonroot_volumes", st["step"] != "apply_configuration")
	if err != nil {
		return nil, driver.RAIDInventory{}, false, err
	}
	deleteExisting, err := boolArg(args, "delete_existing", false)
	if err != nil {
		return nil, driver.RAIDInventory{}, false, err
	}
	inv, err := rc.RAIDInventory(ctx, driverNode(n))
	if err != nil {
		return nil, inv, false, err
	}
	vols, err := raid.Plan(n.UUID, raid.Parse(cfg), inv.Disks)
	if err != nil {
		return nil, inv, false, err
	}
	var out []raid.Volume
	for _, v := range vols {
		if (root && v.Root) || (nonroot && !v.Root) {
			out = append(out, v)
		}
	}
	return out, inv, deleteExisting, nil
}

// checkRAIDSteps plans the create and apply steps among steps of kind
// (clean, deploy, service) when the request arrives: a config the
// machine's drives cannot hold is refused with Ironic's message before
// anything starts. A BMC that cannot be read does not refuse the request:
// the step reads it again. apply_configuration is no clean step, as in
// Ironic (create_configuration is no deploy or service step: those are
// refused with the steps the node does not offer).
func (m *Manager) checkRAIDSteps(ctx context.Context, n *store.Node, kind string, steps []map[string]any) error {
	rc := m.raidController(n)
	if rc == nil {
		return m.checkAgentRAIDSteps(n, steps)
	}
	for _, st := range steps {
		if !isRAIDStep(st) || st["step"] == "delete_configuration" {
			continue
		}
		if kind == "clean" && st["step"] == "apply_configuration" {
			b, _ := json.Marshal(st)
			return userErr(ErrInvalidInput, "node does not support this clean step: %s", b)
		}
		_, _, _, err := m.raidPlan(ctx, n, rc, st)
		var pe *raid.PlanError
		var ve *raid.ValidationError
		switch {
		case err == nil:
		case errors.As(err, &pe), errors.As(err, &ve), !isBMCError(err):
			return userErr(ErrInvalidInput, "%s", err.Error())
		default:
			m.log.Warn("manager: could not check the RAID configuration against the machine's drives", "node", n.UUID, "error", err)
		}
	}
	return nil
}

// isBMCError reports whether err came from talking to the BMC (the
// driver's errors carry its "bmc:" prefix).
func isBMCError(err error) bool { return strings.HasPrefix(err.Error(), "bmc:") }

// raidStep runs a raid step through the BMC. A controller that builds
// volumes at once needs no reboot; one that applies them at the next
// reset (apply time OnReset, as iDRACs) gets the requests, then the
// machine reboots into the ramdisk (wait) and the step, resumed with the
// next agent, checks that the volumes asked for are there.
func (m *Manager) raidStep(ctx context.Context, uuid string, st map[string]any) (wait bool, err error) {
	n, err := m.st.Node(uuid)
	if err != nil {
		return false, err
	}
	rc := m.raidController(n)
	if rc == nil {
		return false, fmt.Errorf("raid interface %q does not build volumes through the BMC", n.Interfaces["raid"])
	}
	if state, _ := n.DriverInternalInfo[biosStateKey].(map[string]any); state["raid_reboot"] == true {
		return false, m.raidAfterReset(ctx, n, rc, state)
	}
	dn := driverNode(n)
	var inv driver.RAIDInventory
	var vols []raid.Volume
	deleteExisting := st["step"] == "delete_configuration"
	if deleteExisting {
		inv, err = rc.RAIDInventory(ctx, dn)
	} else {
		vols, inv, deleteExisting, err = m.raidPlan(ctx, n, rc, st)
	}
	if err != nil {
		return false, err
	}
	if inv.ApplyOnReset && sm.State(n.ProvisionState) == sm.Servicing {
		return false, fmt.Errorf("the RAID controller of node %s applies volume changes when the machine restarts, which servicing does not do here; run %s when cleaning or deploying", uuid, stepName(st))
	}
	if inv.ApplyOnReset && n.DriverInternalInfo[noRamdiskKey] == true {
		return false, fmt.Errorf("the RAID controller of node %s applies volume changes when the machine restarts, which a cleaning without the ramdisk does not do here; run %s without disable_ramdisk", uuid, stepName(st))
	}
	var deleted []any
	if deleteExisting {
		if deleted, err = m.deleteVolumes(ctx, n, rc, inv); err != nil {
			return false, err
		}
	}
	if st["step"] == "apply_configuration" {
		args, _ := st["args"].(map[string]any)
		cfg, _ := args["raid_config"].(map[string]any)
		if err := m.update(ctx, uuid, func(n *store.Node) error { n.TargetRAIDConfig = cfg; return nil }); err != nil {
			return false, err
		}
	}
	var built []driver.LogicalDisk
	var expect []any
	for _, v := range vols {
		lv, err := rc.CreateVolume(ctx, dn, v.Spec())
		if err != nil {
			// Leave the disks as they were: remove (or cancel) what this
			// step asked for.
			for i := len(built) - 1; i >= 0; i-- {
				if derr := rc.DeleteVolume(ctx, dn, built[i]); derr != nil {
					m.log.Error("manager: could not remove a volume after a failed RAID step", "node", uuid, "volume", built[i].Ref, "error", derr)
				}
			}
			_ = m.recordRAIDConfig(ctx, n, rc)
			return false, fmt.Errorf("Redfish driver failed to create virtual disk for node %s. Reason: %w", uuid, err) //lint:ignore ST1005 Ironic's message
		}
		m.log.Info("manager: RAID volume asked for", "node", uuid, "volume", lv.ID, "raid_type", lv.RAIDType, "size_bytes", lv.SizeBytes,
			"drives", v.Disks, "at_next_reset", lv.Pending)
		built = append(built, lv)
		if lv.Pending {
			expect = append(expect, map[string]any{"name": lv.Name, "raid_type": lv.RAIDType, "controller": lv.Controller})
		}
	}
	if inv.ApplyOnReset && (len(expect) > 0 || len(deleted) > 0) {
		return true, m.rebootForStep(ctx, uuid, map[string]any{"raid_reboot": true, "raid_expect": expect, "raid_deleted": deleted})
	}
	return false, m.recordRAIDConfig(ctx, n, rc)
}

// raidAfterReset checks, once the machine restarted, that the controller
// built the volumes asked for and removed those deleted, and records the
// node's raid_config.
func (m *Manager) raidAfterReset(ctx context.Context, n *store.Node, rc driver.RAIDController, state map[string]any) error {
	if err := m.update(ctx, n.UUID, func(n *store.Node) error {
		delete(n.DriverInternalInfo, biosStateKey)
		return nil
	}); err != nil {
		return err
	}
	inv, err := rc.RAIDInventory(ctx, driverNode(n))
	if err != nil {
		return err
	}
	have := slices.Clone(inv.Volumes)
	var problems []string
	for _, e := range anyList(state["raid_deleted"]) {
		ref, _ := e.(string)
		if slices.ContainsFunc(have, func(v driver.LogicalDisk) bool { return v.Ref == ref }) {
			problems = append(problems, "volume "+ref+" is still there")
		}
	}
	for _, e := range anyList(state["raid_expect"]) {
		x, _ := e.(map[string]any)
		name, _ := x["name"].(string)
		typ, _ := x["raid_type"].(string)
		ctrl, _ := x["controller"].(string)
		i := slices.IndexFunc(have, func(v driver.LogicalDisk) bool {
			return v.RAIDType == typ && v.Controller == ctrl && (name == "" || v.Name == name)
		})
		if i < 0 {
			problems = append(problems, fmt.Sprintf("no %s volume %q on controller %s", typ, name, ctrl))
			continue
		}
		have = slices.Delete(have, i, i+1)
	}
	if err := m.recordRAIDConfig(ctx, n, rc); err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("the RAID controller did not apply the changes when the machine restarted: %s", strings.Join(problems, "; "))
	}
	return nil
}

// anyList reads a list stored in driver_internal_info.
func anyList(v any) []any {
	l, _ := v.([]any)
	return l
}

// deleteVolumes removes every volume of the controllers that build RAID
// and returns the references of those removed.
func (m *Manager) deleteVolumes(ctx context.Context, n *store.Node, rc driver.RAIDController, inv driver.RAIDInventory) ([]any, error) {
	var deleted []any
	for _, v := range inv.Volumes {
		if _, raidCapable := inv.Controllers[v.Controller]; !raidCapable {
			continue
		}
		if err := rc.DeleteVolume(ctx, driverNode(n), v); err != nil {
			return deleted, err
		}
		deleted = append(deleted, v.Ref)
		m.log.Info("manager: RAID volume deleted", "node", n.UUID, "volume", v.ID, "at_next_reset", inv.ApplyOnReset)
	}
	return deleted, nil
}

// recordRAIDConfig stores the controller's volumes as the node's
// raid_config.
func (m *Manager) recordRAIDConfig(ctx context.Context, n *store.Node, rc driver.RAIDController) error {
	inv, err := rc.RAIDInventory(ctx, driverNode(n))
	if err != nil {
		return err
	}
	cfg := raid.Config(inv.Volumes, time.Now())
	return m.update(ctx, n.UUID, func(n *store.Node) error {
		n.RAIDConfig = cfg
		return nil
	})
}
