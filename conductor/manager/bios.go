package manager

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/internal/python"
	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// BIOS settings, as Ironic's bios interfaces: the settings a node's bios
// interface reads (with the BMC's attribute registry) are cached in the
// store (listed by the API) when the node is verified, when cleaning
// starts and after the BIOS steps; the clean and deploy steps
// bios.apply_configuration and bios.factory_reset run in the conductor:
// they ask the BMC for the change, reboot the machine (into the ramdisk
// again, so that the clean or deploy goes on) and, once its agent is back,
// check that the change took effect.

// biosStateKey keeps a BIOS (or firmware.update) step's progress across
// its reboot in driver_internal_info.
const biosStateKey = "bios_state"

// nodeBIOS reads the node and its bios interface (nil for no-bios and
// fake).
func (m *Manager) nodeBIOS(uuid string) (*store.Node, driver.BIOS, error) {
	n, err := m.st.Node(uuid)
	if err != nil {
		return nil, nil, err
	}
	b, err := m.bios(n)
	return n, b, err
}

// cacheBIOS refreshes the node's cached BIOS settings. As Ironic's, it
// never fails its caller: errors are logged.
func (m *Manager) cacheBIOS(ctx context.Context, uuid string) {
	n, err := m.st.Node(uuid)
	if err != nil {
		return
	}
	b, err := m.bios(n)
	if b == nil || err != nil {
		if err != nil {
			m.log.Warn("manager: caching BIOS settings", "node", uuid, "err", err)
		}
		return
	}
	snap, err := b.ReadBIOS(ctx, driverNode(n))
	if errors.Is(err, driver.ErrNoBIOS) {
		m.log.Warn("manager: BIOS settings are not supported, skipping", "node", uuid)
		return
	}
	if err != nil {
		m.log.Warn("manager: caching BIOS settings failed", "node", uuid, "err", err)
		return
	}
	// The registry's description of each setting, when the BMC has one
	// (Ironic logs and goes on without it).
	if snap.RegistryErr != nil {
		m.log.Info("manager: no BIOS attribute registry", "node", uuid, "err", snap.RegistryErr)
	}
	settings := make([]store.BIOSSetting, 0, len(snap.Values))
	for name, v := range snap.Values {
		st := store.BIOSSetting{Name: name, Value: biosString(v)}
		if a, ok := snap.Registry[name]; ok {
			if a.Type != "" {
				t := a.Type
				st.AttributeType = &t
			}
			st.AllowableValues = a.AllowableValues
			st.LowerBound, st.UpperBound, st.MinLength, st.MaxLength = a.LowerBound, a.UpperBound, a.MinLength, a.MaxLength
			st.ReadOnly, st.ResetRequired, st.Unique = a.ReadOnly, a.ResetRequired, a.Unique
		}
		settings = append(settings, st)
	}
	var c, u, d int
	err = m.st.Update(ctx, func(tx store.Tx) error {
		var err error
		c, u, d, err = tx.SyncBIOSSettings(uuid, settings)
		return err
	})
	if err != nil {
		m.log.Warn("manager: storing BIOS settings failed", "node", uuid, "err", err)
		return
	}
	m.log.Info("manager: BIOS settings cached", "node", uuid, "settings", len(settings), "created", c, "updated", u, "deleted", d)
}

// biosString is the text of a BIOS value as Ironic stores it (Python's
// str() of the JSON value).
func biosString(v any) *string {
	var s string
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		s = x
	case bool:
		s = "False"
		if x {
			s = "True"
		}
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	default:
		s = fmt.Sprint(x)
	}
	return &s
}

// biosValue converts a requested value to the JSON type of the setting's
// current value (BMCs refuse "4" for a number), as Ironic converts by the
// BIOS registry's attribute types.
func biosValue(name string, want, current any) (any, error) {
	s, isStr := want.(string)
	switch current.(type) {
	case float64:
		if isStr {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil {
				return nil, fmt.Errorf("BIOS setting %s takes a number, not %q", name, s)
			}
			return f, nil
		}
	case bool:
		if isStr {
			b, ok := protocol.ParseBool(s)
			if !ok {
				return nil, fmt.Errorf("BIOS setting %s takes a boolean, not %q", name, s)
			}
			return b, nil
		}
	}
	return want, nil
}

// biosSettingsArg reads apply_configuration's settings argument: a list
// of {"name", "value"}.
func biosSettingsArg(args map[string]any) (map[string]any, error) {
	raw, ok := args["settings"].([]any)
	if !ok || len(raw) == 0 {
		return nil, errors.New(`apply_configuration needs the argument "settings", a non-empty list of {"name": ..., "value": ...}`)
	}
	out := make(map[string]any, len(raw))
	for _, r := range raw {
		s, ok := r.(map[string]any)
		name, _ := s["name"].(string)
		if !ok || name == "" {
			return nil, fmt.Errorf("invalid BIOS setting %s: each needs a name and a value", python.Repr(r))
		}
		v, ok := s["value"]
		if !ok {
			return nil, fmt.Errorf("BIOS setting %s has no value", name)
		}
		out[name] = v
	}
	return out, nil
}

// biosStep runs one step of the bios interface. The first call asks for
// the change and reboots the machine; it then reports wait, the node is
// in clean wait, and the next heartbeat of the rebooted agent calls it
// again to verify.
func (m *Manager) biosStep(ctx context.Context, uuid string, st map[string]any) (wait bool, err error) {
	n, b, err := m.nodeBIOS(uuid)
	if err != nil {
		return false, err
	}
	step, _ := st["step"].(string)
	if b == nil {
		if m.isFake(n, "bios") && (step == "apply_configuration" || step == "factory_reset") {
			return false, nil // Ironic's fake bios steps do nothing
		}
		return false, fmt.Errorf("the bios interface %s of node %s has no step %s", n.Interfaces["bios"], uuid, step)
	}
	dn := driverNode(n)
	state, _ := n.DriverInternalInfo[biosStateKey].(map[string]any)
	rebooted, _ := state["reboot_requested"].(bool)
	if !rebooted {
		requested, changed, err := m.biosRequest(ctx, n, b, st)
		if err != nil || !changed {
			return false, err
		}
		return true, m.rebootForStep(ctx, uuid, map[string]any{"reboot_requested": true, "requested_attributes": requested})
	}
	// Back after the reboot: check the change took effect.
	if err := m.update(ctx, uuid, func(n *store.Node) error {
		delete(n.DriverInternalInfo, biosStateKey)
		return nil
	}); err != nil {
		return false, err
	}
	defer m.cacheBIOS(ctx, uuid)
	requested, _ := state["requested_attributes"].(map[string]any)
	return false, biosApplied(ctx, b, dn, step, requested)
}

// biosRequest asks the BMC for a bios step's change; changed is false when
// the settings asked for are already set (no reboot needed).
func (m *Manager) biosRequest(ctx context.Context, n *store.Node, b driver.BIOS, st map[string]any) (requested map[string]any, changed bool, err error) {
	uuid, dn := n.UUID, driverNode(n)
	step, _ := st["step"].(string)
	switch step {
	case "apply_configuration":
		args, _ := st["args"].(map[string]any)
		want, err := biosSettingsArg(args)
		if err != nil {
			return nil, false, err
		}
		if err := m.checkBIOSSettings(uuid, want); err != nil {
			return nil, false, err
		}
		current, err := b.BIOSSettings(ctx, dn)
		if err != nil {
			return nil, false, err
		}
		requested = map[string]any{}
		for name, v := range want {
			if requested[name], err = biosValue(name, v, current[name]); err != nil {
				return nil, false, err
			}
		}
		if allMatch(requested, current) {
			m.log.Info("manager: the BIOS settings asked for are already set, no reboot", "node", uuid)
			return requested, false, nil
		}
		if err := b.ApplyBIOSSettings(ctx, dn, requested); err != nil {
			return nil, false, err
		}
	case "factory_reset":
		if err := b.ResetBIOS(ctx, dn); err != nil {
			return nil, false, err
		}
	default:
		return nil, false, fmt.Errorf("the bios interface %s has no step %s", n.Interfaces["bios"], step)
	}
	return requested, true, nil
}

// biosApplied checks, after the reboot, that an apply_configuration took
// effect (Ironic's message names the settings that did not).
func biosApplied(ctx context.Context, b driver.BIOS, dn *driver.Node, step string, requested map[string]any) error {
	if step != "apply_configuration" || len(requested) == 0 {
		return nil
	}
	current, err := b.BIOSSettings(ctx, dn)
	if err != nil {
		return err
	}
	var missed []string
	for name, v := range requested {
		if current[name] != v {
			missed = append(missed, fmt.Sprintf("'%s': %s", name, python.Repr(v)))
		}
	}
	if missed != nil {
		sort.Strings(missed)
		//lint:ignore ST1005 Ironic's last_error text, word for word
		return fmt.Errorf("Redfish BIOS apply_configuration step failed. Attributes {%s} are not updated.", strings.Join(missed, ", "))
	}
	return nil
}

// checkBIOSSettings refuses requested settings that the cached registry
// says are read-only or out of range, as Ironic validates them before
// asking the BMC; settings the registry does not describe pass.
func (m *Manager) checkBIOSSettings(uuid string, want map[string]any) error {
	cached, err := m.st.BIOSSettings(uuid)
	if err != nil {
		return err
	}
	known := make(map[string]store.BIOSSetting, len(cached))
	for _, c := range cached {
		known[c.Name] = c
	}
	var invalid []string
	for name, v := range want {
		c, ok := known[name]
		if !ok {
			continue
		}
		if c.ReadOnly != nil && *c.ReadOnly {
			invalid = append(invalid, name)
			continue
		}
		s := fmt.Sprint(v)
		switch deref(c.AttributeType) {
		case "Enumeration":
			if len(c.AllowableValues) > 0 && !slices.Contains(c.AllowableValues, s) {
				invalid = append(invalid, name)
			}
		case "Integer":
			f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || f != float64(int64(f)) ||
				(c.LowerBound != nil && int64(f) < *c.LowerBound) || (c.UpperBound != nil && int64(f) > *c.UpperBound) {
				invalid = append(invalid, name)
			}
		case "String":
			if (c.MinLength != nil && int64(len(s)) < *c.MinLength) || (c.MaxLength != nil && int64(len(s)) > *c.MaxLength) {
				invalid = append(invalid, name)
			}
		}
	}
	if invalid != nil {
		sort.Strings(invalid)
		//lint:ignore ST1005 Ironic's last_error text, word for word
		return fmt.Errorf("Redfish BIOS apply_configuration failed for node %s: invalid value for setting(s): %s", uuid, strings.Join(invalid, ", "))
	}
	return nil
}

func allMatch(want, current map[string]any) bool {
	for k, v := range want {
		if cur, ok := current[k]; !ok || cur != v {
			return false
		}
	}
	return true
}

// rebootForStep records a step's state, sets the machine to boot the
// ramdisk again, reboots it and leaves the node waiting for the new
// agent (whose lookup is issued a new token), as Ironic's
// reboot_to_finish_step does.
func (m *Manager) rebootForStep(ctx context.Context, uuid string, state map[string]any) error {
	if err := m.update(ctx, uuid, func(n *store.Node) error {
		n.DriverInternalInfo[biosStateKey] = state
		clearAgent(n)
		return nil
	}); err != nil {
		return err
	}
	n, err := m.st.Node(uuid)
	if err != nil {
		return err
	}
	if err := m.bootRamdisk(ctx, n); err != nil {
		return err
	}
	return m.fire(ctx, uuid, sm.EventWait, func(n *store.Node) { n.Reservation = nil })
}

// biosStepNames are the steps of a bios interface that reads settings.
var biosStepNames = []string{"apply_configuration", "factory_reset"}

func isBIOSStep(st map[string]any) bool {
	iface, _ := st["interface"].(string)
	step, _ := st["step"].(string)
	return iface == "bios" && slices.Contains(biosStepNames, step)
}
