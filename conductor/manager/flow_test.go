package manager

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/driver/hardware"
	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
)

// run starts m as the service does: Recover before anything is asked of
// it, then Run in the background (Run's own recovery, when it comes after
// a request has taken a node's lock, would abort that request's work).
// The channel closes when Run returns.
func run(t testing.TB, ctx context.Context, m *Manager) <-chan struct{} {
	t.Helper()
	if err := m.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	return done
}

func newTestManager(t *testing.T) (*Manager, *store.Bolt, context.Context) {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := New(Config{Store: st, Hostname: "test-conductor"})
	done := run(t, ctx, m)
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return m, st, ctx
}

// fakeDrivers is the conductor's registry with obj enabled as the
// implementation name of kind on fake-hardware (fakeNode's type).
func fakeDrivers(kind, name string, obj any) *driver.Registry {
	reg := hardware.New(hardware.Config{})
	h := reg.Lookup("fake-hardware")
	h.Interfaces[kind] = h.Interfaces[kind].With(name, obj)
	return reg
}

func fakeNode(uuid string) *store.Node {
	return &store.Node{UUID: uuid, Driver: "fake-hardware", ProvisionState: "enroll",
		DriverInfo: store.Object{}, DriverInternalInfo: store.Object{}, InstanceInfo: store.Object{},
		Interfaces: map[string]string{"power": "fake", "management": "fake", "deploy": "fake", "boot": "fake", "inspect": "fake"}}
}

// waitStable polls until the node has no target and no lock.
func waitStable(t *testing.T, st store.Store, uuid string) *store.Node {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := st.Node(uuid)
		if err != nil {
			t.Fatal(err)
		}
		if n.TargetProvisionState == nil && n.Reservation == nil {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s stuck in %q (target %q, reservation %q)", uuid, n.ProvisionState, deref(n.TargetProvisionState), deref(n.Reservation))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFakeHardwareLifecycle(t *testing.T) {
	m, st, ctx := newTestManager(t)
	const u = "11111111-2222-3333-4444-555555555555"
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutNode(fakeNode(u)) }); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		target string
		want   sm.State
	}{
		{"manage", sm.Manageable}, {"provide", sm.Available}, {"active", sm.Active},
		{"rebuild", sm.Active}, {"deleted", sm.Available}, {"manage", sm.Manageable},
		{"inspect", sm.Manageable}, {"provide", sm.Available},
	}
	for _, s := range steps {
		if err := m.Provision(ctx, u, ProvisionRequest{Target: s.target, Version: 89}); err != nil {
			t.Fatalf("Provision(%s) = %v", s.target, err)
		}
		n := waitStable(t, st, u)
		if sm.State(n.ProvisionState) != s.want || n.LastError != nil {
			t.Fatalf("after %s: state %q last_error %q, want %q", s.target, n.ProvisionState, deref(n.LastError), s.want)
		}
	}
}

func TestProvisionErrors(t *testing.T) {
	m, st, ctx := newTestManager(t)
	const u = "21111111-2222-3333-4444-555555555555"
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutNode(fakeNode(u)) }); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  ProvisionRequest
		kind error
	}{
		{"invalid transition", ProvisionRequest{Target: "active", Version: 89}, ErrInvalidState},
		{"unknown verb", ProvisionRequest{Target: "bogus", Version: 89}, ErrInvalidState},
		{"verb too new", ProvisionRequest{Target: "manage", Version: 3}, ErrNotAcceptable},
		{"configdrive with manage", ProvisionRequest{Target: "manage", Version: 89, ConfigDrive: []byte(`"abc"`)}, ErrInvalidInput},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := m.Provision(ctx, u, tc.req)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("Provision = %v, want %v", err, tc.kind)
			}
			n, _ := st.Node(u)
			if n.ProvisionState != "enroll" || n.Reservation != nil {
				t.Fatalf("refused request changed the node: state %q reservation %v", n.ProvisionState, n.Reservation)
			}
		})
	}
	// A locked node answers NodeLocked.
	if err := m.acquire(ctx, u, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Provision(ctx, u, ProvisionRequest{Target: "manage", Version: 89}); !errors.Is(err, ErrNodeLocked) {
		t.Fatalf("Provision on locked node = %v, want ErrNodeLocked", err)
	}
}

func TestRecoverAfterCrash(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	cases := []struct {
		uuid, state string
		want        sm.State
	}{
		{"31111111-2222-3333-4444-555555555551", "deploying", sm.DeployFailed},
		{"31111111-2222-3333-4444-555555555552", "cleaning", sm.CleanFailed},
		{"31111111-2222-3333-4444-555555555553", "verifying", sm.Enroll},
		{"31111111-2222-3333-4444-555555555554", "wait call-back", sm.DeployWait},
		{"31111111-2222-3333-4444-555555555555", "active", sm.Active},
	}
	for _, c := range cases {
		n := fakeNode(c.uuid)
		n.ProvisionState = c.state
		host := "dead-conductor"
		n.Reservation = &host
		if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
			t.Fatal(err)
		}
	}
	m := New(Config{Store: st, Hostname: "new-conductor"})
	if err := m.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		n, _ := st.Node(c.uuid)
		if sm.State(n.ProvisionState) != c.want || n.Reservation != nil {
			t.Errorf("%s: after Recover state %q reservation %v, want %q and no lock", c.state, n.ProvisionState, n.Reservation, c.want)
		}
		if c.want != sm.State(c.state) && n.LastError == nil {
			t.Errorf("%s: moved without last_error", c.state)
		}
	}
}

func TestAllocationsNeverShareANode(t *testing.T) {
	m, st, ctx := newTestManager(t)
	rc := "gold"
	on := "power on"
	for i, u := range []string{"41111111-2222-3333-4444-555555555551", "41111111-2222-3333-4444-555555555552"} {
		n := fakeNode(u)
		n.ProvisionState, n.ResourceClass, n.PowerState = "available", &rc, &on
		n.Traits = []string{"CUSTOM_A"}
		if i == 1 {
			n.Traits = nil
		}
		if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for i := range 3 {
		a := &store.Allocation{UUID: []string{"51111111-2222-3333-4444-555555555551", "51111111-2222-3333-4444-555555555552", "51111111-2222-3333-4444-555555555553"}[i],
			State: "allocating", ResourceClass: &rc}
		if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutAllocation(a) }); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.UUID)
	}
	for _, id := range ids {
		m.StartAllocation(id)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		done := 0
		for _, a := range st.Allocations(nil) {
			if a.State != "allocating" {
				done++
			}
		}
		if done == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("allocations did not finish")
		}
		time.Sleep(10 * time.Millisecond)
	}
	seen := map[string]bool{}
	errs := 0
	for _, a := range st.Allocations(nil) {
		if a.State == "error" {
			errs++
			if a.LastError == nil {
				t.Errorf("allocation %s in error without last_error", a.UUID)
			}
			continue
		}
		if seen[*a.NodeUUID] {
			t.Fatalf("node %s allocated twice", *a.NodeUUID)
		}
		seen[*a.NodeUUID] = true
		n, _ := st.Node(*a.NodeUUID)
		if deref(n.InstanceUUID) != a.UUID || deref(n.AllocationUUID) != a.UUID {
			t.Errorf("node %s instance %q allocation %q, want %s", n.UUID, deref(n.InstanceUUID), deref(n.AllocationUUID), a.UUID)
		}
	}
	if errs != 1 || len(seen) != 2 {
		t.Fatalf("got %d allocated and %d errors, want 2 and 1", len(seen), errs)
	}
}
