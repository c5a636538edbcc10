package fake

import (
	"context"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/driver"
)

var _ driver.Indicators = Management{}

// fakeIndicators are the indicators of Ironic's fake management: a
// read-only chassis LED and a system LED.
func fakeIndicators() map[string]map[string]driver.Indicator {
	return map[string]map[string]driver.Indicator{
		driver.ComponentChassis: {"led-0": {ReadOnly: true, States: []string{driver.IndicatorOff, driver.IndicatorOn}}},
		driver.ComponentSystem:  {"led": {States: []string{driver.IndicatorBlinking, driver.IndicatorOff, driver.IndicatorOn}}},
	}
}

// SupportedIndicators lists the fake indicators of component ("" for all).
func (Management) SupportedIndicators(_ context.Context, _ *driver.Node, component string) (map[string]map[string]driver.Indicator, error) {
	out := map[string]map[string]driver.Indicator{}
	for c, ind := range fakeIndicators() {
		if component == "" || component == c {
			out[c] = ind
		}
	}
	return out, nil
}

// IndicatorState reports every fake indicator on, as Ironic's fake
// management does.
func (Management) IndicatorState(_ context.Context, _ *driver.Node, component, indicator string) (string, error) {
	ind, ok := fakeIndicators()[component]
	if !ok {
		//lint:ignore ST1005 Ironic's text, word for word
		return "", fmt.Errorf("Invalid component %s specified.", component)
	}
	if _, ok := ind[indicator]; !ok {
		//lint:ignore ST1005 Ironic's text, word for word
		return "", fmt.Errorf("Invalid indicator %s specified.", indicator)
	}
	return driver.IndicatorOn, nil
}
