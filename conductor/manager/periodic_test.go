package manager

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/store"
)

// recordingPower is a hand-written driver.Power whose machine is a field.
type recordingPower struct {
	mu    sync.Mutex
	state string
	calls []string
}

func (p *recordingPower) Validate(*driver.Node) error { return nil }
func (p *recordingPower) PowerState(context.Context, *driver.Node) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state, nil
}
func (p *recordingPower) SetPowerState(_ context.Context, _ *driver.Node, target string, _ time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, target)
	if target == driver.TargetPowerOff || target == driver.TargetSoftPowerOff {
		p.state = driver.PowerOff
	} else {
		p.state = driver.PowerOn
	}
	return nil
}

func TestPeriodicPowerSyncAndTimeouts(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pw := &recordingPower{state: driver.PowerOn}
	m := New(Config{Store: st, Hostname: "c1", Drivers: fakeDrivers("power", "ipmitool", pw),
		PowerSyncInterval: 50 * time.Millisecond, DeployCallbackTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	synced := fakeNode("61111111-2222-3333-4444-555555555551")
	synced.Interfaces["power"] = "ipmitool"
	synced.ProvisionState = "manageable"
	waiting := fakeNode("61111111-2222-3333-4444-555555555552")
	waiting.ProvisionState = "wait call-back"
	tgt := "active"
	waiting.TargetProvisionState = &tgt
	old := time.Now().Add(-time.Hour)
	waiting.ProvisionUpdatedAt = &old
	if err := st.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutNode(synced); err != nil {
			return err
		}
		return tx.PutNode(waiting)
	}); err != nil {
		t.Fatal(err)
	}
	go m.Run(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, _ := st.Node(synced.UUID)
		w, _ := st.Node(waiting.UUID)
		if deref(s.PowerState) == driver.PowerOn && w.ProvisionState == "deploy failed" {
			if w.LastError == nil || w.Reservation != nil {
				t.Fatalf("timed-out node: last_error %v reservation %v", w.LastError, w.Reservation)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("power_state %q (want power on), waiting node %q (want deploy failed)", deref(s.PowerState), w.ProvisionState)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Drift: the machine powers off behind our back; the sync records it.
	pw.mu.Lock()
	pw.state = driver.PowerOff
	pw.mu.Unlock()
	deadline = time.Now().Add(5 * time.Second)
	for {
		s, _ := st.Node(synced.UUID)
		if deref(s.PowerState) == driver.PowerOff {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("drift not recorded: power_state %q", deref(s.PowerState))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// flakyPower fails while down is set.
type flakyPower struct {
	recordingPower
	down bool
}

func (p *flakyPower) PowerState(ctx context.Context, n *driver.Node) (string, error) {
	p.mu.Lock()
	down := p.down
	p.mu.Unlock()
	if down {
		return "", errors.New("bmc: 10.0.0.9:623 did not answer within 15s")
	}
	return p.recordingPower.PowerState(ctx, n)
}

func TestPowerSyncFailuresMoveToMaintenanceAndBack(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pw := &flakyPower{recordingPower: recordingPower{state: driver.PowerOn}, down: true}
	m := New(Config{Store: st, Hostname: "c1", Drivers: fakeDrivers("power", "ipmitool", pw)})
	ctx := context.Background()
	n := fakeNode("81111111-2222-3333-4444-555555555551")
	n.Interfaces["power"] = "ipmitool"
	n.ProvisionState = "available"
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= powerSyncMaxFailures; i++ {
		m.syncPower(ctx)
		got, _ := st.Node(n.UUID)
		if want := i == powerSyncMaxFailures; got.Maintenance != want {
			t.Fatalf("after %d failed syncs maintenance = %v, want %v", i, got.Maintenance, want)
		}
	}
	got, _ := st.Node(n.UUID)
	if deref(got.Fault) != "power failure" || got.MaintenanceReason == nil {
		t.Fatalf("fault %q reason %v, want power failure with a reason", deref(got.Fault), got.MaintenanceReason)
	}
	pw.mu.Lock()
	pw.down = false
	pw.mu.Unlock()
	m.syncPower(ctx)
	got, _ = st.Node(n.UUID)
	if got.Maintenance || got.Fault != nil || deref(got.PowerState) != driver.PowerOn {
		t.Fatalf("after the BMC answers: maintenance %v fault %v power %q, want recovered", got.Maintenance, got.Fault, deref(got.PowerState))
	}
}

func TestPowerSyncForcesRecordedState(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pw := &recordingPower{state: driver.PowerOff}
	m := New(Config{Store: st, Hostname: "c1", Drivers: fakeDrivers("power", "ipmitool", pw), ForcePowerStateDuringSync: true})
	ctx := context.Background()
	n := fakeNode("81111111-2222-3333-4444-555555555552")
	n.Interfaces["power"] = "ipmitool"
	on := driver.PowerOn
	n.PowerState = &on
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
		t.Fatal(err)
	}
	m.syncPower(ctx)
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if pw.state != driver.PowerOn || len(pw.calls) != 1 || pw.calls[0] != driver.TargetPowerOn {
		t.Fatalf("machine state %q calls %v, want powered back on once", pw.state, pw.calls)
	}
}

// signalPower closes read at its first PowerState call: Run's first
// power sync, which follows its recovery.
type signalPower struct {
	recordingPower
	once sync.Once
	read chan struct{}
}

func (p *signalPower) PowerState(ctx context.Context, n *driver.Node) (string, error) {
	p.once.Do(func() { close(p.read) })
	return p.recordingPower.PowerState(ctx, n)
}

// Recover runs once at start: the conductor recovers before it serves
// requests, and Run does not recover again, which would fail a task a
// request started in between.
func TestRunAfterRecover(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pw := &signalPower{recordingPower: recordingPower{state: driver.PowerOn}, read: make(chan struct{})}
	m := New(Config{Store: st, Hostname: "c1", Drivers: fakeDrivers("power", "ipmitool", pw)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	put := func(n *store.Node) {
		t.Helper()
		if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
			t.Fatal(err)
		}
	}
	deploying := func(uuid string) *store.Node {
		n := fakeNode(uuid)
		n.ProvisionState, n.TargetProvisionState, n.Reservation = "deploying", strp("active"), strp("c1")
		return n
	}
	const staleID, busyID = "71111111-2222-3333-4444-555555555551", "71111111-2222-3333-4444-555555555552"
	put(deploying(staleID)) // left by the previous run of c1
	if err := m.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.Node(staleID); n.ProvisionState != "deploy failed" || n.Reservation != nil {
		t.Fatalf("after Recover: %s, lock %q; want deploy failed, unlocked", n.ProvisionState, deref(n.Reservation))
	}
	put(deploying(busyID)) // a task a request started after the recovery
	synced := fakeNode("71111111-2222-3333-4444-555555555553")
	synced.Interfaces["power"], synced.ProvisionState = "ipmitool", "manageable"
	put(synced)
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	select {
	case <-pw.read:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not sync the power")
	}
	if n, _ := st.Node(busyID); n.ProvisionState != "deploying" || deref(n.Reservation) != "c1" {
		t.Errorf("the task started after Recover: %s, lock %q; want deploying, locked by c1", n.ProvisionState, deref(n.Reservation))
	}
}
