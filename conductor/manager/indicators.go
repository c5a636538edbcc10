package manager

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/ferric-metal/ferric/conductor/driver"
)

// Indicators (API 1.63), as Ironic's conductor: each call takes the node's
// lock, validates the management interface and asks it; a management
// interface that is no driver.Indicators (ipmitool, noop) offers none and
// the call fails with Ironic's UnsupportedDriverExtension.

// indicatorCall runs fn with the node's indicators capability under its
// lock; ext names the operation in the unsupported error.
func (m *Manager) indicatorCall(ctx context.Context, uuid, ext string, fn func(driver.Indicators, *driver.Node) error) error {
	n, mg, err := m.nodeManagement(uuid)
	if err != nil {
		return err
	}
	ind, ok := capability[driver.Indicators](m, n, "management")
	if !ok {
		return userErr(ErrInvalidInput, "%s", unsupportedExt(n, ext).Error())
	}
	if err := m.acquire(ctx, uuid, nil); err != nil {
		return err
	}
	defer m.unlock(ctx, uuid)
	dn := driverNode(n)
	if err := mg.Validate(dn); err != nil {
		return userErr(ErrInvalidInput, "%v", err)
	}
	err = fn(ind, dn)
	var unknown *driver.UnknownIndicatorError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, driver.ErrUnsupported):
		return userErr(ErrInvalidInput, "%s", unsupportedExt(n, ext).Error())
	case errors.As(err, &unknown):
		return userErr(ErrInvalidInput, "%s", unknown.Error())
	}
	return userErr(ErrInvalidInput, "%v", err)
}

// SupportedIndicators lists the node's indicators by component.
func (m *Manager) SupportedIndicators(ctx context.Context, uuid string) (map[string]map[string]driver.Indicator, error) {
	var out map[string]map[string]driver.Indicator
	err := m.indicatorCall(ctx, uuid, "get_supported_indicators", func(ind driver.Indicators, dn *driver.Node) error {
		var err error
		out, err = ind.SupportedIndicators(ctx, dn, "")
		return err
	})
	return out, err
}

// IndicatorState reads one indicator of a component.
func (m *Manager) IndicatorState(ctx context.Context, uuid, component, indicator string) (string, error) {
	var state string
	err := m.indicatorCall(ctx, uuid, "get_indicator_state", func(ind driver.Indicators, dn *driver.Node) error {
		var err error
		state, err = ind.IndicatorState(ctx, dn, component, indicator)
		return err
	})
	return state, err
}

// SetIndicatorState sets one indicator of a component to state.
func (m *Manager) SetIndicatorState(ctx context.Context, uuid, component, indicator, state string) error {
	if !slices.Contains(driver.IndicatorStates, state) {
		return userErr(ErrInvalidInput, "Invalid indicator state %s, valid states are %s.", state, strings.Join(driver.IndicatorStates, ", "))
	}
	return m.indicatorCall(ctx, uuid, "set_indicator_state", func(ind driver.Indicators, dn *driver.Node) error {
		return ind.SetIndicatorState(ctx, dn, component, indicator, state)
	})
}
