package inventory

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestExtraDisks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "disk.img")
	os.WriteFile(p, nil, 0o644)
	os.Truncate(p, 64<<20)
	c := &Collector{Root: "/", ExtraDisks: []string{p}, NoBlockDevices: true}
	inv, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Disks) != 1 || inv.Disks[0].Name != p || inv.Disks[0].Size != 64<<20 {
		t.Errorf("Disks = %+v", inv.Disks)
	}
	if inv.CPU.Count == 0 || inv.Memory.Total == 0 {
		t.Errorf("cpu %+v memory %+v", inv.CPU, inv.Memory)
	}
}
