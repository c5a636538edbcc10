package inventory

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
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

func TestOnlyMACs(t *testing.T) {
	c := &Collector{Root: t.TempDir(), NoBlockDevices: true, MACs: []string{"52:54:00:AA:BB:01", "junk", "52-54-00-aa-bb-02"}}
	inv, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range inv.Interfaces {
		got = append(got, it.Name+"="+it.MACAddress)
	}
	want := []string{"mac0=52:54:00:aa:bb:01", "mac2=52:54:00:aa:bb:02"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Collect() interfaces (-want +got):\n%s", diff)
	}
}
