package e2e

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/harness"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// TestNodeHealth follows a BMC's health into the node's health field (API
// 1.109): the Redfish emulator's System Status.Health is changed, and the
// conductor's power sync, reading it over HTTP as Ironic's redfish
// management does, shows each change and journals it in the node's
// history. The field is hidden and refused as a ?fields= below 1.109, and
// an ipmi node (whose management cannot read health) keeps null.
func TestNodeHealth(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	emu := redfish.New(redfish.Config{Username: "admin", Password: "pw", Logger: quiet,
		Machines: map[string]redfish.Machine{"m1": &machine{}},
		Hardware: map[string]redfish.Hardware{"m1": {CPUs: 1, Sockets: 1, MemoryGiB: 1}}})
	bmc := httptest.NewServer(emu)
	defer bmc.Close()
	c := client{t, harness.Start(t, service.Config{Hostname: "e2e",
		PowerSyncInterval: 300 * time.Millisecond}).URL}
	info := map[string]any{"redfish_address": bmc.URL, "redfish_username": "admin", "redfish_password": "pw",
		"redfish_system_id": "/redfish/v1/Systems/m1"}
	c.doVersion("1.109", "POST", "/v1/nodes", map[string]any{"driver": "redfish", "name": "rf", "driver_info": info}, 201)
	c.doVersion("1.109", "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "plain"}, 201)

	waitHealth := func(want any) time.Duration {
		t.Helper()
		start := time.Now()
		for deadline := start.Add(20 * time.Second); ; {
			n := c.doVersion("1.109", "GET", "/v1/nodes/rf", nil, 200)
			if n["health"] == want {
				return time.Since(start)
			}
			if time.Now().After(deadline) {
				t.Fatalf("health %v after 20s, want %v", n["health"], want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	d := waitHealth("OK")
	t.Logf("health OK shown %v after enrollment", d.Round(time.Millisecond))
	for _, h := range []string{"Critical", "Warning", "OK"} {
		emu.SetHealth("m1", h)
		d := waitHealth(h)
		t.Logf("BMC health %s shown after %v", h, d.Round(time.Millisecond))
	}

	hist := c.doVersion("1.109", "GET", "/v1/nodes/rf/history?detail=true", nil, 200)
	var changes []string
	evs, _ := hist["history"].([]any)
	for _, e := range evs {
		m := e.(map[string]any)
		if m["event_type"] == "monitoring" {
			changes = append(changes, m["event"].(string))
			if m["severity"] != "INFO" {
				t.Errorf("history event %v: severity %v, want INFO", m["event"], m["severity"])
			}
		}
	}
	want := []string{"health='OK' (previously 'None')", "health='Critical' (previously 'OK')",
		"health='Warning' (previously 'Critical')", "health='OK' (previously 'Warning')"}
	if len(changes) != len(want) {
		t.Fatalf("monitoring history %q, want %d changes", changes, len(want))
	}
	for i, w := range want {
		if !strings.HasSuffix(changes[i], w) {
			t.Errorf("history change %d: %q, want ...%s", i, changes[i], w)
		}
	}

	// Hidden and refused below 1.109; null where management cannot read it.
	if n := c.doVersion("1.108", "GET", "/v1/nodes/rf", nil, 200); n["health"] != nil || hasKey(n, "health") {
		t.Errorf("health shown at 1.108: %v", n["health"])
	}
	c.doVersion("1.108", "GET", "/v1/nodes/rf?fields=health", nil, 406)
	if n := c.doVersion("1.109", "GET", "/v1/nodes/plain?fields=health", nil, 200); !hasKey(n, "health") || n["health"] != nil {
		t.Errorf("fake node health %v, want null", n)
	}
	c.doVersion("1.109", "PATCH", "/v1/nodes/rf", []map[string]any{{"op": "replace", "path": "/health", "value": "OK"}}, 400)
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }
