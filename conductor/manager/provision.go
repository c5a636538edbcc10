package manager

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/internal/python"
	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// ProvisionRequest is the body of PUT /v1/nodes/{node}/states/provision.
type ProvisionRequest struct {
	Target         string           `json:"target"`
	ConfigDrive    json.RawMessage  `json:"configdrive,omitempty"`
	CleanSteps     []map[string]any `json:"clean_steps,omitempty"`
	DeploySteps    []map[string]any `json:"deploy_steps,omitempty"`
	ServiceSteps   []map[string]any `json:"service_steps,omitempty"`
	RescuePassword *string          `json:"rescue_password,omitempty"`
	DisableRamdisk *bool            `json:"disable_ramdisk,omitempty"`
	// Runbook names (UUID or name) a runbook whose steps a manual
	// cleaning or a servicing runs (API 1.92).
	Runbook *string `json:"runbook,omitempty"`
	// Version is the request's API microversion (minor).
	Version int `json:"-"`
}

// Provision validates a provision request, takes the node's lock, fires the
// transition (stored before this returns) and starts the work.
func (m *Manager) Provision(ctx context.Context, uuid string, req ProvisionRequest) error {
	n, err := m.st.Node(uuid)
	if err != nil {
		return userErr(ErrNotFound, "Node %s could not be found.", uuid)
	}
	state := sm.State(n.ProvisionState)
	if (req.Target == sm.TargetActive || req.Target == sm.TargetDeploy || req.Target == sm.TargetRebuild) && n.Maintenance {
		return userErr(ErrInvalidState, "The requested action \"%s\" can not be performed on node \"%s\" because it's in maintenance mode.", req.Target, uuid)
	}
	ev, err := sm.Check(req.Target, state, req.Version)
	switch {
	case errors.Is(err, sm.ErrVersionTooLow):
		return userErr(ErrNotAcceptable, "The requested action \"%s\" is not supported by API version 1.%d.", req.Target, req.Version)
	case err != nil:
		kind := ErrInvalidState
		if n.Reservation != nil {
			kind = ErrNodeLocked
		}
		return userErr(kind, "The requested action \"%s\" can not be performed on node \"%s\" while it is in state \"%s\".", req.Target, uuid, state)
	}
	if n.Protected && (ev == sm.EventDelete || ev == sm.EventRebuild) {
		return userErr(ErrForbidden, "Node %s is protected and cannot be undeployed, rebuilt or deleted", uuid)
	}
	if n.Retired && ev == sm.EventProvide {
		return userErr(ErrInvalidState, "Node %s is retired and cannot be provided.", uuid)
	}
	configdrive, cerr := m.configDrive(n, req)
	if cerr != nil {
		return cerr
	}
	if err := m.useRunbook(n, ev, &req); err != nil {
		return err
	}
	if ev == sm.EventClean && len(req.CleanSteps) == 0 {
		return userErr(ErrInvalidInput, "\"clean_steps\" is required when setting target provision state to clean")
	}
	if len(req.CleanSteps) > 0 && ev != sm.EventClean {
		return userErr(ErrInvalidInput, "\"clean_steps\" is only valid when setting target provision state to clean")
	}
	if len(req.DeploySteps) > 0 && ev != sm.EventDeploy && ev != sm.EventRebuild {
		return userErr(ErrInvalidInput, "\"deploy_steps\" is only valid when setting target provision state to active or rebuild")
	}
	if err := checkStepShapes("clean", req.CleanSteps); err != nil {
		return err
	}
	noRamdisk := ev == sm.EventClean && req.DisableRamdisk != nil && *req.DisableRamdisk
	if noRamdisk {
		if err := m.checkNoRamdiskSteps(n, req.CleanSteps); err != nil {
			return err
		}
	}
	if ev == sm.EventService && len(req.ServiceSteps) == 0 {
		return userErr(ErrInvalidInput, "\"service_steps\" is required when setting target provision state to service")
	}
	if len(req.ServiceSteps) > 0 && ev != sm.EventService {
		return userErr(ErrInvalidInput, "\"service_steps\" is only valid when setting target provision state to service")
	}
	if err := checkStepShapes("service", req.ServiceSteps); err != nil {
		return err
	}
	if err := m.checkServiceSteps(n, req.ServiceSteps); err != nil {
		return err
	}
	if err := checkStepShapes("deploy", req.DeploySteps); err != nil {
		return err
	}
	var deploySteps []map[string]any
	if ev == sm.EventDeploy || ev == sm.EventRebuild {
		deploySteps = append(m.templateSteps(n), req.DeploySteps...)
	}
	if err := checkCoreDeploySteps(m.conductorSteps(n, deploySteps)); err != nil {
		return err
	}
	for kind, steps := range map[string][]map[string]any{"clean": req.CleanSteps, "service": req.ServiceSteps, "deploy": deploySteps} {
		if err := m.checkRAIDSteps(ctx, n, kind, steps); err != nil {
			return err
		}
	}
	if ev == sm.EventRescue && (req.RescuePassword == nil || strings.TrimSpace(*req.RescuePassword) == "") {
		return userErr(ErrInvalidInput, "A non-empty \"rescue_password\" is required when setting target provision state to rescue")
	}
	if req.RescuePassword != nil && ev != sm.EventRescue {
		return userErr(ErrInvalidInput, "\"rescue_password\" is only valid when setting target provision state to rescue")
	}
	if ev == sm.EventRescue {
		if err := m.validateRescue(ctx, n); err != nil {
			return err
		}
	}
	if ev == sm.EventDeploy || ev == sm.EventRebuild {
		if err := m.validateDeploy(ctx, n); err != nil {
			return err
		}
	}
	if err := m.slot(); err != nil {
		return err
	}
	var from sm.State // the state the request moved the node from
	err = m.acquire(ctx, uuid, func(n *store.Node) error {
		cur := sm.State(n.ProvisionState)
		from = cur
		target := sm.NoState
		switch ev {
		case sm.EventClean:
			target = cur // manual cleaning returns to where it started
		case sm.EventUnhold:
			target = sm.State(deref(n.TargetProvisionState)) // a held manual clean still ends in manageable
		}
		next, tgt, err := sm.NextTo(cur, ev, target)
		if err != nil {
			return userErr(ErrInvalidState, "The requested action \"%s\" can not be performed on node \"%s\" while it is in state \"%s\".", req.Target, n.UUID, cur)
		}
		setState(n, next, tgt)
		n.LastError = nil
		if n.DriverInternalInfo == nil {
			n.DriverInternalInfo = store.Object{}
		}
		if configdrive != "" {
			if n.InstanceInfo == nil {
				n.InstanceInfo = store.Object{}
			}
			n.InstanceInfo["configdrive"] = configdrive
		}
		// The steps of a clean or deploy are set when it starts and kept
		// through the actions that act on it (unhold, abort).
		switch {
		case ev == sm.EventClean || ev == sm.EventProvide || ev == sm.EventDelete:
			delete(n.DriverInternalInfo, "clean_steps")
			delete(n.DriverInternalInfo, noRamdiskKey)
			if len(req.CleanSteps) > 0 {
				n.DriverInternalInfo["clean_steps"] = req.CleanSteps
			}
			if noRamdisk {
				n.DriverInternalInfo[noRamdiskKey] = true
			}
		case ev == sm.EventDeploy || ev == sm.EventRebuild:
			delete(n.DriverInternalInfo, "user_deploy_steps")
			if len(deploySteps) > 0 {
				n.DriverInternalInfo["user_deploy_steps"] = deploySteps
			}
		case ev == sm.EventService:
			n.DriverInternalInfo[serviceStepsKey] = req.ServiceSteps
		}
		if ev == sm.EventRescue {
			if err := setRescuePassword(n, *req.RescuePassword); err != nil {
				return err
			}
		}
		if ev == sm.EventInspect {
			now := time.Now().UTC()
			n.InspectionStartedAt = &now
			n.InspectionFinishedAt = nil
		}
		return nil
	})
	if err != nil {
		m.release()
		return err
	}
	m.log.Info("manager: provision", "node", uuid, "target", req.Target, "state", state)
	if ev == sm.EventAbort && from == sm.DeployWait {
		m.spawn(uuid, func(ctx context.Context) error { return m.abortDeployWait(ctx, uuid) })
		return nil
	}
	if ev == sm.EventAbort && from == sm.RescueWait {
		m.spawn(uuid, func(ctx context.Context) error { return m.abortRescue(ctx, uuid) })
		return nil
	}
	m.spawn(uuid, func(ctx context.Context) error { return m.run(ctx, uuid, ev) })
	return nil
}

func (m *Manager) configDrive(n *store.Node, req ProvisionRequest) (string, error) {
	raw := strings.TrimSpace(string(req.ConfigDrive))
	if raw == "" || raw == "null" {
		return "", nil
	}
	if req.Target != sm.TargetActive && req.Target != sm.TargetDeploy && req.Target != sm.TargetRebuild {
		return "", userErr(ErrInvalidInput, "Adding a config drive is only supported when setting provision state to active or rebuild")
	}
	if req.Target == sm.TargetRebuild && req.Version < 35 {
		return "", userErr(ErrNotAcceptable, "Adding a config drive on rebuild is not supported by API version 1.%d.", req.Version)
	}
	if strings.HasPrefix(raw, "{") {
		if req.Version < 56 {
			return "", userErr(ErrNotAcceptable, "Config drive as a dictionary is not supported by API version 1.%d.", req.Version)
		}
		var dict map[string]any
		if err := json.Unmarshal(req.ConfigDrive, &dict); err != nil {
			return "", userErr(ErrInvalidInput, "Invalid config drive: %v", err)
		}
		for k := range dict {
			switch k {
			case "meta_data", "network_data", "user_data", "vendor_data":
			default:
				return "", userErr(ErrInvalidInput, "Invalid config drive: unknown key %q (expected meta_data, network_data, user_data, vendor_data)", k)
			}
		}
		if m.cfg.ConfigDrive == nil {
			return "", userErr(ErrInvalidInput, "Config drive dictionaries cannot be built by this conductor")
		}
		iso, err := m.cfg.ConfigDrive(n, dict)
		if err != nil {
			return "", userErr(ErrInvalidInput, "Invalid config drive: %v", err)
		}
		return iso, nil
	}
	var s string
	if err := json.Unmarshal(req.ConfigDrive, &s); err != nil {
		return "", userErr(ErrInvalidInput, "Invalid config drive: must be a string or an object")
	}
	if strings.Contains(s, "://") {
		return s, nil
	}
	if _, err := base64.StdEncoding.DecodeString(s); err != nil {
		return "", userErr(ErrInvalidInput, "Invalid config drive: it must be a URL or gzipped and base64-encoded ISO")
	}
	return s, nil
}

func (m *Manager) validateDeploy(ctx context.Context, n *store.Node) error {
	res, err := m.Validate(ctx, n.UUID)
	if err != nil {
		return err
	}
	var bad []string
	for _, k := range []string{"power", "management", "boot", "deploy"} {
		if r := res[k]; r.Result != nil && !*r.Result {
			bad = append(bad, k+": "+r.Reason)
		}
	}
	if len(bad) > 0 {
		return userErr(ErrInvalidInput, "Failed to validate deploy or power info for node %s. Errors: %s", n.UUID, strings.Join(bad, "; "))
	}
	return checkInstanceTraits(n)
}

// checkInstanceTraits requires instance_info.traits, which select deploy
// templates, to be a list of strings all set on the node (as Ironic).
func checkInstanceTraits(n *store.Node) error {
	raw := n.InstanceInfo["traits"]
	if !python.Truthy(raw) { // Ironic skips any false value: absent, null, "", [], {}
		return nil
	}
	list, ok := raw.([]any)
	var missing []string
	for _, t := range list {
		name, isStr := t.(string)
		if !isStr {
			ok = false
			break
		}
		if !slices.Contains(n.Traits, name) {
			missing = append(missing, name)
		}
	}
	if !ok {
		return userErr(ErrInvalidInput, "Error parsing traits from Node %s instance_info field. A list of strings is expected.", n.UUID)
	}
	if len(missing) > 0 {
		return userErr(ErrInvalidInput, "Cannot specify instance traits that are not also set on the node. Node %s is missing traits %s", n.UUID, strings.Join(missing, ", "))
	}
	return nil
}

func (m *Manager) wantsCleaning(n *store.Node) bool {
	if n.AutomatedClean != nil {
		return *n.AutomatedClean
	}
	return m.cfg.AutomatedClean
}

// run is the body of a provision task started by a user verb.
func (m *Manager) run(ctx context.Context, uuid string, ev sm.Event) error {
	n, err := m.st.Node(uuid)
	if err != nil {
		return err
	}
	switch ev {
	case sm.EventManage:
		if sm.State(n.ProvisionState) == sm.Manageable {
			// manage from available, clean failed, ... moved the node
			// straight to manageable: there is nothing to do.
			return nil
		}
		if sm.State(n.ProvisionState) != sm.Verifying {
			return m.fire(ctx, uuid, sm.EventDone, nil)
		}
		return m.verify(ctx, n)
	case sm.EventProvide:
		return m.startCleaning(ctx, n, false)
	case sm.EventClean:
		return m.startCleaning(ctx, n, true)
	case sm.EventDeploy, sm.EventRebuild:
		return m.deploy(ctx, n)
	case sm.EventDelete:
		return m.tearDown(ctx, n)
	case sm.EventInspect:
		return m.inspect(ctx, n)
	case sm.EventAbort:
		return m.abort(ctx, n)
	case sm.EventAdopt:
		return m.adopt(ctx, n)
	case sm.EventService:
		return m.service(ctx, n)
	case sm.EventUnhold:
		// The node is back in clean/deploy wait: its agent's next
		// heartbeat resumes after the hold step.
		return nil
	case sm.EventRescue:
		return m.rescue(ctx, n)
	case sm.EventUnrescue:
		return m.unrescue(ctx, n)
	}
	return fmt.Errorf("manager: no task for event %q", ev)
}

// adopt takes over a machine that already runs its instance (manageable or
// adopt failed -> adopting -> active), as Ironic's adoption: nothing is
// deployed and the power is left as it is; a node deployed through the
// agent boots from its disk from now on (the boot device is set to disk,
// persistently, as Ironic's local-boot takeover does). A failure moves the
// node to adopt failed with Ironic's message and an unknown power state.
func (m *Manager) adopt(ctx context.Context, n *store.Node) error {
	err := func() error {
		if m.ramdiskDeploy(n) {
			return m.adoptRamdisk(ctx, n)
		}
		if !m.usesAgent(n) {
			return nil
		}
		mg, err := m.management(n)
		if err != nil {
			return err
		}
		return mg.SetBootDevice(ctx, driverNode(n), driver.BootDisk, true)
	}()
	if err != nil {
		msg := fmt.Sprintf("Error while attempting to adopt node %s: %v.", n.UUID, err)
		return m.fire(ctx, n.UUID, sm.EventFail, func(n *store.Node) { n.LastError = &msg; n.PowerState = nil })
	}
	m.log.Info("manager: node adopted", "node", n.UUID)
	return m.fire(ctx, n.UUID, sm.EventDone, func(n *store.Node) {
		n.LastError = nil
		if m.usesAgent(n) && !m.ramdiskDeploy(n) {
			n.DriverInternalInfo["boot_device"] = driver.BootDisk
			n.DriverInternalInfo["boot_device_persistent"] = true
		}
	})
}

// verify reads the power state through the BMC (enroll -> manageable).
func (m *Manager) verify(ctx context.Context, n *store.Node) error {
	pw, err := m.power(n)
	if err == nil {
		err = pw.Validate(driverNode(n))
	}
	var st string
	if err == nil {
		st, err = pw.PowerState(ctx, driverNode(n))
	}
	if err != nil {
		msg := fmt.Sprintf("Failed to get power state for node %s. Error: %v", n.UUID, err)
		return m.fire(ctx, n.UUID, sm.EventFail, func(n *store.Node) { n.LastError = &msg })
	}
	m.updateCaches(ctx, n.UUID)
	return m.fire(ctx, n.UUID, sm.EventDone, func(n *store.Node) { n.PowerState = &st })
}

// bootRamdisk sets PXE boot (or readies the node's virtual media boot) and
// power-cycles the node into the ramdisk.
func (m *Manager) bootRamdisk(ctx context.Context, n *store.Node) error {
	mg, err := m.management(n)
	if err != nil {
		return err
	}
	pw, err := m.power(n)
	if err != nil {
		return err
	}
	// A new ramdisk is coming: forget a running agent (left on by
	// fast-track whose heartbeat went stale), so that the new one's
	// lookup is issued a token, as Ironic wipes it on reboot.
	if _, ok := n.DriverInternalInfo["agent_secret_token"]; ok {
		if err := m.update(ctx, n.UUID, func(x *store.Node) error { clearAgent(x); return nil }); err != nil {
			return err
		}
		if n, err = m.st.Node(n.UUID); err != nil {
			return err
		}
	}
	dn := driverNode(n)
	dev, err := m.prepareRamdiskBoot(ctx, n)
	if err != nil {
		return err
	}
	// "": the boot interface set the boot itself (UEFI HTTP boot).
	if dev != "" {
		if err := mg.SetBootDevice(ctx, dn, dev, false); err != nil {
			return fmt.Errorf("setting boot device to %s for node %s: %w", dev, n.UUID, err)
		}
	}
	target := driver.TargetPowerOn
	if deref(n.PowerState) == driver.PowerOn {
		target = driver.TargetReboot
	}
	if err := pw.SetPowerState(ctx, dn, target, m.cfg.PowerTimeout); err != nil {
		return fmt.Errorf("powering on node %s into the deploy ramdisk: %w", n.UUID, err)
	}
	return m.update(ctx, n.UUID, func(n *store.Node) error {
		on := driver.PowerOn
		n.PowerState = &on
		return nil
	})
}

func (m *Manager) powerOff(ctx context.Context, n *store.Node) error {
	pw, err := m.power(n)
	if err != nil {
		return err
	}
	if err := pw.SetPowerState(ctx, driverNode(n), driver.TargetPowerOff, m.cfg.PowerTimeout); err != nil {
		return fmt.Errorf("powering off node %s: %w", n.UUID, err)
	}
	return m.update(ctx, n.UUID, func(n *store.Node) error {
		off := driver.PowerOff
		n.PowerState = &off
		// The ramdisk is gone, and its token with it (Ironic's
		// wipe_internal_info_on_power_off): the next ramdisk's lookup
		// must be issued a new one.
		clearAgent(n)
		return nil
	})
}

// cleanDone is the event that ends cleaning: manage for a manual clean
// (its target is manageable, where it started), done (to available)
// otherwise, as Ironic's conductor ends them.
func cleanDone(n *store.Node) sm.Event {
	if deref(n.TargetProvisionState) == string(sm.Manageable) {
		return sm.EventManage
	}
	return sm.EventDone
}

// startCleaning runs automated (provide, tear-down) or manual cleaning.
func (m *Manager) startCleaning(ctx context.Context, n *store.Node, manual bool) error {
	m.updateCaches(ctx, n.UUID) // as Ironic refreshes its caches when cleaning starts
	if manual && n.DriverInternalInfo[noRamdiskKey] == true {
		return m.cleanWithoutRamdisk(ctx, n)
	}
	if (!manual && !m.wantsCleaning(n)) || !m.usesAgent(n) {
		return m.fire(ctx, n.UUID, cleanDone(n), func(n *store.Node) { n.CleanStep = store.Object{} })
	}
	// As Ironic's do_node_clean, the network interface validates (its
	// cleaning and provisioning networks) before anything is done.
	if sw, ok := capability[driver.NetworkSwitcher](m, n, "network"); ok {
		if err := sw.ValidateNetworks(ctx, driverNode(n)); err != nil {
			return fmt.Errorf("Validation of node %s for cleaning failed: %w", n.UUID, err) //lint:ignore ST1005 Ironic's last_error text
		}
	}
	if m.isFastTrack(ctx, n) {
		// The agent runs already: clean wait, and on at once with it.
		err := m.fire(ctx, n.UUID, sm.EventWait, func(n *store.Node) {
			n.CleanStep = store.Object{}
			delete(n.DriverInternalInfo, "clean_step_index")
			delete(n.DriverInternalInfo, biosStateKey)
		})
		if err != nil {
			return err
		}
		return m.continueClean(ctx, n.UUID)
	}
	if err := m.addNetwork(ctx, n, driver.NetCleaning); err != nil {
		return err
	}
	if err := m.bootRamdisk(ctx, n); err != nil {
		return err
	}
	return m.fire(ctx, n.UUID, sm.EventWait, func(n *store.Node) {
		n.Reservation = nil
		n.CleanStep = store.Object{}
		delete(n.DriverInternalInfo, "clean_step_index")
		delete(n.DriverInternalInfo, biosStateKey)
	})
}

// deploy starts a deployment (available/deploy failed/active -> deploying).
func (m *Manager) deploy(ctx context.Context, n *store.Node) error {
	if m.ramdiskDeploy(n) {
		return m.deployRamdisk(ctx, n)
	}
	if !m.usesAgent(n) {
		pw, err := m.power(n)
		if err != nil {
			return err
		}
		if err := pw.SetPowerState(ctx, driverNode(n), driver.TargetPowerOn, m.cfg.PowerTimeout); err != nil {
			return err
		}
		return m.fire(ctx, n.UUID, sm.EventDone, func(n *store.Node) {
			on := driver.PowerOn
			n.PowerState = &on
			n.DeployStep = store.Object{}
		})
	}
	if m.isFastTrack(ctx, n) {
		// As Ironic's fast-track deploy: no reboot, the running agent
		// writes the image now.
		err := m.fire(ctx, n.UUID, sm.EventWait, func(n *store.Node) {
			n.DeployStep = store.Object{"interface": "deploy", "step": "deploy", "priority": 100, "args": map[string]any{}}
			delete(n.DriverInternalInfo, "deploy_step_index")
			delete(n.DriverInternalInfo, biosStateKey)
		})
		if err != nil {
			return err
		}
		return m.continueDeploy(ctx, n.UUID)
	}
	if err := m.toProvisioning(ctx, n); err != nil {
		return err
	}
	if err := m.bootRamdisk(ctx, n); err != nil {
		return err
	}
	return m.fire(ctx, n.UUID, sm.EventWait, func(n *store.Node) {
		n.Reservation = nil
		n.DeployStep = store.Object{"interface": "deploy", "step": "deploy", "priority": 100, "args": map[string]any{}}
		delete(n.DriverInternalInfo, "deploy_step_index")
		delete(n.DriverInternalInfo, biosStateKey)
	})
}

// tearDown undeploys (active -> deleting -> cleaning -> available).
func (m *Manager) tearDown(ctx context.Context, n *store.Node) error {
	if err := m.powerOff(ctx, n); err != nil {
		return err
	}
	if err := m.configureTenant(ctx, n, false); err != nil {
		return err
	}
	if err := m.cleanUpInstanceBoot(ctx, n.UUID); err != nil {
		return err
	}
	err := m.st.Update(ctx, func(tx store.Tx) error {
		n, err := tx.Node(n.UUID)
		if err != nil {
			return err
		}
		next, tgt, err := sm.Next(sm.State(n.ProvisionState), sm.EventClean)
		if err != nil {
			return err
		}
		setState(n, next, tgt)
		if n.AllocationUUID != nil {
			if err := tx.DeleteAllocation(*n.AllocationUUID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		n.AllocationUUID, n.InstanceUUID, n.InstanceName = nil, nil, nil
		n.InstanceInfo = store.Object{}
		n.DeployStep = store.Object{}
		clearAgent(n)
		return tx.PutNode(n)
	})
	if err != nil {
		return err
	}
	n, err = m.st.Node(n.UUID)
	if err != nil {
		return err
	}
	return m.startCleaning(ctx, n, false)
}

// abort stops a wait state.
func (m *Manager) abort(ctx context.Context, n *store.Node) error {
	if sm.State(n.ProvisionState) == sm.ServiceFailed {
		// Servicing without the ramdisk: the machine keeps running its
		// instance; the step is forgotten, as Ironic's service abort does.
		msg := "By request, the service operation was aborted"
		if n.ServiceStep != nil {
			msg += fmt.Sprintf(" during or after the completion of step \"%s\"", stepName(n.ServiceStep))
		}
		return m.update(ctx, n.UUID, func(n *store.Node) error {
			n.LastError, n.ServiceStep = &msg, nil
			delete(n.DriverInternalInfo, serviceStepsKey)
			return nil
		})
	}
	_ = m.powerOff(ctx, n)
	// The ramdisk's network ports go, as Ironic's tear-down of an
	// aborted cleaning or inspection.
	if netType, ok := map[sm.State]string{sm.CleanFailed: driver.NetCleaning, sm.InspectFailed: driver.NetInspection}[sm.State(n.ProvisionState)]; ok {
		if err := m.removeNetwork(ctx, n, netType); err != nil {
			m.log.Warn("manager: removing the ramdisk's network after an abort", "node", n.UUID, "err", err)
		}
	}
	return nil // the abort transition itself was fired before the task
}

// inspect runs in-band (agent) or out-of-band inspection.
func (m *Manager) inspect(ctx context.Context, n *store.Node) error {
	obj, err := m.object(n, "inspect")
	if err != nil {
		return err
	}
	switch ins := obj.(type) {
	case driver.RamdiskInspector:
		if err := m.addNetwork(ctx, n, driver.NetInspection); err != nil {
			return err
		}
		if err := m.bootRamdisk(ctx, n); err != nil {
			if rerr := m.removeNetwork(ctx, n, driver.NetInspection); rerr != nil {
				m.log.Warn("manager: removing the inspection network after a failed boot", "node", n.UUID, "err", rerr)
			}
			return err
		}
		return m.fire(ctx, n.UUID, sm.EventWait, func(n *store.Node) { n.Reservation = nil })
	case driver.Inspector:
		return m.inspectOutOfBand(ctx, n, ins)
	case driver.Fake:
	default:
		return fmt.Errorf("inspection is not supported by node %s's inspect interface", n.UUID)
	}
	return m.fire(ctx, n.UUID, sm.EventDone, func(n *store.Node) {
		now := time.Now().UTC()
		n.InspectionFinishedAt = &now
	})
}

// inspectOutOfBand reads the inventory from the BMC (no boot) and runs it
// through the same processing as in-band inspection.
func (m *Manager) inspectOutOfBand(ctx context.Context, n *store.Node, ins driver.Inspector) error {
	if m.cfg.Inspect == nil {
		return fmt.Errorf("inspect interface %q is not available on conductor %s", n.Interfaces["inspect"], m.host)
	}
	inv, err := ins.Inventory(ctx, driverNode(n))
	if err != nil {
		return fmt.Errorf("out-of-band inspection of node %s failed: %w", n.UUID, err)
	}
	if inv.Boot.PXEInterface == nil {
		inv.Boot.PXEInterface = pxeMAC(m.st.Ports(func(p *store.Port) bool { return p.NodeUUID == n.UUID }), inv)
	}
	body, err := json.Marshal(map[string]any{"inventory": inv})
	if err != nil {
		return err
	}
	m.log.Info("manager: inventory read from the BMC", "node", n.UUID, "interfaces", len(inv.Interfaces), "disks", len(inv.Disks))
	if err := m.applyInspection(ctx, n.UUID, body, false); err != nil {
		var ie *inspectionError
		if errors.As(err, &ie) {
			return nil // already in inspect failed with its last_error
		}
		return err
	}
	return nil
}

// pxeMAC is the PXE interface of an out-of-band inventory, which the BMC
// does not know: the MAC of the node's first (by address) PXE-enabled port
// the inventory lists, nil if none. With it, inspection keeps the port
// PXE-enabled, as after an in-band inspection booted from it.
func pxeMAC(ports []*store.Port, inv *protocol.Inventory) *string {
	macs := map[string]bool{}
	for _, i := range inv.Interfaces {
		macs[strings.ToLower(i.MACAddress)] = true
	}
	var best string
	for _, p := range ports {
		a := strings.ToLower(p.Address)
		if p.PXEEnabled && macs[a] && (best == "" || a < best) {
			best = a
		}
	}
	if best == "" {
		return nil
	}
	return &best
}

// ---- allocations ----

// StartAllocation processes an allocation in the background.
func (m *Manager) StartAllocation(uuid string) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.allocate(m.ctx(), uuid); err != nil {
			m.log.Error("manager: allocation", "allocation", uuid, "err", err)
		}
	}()
}

// errAllocLocked: a candidate node is locked by a task; the claim is retried.
var errAllocLocked = errors.New("manager: allocation candidate locked")

// How long allocation waits for a locked candidate (Ironic:
// node_locked_retry_attempts x node_locked_retry_interval).
const (
	allocLockedRetries = 30
	allocLockedDelay   = 100 * time.Millisecond
)

func (m *Manager) allocate(ctx context.Context, uuid string) error {
	a, err := m.st.Allocation(uuid)
	if err != nil {
		return err
	}
	if a.NodeUUID != nil { // backfill
		return m.st.Update(ctx, func(tx store.Tx) error {
			a, err := tx.Allocation(uuid)
			if err != nil {
				return err
			}
			n, err := tx.Node(*a.NodeUUID)
			if err == nil && n.ProvisionState == string(sm.Active) && (a.ResourceClass == nil || deref(a.ResourceClass) == deref(n.ResourceClass)) && n.AllocationUUID == nil {
				n.AllocationUUID = &a.UUID
				if n.InstanceUUID == nil {
					n.InstanceUUID = &a.UUID
				}
				a.State = "active"
				if err := tx.PutNode(n); err != nil {
					return err
				}
			} else {
				a.State = "error"
				a.NodeUUID = nil
				a.LastError = strp(fmt.Sprintf("Node %s cannot be backfilled into allocation %s: it must be active, match the resource class and have no allocation.", deref(a.NodeUUID), uuid))
			}
			return tx.PutAllocation(a)
		})
	}
	match := func(n *store.Node) bool {
		// Locked nodes stay candidates: the claim below retries on them
		// (Ironic retries NodeLocked when allocating).
		if n.ProvisionState != string(sm.Available) || n.Maintenance || n.InstanceUUID != nil || n.AllocationUUID != nil {
			return false
		}
		if n.PowerState == nil || *n.PowerState == driver.PowerErr {
			return false
		}
		if a.ResourceClass != nil && deref(n.ResourceClass) != *a.ResourceClass {
			return false
		}
		for _, t := range a.Traits {
			found := false
			for _, nt := range n.Traits {
				if nt == t {
					found = true
				}
			}
			if !found {
				return false
			}
		}
		if len(a.CandidateNodes) > 0 {
			found := false
			for _, c := range a.CandidateNodes {
				if c == n.UUID {
					found = true
				}
			}
			if !found {
				return false
			}
		}
		if a.Owner != nil && deref(n.Owner) != *a.Owner && deref(n.Lessee) != *a.Owner {
			return false
		}
		return true
	}
	cands := m.st.Nodes(match)
	shuffle(cands)
	if a.Name != nil {
		for i, n := range cands {
			if deref(n.Name) == *a.Name {
				cands[0], cands[i] = cands[i], cands[0]
			}
		}
	}
	for _, c := range cands {
		claim := func(tx store.Tx) error {
			n, err := tx.Node(c.UUID)
			if err != nil {
				return err
			}
			if !match(n) {
				return store.ErrConflict
			}
			if n.Reservation != nil {
				return errAllocLocked
			}
			a, err := tx.Allocation(uuid)
			if err != nil {
				return err
			}
			n.InstanceUUID, n.AllocationUUID = &a.UUID, &a.UUID
			a.NodeUUID, a.State, a.LastError = &n.UUID, "active", nil
			if err := tx.PutNode(n); err != nil {
				return err
			}
			return tx.PutAllocation(a)
		}
		err := m.st.Update(ctx, claim)
		for try := 0; errors.Is(err, errAllocLocked) && try < allocLockedRetries; try++ {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(allocLockedDelay):
			}
			err = m.st.Update(ctx, claim)
		}
		if err == nil {
			m.log.Info("manager: allocated", "allocation", uuid, "node", c.UUID)
			return nil
		}
		if errors.Is(err, store.ErrNotFound) {
			return nil // allocation deleted meanwhile
		}
	}
	return m.st.Update(ctx, func(tx store.Tx) error {
		a, err := tx.Allocation(uuid)
		if err != nil {
			return nil
		}
		a.State = "error"
		msg := fmt.Sprintf("Failed to process allocation %s: no available nodes match the resource class %s", uuid, deref(a.ResourceClass))
		if len(a.Traits) > 0 {
			msg += " and traits " + strings.Join(a.Traits, ", ")
		}
		msg += "."
		a.LastError = &msg
		return tx.PutAllocation(a)
	})
}
