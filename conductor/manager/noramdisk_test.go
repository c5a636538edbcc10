package manager

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/driver/hardware"
	"github.com/ferric-metal/ferric/conductor/store"
)

// bootRecorder records what the conductor asks of the machine's power and
// boot device, and holds BIOS settings the BMC applies at the next reboot.
type bootRecorder struct {
	mu      sync.Mutex
	power   []string
	boot    []string
	current map[string]any
	pending map[string]any
}

func (r *bootRecorder) Validate(*driver.Node) error { return nil }
func (r *bootRecorder) PowerState(context.Context, *driver.Node) (string, error) {
	return driver.PowerOn, nil
}
func (r *bootRecorder) SetPowerState(_ context.Context, _ *driver.Node, target string, _ time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.power = append(r.power, target)
	if target == driver.TargetReboot || target == driver.TargetPowerOn {
		for k, v := range r.pending {
			r.current[k] = v
		}
		r.pending = map[string]any{}
	}
	return nil
}
func (r *bootRecorder) SetBootDevice(_ context.Context, _ *driver.Node, dev string, _ bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.boot = append(r.boot, dev)
	return nil
}
func (r *bootRecorder) SupportedBootDevices() []string {
	return []string{driver.BootPXE, driver.BootDisk}
}
func (r *bootRecorder) BIOSSettings(context.Context, *driver.Node) (map[string]any, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]any{}
	for k, v := range r.current {
		out[k] = v
	}
	return out, nil
}
func (r *bootRecorder) ApplyBIOSSettings(_ context.Context, _ *driver.Node, s map[string]any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, v := range s {
		r.pending[k] = v
	}
	return nil
}
func (r *bootRecorder) ResetBIOS(context.Context, *driver.Node) error { return nil }
func (r *bootRecorder) ReadBIOS(ctx context.Context, n *driver.Node) (driver.BIOSSnapshot, error) {
	v, err := r.BIOSSettings(ctx, n)
	return driver.BIOSSnapshot{Values: v}, err
}

// agentDeploy is a deploy interface that drives the ramdisk's agent.
type agentDeploy struct{}

func (agentDeploy) UsesAgent() bool { return true }

// A manual cleaning with disable_ramdisk runs a bios step through the BMC
// without preparing or booting the ramdisk (no boot device set, only the
// reboot the BIOS change needs) and returns to manageable; a request with
// an agent step is refused with Ironic's message and changes nothing.
func TestCleanWithoutRamdisk(t *testing.T) {
	servicePoll = 20 * time.Millisecond
	bios := map[string]any{"interface": "bios", "step": "apply_configuration",
		"args": map[string]any{"settings": []any{map[string]any{"name": "NumLock", "value": "Off"}}}}
	erase := map[string]any{"interface": "deploy", "step": "erase_devices_metadata"}
	for _, tc := range []struct {
		name    string
		steps   []map[string]any
		runbook bool   // the steps come from a runbook with disable_ramdisk (1.92)
		wantErr string // "": the cleaning runs
	}{
		{"bios step", []map[string]any{bios}, false, ""},
		{"agent step", []map[string]any{erase}, false, `clean step {"interface":"deploy","step":"erase_devices_metadata"} requires booting a ramdisk`},
		{"bios then agent step", []map[string]any{bios, erase}, false, `clean step {"interface":"deploy","step":"erase_devices_metadata"} requires booting a ramdisk`},
		{"flow step", []map[string]any{{"interface": "deploy", "step": "reboot"}}, false, `clean step {"interface":"deploy","step":"reboot"} requires booting a ramdisk`},
		{"runbook bios step", []map[string]any{bios}, true, ""},
		{"runbook agent step", []map[string]any{erase}, true, `clean step {"args":{},"interface":"deploy","order":1,"step":"erase_devices_metadata"} requires booting a ramdisk`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
			if err != nil {
				t.Fatal(err)
			}
			rec := &bootRecorder{current: map[string]any{"NumLock": "On"}, pending: map[string]any{}}
			reg := hardware.New(hardware.Config{})
			h := reg.Lookup("fake-hardware")
			for kind, obj := range map[string]any{"power": rec, "management": rec, "bios": rec, "deploy": agentDeploy{}} {
				h.Interfaces[kind] = h.Interfaces[kind].With("rec", obj)
			}
			ctx, cancel := context.WithCancel(context.Background())
			m := New(Config{Store: st, Hostname: "test-conductor", Drivers: reg})
			done := run(t, ctx, m)
			t.Cleanup(func() { cancel(); <-done; st.Close() })

			n := fakeNode("71111111-2222-3333-4444-555555555555")
			on := driver.PowerOn
			n.ProvisionState, n.PowerState, n.Traits = "manageable", &on, []string{"CUSTOM_NORAMDISK"}
			n.Interfaces = map[string]string{"power": "rec", "management": "rec", "bios": "rec", "deploy": "rec", "boot": "fake", "inspect": "fake"}
			if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
				t.Fatal(err)
			}
			yes := true
			req := ProvisionRequest{Target: "clean", CleanSteps: tc.steps, DisableRamdisk: &yes, Version: 70}
			if tc.runbook {
				var steps []map[string]any
				for i, st := range tc.steps {
					c := maps.Clone(st)
					c["order"] = float64(i + 1)
					steps = append(steps, c)
				}
				rb := &store.Runbook{UUID: "99999999-0000-0000-0000-000000000002", Name: "CUSTOM_NORAMDISK", DisableRamdisk: true, Steps: steps}
				if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutRunbook(rb) }); err != nil {
					t.Fatal(err)
				}
				name := rb.Name
				req = ProvisionRequest{Target: "clean", Runbook: &name, Version: 92}
			}
			err = m.Provision(ctx, n.UUID, req)
			if tc.wantErr != "" {
				var ue *UserError
				if !errors.As(err, &ue) || ue.Kind != ErrInvalidInput || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Provision: %v, want an invalid input error with %q", err, tc.wantErr)
				}
				got, _ := st.Node(n.UUID)
				if got.ProvisionState != "manageable" || got.TargetProvisionState != nil || got.DriverInternalInfo["clean_steps"] != nil {
					t.Fatalf("refused request changed the node: %+v", got)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			got := waitStable(t, st, n.UUID)
			if got.ProvisionState != "manageable" || got.LastError != nil {
				t.Fatalf("node in %q, last error %v", got.ProvisionState, deref(got.LastError))
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.boot) != 0 {
				t.Errorf("boot device set to %v: the ramdisk was booted", rec.boot)
			}
			wantPower, wantNumLock := "", "On"
			if tc.wantErr == "" {
				wantPower, wantNumLock = driver.TargetReboot, "Off"
				if len(got.CleanStep) != 0 || got.DriverInternalInfo[noRamdiskKey] != nil || got.DriverInternalInfo["clean_steps"] != nil {
					t.Errorf("cleaning left its state: clean_step %v, driver_internal_info %v", got.CleanStep, got.DriverInternalInfo)
				}
			}
			if strings.Join(rec.power, ",") != wantPower {
				t.Errorf("power actions %v, want %q (the BIOS change's reboot only)", rec.power, wantPower)
			}
			if rec.current["NumLock"] != wantNumLock {
				t.Errorf("NumLock %v, want %v", rec.current["NumLock"], wantNumLock)
			}
		})
	}
}
