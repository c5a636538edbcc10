package manager

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/ironichttp"
	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
)

// recordingNet is a network interface that switches networks (as
// neutron), recording the calls in order.
type recordingNet struct {
	mu          sync.Mutex
	calls       []string
	rescueErr   error
	validateErr error
	inspection  bool
}

func (r *recordingNet) record(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
}

// take returns the calls so far and forgets them.
func (r *recordingNet) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := strings.Join(r.calls, ", ")
	r.calls = nil
	return out
}

func (r *recordingNet) ValidateNetworks(context.Context, *driver.Node) error { return r.validateErr }

func (r *recordingNet) ValidateRescueNetwork(context.Context, *driver.Node) error { return r.rescueErr }

func (r *recordingNet) HasInspectionNetwork(*driver.Node) bool { return r.inspection }

func (r *recordingNet) AddNetwork(_ context.Context, netType string, _ *driver.Node, ps []driver.NetPort) (map[string]string, error) {
	r.record("add " + netType)
	out := map[string]string{}
	for _, p := range ps {
		if p.PXEEnabled {
			out[p.UUID] = netType + "-port-of-" + p.UUID
		}
	}
	return out, nil
}

func (r *recordingNet) RemoveNetwork(_ context.Context, netType string, _ *driver.Node, _ []driver.NetPort) error {
	r.record("remove " + netType)
	return nil
}

func (r *recordingNet) ConfigureTenantNetworks(context.Context, *driver.Node, []driver.NetPort) error {
	r.record("bind tenant")
	return nil
}

func (r *recordingNet) UnconfigureTenantNetworks(context.Context, *driver.Node, []driver.NetPort) error {
	r.record("unbind tenant")
	return nil
}

// TestRescueNetworks: with a network interface that switches networks,
// a rescue validates the rescuing network (Ironic's InstanceRescueFailure
// when it is missing, and /validate's rescue and network results), moves
// the node from its tenant networks to the rescuing network while the
// rescue ramdisk boots, and back to its tenant networks once the agent
// finalized the rescue; unrescue, an abort and a failed finalize remove
// the rescuing ports.
func TestRescueNetworks(t *testing.T) {
	rb := &recordingBooter{}
	net := &recordingNet{}
	st, err := store.OpenBolt(t.TempDir() + "/db")
	if err != nil {
		t.Fatal(err)
	}
	reg := fakeDrivers("boot", "redfish-virtual-media", rb)
	h := reg.Lookup("fake-hardware")
	h.Interfaces["network"] = h.Interfaces["network"].With("neutron", net)
	ctx, cancel := context.WithCancel(context.Background())
	m := New(Config{Store: st, Hostname: "test-conductor", Drivers: reg, RescueWaitTimeout: 1 << 40})
	done := run(t, ctx, m)
	t.Cleanup(func() { cancel(); <-done; st.Close() })

	agent := &rescueAgent{status: "SUCCEEDED"}
	srv := httptest.NewServer(agent)
	defer srv.Close()
	const u = "71111111-2222-3333-4444-555555555555"
	const portUUID = "71111111-2222-3333-4444-000000000001"
	activeNode(t, st, u, func(n *store.Node) { n.Interfaces["network"] = "neutron" })
	if err := st.Update(ctx, func(tx store.Tx) error {
		return tx.PutPort(&store.Port{UUID: portUUID, NodeUUID: u, Address: "52:54:00:00:71:01", PXEEnabled: true,
			InternalInfo: store.Object{driver.TenantVIFKey: "tenant-vif"}})
	}); err != nil {
		t.Fatal(err)
	}
	pw := "s3cret"
	rescueKey := func() any {
		p, err := st.Port(portUUID)
		if err != nil {
			t.Fatal(err)
		}
		return p.InternalInfo["rescuing_vif_port_id"]
	}
	heartbeat := func() {
		t.Helper()
		_, token, err := m.Lookup(ctx, nil, u)
		if err != nil {
			t.Fatalf("lookup: %v", err)
		}
		if err := m.Heartbeat(ctx, u, Heartbeat{CallbackURL: srv.URL, AgentToken: token, AgentVersion: "1"}); err != nil {
			t.Fatal(err)
		}
	}
	rescueWait := func() {
		t.Helper()
		if err := m.Provision(ctx, u, ProvisionRequest{Target: "rescue", RescuePassword: &pw, Version: 38}); err != nil {
			t.Fatal(err)
		}
		waitNode(t, st, u, func(n *store.Node) bool { return n.ProvisionState == string(sm.RescueWait) })
		if got, want := net.take(), "unbind tenant, add rescuing"; got != want {
			t.Errorf("rescue: network calls %q, want %q", got, want)
		}
		if got := rescueKey(); got != "rescuing-port-of-"+portUUID {
			t.Errorf("rescue wait: internal_info rescuing_vif_port_id = %v", got)
		}
	}

	// No rescuing network: refused with Ironic's message, nothing done;
	// /validate says why.
	net.rescueErr = ironichttp.Errorf(http.StatusBadRequest, "UUID or name of rescuing network is not set in configuration")
	net.validateErr = ironichttp.Errorf(http.StatusBadRequest, "UUID or name of cleaning network is not set in configuration")
	err = m.Provision(ctx, u, ProvisionRequest{Target: "rescue", RescuePassword: &pw, Version: 38})
	want := fmt.Sprintf("Failed to rescue instance  for node %s: UUID or name of rescuing network is not set in configuration", u)
	if !errors.Is(err, ErrInvalidInput) || err.Error() != want {
		t.Errorf("rescue without a rescuing network = %v, want %q", err, want)
	}
	res, err := m.Validate(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if r := res["rescue"]; r.Result == nil || *r.Result || r.Reason != "UUID or name of rescuing network is not set in configuration" {
		t.Errorf("validate rescue = %+v", r)
	}
	if r := res["network"]; r.Result == nil || *r.Result || r.Reason != "UUID or name of cleaning network is not set in configuration" {
		t.Errorf("validate network = %+v", r)
	}
	net.rescueErr = nil
	err = m.Provision(ctx, u, ProvisionRequest{Target: "rescue", RescuePassword: &pw, Version: 38})
	if !errors.Is(err, ErrInvalidInput) || !strings.HasSuffix(err.Error(), ": UUID or name of cleaning network is not set in configuration") {
		t.Errorf("rescue without a cleaning network = %v, want Ironic's InstanceRescueFailure", err)
	}
	net.validateErr = nil
	if n, _ := st.Node(u); n.ProvisionState != string(sm.Active) || net.take() != "" {
		t.Fatalf("a refused rescue changed something: state %q", n.ProvisionState)
	}
	if res, _ := m.Validate(ctx, u); res["rescue"].Result == nil || !*res["rescue"].Result || !*res["network"].Result {
		t.Errorf("validate with the networks: rescue %+v network %+v", res["rescue"], res["network"])
	}

	// Rescue: on the rescuing network while the ramdisk boots; once
	// rescued, on the tenant networks again.
	rescueWait()
	heartbeat()
	waitNode(t, st, u, func(n *store.Node) bool { return n.ProvisionState == string(sm.Rescue) })
	if got, want := net.take(), "remove rescuing, bind tenant"; got != want {
		t.Errorf("finalize: network calls %q, want %q", got, want)
	}
	if got := rescueKey(); got != nil {
		t.Errorf("rescued: internal_info rescuing_vif_port_id = %v, want none", got)
	}

	// Unrescue: the rescuing ports (if any) removed, the tenant bound.
	if err := m.Provision(ctx, u, ProvisionRequest{Target: "unrescue", Version: 38}); err != nil {
		t.Fatal(err)
	}
	waitNode(t, st, u, func(n *store.Node) bool { return n.ProvisionState == string(sm.Active) })
	if got, want := net.take(), "remove rescuing, bind tenant"; got != want {
		t.Errorf("unrescue: network calls %q, want %q", got, want)
	}

	// A failed finalize: the rescuing ports removed, the tenant left
	// unbound (rescue failed).
	rescueWait()
	agent.status = "FAILED"
	heartbeat()
	waitNode(t, st, u, func(n *store.Node) bool { return n.ProvisionState == string(sm.RescueFailed) })
	if got, want := net.take(), "remove rescuing"; got != want {
		t.Errorf("failed finalize: network calls %q, want %q", got, want)
	}
	agent.status = "SUCCEEDED"

	// An abort in rescue wait removes the rescuing ports.
	rescueWait()
	if err := m.Provision(ctx, u, ProvisionRequest{Target: "abort", Version: 38}); err != nil {
		t.Fatal(err)
	}
	n := waitNode(t, st, u, func(n *store.Node) bool { return n.ProvisionState == string(sm.RescueFailed) })
	if got, want := net.take(), "remove rescuing"; got != want || deref(n.LastError) != "By request, the rescue operation was aborted." {
		t.Errorf("abort: network calls %q last_error %q, want %q", got, deref(n.LastError), want)
	}
	if got := rescueKey(); got != nil {
		t.Errorf("aborted: internal_info rescuing_vif_port_id = %v, want none", got)
	}
}

// TestCleaningValidatesNetworks: cleaning with a network interface that
// switches networks starts by validating them, and a failure ends in
// clean failed with Ironic's message before any port is made.
func TestCleaningValidatesNetworks(t *testing.T) {
	net := &recordingNet{validateErr: ironichttp.Errorf(http.StatusBadRequest, "UUID or name of cleaning network is not set in configuration")}
	st, err := store.OpenBolt(t.TempDir() + "/db")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := New(Config{Store: st, Hostname: "test-conductor", Drivers: fakeDrivers("network", "neutron", net), AutomatedClean: true})
	done := run(t, ctx, m)
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	const u = "91111111-2222-3333-4444-555555555555"
	n := fakeNode(u)
	n.ProvisionState = string(sm.Manageable)
	n.Interfaces["deploy"], n.Interfaces["network"] = "direct", "neutron"
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
		t.Fatal(err)
	}
	if err := m.Provision(ctx, u, ProvisionRequest{Target: "provide", Version: 89}); err != nil {
		t.Fatal(err)
	}
	n = waitNode(t, st, u, func(n *store.Node) bool { return n.ProvisionState == string(sm.CleanFailed) })
	want := "Validation of node " + u + " for cleaning failed: UUID or name of cleaning network is not set in configuration"
	if deref(n.LastError) != want {
		t.Errorf("last_error %q, want it to contain %q", deref(n.LastError), want)
	}
	if got := net.take(); got != "" {
		t.Errorf("network calls %q, want none", got)
	}
}
