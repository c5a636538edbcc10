package manager

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
)

// recordingBooter is a RamdiskBooter that records its calls.
type recordingBooter struct {
	mu                  sync.Mutex
	prepares, cleanUps  int
	inspection          []bool
	prepareErr, ejctErr error
}

func (b *recordingBooter) PrepareRamdisk(_ context.Context, _ *driver.Node, inspection bool) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prepares++
	b.inspection = append(b.inspection, inspection)
	if b.prepareErr != nil {
		return "", b.prepareErr
	}
	return driver.BootCDROM, nil
}

func (b *recordingBooter) CleanUpRamdisk(context.Context, *driver.Node) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cleanUps++
	return b.ejctErr
}

func (b *recordingBooter) counts() (int, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.prepares, b.cleanUps
}

// TestRamdiskBooter checks that a boot interface that boots the ramdisk
// itself is asked to, and that its media is cleaned up whenever the node
// leaves the ramdisk states: abort, a failed prepare, and, for a node a
// dead conductor left with media inserted, at start.
func TestRamdiskBooter(t *testing.T) {
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

	const u = "31111111-2222-3333-4444-555555555555"
	n := fakeNode(u)
	n.Interfaces["boot"], n.Interfaces["inspect"] = "redfish-virtual-media", "agent"
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
		t.Fatal(err)
	}
	provision := func(target string, want sm.State) *store.Node {
		t.Helper()
		if err := m.Provision(ctx, u, ProvisionRequest{Target: target, Version: 89}); err != nil {
			t.Fatalf("Provision(%s) = %v", target, err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			n, err := st.Node(u)
			if err != nil {
				t.Fatal(err)
			}
			if sm.State(n.ProvisionState) == want && n.Reservation == nil {
				return n
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %s: state %q (last_error %q), want %q", target, n.ProvisionState, deref(n.LastError), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// media waits until the node's media record is gone (or not).
	media := func(want bool) *store.Node {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			n, _ := st.Node(u)
			if (n.DriverInternalInfo[vmediaKey] != nil) == want {
				return n
			}
			if time.Now().After(deadline) {
				t.Fatalf("driver_internal_info %s = %v, want it set %v", vmediaKey, n.DriverInternalInfo[vmediaKey], want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	provision("manage", sm.Manageable)

	// Inspection boots the ramdisk from the media, inspection on.
	n = provision("inspect", sm.InspectWait)
	if p, c := rb.counts(); p != 1 || c != 0 || !rb.inspection[0] {
		t.Errorf("after inspect: %d prepares (inspection %v), %d clean-ups; want 1 (true), 0", p, rb.inspection, c)
	}
	if n.DriverInternalInfo[vmediaKey] != "redfish-virtual-media" {
		t.Errorf("driver_internal_info %s = %v", vmediaKey, n.DriverInternalInfo[vmediaKey])
	}
	// Abort: the media is ejected.
	provision("abort", sm.InspectFailed)
	media(false)
	if _, c := rb.counts(); c != 1 {
		t.Errorf("after abort: %d clean-ups, want 1", c)
	}

	// A prepare that fails: inspect failed naming it, nothing left inserted.
	rb.mu.Lock()
	rb.prepareErr = errors.New("the BMC answered: no virtual media")
	rb.mu.Unlock()
	provision("manage", sm.Manageable)
	n = provision("inspect", sm.InspectFailed)
	if !strings.Contains(deref(n.LastError), "virtual media boot") || !strings.Contains(deref(n.LastError), "no virtual media") {
		t.Errorf("last_error %q, want it to name the virtual media boot and the BMC's answer", deref(n.LastError))
	}
	media(false)
	if _, c := rb.counts(); c != 2 {
		t.Errorf("after a failed prepare: %d clean-ups, want 2", c)
	}

	// An eject that fails keeps the record, for the next try.
	rb.mu.Lock()
	rb.prepareErr, rb.ejctErr = nil, errors.New("BMC unreachable")
	rb.mu.Unlock()
	provision("manage", sm.Manageable)
	provision("inspect", sm.InspectWait)
	_, c0 := rb.counts()
	provision("abort", sm.InspectFailed)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, c := rb.counts(); c > c0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no eject tried after the abort")
		}
	}
	media(true) // the failed eject kept it
	// A conductor's start ejects what is left.
	rb.mu.Lock()
	rb.ejctErr = nil
	rb.mu.Unlock()
	_, before := rb.counts()
	if err := m.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	n, _ = st.Node(u)
	if _, c := rb.counts(); c != before+1 || n.DriverInternalInfo[vmediaKey] != nil {
		t.Errorf("Recover: %d clean-ups (before %d), %s %v; want one more and none", c, before, vmediaKey, n.DriverInternalInfo[vmediaKey])
	}
	// Nodes of other boot interfaces boot from the network: not asked.
	p, _ := rb.counts()
	n.Interfaces["boot"] = "ipxe"
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
		t.Fatal(err)
	}
	provision("manage", sm.Manageable)
	provision("inspect", sm.InspectWait)
	if p2, _ := rb.counts(); p2 != p {
		t.Errorf("an ipxe node was prepared by the virtual media boot")
	}
}
