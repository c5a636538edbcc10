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
	"github.com/ferric-metal/ferric/conductor/store"
)

// instanceBooter is a boot interface that records the instance boots it
// is asked to set up and undo.
type instanceBooter struct {
	mu                 sync.Mutex
	prepares, cleanUps int
	prepareErr         error
}

func (b *instanceBooter) Validate(*driver.Node) error { return nil }

func (b *instanceBooter) PrepareInstance(context.Context, *driver.Node) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prepares++
	return driver.BootCDROM, b.prepareErr
}

func (b *instanceBooter) CleanUpInstance(context.Context, *driver.Node) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cleanUps++
	return nil
}

func (b *instanceBooter) counts() (int, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.prepares, b.cleanUps
}

// TestRamdiskDeploy runs the ramdisk deploy with a recording boot
// interface: Ironic's validation messages refuse bad requests at once; a
// deploy sets up the instance boot and ends active, recording the boot
// interface and this conductor; a node whose instance boot another
// conductor set up is taken over at the next heartbeat; undeploy undoes
// it; a failed set-up is deploy failed with Ironic's step message.
func TestRamdiskDeploy(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ib := &instanceBooter{}
	m := New(Config{Store: st, Hostname: "c1", HeartbeatInterval: 100 * time.Millisecond, Drivers: fakeDrivers("boot", "instance", ib)})
	done := run(t, ctx, m)
	defer func() { cancel(); <-done }()

	const u = "41111111-2222-3333-4444-555555555555"
	n := fakeNode(u)
	n.ProvisionState = "available"
	n.Interfaces["deploy"], n.Interfaces["boot"] = "ramdisk", "instance"
	no := false
	n.AutomatedClean = &no
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
		t.Fatal(err)
	}
	patch := func(f func(n *store.Node)) {
		t.Helper()
		if err := st.Update(ctx, func(tx store.Tx) error {
			n, err := tx.Node(u)
			if err != nil {
				return err
			}
			f(n)
			return tx.PutNode(n)
		}); err != nil {
			t.Fatal(err)
		}
	}

	for _, tc := range []struct {
		name string
		set  func(n *store.Node)
		want string
	}{
		{"no image", func(n *store.Node) {}, "Missing are: ['kernel', 'ramdisk']"},
		{"boot_iso and image_source", func(n *store.Node) {
			n.InstanceInfo = store.Object{"boot_iso": "http://x/live.iso", "image_source": "http://x/disk.img"}
		}, "An 'image_source' and 'boot_iso' parameter may not be specified at the same time."},
		{"boot without ramdisk_boot", func(n *store.Node) {
			n.InstanceInfo = store.Object{"boot_iso": "http://x/live.iso"}
			n.Interfaces["boot"] = "fake"
		}, "The boot interface must have the `ramdisk_boot` capability"},
	} {
		patch(tc.set)
		err := m.Provision(ctx, u, ProvisionRequest{Target: "active", Version: 96})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: Provision(active) = %v, want an invalid input naming %q", tc.name, err, tc.want)
		}
	}
	if p, _ := ib.counts(); p != 0 {
		t.Fatalf("%d instance boots prepared by refused deploys", p)
	}

	patch(func(n *store.Node) {
		n.Interfaces["boot"] = "instance"
		n.InstanceInfo = store.Object{"boot_iso": "http://x/live.iso"}
	})
	if err := m.Provision(ctx, u, ProvisionRequest{Target: "active", Version: 96}); err != nil {
		t.Fatal(err)
	}
	got := waitStable(t, st, u)
	if got.ProvisionState != "active" || deref(got.PowerState) != driver.PowerOn {
		t.Fatalf("after the deploy: %s, power %s, last_error %s", got.ProvisionState, deref(got.PowerState), deref(got.LastError))
	}
	if got.DriverInternalInfo[driver.InstanceBootKey] != "instance" || got.DriverInternalInfo[instanceBootConductorKey] != "c1" {
		t.Errorf("driver_internal_info after the deploy: %v", got.DriverInternalInfo)
	}
	if p, c := ib.counts(); p != 1 || c != 0 {
		t.Errorf("prepares, clean-ups = %d, %d; want 1, 0", p, c)
	}

	// Set up by a conductor that is gone: taken over.
	patch(func(n *store.Node) { n.DriverInternalInfo[instanceBootConductorKey] = "dead-conductor" })
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := waitStable(t, st, u)
		if p, _ := ib.counts(); p == 2 && got.DriverInternalInfo[instanceBootConductorKey] == "c1" {
			break
		}
		if time.Now().After(deadline) {
			p, _ := ib.counts()
			t.Fatalf("not taken over: %d prepares, driver_internal_info %v", p, got.DriverInternalInfo)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := m.Provision(ctx, u, ProvisionRequest{Target: "deleted", Version: 96}); err != nil {
		t.Fatal(err)
	}
	got = waitStable(t, st, u)
	if got.ProvisionState != "available" || got.DriverInternalInfo[driver.InstanceBootKey] != nil || got.DriverInternalInfo[instanceBootConductorKey] != nil {
		t.Errorf("after undeploy: %s, driver_internal_info %v", got.ProvisionState, got.DriverInternalInfo)
	}
	if _, c := ib.counts(); c != 1 {
		t.Errorf("%d clean-ups after undeploy, want 1", c)
	}

	ib.mu.Lock()
	ib.prepareErr = errors.New("the BMC refused the insert")
	ib.mu.Unlock()
	patch(func(n *store.Node) { n.InstanceInfo = store.Object{"boot_iso": "http://x/live.iso"} })
	if err := m.Provision(ctx, u, ProvisionRequest{Target: "active", Version: 96}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if got, _ = st.Node(u); (got.ProvisionState == "deploy failed" && got.Reservation == nil) || time.Now().After(deadline) {
			break
		}
	}
	if got.ProvisionState != "deploy failed" || !strings.Contains(deref(got.LastError), "Deploy step deploy.deploy failed on node "+u+": the BMC refused the insert") {
		t.Errorf("failed set-up: %s, last_error %q", got.ProvisionState, deref(got.LastError))
	}

	// Adoption of a machine running its live ISO: the instance boot is
	// set up again, no deploy.
	ib.mu.Lock()
	ib.prepareErr = nil
	before := ib.prepares
	ib.mu.Unlock()
	const u2 = "41111111-2222-3333-4444-555555555556"
	a := fakeNode(u2)
	a.ProvisionState = "manageable"
	a.Interfaces["deploy"], a.Interfaces["boot"] = "ramdisk", "instance"
	a.InstanceInfo = store.Object{"boot_iso": "http://x/live.iso"}
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutNode(a) }); err != nil {
		t.Fatal(err)
	}
	if err := m.Provision(ctx, u2, ProvisionRequest{Target: "adopt", Version: 96}); err != nil {
		t.Fatal(err)
	}
	got = waitStable(t, st, u2)
	if p, _ := ib.counts(); got.ProvisionState != "active" || p != before+1 || got.DriverInternalInfo[driver.InstanceBootKey] != "instance" {
		t.Errorf("adopted: %s (last_error %q), %d prepares (want %d), driver_internal_info %v", got.ProvisionState, deref(got.LastError), p, before+1, got.DriverInternalInfo)
	}
}
