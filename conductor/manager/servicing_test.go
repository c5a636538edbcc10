package manager

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/store"
)

// stuckBIOS accepts changes that never show (a BMC whose machine does not
// restart): servicing waits for them in service wait.
type stuckBIOS struct {
	mu      sync.Mutex
	applied []map[string]any
}

func (b *stuckBIOS) BIOSSettings(context.Context, *driver.Node) (map[string]any, error) {
	return map[string]any{"NumLock": "On"}, nil
}
func (b *stuckBIOS) ApplyBIOSSettings(_ context.Context, _ *driver.Node, s map[string]any) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.applied = append(b.applied, s)
	return nil
}
func (b *stuckBIOS) ResetBIOS(context.Context, *driver.Node) error { return nil }
func (b *stuckBIOS) ReadBIOS(ctx context.Context, n *driver.Node) (driver.BIOSSnapshot, error) {
	v, err := b.BIOSSettings(ctx, n)
	return driver.BIOSSnapshot{Values: v}, err
}

// A servicing that waits for a BIOS change can be aborted: the node goes
// to service failed with Ironic's message, the step is forgotten, and the
// machine keeps running its instance (no power off).
func TestServiceAbortInServiceWait(t *testing.T) {
	servicePoll = 20 * time.Millisecond
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	bios := &stuckBIOS{}
	ctx, cancel := context.WithCancel(context.Background())
	m := New(Config{Store: st, Hostname: "test-conductor", Drivers: fakeDrivers("bios", "redfish", bios)})
	done := run(t, ctx, m)
	t.Cleanup(func() { cancel(); <-done; st.Close() })

	n := fakeNode("61111111-2222-3333-4444-555555555555")
	on := "power on"
	n.ProvisionState, n.PowerState, n.Interfaces = "active", &on, map[string]string{"power": "fake", "bios": "redfish"}
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
		t.Fatal(err)
	}
	step := map[string]any{"interface": "bios", "step": "apply_configuration",
		"args": map[string]any{"settings": []any{map[string]any{"name": "NumLock", "value": "Off"}}}}
	if err := m.Provision(ctx, n.UUID, ProvisionRequest{Target: "service", ServiceSteps: []map[string]any{step}, Version: 87}); err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, cond func(*store.Node) bool) *store.Node {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if got, _ := st.Node(n.UUID); got != nil && cond(got) {
				return got
			}
		}
		got, _ := st.Node(n.UUID)
		t.Fatalf("%s: node %+v", what, got)
		return nil
	}
	waitFor("service wait, unlocked", func(n *store.Node) bool { return n.ProvisionState == "service wait" && n.Reservation == nil })
	if len(bios.applied) != 1 || bios.applied[0]["NumLock"] != "Off" {
		t.Fatalf("BMC asked for %v", bios.applied)
	}
	if err := m.Provision(ctx, n.UUID, ProvisionRequest{Target: "abort", Version: 87}); err != nil {
		t.Fatal(err)
	}
	got := waitFor("service failed after abort", func(n *store.Node) bool {
		return n.ProvisionState == "service failed" && n.Reservation == nil && n.ServiceStep == nil
	})
	if want := `By request, the service operation was aborted during or after the completion of step "bios.apply_configuration"`; deref(got.LastError) != want {
		t.Errorf("last_error %q, want %q", deref(got.LastError), want)
	}
	if deref(got.PowerState) != "power on" || strings.Contains(deref(got.LastError), "Timeout") {
		t.Errorf("power %q after the abort: the instance must keep running", deref(got.PowerState))
	}
	if _, ok := got.DriverInternalInfo[serviceStepsKey]; ok {
		t.Error("service steps left in driver_internal_info")
	}
}

// cacheReader is a bios and firmware interface whose changes show at
// once; it records the node's provision state and lock each time the
// conductor reads what it caches (ReadBIOS, FirmwareComponents).
type cacheReader struct {
	st       store.Store
	mu       sync.Mutex
	settings map[string]any
	reads    []string // "<what> <provision state> <reservation>"
}

func (b *cacheReader) seen(what, uuid string) {
	n, err := b.st.Node(uuid)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.reads = append(b.reads, what+" "+err.Error())
		return
	}
	b.reads = append(b.reads, what+" "+n.ProvisionState+" "+deref(n.Reservation))
}

func (b *cacheReader) BIOSSettings(context.Context, *driver.Node) (map[string]any, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]any{}
	for k, v := range b.settings {
		out[k] = v
	}
	return out, nil
}

func (b *cacheReader) ApplyBIOSSettings(_ context.Context, _ *driver.Node, s map[string]any) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, v := range s {
		b.settings[k] = v
	}
	return nil
}

func (b *cacheReader) ResetBIOS(context.Context, *driver.Node) error { return nil }

func (b *cacheReader) ReadBIOS(ctx context.Context, n *driver.Node) (driver.BIOSSnapshot, error) {
	b.seen("bios", n.UUID)
	v, err := b.BIOSSettings(ctx, n)
	return driver.BIOSSnapshot{Values: v}, err
}

func (b *cacheReader) FirmwareComponents(_ context.Context, n *driver.Node) ([]driver.FirmwareComponent, error) {
	b.seen("firmware", n.UUID)
	return []driver.FirmwareComponent{{Component: "bios", Version: "1.0"}}, nil
}

// Servicing refreshes the cached BIOS settings and firmware versions
// before the node returns to active, under its lock: a client that waits
// for active reads the new settings (the caches were once refreshed after
// the lock was released, and a loaded machine showed the old value).
func TestServiceCachesBeforeActive(t *testing.T) {
	servicePoll = 20 * time.Millisecond
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	rd := &cacheReader{st: st, settings: map[string]any{"NumLock": "On"}}
	drivers := fakeDrivers("bios", "cache", rd)
	h := drivers.Lookup("fake-hardware")
	h.Interfaces["firmware"] = h.Interfaces["firmware"].With("cache", rd)
	ctx, cancel := context.WithCancel(context.Background())
	const host = "test-conductor"
	m := New(Config{Store: st, Hostname: host, Drivers: drivers})
	done := run(t, ctx, m)
	t.Cleanup(func() { cancel(); <-done; st.Close() })

	n := fakeNode("61111111-2222-3333-4444-555555555556")
	on := "power on"
	n.ProvisionState, n.PowerState = "active", &on
	n.Interfaces["bios"], n.Interfaces["firmware"] = "cache", "cache"
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
		t.Fatal(err)
	}
	step := map[string]any{"interface": "bios", "step": "apply_configuration",
		"args": map[string]any{"settings": []any{map[string]any{"name": "NumLock", "value": "Off"}}}}
	if err := m.Provision(ctx, n.UUID, ProvisionRequest{Target: "service", ServiceSteps: []map[string]any{step}, Version: 87}); err != nil {
		t.Fatal(err)
	}
	var got *store.Node
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got, _ = st.Node(n.UUID)
		if got != nil && got.ProvisionState == "active" && got.Reservation == nil {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("node not back to active: %+v", got)
		}
	}
	if got.LastError != nil {
		t.Fatalf("last_error %q", *got.LastError)
	}
	// Read as a client does once the node is active.
	settings, err := st.BIOSSettings(n.UUID)
	if err != nil {
		t.Fatal(err)
	}
	cached := map[string]string{}
	for _, s := range settings {
		cached[s.Name] = deref(s.Value)
	}
	if cached["NumLock"] != "Off" {
		t.Errorf("cached NumLock once active = %q, want Off", cached["NumLock"])
	}
	rd.mu.Lock()
	reads := rd.reads
	rd.mu.Unlock()
	want := []string{"bios servicing " + host, "firmware servicing " + host}
	if diff := cmp.Diff(want, reads); diff != "" {
		t.Errorf("cache reads (what, state, lock) (-want +got):\n%s", diff)
	}
}
