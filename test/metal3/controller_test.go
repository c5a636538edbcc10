package metal3

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	metal3api "github.com/metal3-io/baremetal-operator/apis/metal3.io/v1alpha1"
	"github.com/metal3-io/baremetal-operator/apis/metal3.io/v1alpha1/profile"
	"github.com/metal3-io/baremetal-operator/pkg/hardwareutils/bmc"
	"github.com/metal3-io/baremetal-operator/pkg/provisioner"
	corev1 "k8s.io/api/core/v1"
)

// corev1SecretRef is the host's BMC credentials secret.
var corev1SecretRef = corev1.SecretReference{Name: "bmc-credentials", Namespace: "metal3"}

// maxRequeue caps the provisioner's RequeueAfter (BMO's are 10-15 s) so
// that a state's time is the conductor's work, not the controller's
// polling period.
const maxRequeue = 300 * time.Millisecond

// hostConfig is the BareMetalHost's userData, networkData and metaData
// secrets, as BMO's hostConfigData reads them.
type hostConfig struct{ userData, networkData, metaData string }

func (c hostConfig) UserData(context.Context) (string, error)    { return c.userData, nil }
func (c hostConfig) NetworkData(context.Context) (string, error) { return c.networkData, nil }
func (c hostConfig) MetaData(context.Context) (string, error)    { return c.metaData, nil }

// controller drives one BareMetalHost as BMO's BareMetalHost controller
// and its HostFirmwareSettings / HostFirmwareComponents controllers do:
// each reconcile asks the factory for a fresh provisioner, calls TryInit,
// registers the host (Register, in every state but deleting) and runs the
// action of the host's provisioning state, moving it to the next state
// when the action is complete. It keeps the BareMetalHost in memory in
// place of the Kubernetes API.
type controller struct {
	t       *testing.T
	factory provisioner.Factory
	host    metal3api.BareMetalHost
	creds   bmc.Credentials
	config  hostConfig
	// preprovNetworkData is the host's preprovisioning network data.
	preprovNetworkData string
	deleted            bool // the finalizer was removed: the object is gone

	// The HostFirmwareSettings and HostFirmwareComponents specs (what the
	// user wants) and what their controllers last read from the provisioner.
	fwSettings     metal3api.DesiredSettingsMap
	fwSettingsRead metal3api.SettingsMap
	fwUpdates      []metal3api.FirmwareUpdate
	fwUpdatesDone  []metal3api.FirmwareUpdate
	// updatePolicy is a HostUpdatePolicy with firmwareSettings and
	// firmwareUpdates onReboot: changes are applied to a provisioned host
	// by servicing when it is powered on.
	updatePolicy bool

	events  []string
	entered time.Time // when the current state began
	times   []stateTime
}

type stateTime struct {
	State metal3api.ProvisioningState
	Took  time.Duration
}

func (c *controller) publish(reason, message string) {
	c.t.Logf("%s event %s: %s", c.host.Name, reason, message)
	c.events = append(c.events, reason)
}

// errActionFailed is an action's provisioner.Result.ErrorMessage: the
// host would go to an error state.
var errActionFailed = errors.New("action failed")

// reconcile is one pass of the controller. It returns when to come back.
func (c *controller) reconcile(ctx context.Context) (time.Duration, error) {
	h := &c.host
	prov, err := c.factory.NewProvisioner(ctx, provisioner.BuildHostData(*h, c.creds), c.publish)
	if err != nil {
		return 0, fmt.Errorf("failed to create provisioner: %w", err)
	}
	ready, err := prov.TryInit(ctx)
	if err != nil || !ready {
		return 0, fmt.Errorf("provisioner is not ready (%v)", err)
	}

	state := h.Status.Provisioning.State
	next := state
	if !h.DeletionTimestamp.IsZero() { // checkInitiateDelete
		switch state {
		case metal3api.StateRegistering, metal3api.StateNone:
			next = metal3api.StateDeleting
		case metal3api.StateProvisioning, metal3api.StateProvisioned:
			next = metal3api.StateDeprovisioning
		case metal3api.StateDeprovisioning, metal3api.StatePoweringOffBeforeDelete, metal3api.StateDeleting:
		default:
			next = metal3api.StatePoweringOffBeforeDelete
		}
		if next != state {
			c.enter(next)
			return 0, nil
		}
	}

	if state != metal3api.StateNone && state != metal3api.StateDeleting { // ensureRegistered
		done, wait, err := c.register(ctx, prov)
		if err != nil || !done {
			return wait, err
		}
	}

	var res provisioner.Result
	switch state {
	case metal3api.StateNone:
		next = metal3api.StateRegistering
	case metal3api.StateRegistering:
		next = metal3api.StateInspecting
		if h.InspectionDisabled() {
			next = metal3api.StatePreparing
		}
	case metal3api.StateInspecting:
		var details *metal3api.HardwareDetails
		res, _, details, err = prov.InspectHardware(ctx, provisioner.InspectData{BootMode: h.Status.Provisioning.BootMode},
			h.Status.ErrorType == metal3api.InspectionError, false, false)
		if err == nil && res.ErrorMessage == "" && !res.Dirty && details != nil {
			h.Status.HardwareDetails = details
			next = metal3api.StatePreparing
		} else if err == nil && details == nil && res.ErrorMessage == "" {
			res.Dirty = true
		}
	case metal3api.StatePreparing:
		res, err = c.prepare(ctx, prov)
		if err == nil && res.ErrorMessage == "" && !res.Dirty {
			next = metal3api.StateAvailable
		}
	case metal3api.StateAvailable:
		if c.provisioningSettingsDirty() || c.firmwareDirty() {
			next = metal3api.StatePreparing
		} else if h.NeedsProvisioning() {
			next = metal3api.StateProvisioning
		} else {
			res, err = c.managePower(ctx, prov)
		}
	case metal3api.StateProvisioning:
		if h.Spec.Image == nil {
			next = metal3api.StateDeprovisioning
			break
		}
		hwProf, perr := profile.GetProfile(h.HardwareProfile())
		if perr != nil {
			return 0, perr
		}
		res, err = prov.Provision(ctx, provisioner.ProvisionData{Image: *h.Spec.Image.DeepCopy(), HostConfig: c.config,
			BootMode: h.Status.Provisioning.BootMode, HardwareProfile: hwProf,
			RootDeviceHints: h.Status.Provisioning.RootDeviceHints.DeepCopy()}, false)
		if err == nil && res.ErrorMessage == "" && !res.Dirty {
			h.Status.Provisioning.Image = *h.Spec.Image
			next = metal3api.StateProvisioned
		}
	case metal3api.StateProvisioned:
		if h.Spec.Image == nil || h.Spec.Image.URL != h.Status.Provisioning.Image.URL {
			next = metal3api.StateDeprovisioning
			break
		}
		res, err = prov.Adopt(ctx, provisioner.AdoptData{State: state}, h.Status.ErrorType == metal3api.ProvisionedRegistrationError)
		if err == nil && res.ErrorMessage == "" && !res.Dirty {
			res, err = c.managePower(ctx, prov)
		}
	case metal3api.StateDeprovisioning:
		if h.Status.Provisioning.Image.URL != "" {
			res, err = prov.Adopt(ctx, provisioner.AdoptData{State: state}, h.Status.ErrorType == metal3api.ProvisionedRegistrationError)
			if err != nil || res.ErrorMessage != "" || res.Dirty {
				break
			}
		}
		res, err = prov.Deprovision(ctx, h.Status.ErrorType == metal3api.ProvisioningError, h.Spec.AutomatedCleaningMode)
		if err == nil && res.ErrorMessage == "" && !res.Dirty {
			h.Status.Provisioning.Image = metal3api.Image{}
			h.Status.Provisioning.RootDeviceHints = nil
			h.Status.Provisioning.Firmware = nil
			next = metal3api.StateAvailable
			if !h.DeletionTimestamp.IsZero() {
				next = metal3api.StatePoweringOffBeforeDelete
			}
		}
	case metal3api.StatePoweringOffBeforeDelete:
		res, err = prov.PowerOff(ctx, metal3api.RebootModeHard, h.Status.ErrorType == metal3api.PowerManagementError, h.Spec.AutomatedCleaningMode)
		if err == nil && res.ErrorMessage == "" && !res.Dirty {
			h.Status.PoweredOn = false
			next = metal3api.StateDeleting
		}
	case metal3api.StateDeleting:
		res, err = prov.Delete(ctx)
		if err == nil && !res.Dirty {
			c.deleted = true
			c.leave()
			return 0, nil
		}
	default:
		return 0, fmt.Errorf("no handler for state %q", state)
	}
	if err != nil {
		return 0, fmt.Errorf("action %q failed: %w", state, err)
	}
	if res.ErrorMessage != "" {
		h.Status.ErrorMessage = res.ErrorMessage
		return 0, fmt.Errorf("%w in state %q: %s", errActionFailed, state, res.ErrorMessage)
	}
	h.Status.ErrorType, h.Status.ErrorMessage = "", ""
	if next != state {
		c.enter(next)
		return 0, nil
	}
	return res.RequeueAfter, nil
}

// enter moves the host to state s, recording how long the last one took.
func (c *controller) enter(s metal3api.ProvisioningState) {
	c.leave()
	c.t.Logf("%s: %s -> %s", c.host.Name, c.host.Status.Provisioning.State, s)
	c.host.Status.Provisioning.State = s
	c.entered = time.Now()
	switch s {
	case metal3api.StateRegistering, metal3api.StateInspecting, metal3api.StateProvisioning:
		c.host.Status.Provisioning.BootMode = c.host.BootMode()
	}
}

func (c *controller) leave() {
	if !c.entered.IsZero() {
		c.times = append(c.times, stateTime{c.host.Status.Provisioning.State, time.Since(c.entered)})
	}
	c.entered = time.Time{}
}

// register is BMO's registerHost: Register with the host's management
// data, then the firmware settings and components resources.
func (c *controller) register(ctx context.Context, prov provisioner.Provisioner) (done bool, wait time.Duration, err error) {
	h := &c.host
	var current *metal3api.Image
	if h.Status.Provisioning.Image.URL != "" {
		current = h.Status.Provisioning.Image.DeepCopy()
	} else if h.Status.Provisioning.State == metal3api.StateProvisioning && h.Spec.Image != nil {
		current = h.Spec.Image.DeepCopy()
	}
	credsChanged := h.Status.TriedCredentials.Reference == nil
	if credsChanged {
		h.Status.TriedCredentials.Reference = &corev1SecretRef
	}
	res, id, err := prov.Register(ctx, provisioner.ManagementAccessData{
		BootMode:              h.Status.Provisioning.BootMode,
		AutomatedCleaningMode: h.Spec.AutomatedCleaningMode,
		State:                 h.Status.Provisioning.State,
		OperationalStatus:     h.Status.OperationalStatus,
		CurrentImage:          current,
		CPUArchitecture:       "x86_64",
		// spec.preprovisioningNetworkDataName's secret, which BMO sets
		// as the node's network_data (no image builder here).
		PreprovisioningNetworkData: c.preprovNetworkData,
	}, credsChanged, h.Status.ErrorType == metal3api.RegistrationError)
	if err != nil {
		return false, 0, fmt.Errorf("failed to validate BMC access: %w", err)
	}
	if res.ErrorMessage != "" {
		h.Status.ErrorType = metal3api.RegistrationError
		return false, 0, fmt.Errorf("%w: registration: %s", errActionFailed, res.ErrorMessage)
	}
	if id != "" {
		h.Status.Provisioning.ID = id
	}
	if res.Dirty {
		return false, res.RequeueAfter, nil
	}
	// matchProfile: the default hardware profile, whose root device hints
	// apply unless the spec has its own.
	if h.Status.HardwareProfile == "" {
		name := h.Spec.HardwareProfile
		if name == "" {
			name = profile.DefaultProfileName
		}
		if _, err := profile.GetProfile(name); err != nil {
			return false, 0, fmt.Errorf("%w: %v", errActionFailed, err)
		}
		h.Status.HardwareProfile = name
		c.publish("ProfileSet", "Hardware profile set: "+name)
	}
	if hints := c.rootDeviceHints(); !reflect.DeepEqual(hints, h.Status.Provisioning.RootDeviceHints) {
		h.Status.Provisioning.RootDeviceHints = hints.DeepCopy()
	}
	if h.Status.GoodCredentials.Reference == nil {
		h.Status.GoodCredentials.Reference = &corev1SecretRef
		c.publish("BMCAccessValidated", "Verified access to BMC")
	}
	return true, 0, nil
}

// rootDeviceHints is BMO's updateRootDeviceHints: the spec's, or else the
// hardware profile's.
func (c *controller) rootDeviceHints() *metal3api.RootDeviceHints {
	if c.host.Spec.RootDeviceHints != nil {
		return c.host.Spec.RootDeviceHints
	}
	p, err := profile.GetProfile(c.host.HardwareProfile())
	if err != nil {
		return nil
	}
	return &p.RootDeviceHints
}

// provisioningSettingsDirty is BMO's getHostProvisioningSettings: the spec's
// root device hints or RAID config differ from those applied.
func (c *controller) provisioningSettingsDirty() bool {
	_, dirty := c.provisioningSettings()
	return dirty
}

func (c *controller) provisioningSettings() (metal3api.ProvisionStatus, bool) {
	h := &c.host
	st := *h.Status.Provisioning.DeepCopy()
	dirty := false
	if hints := c.rootDeviceHints(); !reflect.DeepEqual(hints, st.RootDeviceHints) {
		st.RootDeviceHints, dirty = hints.DeepCopy(), true
	}
	raid := h.Spec.RAID
	if (raid == nil || reflect.DeepEqual(raid, &metal3api.RAIDConfig{})) && st.RAID != nil {
		raid = &metal3api.RAIDConfig{HardwareRAIDVolumes: st.RAID.HardwareRAIDVolumes, SoftwareRAIDVolumes: []metal3api.SoftwareRAIDVolume{}}
		if len(raid.HardwareRAIDVolumes) == 0 {
			raid.HardwareRAIDVolumes = nil
		}
	}
	if !reflect.DeepEqual(raid, st.RAID) {
		st.RAID, dirty = raid.DeepCopy(), true
	}
	// spec.firmware (deprecated: no driver supports it) is left out; BIOS
	// settings come from HostFirmwareSettings (fwSettings).
	return st, dirty
}

// firmwareDirty is what the HostFirmwareSettings and HostFirmwareComponents
// controllers report: a wanted setting differs from the one read, or a
// wanted update has not been applied.
func (c *controller) firmwareDirty() bool {
	for k, v := range c.fwSettings {
		if c.fwSettingsRead[k] != v.String() {
			return true
		}
	}
	return len(c.pendingUpdates()) > 0
}

func (c *controller) pendingUpdates() []metal3api.FirmwareUpdate {
	var out []metal3api.FirmwareUpdate
	for _, u := range c.fwUpdates {
		done := false
		for _, d := range c.fwUpdatesDone {
			done = done || d == u
		}
		if !done {
			out = append(out, u)
		}
	}
	return out
}

// prepare is BMO's actionPreparing with its firmware resources: the
// settings read through the provisioner (as HostFirmwareSettings' status
// is), manual cleaning for RAID, BIOS settings and firmware updates.
func (c *controller) prepare(ctx context.Context, prov provisioner.Provisioner) (provisioner.Result, error) {
	h := &c.host
	if len(c.fwSettings) > 0 {
		read, _, err := prov.GetFirmwareSettings(ctx, false)
		if err != nil {
			return provisioner.Result{}, fmt.Errorf("reading firmware settings: %w", err)
		}
		c.fwSettingsRead = read
	}
	newStatus, bmhDirty := c.provisioningSettings()
	hfsDirty := false
	for k, v := range c.fwSettings {
		hfsDirty = hfsDirty || c.fwSettingsRead[k] != v.String()
	}
	pending := c.pendingUpdates()
	hfcDirty := len(pending) > 0
	data := provisioner.PrepareData{
		TargetRAIDConfig: newStatus.RAID.DeepCopy(),
		ActualRAIDConfig: h.Status.Provisioning.RAID.DeepCopy(),
		RootDeviceHints:  newStatus.RootDeviceHints.DeepCopy(),
		FirmwareConfig:   newStatus.Firmware.DeepCopy(),
	}
	if hfsDirty {
		data.ActualFirmwareSettings = c.fwSettingsRead
		data.TargetFirmwareSettings = c.fwSettings
	}
	if hfcDirty {
		data.TargetFirmwareComponents = pending
	}
	res, started, err := prov.Prepare(ctx, data, bmhDirty || hfsDirty || hfcDirty, h.Status.ErrorType == metal3api.PreparationError)
	if err != nil || res.ErrorMessage != "" {
		return res, err
	}
	if started && hfcDirty {
		c.fwUpdatesDone = append(c.fwUpdatesDone, pending...)
	}
	if started && bmhDirty {
		h.Status.Provisioning = newStatus
	}
	if !res.Dirty && len(c.fwSettings) > 0 { // HostFirmwareSettings reads the result
		read, _, err := prov.GetFirmwareSettings(ctx, false)
		if err != nil {
			return provisioner.Result{}, fmt.Errorf("reading firmware settings: %w", err)
		}
		c.fwSettingsRead = read
	}
	return res, nil
}

// managePower is BMO's manageHostPower: it records the power state the
// provisioner reads and turns the host on or off to match spec.online.
func (c *controller) managePower(ctx context.Context, prov provisioner.Provisioner) (provisioner.Result, error) {
	h := &c.host
	hw, err := prov.UpdateHardwareState(ctx)
	if err != nil {
		return provisioner.Result{}, fmt.Errorf("failed to update the host power status: %w", err)
	}
	if hw.PoweredOn != nil && *hw.PoweredOn != h.Status.PoweredOn {
		h.Status.PoweredOn = *hw.PoweredOn
		return provisioner.Result{Dirty: true}, nil
	}
	provisioned := h.Status.Provisioning.State == metal3api.StateProvisioned
	if c.updatePolicy && ((provisioned && !h.Status.PoweredOn && h.Spec.Online) ||
		h.Status.OperationalStatus == metal3api.OperationalStatusServicing) {
		if res, done, err := c.service(ctx, prov); err != nil || !done {
			return res, err
		}
	}
	if h.Status.PoweredOn == h.Spec.Online {
		return provisioner.Result{}, nil
	}
	var res provisioner.Result
	if h.Spec.Online {
		res, err = prov.PowerOn(ctx, h.Status.ErrorType == metal3api.PowerManagementError)
	} else {
		res, err = prov.PowerOff(ctx, metal3api.RebootModeSoft, h.Status.ErrorType == metal3api.PowerManagementError, h.Spec.AutomatedCleaningMode)
	}
	if err != nil || res.ErrorMessage != "" || res.Dirty {
		return res, err
	}
	h.Status.PoweredOn = h.Spec.Online
	return provisioner.Result{}, nil
}

// service is BMO's doServiceIfNeeded: the firmware settings and updates
// that changed since provisioning are applied by servicing before the
// host is powered on. done says there is nothing (left) to do.
func (c *controller) service(ctx context.Context, prov provisioner.Provisioner) (provisioner.Result, bool, error) {
	h := &c.host
	if len(c.fwSettings) > 0 { // HostFirmwareSettings' status, kept current
		read, _, err := prov.GetFirmwareSettings(ctx, false)
		if err != nil {
			return provisioner.Result{}, false, fmt.Errorf("reading firmware settings: %w", err)
		}
		c.fwSettingsRead = read
	}
	data := provisioner.ServicingData{HasFirmwareSpec: len(c.fwSettings) > 0 || len(c.fwUpdates) > 0}
	hfsDirty := false
	for k, v := range c.fwSettings {
		hfsDirty = hfsDirty || c.fwSettingsRead[k] != v.String()
	}
	if hfsDirty {
		data.ActualFirmwareSettings, data.TargetFirmwareSettings = c.fwSettingsRead, c.fwSettings
	}
	pending := c.pendingUpdates()
	data.TargetFirmwareComponents = pending
	changes := hfsDirty || len(pending) > 0
	if !changes && h.Status.OperationalStatus != metal3api.OperationalStatusServicing {
		return provisioner.Result{}, true, nil
	}
	if h.Status.OperationalStatus != metal3api.OperationalStatusServicing {
		h.Status.OperationalStatus = metal3api.OperationalStatusServicing
		c.t.Logf("%s: servicing", h.Name)
		return provisioner.Result{Dirty: true}, false, nil
	}
	res, started, err := prov.Service(ctx, data, changes, h.Status.ErrorType == metal3api.ServicingError)
	if err != nil {
		return res, false, fmt.Errorf("error servicing host: %w", err)
	}
	if res.ErrorMessage != "" {
		h.Status.ErrorType = metal3api.ServicingError
		return res, false, nil
	}
	if started && len(pending) > 0 {
		c.fwUpdatesDone = append(c.fwUpdatesDone, pending...)
	}
	if res.Dirty || started {
		return provisioner.Result{Dirty: true, RequeueAfter: res.RequeueAfter}, false, nil
	}
	h.Status.OperationalStatus = metal3api.OperationalStatusOK
	c.t.Logf("%s: servicing done", h.Name)
	return provisioner.Result{}, true, nil
}

// runUntil reconciles until done holds, a reconcile fails for good, or
// timeout passes. Transient errors are retried a few times, as
// controller-runtime requeues with backoff.
func (c *controller) runUntil(ctx context.Context, what string, timeout time.Duration, done func() bool) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	failures := 0
	for !done() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: host %s not done after %s (state %q, last error %v)", what, c.host.Name, timeout,
				c.host.Status.Provisioning.State, lastErr)
		}
		wait, err := c.reconcile(ctx)
		switch {
		case errors.Is(err, errActionFailed):
			return fmt.Errorf("%s: %w", what, err)
		case err != nil:
			failures++
			lastErr = err
			c.t.Logf("%s: reconcile error (%d): %v", c.host.Name, failures, err)
			if failures >= 5 {
				return fmt.Errorf("%s: host %s: %d reconciles failed in a row, the last: %w", what, c.host.Name, failures, err)
			}
			wait = time.Duration(failures) * 500 * time.Millisecond
		default:
			failures = 0
		}
		time.Sleep(min(wait, maxRequeue))
	}
	return nil
}
