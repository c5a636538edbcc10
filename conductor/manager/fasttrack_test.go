package manager

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/store"
)

// TestIsFastTrack: fast-track applies when the conductor's flag or the
// node's driver_info.fast_track enables it, the agent is recorded and
// heartbeated within fast_track_timeout, and the machine is on.
func TestIsFastTrack(t *testing.T) {
	recent := time.Now().Add(-10 * time.Second).UTC().Format(heartbeatTimeFormat)
	stale := time.Now().Add(-301 * time.Second).UTC().Format(heartbeatTimeFormat)
	tests := []struct {
		name      string
		conductor bool
		info      any // driver_info.fast_track; nil: unset
		heartbeat string
		noAgent   bool
		power     string
		want      bool
	}{
		{"flag on, recent, on", true, nil, recent, false, driver.PowerOn, true},
		{"flag off (default)", false, nil, recent, false, driver.PowerOn, false},
		{"node on, flag off", false, true, recent, false, driver.PowerOn, true},
		{"node string yes", false, "yes", recent, false, driver.PowerOn, true},
		{"node opts out", true, "false", recent, false, driver.PowerOn, false},
		{"node unparsable: flag", true, "maybe", recent, false, driver.PowerOn, true},
		{"stale heartbeat", true, nil, stale, false, driver.PowerOn, false},
		{"never heartbeated", true, nil, "", false, driver.PowerOn, false},
		{"agent forgotten (powered off)", true, nil, recent, true, driver.PowerOn, false},
		{"machine off", true, nil, recent, false, driver.PowerOff, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			m := New(Config{Store: st, Hostname: "c", FastTrack: tc.conductor})
			n := fakeNode("71111111-2222-3333-4444-555555555555")
			n.PowerState = &tc.power
			if tc.info != nil {
				n.DriverInfo["fast_track"] = tc.info
			}
			if !tc.noAgent {
				n.DriverInternalInfo["agent_url"] = "http://192.0.2.1:9999"
				n.DriverInternalInfo["agent_secret_token"] = "t"
			}
			if tc.heartbeat != "" {
				n.DriverInternalInfo["agent_last_heartbeat"] = tc.heartbeat
			}
			if got := m.isFastTrack(context.Background(), n); got != tc.want {
				t.Errorf("isFastTrack = %v, want %v", got, tc.want)
			}
		})
	}
}
