package manager

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/store"
)

// Indicators (API 1.63), as Ironic's conductor: each call validates the
// node's management interface and asks it; one that is no
// driver.Indicators (ipmitool, noop) offers none, and one that is no
// driver.IndicatorSetter (fake) cannot set them: Ironic's
// UnsupportedDriverExtension. Ironic takes the node's exclusive lock for
// each call; reads here fail the same way on a locked node without taking
// the lock, and a change takes it only once the indicator is known, so
// that a refused request writes nothing.

// indicatorNode returns the node, its management interface and its
// indicators; ext names the operation in the unsupported error.
func (m *Manager) indicatorNode(uuid, ext string) (*store.Node, driver.Indicators, *driver.Node, error) {
	n, mg, err := m.nodeManagement(uuid)
	if err != nil {
		return nil, nil, nil, err
	}
	ind, ok := capability[driver.Indicators](m, n, "management")
	if !ok {
		return nil, nil, nil, userErr(ErrInvalidInput, "%s", unsupportedExt(n, ext).Error())
	}
	if n.Reservation != nil {
		return nil, nil, nil, lockErr(n)
	}
	dn := driverNode(n)
	if err := mg.Validate(dn); err != nil {
		return nil, nil, nil, userErr(ErrInvalidInput, "%v", err)
	}
	return n, ind, dn, nil
}

// indicatorErr maps a driver's indicator error to a user error.
func indicatorErr(err error) error {
	var unknown *driver.UnknownIndicatorError
	if errors.As(err, &unknown) {
		return userErr(ErrInvalidInput, "%s", unknown.Error())
	}
	return userErr(ErrInvalidInput, "%v", err)
}

// SupportedIndicators lists the node's indicators by component.
func (m *Manager) SupportedIndicators(ctx context.Context, uuid string) (map[string]map[string]driver.Indicator, error) {
	_, ind, dn, err := m.indicatorNode(uuid, "get_supported_indicators")
	if err != nil {
		return nil, err
	}
	out, err := ind.SupportedIndicators(ctx, dn, "")
	if err != nil {
		return nil, indicatorErr(err)
	}
	return out, nil
}

// IndicatorState reads one indicator of a component.
func (m *Manager) IndicatorState(ctx context.Context, uuid, component, indicator string) (string, error) {
	_, ind, dn, err := m.indicatorNode(uuid, "get_indicator_state")
	if err != nil {
		return "", err
	}
	state, err := ind.IndicatorState(ctx, dn, component, indicator)
	if err != nil {
		return "", indicatorErr(err)
	}
	return state, nil
}

// SetIndicatorState sets one indicator of a component to state, under the
// node's lock.
func (m *Manager) SetIndicatorState(ctx context.Context, uuid, component, indicator, state string) error {
	n, ind, dn, err := m.indicatorNode(uuid, "set_indicator_state")
	if err != nil {
		return err
	}
	set, ok := ind.(driver.IndicatorSetter)
	if !ok {
		return userErr(ErrInvalidInput, "%s", unsupportedExt(n, "set_indicator_state").Error())
	}
	if !slices.Contains(driver.IndicatorStates, state) {
		return userErr(ErrInvalidInput, "Invalid indicator state %s, valid states are %s.", state, strings.Join(driver.IndicatorStates, ", "))
	}
	known, err := ind.SupportedIndicators(ctx, dn, component)
	if err != nil {
		return indicatorErr(err)
	}
	if _, ok := known[component][indicator]; !ok {
		return indicatorErr(&driver.UnknownIndicatorError{Node: uuid, Component: component, Indicator: indicator})
	}
	if err := m.acquire(ctx, uuid, nil); err != nil {
		return err
	}
	defer m.unlock(ctx, uuid)
	if err := set.SetIndicatorState(ctx, dn, component, indicator, state); err != nil {
		return indicatorErr(err)
	}
	m.log.Info("manager: indicator set", "node", uuid, "component", component, "indicator", indicator, "state", state)
	return nil
}
