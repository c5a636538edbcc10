package bmc

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/stmcginnis/gofish/common"
	"github.com/stmcginnis/gofish/redfish"

	"github.com/ferric-metal/ferric/conductor/driver"
)

var _ driver.IndicatorSetter = (*Redfish)(nil)

// Indicators through Redfish, as Ironic's redfish management: the
// IndicatorLED of the system (id: its UUID), of each chassis it is in (id:
// the chassis' UUID, its Id when it has none) and of each drive of its
// storage (id: "<storage Id>:<drive Id>"). Only resources that report an
// IndicatorLED are listed; all can be set to blinking, off or on.

var ledToState = map[common.IndicatorLED]string{
	common.LitIndicatorLED:      driver.IndicatorOn,
	common.OffIndicatorLED:      driver.IndicatorOff,
	common.BlinkingIndicatorLED: driver.IndicatorBlinking,
	common.UnknownIndicatorLED:  driver.IndicatorUnknown,
}

func stateToLED(state string) (common.IndicatorLED, bool) {
	for led, s := range ledToState {
		if s == state {
			return led, true
		}
	}
	return "", false
}

// ledIndicator is one resource with an IndicatorLED.
type ledIndicator struct {
	component, id string
	led           common.IndicatorLED
	// set patches the resource's IndicatorLED.
	set func(common.IndicatorLED) error
}

// indicators lists the system's resources with an IndicatorLED, those of
// component only when it is not "".
func indicators(sys *redfish.ComputerSystem, component string) ([]ledIndicator, error) {
	var out []ledIndicator
	if component == "" || component == driver.ComponentSystem {
		if sys.IndicatorLED != "" {
			out = append(out, ledIndicator{component: driver.ComponentSystem, id: sys.UUID, led: sys.IndicatorLED,
				set: func(l common.IndicatorLED) error { sys.IndicatorLED = l; return sys.Update() }})
		}
	}
	if component == "" || component == driver.ComponentChassis {
		var links struct {
			Links struct{ Chassis common.Links }
		}
		if err := json.Unmarshal(sys.RawData, &links); err != nil {
			return nil, fmt.Errorf("reading the system's chassis links: %w", err)
		}
		for _, uri := range links.Links.Chassis.ToStrings() {
			ch, err := redfish.GetChassis(sys.GetClient(), uri)
			if err != nil {
				return nil, fmt.Errorf("reading chassis %s: %w", uri, err)
			}
			if ch.IndicatorLED == "" {
				continue
			}
			id := ch.UUID
			if id == "" {
				id = ch.ID
			}
			out = append(out, ledIndicator{component: driver.ComponentChassis, id: id, led: ch.IndicatorLED,
				set: func(l common.IndicatorLED) error { ch.IndicatorLED = l; return ch.Update() }})
		}
	}
	if component == "" || component == driver.ComponentDisk {
		storages, err := sys.Storage()
		if err != nil {
			return nil, fmt.Errorf("reading the system's storage: %w", err)
		}
		for _, st := range storages {
			drives, err := st.Drives()
			if err != nil {
				return nil, fmt.Errorf("reading the drives of storage %s: %w", st.ID, err)
			}
			for _, dr := range drives {
				if dr.IndicatorLED == "" {
					continue
				}
				out = append(out, ledIndicator{component: driver.ComponentDisk, id: st.ID + ":" + dr.ID, led: dr.IndicatorLED,
					set: func(l common.IndicatorLED) error { dr.IndicatorLED = l; return dr.Update() }})
			}
		}
	}
	return out, nil
}

// SupportedIndicators implements driver.Indicators.
func (d *Redfish) SupportedIndicators(ctx context.Context, n *driver.Node, component string) (map[string]map[string]driver.Indicator, error) {
	out := map[string]map[string]driver.Indicator{}
	err := d.withSystem(ctx, n, "indicators", func(sys *redfish.ComputerSystem) error {
		inds, err := indicators(sys, component)
		if err != nil {
			return fmt.Errorf("bmc: indicators of node %s: %w", n.UUID, err)
		}
		for _, in := range inds {
			if out[in.component] == nil {
				out[in.component] = map[string]driver.Indicator{}
			}
			out[in.component][in.id] = driver.Indicator{States: []string{driver.IndicatorBlinking, driver.IndicatorOff, driver.IndicatorOn}}
		}
		return nil
	})
	return out, err
}

// findIndicator returns the indicator id of component, or an UnknownIndicatorError.
func findIndicator(sys *redfish.ComputerSystem, n *driver.Node, component, id string) (ledIndicator, error) {
	inds, err := indicators(sys, component)
	if err != nil {
		return ledIndicator{}, err
	}
	for _, in := range inds {
		if in.id == id {
			return in, nil
		}
	}
	return ledIndicator{}, &driver.UnknownIndicatorError{Node: n.UUID, Component: component, Indicator: id}
}

// IndicatorState implements driver.Indicators.
func (d *Redfish) IndicatorState(ctx context.Context, n *driver.Node, component, indicator string) (state string, err error) {
	err = d.withSystem(ctx, n, "indicator state", func(sys *redfish.ComputerSystem) error {
		in, err := findIndicator(sys, n, component, indicator)
		if err != nil {
			return err
		}
		st, ok := ledToState[in.led]
		if !ok {
			st = driver.IndicatorUnknown
		}
		state = st
		return nil
	})
	return state, err
}

// SetIndicatorState implements driver.Indicators.
func (d *Redfish) SetIndicatorState(ctx context.Context, n *driver.Node, component, indicator, state string) error {
	led, ok := stateToLED(state)
	if !ok {
		return fmt.Errorf("bmc: unknown indicator state %q", state)
	}
	return d.withSystem(ctx, n, "set indicator state", func(sys *redfish.ComputerSystem) error {
		in, err := findIndicator(sys, n, component, indicator)
		if err != nil {
			return err
		}
		if err := in.set(led); err != nil {
			return fmt.Errorf("Redfish set %s indicator %s state %s failed for node %s. Error: %s",
				component, indicator, state, n.UUID, cleanErr(err))
		}
		return nil
	})
}
