package fake

import (
	"context"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
)

// The fake power interface reports what the conductor recorded and
// changes nothing.
func TestPower(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ recorded, want string }{
		{"", driver.PowerOff},
		{driver.PowerOn, driver.PowerOn},
		{driver.PowerOff, driver.PowerOff},
	} {
		n := &driver.Node{UUID: "n", PowerState: tc.recorded}
		if err := (Power{}).SetPowerState(ctx, n, driver.TargetPowerOff, time.Second); err != nil {
			t.Fatal(err)
		}
		if got, err := (Power{}).PowerState(ctx, n); err != nil || got != tc.want {
			t.Errorf("PowerState(recorded %q) = %q, %v, want %q", tc.recorded, got, err, tc.want)
		}
	}
}
