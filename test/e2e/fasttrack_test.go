package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/harness"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// bootCounter is a machine behind the Redfish emulator that records each
// start it is asked for (a power-on of the machine while off, or a reset)
// with the device it starts from: what the BMC saw.
type bootCounter struct {
	mu    sync.Mutex
	on    bool
	boot  string
	boots []string // device of each start, in order
}

func (m *bootCounter) Running(context.Context) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.on, nil
}
func (m *bootCounter) PowerOn(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.on {
		m.boots = append(m.boots, m.boot)
	}
	m.on = true
	return nil
}
func (m *bootCounter) PowerOff(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.on = false
	return nil
}
func (m *bootCounter) Shutdown(ctx context.Context) error { return m.PowerOff(ctx) }
func (m *bootCounter) Reset(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.boots = append(m.boots, m.boot)
	return nil
}
func (m *bootCounter) InjectNMI(context.Context) error { return nil }
func (m *bootCounter) SetBootDevice(_ context.Context, d string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.boot = d
	return nil
}

// ramdiskBoots counts the starts from the network (the ramdisk) and
// returns all starts.
func (m *bootCounter) ramdiskBoots() (int, []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, b := range m.boots {
		if b == "pxe" {
			n++
		}
	}
	return n, append([]string(nil), m.boots...)
}

// TestFastTrackThroughAgent takes a redfish node (the lab's Redfish
// emulator, counting the starts it is asked for) whose "machine" is one
// ferric-agent process through manage, in-band inspection, provide
// (automated cleaning) and deploy, as Ironic's fast-track:
//   - fast-track on (the conductor's flag, or only the node's
//     driver_info.fast_track): the ramdisk starts once, for inspection;
//     the agent stays up (the machine on) through cleaning, and the
//     machine is powered off only for the deploy's boot into the instance;
//   - fast-track off (today's flow): the ramdisk starts for each of
//     inspection, cleaning and deploy, and the machine is off in between;
//   - a heartbeat older than fast_track_timeout: cleaning and deploy
//     boot the ramdisk again, as without fast-track.
func TestFastTrackThroughAgent(t *testing.T) {
	agentBin := buildAgent(t)
	image := make([]byte, 6<<20)
	rand.Read(image[:1<<20])
	writeMBR(image)
	sum := sha256.Sum256(image)
	imgURL := serveContent(t, "image.raw", time.Now(), image)

	cases := []struct {
		name      string
		conductor bool          // --fast-track
		node      any           // driver_info.fast_track (nil: unset)
		timeout   time.Duration // --fast-track-timeout (0: default)
		hbEvery   string        // the agent's heartbeat interval
		stale     bool          // let the heartbeat go stale before provide
		// wantBoots: ramdisk starts for inspect, provide, deploy.
		wantBoots int
	}{
		{name: "conductor flag", conductor: true, hbEvery: "2s", wantBoots: 1},
		{name: "node driver_info", node: true, hbEvery: "2s", wantBoots: 1},
		{name: "off", hbEvery: "2s", wantBoots: 3},
		{name: "node opts out", conductor: true, node: "false", hbEvery: "2s", wantBoots: 3},
		// Heartbeats every 8 s, fast_track_timeout 1 s: cleaning and
		// deploy each find the agent stale and boot the ramdisk.
		{name: "stale heartbeat", conductor: true, timeout: time.Second, hbEvery: "8s", stale: true, wantBoots: 3},
	}
	for i, tc := range cases {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			m := &bootCounter{}
			emu := redfish.New(redfish.Config{Username: "admin", Password: "pw", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				Machines: map[string]redfish.Machine{"m1": m}})
			bmc := httptest.NewServer(emu)
			defer bmc.Close()
			base := harness.Start(t, service.Config{Hostname: "e2e-fast", AutomatedClean: true,
				FastTrack: tc.conductor, FastTrackTimeout: tc.timeout}).URL
			c := client{t, base}
			info := map[string]any{"redfish_address": bmc.URL, "redfish_username": "admin", "redfish_password": "pw",
				"redfish_system_id": "/redfish/v1/Systems/m1",
				"deploy_kernel":     "http://example.invalid/k", "deploy_ramdisk": "http://example.invalid/r"}
			if tc.node != nil {
				info["fast_track"] = tc.node
			}
			node := c.do("POST", "/v1/nodes", map[string]any{"driver": "redfish", "name": "ft", "inspect_interface": "agent",
				"deploy_interface": "direct", "driver_info": info}, 201)
			mac := fmt.Sprintf("52:54:00:f7:00:%02x", i+1)
			c.do("POST", "/v1/ports", map[string]any{"address": mac, "node_uuid": node["uuid"]}, 201)
			c.do("PUT", "/v1/nodes/ft/states/provision", map[string]any{"target": "manage"}, 202)
			c.waitState("ft", "manageable", 30*time.Second)

			disk := newDisk(t, nil, 5<<30) // sparse; inspection wants 4 GiB at least
			t0 := time.Now()
			c.do("PUT", "/v1/nodes/ft/states/provision", map[string]any{"target": "inspect"}, 202)
			qemuWaitNode(t, c, "ft", "in inspect wait", 30*time.Second, func(n map[string]any) bool {
				return n["provision_state"] == "inspect wait" && n["reservation"] == nil
			})
			// The "machine" boots: one agent for the whole test.
			port := harness.FreePort(t)
			startAgent(t, agentBin, "--api-url", base, "--inspection-callback-url", base+"/v1/continue_inspection",
				"--disk", disk, "--mac", mac, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--advertise-host", "127.0.0.1",
				"--advertise-port", fmt.Sprint(port), "--heartbeat-interval", tc.hbEvery, "--lookup-max", "1s",
				"--forced-heartbeat-gap", "100ms")
			n := c.waitState("ft", "manageable", 60*time.Second)
			fast := tc.wantBoots == 1 || tc.stale
			if want := map[bool]string{true: "power on", false: "power off"}[fast]; n["power_state"] != want {
				t.Errorf("inspected: power_state %v, want %s", n["power_state"], want)
			}
			if fast {
				// The agent looks the node up in manageable and heartbeats.
				hb := qemuWaitNode(t, c, "ft", "heard from its agent", 30*time.Second, func(n map[string]any) bool {
					d, _ := n["driver_internal_info"].(map[string]any)
					return d["agent_last_heartbeat"] != nil && n["reservation"] == nil
				})
				if hb["provision_state"] != "manageable" {
					t.Errorf("heartbeat recorded in state %v, want manageable", hb["provision_state"])
				}
				if on, _ := m.Running(context.Background()); !on {
					t.Errorf("inspected with fast-track: the BMC says the machine is off")
				}
			}
			if tc.stale {
				time.Sleep(2 * time.Second) // > fast_track_timeout, < the next heartbeat
			}
			c.do("PUT", "/v1/nodes/ft/states/provision", map[string]any{"target": "provide"}, 202)
			n = c.waitState("ft", "available", 90*time.Second)
			// (With a stale heartbeat, cleaning's new agent may be fresh
			// when it ends, and the machine then stays on.)
			if want := map[bool]string{true: "power on", false: "power off"}[tc.wantBoots == 1]; n["power_state"] != want && !tc.stale {
				t.Errorf("available: power_state %v, want %s", n["power_state"], want)
			}
			if tc.wantBoots == 1 {
				qemuWaitNode(t, c, "ft", "heartbeating while available", 30*time.Second, func(x map[string]any) bool {
					d, _ := x["driver_internal_info"].(map[string]any)
					return d["agent_last_heartbeat"] != nil && d["agent_last_heartbeat"] != n["driver_internal_info"].(map[string]any)["agent_last_heartbeat"]
				})
			}
			c.do("PATCH", "/v1/nodes/ft", []map[string]any{
				{"op": "add", "path": "/instance_info/image_source", "value": imgURL + "/image.raw"},
				{"op": "add", "path": "/instance_info/image_checksum", "value": hex.EncodeToString(sum[:])},
				{"op": "add", "path": "/instance_info/image_disk_format", "value": "raw"}}, 200)
			if tc.stale {
				// The deploy must find the agent stale too: cleaning's agent
				// heartbeats when its step ends, and cleaning may end less
				// than fast_track_timeout before this point.
				waitHeartbeatOlder(t, c, "ft", 2*tc.timeout)
			}
			c.do("PUT", "/v1/nodes/ft/states/provision", map[string]any{"target": "active"}, 202)
			n = c.waitState("ft", "active", 90*time.Second)
			elapsed := time.Since(t0)
			got, all := m.ramdiskBoots()
			if got != tc.wantBoots {
				t.Errorf("ramdisk starts seen by the BMC from inspect to active: %d (%v), want %d", got, all, tc.wantBoots)
			}
			if len(all) == 0 || all[len(all)-1] != "disk" {
				t.Errorf("starts %v: want the last one from disk (the instance)", all)
			}
			if d, _ := n["driver_internal_info"].(map[string]any); d["agent_url"] != nil || d["agent_secret_token"] != nil {
				t.Errorf("active: the agent is still recorded (%v); deploy leaves fast-track", d)
			}
			f, _ := os.Open(disk)
			head := make([]byte, 1<<20)
			f.ReadAt(head, 0)
			f.Close()
			if !bytes.Equal(head[512:], image[512:1<<20]) {
				t.Errorf("the disk does not hold the image")
			}
			t.Logf("%s: inspect→active %.1fs, BMC starts %v", tc.name, elapsed.Seconds(), all)
		})
	}
}

// waitHeartbeatOlder waits until node's last agent heartbeat
// (driver_internal_info.agent_last_heartbeat) is older than age, or the
// node records none.
func waitHeartbeatOlder(t *testing.T, c client, node string, age time.Duration) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		n := c.do("GET", "/v1/nodes/"+node, nil, 200)
		d, _ := n["driver_internal_info"].(map[string]any)
		s, _ := d["agent_last_heartbeat"].(string)
		if s == "" {
			return
		}
		var last time.Time
		var err error
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
			if last, err = time.Parse(layout, s); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("agent_last_heartbeat %q: %v", s, err)
		}
		wait := time.Until(last.Add(age))
		if wait <= 0 {
			return
		}
		time.Sleep(wait)
	}
	t.Fatalf("node %s: the agent's heartbeat stayed younger than %s for 60 s", node, age)
}
