package manager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/store"
)

// fakeController is a RAID controller in memory: four 10 GiB drives; it
// refuses RAID types in refuse, and fails reads when down.
type fakeController struct {
	vols    []driver.LogicalDisk
	seq     int
	refuse  string
	down    bool
	created []string
	deleted []string
}

func (f *fakeController) RAIDInventory(context.Context, *driver.Node) (driver.RAIDInventory, error) {
	if f.down {
		return driver.RAIDInventory{}, errors.New("bmc: 10.0.0.1 did not answer")
	}
	inv := driver.RAIDInventory{Controllers: map[string][]string{"c0": nil}, Volumes: append([]driver.LogicalDisk(nil), f.vols...)}
	for i := range 4 {
		inv.Disks = append(inv.Disks, driver.PhysicalDisk{ID: fmt.Sprint(i), Controller: "c0", MediaType: "SSD", Protocol: "SAS", SizeBytes: 10 << 30})
	}
	return inv, nil
}

func (f *fakeController) CreateVolume(_ context.Context, _ *driver.Node, s driver.VolumeSpec) (driver.LogicalDisk, error) {
	if s.RAIDType == f.refuse {
		return driver.LogicalDisk{}, fmt.Errorf("bmc: the BMC refused the %s volume: HTTP 400: no", s.RAIDType)
	}
	f.seq++
	v := driver.LogicalDisk{ID: fmt.Sprint(f.seq), Name: s.Name, Controller: s.Controller, RAIDType: s.RAIDType, SizeBytes: s.SizeBytes}
	f.vols = append(f.vols, v)
	f.created = append(f.created, v.ID)
	return v, nil
}

func (f *fakeController) DeleteVolume(_ context.Context, _ *driver.Node, v driver.LogicalDisk) error {
	for i, x := range f.vols {
		if x.ID == v.ID {
			f.vols = append(f.vols[:i], f.vols[i+1:]...)
			f.deleted = append(f.deleted, v.ID)
			return nil
		}
	}
	return driver.ErrNotFound
}

func TestRAIDSteps(t *testing.T) {
	st, err := store.OpenBolt(t.TempDir() + "/ferric.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fc := &fakeController{}
	m := New(Config{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Hostname: "c1", Drivers: fakeDrivers("raid", "bmcraid", fc)})
	ctx := context.Background()
	const id = "55555555-5555-4555-8555-555555555555"
	put := func(raid string, target map[string]any) *store.Node {
		t.Helper()
		var n *store.Node
		if err := st.Update(ctx, func(tx store.Tx) error {
			var err error
			if n, err = tx.Node(id); err != nil {
				n = fakeNode(id)
			}
			n.Interfaces["raid"] = raid
			n.TargetRAIDConfig = target
			return tx.PutNode(n)
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	ld := func(lds ...map[string]any) map[string]any {
		l := []any{}
		for _, x := range lds {
			l = append(l, x)
		}
		return map[string]any{"logical_disks": l}
	}
	mirror := map[string]any{"raid_level": "1", "size_gb": float64(5), "is_root_volume": true}
	checks := []struct {
		name, raid string
		cfg        map[string]any
		want       string
	}{
		{"no-raid refuses any config", "no-raid", ld(mirror), "Driver fake-hardware does not support raid (disabled or not implemented)."},
		{"no-raid takes an empty one", "no-raid", map[string]any{}, ""},
		{"agent checks the schema", "agent", ld(map[string]any{"raid_level": "1"}), "RAID config validation error: 'size_gb' is a required property"},
		{"agent takes scsi", "agent", ld(map[string]any{"raid_level": "1", "size_gb": float64(1), "interface_type": "scsi"}), ""},
		{"BMC RAID refuses scsi", "bmcraid", ld(map[string]any{"raid_level": "1", "size_gb": float64(1), "interface_type": "scsi"}), "interface type `scsi` not supported by Redfish RAID"},
		{"BMC RAID", "bmcraid", ld(mirror), ""},
	}
	for _, tc := range checks {
		n := put(tc.raid, nil)
		t.Run(tc.name, func(t *testing.T) {
			err := m.CheckRAIDConfig(n, tc.cfg)
			if got := fmt.Sprint(err); (tc.want == "" && err != nil) || (tc.want != "" && got != tc.want) {
				t.Errorf("CheckRAIDConfig = %v, want %q", err, tc.want)
			}
		})
	}

	create := []map[string]any{{"interface": "raid", "step": "create_configuration", "args": map[string]any{}}}
	// Planned when the clean is asked for; a BMC that cannot be read does
	// not refuse it (the step reads it again).
	n := put("bmcraid", ld(map[string]any{"raid_level": "5", "size_gb": float64(40)}))
	if err := m.checkRAIDSteps(ctx, n, "clean", create); err == nil || !strings.Contains(err.Error(), "failed to find matching physical disks for all logical disks") {
		t.Errorf("checkRAIDSteps(RAID-5 of 40 GiB) = %v", err)
	}
	fc.down = true
	if err := m.checkRAIDSteps(ctx, n, "clean", create); err != nil {
		t.Errorf("checkRAIDSteps with the BMC down = %v, want no refusal", err)
	}
	fc.down = false
	apply := []map[string]any{{"interface": "raid", "step": "apply_configuration", "args": map[string]any{"raid_config": ld(mirror)}}}
	if err := m.checkRAIDSteps(ctx, n, "clean", apply); err == nil || !strings.Contains(err.Error(), "node does not support this clean step") {
		t.Errorf("checkRAIDSteps(clean, apply_configuration) = %v", err)
	}
	if err := m.checkRAIDSteps(ctx, n, "deploy", apply); err != nil {
		t.Errorf("checkRAIDSteps(deploy, apply_configuration) = %v", err)
	}
	apply[0]["args"] = map[string]any{"raid_config": ld(mirror), "create_nonroot_volumes": "maybe"}
	if err := m.checkRAIDSteps(ctx, n, "deploy", apply); err == nil || !strings.Contains(err.Error(), "create_nonroot_volumes must be a boolean") {
		t.Errorf("checkRAIDSteps(deploy, a bad argument) = %v", err)
	}

	// The controller refuses the second volume: the first is removed again.
	fc.refuse = "RAID0"
	put("bmcraid", ld(mirror, map[string]any{"raid_level": "0", "size_gb": float64(5)}))
	_, err = m.raidStep(ctx, id, create[0])
	if err == nil || !strings.Contains(err.Error(), "Redfish driver failed to create virtual disk for node "+id+". Reason: bmc: the BMC refused the RAID0 volume: HTTP 400: no") {
		t.Errorf("raidStep with a refused volume = %v", err)
	}
	if len(fc.vols) != 0 || fmt.Sprint(fc.created, fc.deleted) != "[1] [1]" {
		t.Errorf("after a refused volume: volumes %v, created %v, deleted %v; want the first one removed", fc.vols, fc.created, fc.deleted)
	}
	// Both built; raid_config shows them; root only with create_nonroot_volumes false.
	fc.refuse = ""
	if _, err := m.raidStep(ctx, id, create[0]); err != nil {
		t.Fatal(err)
	}
	got, _ := st.Node(id)
	lds, _ := got.RAIDConfig["logical_disks"].([]any)
	if len(lds) != 2 || fmt.Sprint(lds[0]) != "map[controller:c0 id:2 name: raid_level:1 size_gb:5]" {
		t.Errorf("raid_config = %v", got.RAIDConfig)
	}
	rootOnly := map[string]any{"interface": "raid", "step": "create_configuration",
		"args": map[string]any{"create_nonroot_volumes": false, "delete_existing": true}}
	if _, err := m.raidStep(ctx, id, rootOnly); err != nil {
		t.Fatal(err)
	}
	if len(fc.vols) != 1 || fc.vols[0].RAIDType != "RAID1" {
		t.Errorf("after delete_existing and the root volume only: %v", fc.vols)
	}
	if _, err := m.raidStep(ctx, id, map[string]any{"interface": "raid", "step": "delete_configuration"}); err != nil || len(fc.vols) != 0 {
		t.Errorf("delete_configuration: %v, volumes %v", err, fc.vols)
	}
	// Validate reports a bad target_raid_config on the raid interface.
	put("bmcraid", ld(map[string]any{"raid_level": "9", "size_gb": float64(1)}))
	res, err := m.Validate(ctx, id)
	if err != nil || res["raid"].Result == nil || *res["raid"].Result || !strings.Contains(res["raid"].Reason, "'9' is not one of") {
		t.Errorf("Validate raid = %+v, %v", res["raid"], err)
	}
}
