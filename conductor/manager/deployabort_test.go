package manager

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
)

// TestAbortDeployWait: abort in wait call-back needs API 1.110 (406
// before, nothing changed); at 1.110 the node goes to deploy failed with
// Ironic's last_error naming the running step, its agent and deploy
// records dropped, its ramdisk media ejected and its power left as it was.
func TestAbortDeployWait(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rb := &recordingBooter{}
	m := New(Config{Store: st, Hostname: "test-conductor", Drivers: fakeDrivers("boot", "redfish-virtual-media", rb)})
	done := run(t, ctx, m)
	defer func() { cancel(); <-done }()

	const u = "41111111-2222-3333-4444-555555555555"
	n := fakeNode(u)
	n.Interfaces["boot"] = "redfish-virtual-media"
	n.ProvisionState = string(sm.DeployWait)
	active, on := string(sm.Active), "power on"
	n.TargetProvisionState, n.PowerState = &active, &on
	n.DeployStep = store.Object{"interface": "deploy", "step": "write_image", "priority": 80.0, "args": store.Object{}}
	n.DriverInternalInfo = store.Object{"agent_url": "http://127.0.0.1:9999", "agent_secret_token": "t0k3n",
		"deploy_step_index": 2.0, "user_deploy_steps": []any{}, vmediaKey: "redfish-virtual-media"}
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
		t.Fatal(err)
	}

	if err := m.Provision(ctx, u, ProvisionRequest{Target: "abort", Version: 109}); !errors.Is(err, ErrNotAcceptable) {
		t.Fatalf("abort in wait call-back at 1.109 = %v, want not acceptable", err)
	}
	if got, _ := st.Node(u); got.ProvisionState != string(sm.DeployWait) || got.Reservation != nil || got.DriverInternalInfo["agent_url"] == nil {
		t.Fatalf("a refused abort changed the node: %q %v %v", got.ProvisionState, got.Reservation, got.DriverInternalInfo)
	}

	if err := m.Provision(ctx, u, ProvisionRequest{Target: "abort", Version: 110}); err != nil {
		t.Fatalf("abort in wait call-back at 1.110 = %v", err)
	}
	// Deploy failed keeps its target (active), as Ironic's: wait for the
	// lock to go and the media to be ejected (after the task).
	var got *store.Node
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got, _ = st.Node(u)
		if _, inserted := got.DriverInternalInfo[vmediaKey]; got.Reservation == nil && got.LastError != nil && !inserted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("abort did not finish: state %q reservation %q", got.ProvisionState, deref(got.Reservation))
		}
	}
	want := `By request, the deploy operation was aborted during or after the completion of step "deploy.write_image"`
	if got.ProvisionState != string(sm.DeployFailed) || deref(got.LastError) != want {
		t.Errorf("after abort: state %q last_error %q, want deploy failed and %q", got.ProvisionState, deref(got.LastError), want)
	}
	if len(got.DeployStep) != 0 || deref(got.PowerState) != "power on" {
		t.Errorf("after abort: deploy_step %v power %q, want none and the power unchanged", got.DeployStep, deref(got.PowerState))
	}
	for _, k := range []string{"agent_url", "agent_secret_token", "deploy_step_index", "user_deploy_steps", vmediaKey} {
		if v, ok := got.DriverInternalInfo[k]; ok {
			t.Errorf("after abort: driver_internal_info[%s] = %v is left", k, v)
		}
	}
	if _, cleanUps := rb.counts(); cleanUps != 1 {
		t.Errorf("ramdisk media ejected %d times, want once", cleanUps)
	}
}
