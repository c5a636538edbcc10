package driver

import "context"

// Indicator components, as Ironic names the parts of a machine that carry
// indicators (ironic.common.components).
const (
	ComponentChassis = "chassis"
	ComponentSystem  = "system"
	ComponentDisk    = "disk"
	ComponentPower   = "power"
	ComponentNIC     = "nic"
)

// Indicator states (ironic.common.indicator_states).
const (
	IndicatorOff      = "off"
	IndicatorOn       = "on"
	IndicatorBlinking = "blinking"
	IndicatorUnknown  = "unknown"
)

// IndicatorStates are the states Ironic knows, in its order.
var IndicatorStates = []string{IndicatorOff, IndicatorOn, IndicatorBlinking, IndicatorUnknown}

// Indicator describes one indicator (an LED) of a component.
type Indicator struct {
	// ReadOnly: the indicator can be read but not set.
	ReadOnly bool
	// States are the states it can be set to.
	States []string
}

// Indicators is a management interface that reads the machine's
// indicators (Ironic's get_supported_indicators and get_indicator_state,
// API 1.63). A management interface without it offers none, as Ironic's
// ipmitool.
type Indicators interface {
	// SupportedIndicators maps components to their indicators by id;
	// component "" means every component.
	SupportedIndicators(ctx context.Context, n *Node, component string) (map[string]map[string]Indicator, error)
	// IndicatorState reads one indicator: one of IndicatorStates.
	IndicatorState(ctx context.Context, n *Node, component, indicator string) (string, error)
}

// IndicatorSetter is an Indicators that can also set them (Ironic's
// set_indicator_state; its fake management cannot).
type IndicatorSetter interface {
	Indicators
	// SetIndicatorState sets one indicator to state (one of
	// IndicatorStates, already checked).
	SetIndicatorState(ctx context.Context, n *Node, component, indicator, state string) error
}

// UnknownIndicatorError is an indicator the machine does not have
// (Ironic's MissingParameterValue for it).
type UnknownIndicatorError struct{ Node, Component, Indicator string }

func (e *UnknownIndicatorError) Error() string {
	return "Unknown indicator " + e.Indicator + " for component " + e.Component + " of node " + e.Node
}
