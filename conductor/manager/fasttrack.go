package manager

import (
	"context"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/store"
)

// DefaultFastTrackTimeout is how recent an agent's heartbeat must be for
// the conductor to reuse the running ramdisk (Ironic's
// [deploy]fast_track_timeout).
const DefaultFastTrackTimeout = 300 * time.Second

// heartbeatTimeFormat is how agent_last_heartbeat is kept: RFC 3339 in
// UTC with microseconds, as Ironic's ISO 8601 time stamps.
const heartbeatTimeFormat = "2006-01-02T15:04:05.000000Z07:00"

// fastTrackEnabled reports whether fast-track applies to n: its
// driver_info.fast_track (a boolean or one of oslo's boolean words) or,
// without it, the conductor's setting, as Ironic's fast_track_enabled.
func (m *Manager) fastTrackEnabled(n *store.Node) bool {
	switch v := n.DriverInfo["fast_track"].(type) {
	case bool:
		return v
	case string:
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "1", "t", "true", "on", "y", "yes":
			return true
		case "0", "f", "false", "off", "n", "no":
			return false
		}
	}
	return m.cfg.FastTrack
}

// agentAlive reports whether n's agent heartbeated within the fast-track
// timeout and the conductor still holds its URL and token.
func (m *Manager) agentAlive(n *store.Node) bool {
	d := n.DriverInternalInfo
	if u, _ := d["agent_url"].(string); u == "" {
		return false
	}
	if tok, _ := d["agent_secret_token"].(string); tok == "" {
		return false
	}
	s, _ := d["agent_last_heartbeat"].(string)
	at, err := time.Parse(time.RFC3339Nano, s)
	return err == nil && time.Since(at) <= m.cfg.FastTrackTimeout
}

// isFastTrack reports whether the next operation on n reuses its running
// agent instead of booting the ramdisk again, as Ironic's is_fast_track:
// fast-track is enabled for the node, its agent heartbeated within
// fast_track_timeout, and the BMC says the machine is on.
func (m *Manager) isFastTrack(ctx context.Context, n *store.Node) bool {
	if !m.fastTrackEnabled(n) || !m.agentAlive(n) {
		return false
	}
	pw, err := m.power(n)
	if err != nil {
		return false
	}
	st, err := pw.PowerState(ctx, driverNode(n))
	if err != nil || st != driver.PowerOn {
		m.log.Info("manager: fast-track: agent heard recently but the machine is not on; booting the ramdisk", "node", n.UUID, "power", st, "err", err)
		return false
	}
	m.log.Info("manager: fast-track: reusing the running agent", "node", n.UUID, "last_heartbeat", n.DriverInternalInfo["agent_last_heartbeat"])
	return true
}
