package compute

import (
	"testing"

	"github.com/ferric-metal/ferric/conductor/store"
)

// TestState maps allocations and node states to Nova's statuses.
func TestState(t *testing.T) {
	str := func(s string) *string { return &s }
	node := func(prov, power string, mod func(n *store.Node)) *store.Node {
		n := &store.Node{UUID: "n", ProvisionState: prov, PowerState: str(power), DriverInternalInfo: store.Object{}}
		if mod != nil {
			mod(n)
		}
		return n
	}
	for _, tc := range []struct {
		name              string
		alloc             string
		task              string
		n                 *store.Node
		status, taskState string
		progress          int
		fault             string
	}{
		{"scheduling", "allocating", "", nil, "BUILD", "scheduling", 0, ""},
		{"no valid host", "error", "", nil, "ERROR", "", 0, "No valid host was found. "},
		{"allocated", "active", "", node("available", "power off", nil), "BUILD", "spawning", 0, ""},
		{"writing", "active", "", node("wait call-back", "power on", func(n *store.Node) {
			n.DriverInternalInfo["agent_progress"] = map[string]any{"bytes_written": float64(300), "total_bytes": float64(1000)}
		}), "BUILD", "spawning", 30, ""},
		{"active", "active", "", node("active", "power on", nil), "ACTIVE", "", 100, ""},
		{"shut off", "active", "", node("active", "power off", nil), "SHUTOFF", "", 100, ""},
		{"hard reboot", "active", "reboot_started_hard", node("active", "power on", func(n *store.Node) { n.TargetPowerState = str("rebooting") }),
			"HARD_REBOOT", "reboot_started_hard", 100, ""},
		{"reboot done", "active", "reboot_started", node("active", "power on", nil), "ACTIVE", "", 100, ""},
		{"password", "active", "updating_password", node("active", "power on", nil), "PASSWORD", "updating_password", 100, ""},
		{"rebuilding", "active", "rebuilding", node("deploying", "power on", nil), "REBUILD", "rebuild_spawning", 0, ""},
		{"deploy failed", "active", "", node("deploy failed", "power off", func(n *store.Node) { n.LastError = str("image write failed") }),
			"ERROR", "", 0, "image write failed"},
		{"rescue", "active", "", node("rescue", "power on", nil), "RESCUE", "", 0, ""},
		{"deleting", "active", "deleting", node("cleaning", "power off", nil), "ACTIVE", "deleting", 0, ""},
		{"deleted", "active", "deleting", node("available", "power off", nil), "DELETED", "deleting", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &store.Allocation{UUID: "a", State: tc.alloc}
			s := &server{a: a, rec: record{Task: tc.task}, n: tc.n}
			st := s.state()
			if st.status != tc.status || st.task != tc.taskState || st.progress != tc.progress || st.fault != tc.fault {
				t.Fatalf("state %+v, want %s/%s/%d/%q", st, tc.status, tc.taskState, tc.progress, tc.fault)
			}
		})
	}
}
