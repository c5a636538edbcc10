package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/ipa/shacrypt"
)

// rescueAgent is an agent's command API on a real socket answering
// rescue.finalize_rescue with status, and recording the parameters.
type rescueAgent struct {
	mu     sync.Mutex
	params []map[string]any
	status string
}

func (a *rescueAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name   string         `json:"name"`
		Params map[string]any `json:"params"`
	}
	json.NewDecoder(r.Body).Decode(&body)
	a.mu.Lock()
	defer a.mu.Unlock()
	if body.Name == "rescue.finalize_rescue" {
		a.params = append(a.params, body.Params)
	}
	res := map[string]any{"id": "1", "command_name": body.Name, "command_status": a.status}
	if a.status != "SUCCEEDED" {
		res["command_error"] = map[string]any{"type": "CommandExecutionError", "message": "no /etc"}
	}
	json.NewEncoder(w).Encode(res)
}

func (a *rescueAgent) calls() []map[string]any {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]map[string]any(nil), a.params...)
}

func newRescueManager(t *testing.T, rb *recordingBooter) (*Manager, *store.Bolt, context.Context) {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := New(Config{Store: st, Hostname: "test-conductor", Drivers: fakeDrivers("boot", "redfish-virtual-media", rb), RescueWaitTimeout: time.Hour})
	done := run(t, ctx, m)
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return m, st, ctx
}

func activeNode(t *testing.T, st store.Store, u string, edit func(n *store.Node)) {
	t.Helper()
	n := fakeNode(u)
	n.ProvisionState = string(sm.Active)
	on := "power on"
	n.PowerState = &on
	n.Interfaces["rescue"] = "agent"
	n.Interfaces["boot"] = "redfish-virtual-media"
	n.DriverInfo = store.Object{"rescue_kernel": "rk", "rescue_ramdisk": "rr"}
	if edit != nil {
		edit(n)
	}
	if err := st.Update(context.Background(), func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
		t.Fatal(err)
	}
}

func waitNode(t *testing.T, st store.Store, u string, ok func(n *store.Node) bool) *store.Node {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		n, _ := st.Node(u)
		if n.Reservation == nil && ok(n) {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s: state %q last_error %q", u, n.ProvisionState, deref(n.LastError))
		}
	}
}

// TestRescueValidation: a rescue the node cannot do answers Ironic's
// InstanceRescueFailure and changes nothing.
func TestRescueValidation(t *testing.T) {
	m, st, ctx := newRescueManager(t, &recordingBooter{})
	pw := "s3cret"
	for i, c := range []struct {
		name, want string
		password   *string
		edit       func(n *store.Node)
	}{
		{"no password", `A non-empty "rescue_password" is required when setting target provision state to rescue`, nil, nil},
		{"no-rescue", "does not support rescue (disabled or not implemented).", &pw, func(n *store.Node) { n.Interfaces["rescue"] = "no-rescue" }},
		{"pxe, no rescue ramdisk", "Cannot validate PXE bootloader. Some parameters were missing in node's driver_info and configuration. Missing are: ['rescue_kernel', 'rescue_ramdisk']",
			&pw, func(n *store.Node) { n.Interfaces["boot"] = "pxe"; n.DriverInfo = store.Object{} }},
		{"vmedia, no rescue ramdisk", "Error validating Redfish virtual media. Some parameters were missing in node's driver_info. Missing are: ['rescue_ramdisk']",
			&pw, func(n *store.Node) { delete(n.DriverInfo, "rescue_ramdisk") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := "51111111-2222-3333-4444-55555555555" + string(rune('0'+i))
			activeNode(t, st, u, c.edit)
			err := m.Provision(ctx, u, ProvisionRequest{Target: "rescue", RescuePassword: c.password, Version: 38})
			if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("rescue = %v, want %q", err, c.want)
			}
			n, _ := st.Node(u)
			if n.ProvisionState != string(sm.Active) || n.Reservation != nil || n.InstanceInfo[hashedRescuePasswordKey] != nil {
				t.Errorf("a refused rescue changed the node: %q %v", n.ProvisionState, n.InstanceInfo)
			}
		})
	}
	const u = "51111111-2222-3333-4444-555555555559"
	activeNode(t, st, u, nil)
	err := m.Provision(ctx, u, ProvisionRequest{Target: "deleted", RescuePassword: &pw, Version: 38})
	if want := `"rescue_password" is only valid when setting target provision state to rescue`; !errors.Is(err, ErrInvalidInput) || err.Error() != want {
		t.Errorf("undeploy with a rescue password = %v, want %q", err, want)
	}
	if n, _ := st.Node(u); n.ProvisionState != string(sm.Active) {
		t.Errorf("a refused undeploy moved the node to %q", n.ProvisionState)
	}
}

// TestRescueFlow: rescue boots the rescue ramdisk from virtual media
// (the rescue kernel, not the deploy one), the heartbeat finalizes with
// the hashed password, the media is ejected and the password dropped;
// unrescue returns the node to active. A failing agent, a timeout and an
// abort end in rescue failed with Ironic's messages.
func TestRescueFlow(t *testing.T) {
	rb := &recordingBooter{}
	m, st, ctx := newRescueManager(t, rb)
	agent := &rescueAgent{status: "SUCCEEDED"}
	srv := httptest.NewServer(agent)
	defer srv.Close()
	const u = "61111111-2222-3333-4444-555555555555"
	activeNode(t, st, u, nil)
	pw := "s3cret"

	rescueWait := func() *store.Node {
		t.Helper()
		if err := m.Provision(ctx, u, ProvisionRequest{Target: "rescue", RescuePassword: &pw, Version: 38}); err != nil {
			t.Fatal(err)
		}
		n := waitNode(t, st, u, func(n *store.Node) bool { return n.ProvisionState == string(sm.RescueWait) })
		h, _ := n.InstanceInfo[hashedRescuePasswordKey].(string)
		if again, _ := shacrypt.Crypt(pw, h); !strings.HasPrefix(h, "$6$") || again != h {
			t.Fatalf("hashed_rescue_password %q does not verify", h)
		}
		if _, clear := n.InstanceInfo["rescue_password"]; clear || strings.Contains(fmt.Sprint(n.InstanceInfo), pw) {
			t.Fatalf("the clear password is stored: %v", n.InstanceInfo)
		}
		return n
	}
	heartbeat := func() {
		t.Helper()
		_, token, err := m.Lookup(ctx, nil, u)
		if err != nil || token == "" {
			t.Fatalf("lookup in rescue wait: %q %v", token, err)
		}
		if err := m.Heartbeat(ctx, u, Heartbeat{CallbackURL: srv.URL, AgentToken: token, AgentVersion: "1"}); err != nil {
			t.Fatal(err)
		}
	}

	n := rescueWait()
	if deref(n.PowerState) != "power on" || n.DriverInternalInfo[vmediaKey] == nil {
		t.Fatalf("rescue wait: power %q media %v", deref(n.PowerState), n.DriverInternalInfo[vmediaKey])
	}
	hash := n.InstanceInfo[hashedRescuePasswordKey]
	heartbeat()
	n = waitNode(t, st, u, func(n *store.Node) bool { return n.ProvisionState == string(sm.Rescue) })
	if calls := agent.calls(); len(calls) != 1 || calls[0]["rescue_password"] != hash || calls[0]["hashed"] != true {
		t.Fatalf("finalize_rescue calls %v, want one with the hash and hashed=true", calls)
	}
	if n.InstanceInfo[hashedRescuePasswordKey] != nil || n.DriverInternalInfo[vmediaKey] != nil || n.DriverInternalInfo["agent_secret_token"] != nil {
		t.Errorf("rescued: instance_info %v driver_internal_info %v, want no password, media or token", n.InstanceInfo, n.DriverInternalInfo)
	}
	if prepares, cleanUps := rb.counts(); prepares != 1 || cleanUps != 1 {
		t.Errorf("media prepared %d ejected %d times, want once each", prepares, cleanUps)
	}
	if err := m.Provision(ctx, u, ProvisionRequest{Target: "unrescue", Version: 38}); err != nil {
		t.Fatal(err)
	}
	n = waitNode(t, st, u, func(n *store.Node) bool { return n.ProvisionState == string(sm.Active) })
	if deref(n.PowerState) != "power on" || n.LastError != nil {
		t.Errorf("unrescued: power %q last_error %q", deref(n.PowerState), deref(n.LastError))
	}

	// The agent fails finalize_rescue.
	agent.status = "FAILED"
	rescueWait()
	heartbeat()
	n = waitNode(t, st, u, func(n *store.Node) bool { return n.ProvisionState == string(sm.RescueFailed) })
	if le := deref(n.LastError); !strings.HasPrefix(le, "Node failed to perform rescue operation. Error: Failed to rescue instance") ||
		!strings.Contains(le, "Agent returned bad result for command finalize_rescue") {
		t.Errorf("agent failure: last_error %q", le)
	}
	if n.InstanceInfo[hashedRescuePasswordKey] != nil || deref(n.PowerState) != "power off" || n.DriverInternalInfo[vmediaKey] != nil {
		t.Errorf("agent failure: password %v power %q media %v", n.InstanceInfo[hashedRescuePasswordKey], deref(n.PowerState), n.DriverInternalInfo[vmediaKey])
	}

	// Timeout (rescue failed -> rescue again).
	rescueWait()
	if err := m.update(ctx, u, func(n *store.Node) error {
		old := time.Now().Add(-2 * time.Hour)
		n.ProvisionUpdatedAt = &old
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	m.checkTimeouts(ctx)
	n = waitNode(t, st, u, func(n *store.Node) bool { return n.ProvisionState == string(sm.RescueFailed) })
	if deref(n.LastError) != rescueTimeoutMsg || n.InstanceInfo[hashedRescuePasswordKey] != nil {
		t.Errorf("timeout: last_error %q password %v", deref(n.LastError), n.InstanceInfo[hashedRescuePasswordKey])
	}

	// Abort in rescue wait.
	rescueWait()
	if err := m.Provision(ctx, u, ProvisionRequest{Target: "abort", Version: 38}); err != nil {
		t.Fatal(err)
	}
	n = waitNode(t, st, u, func(n *store.Node) bool { return n.LastError != nil })
	if n.ProvisionState != string(sm.RescueFailed) || deref(n.LastError) != "By request, the rescue operation was aborted." ||
		n.InstanceInfo[hashedRescuePasswordKey] != nil || n.DriverInternalInfo["agent_secret_token"] != nil {
		t.Errorf("abort: state %q last_error %q instance_info %v", n.ProvisionState, deref(n.LastError), n.InstanceInfo)
	}
	waitNode(t, st, u, func(n *store.Node) bool { return n.DriverInternalInfo[vmediaKey] == nil })
}
