package inventory

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ferric-metal/ferric/ipa/internal/bmcinfo"
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

type fakeBMC struct {
	lan bmcinfo.LAN
	err error
}

func (f fakeBMC) ReadLAN(context.Context) (bmcinfo.LAN, error) { return f.lan, f.err }

func TestBMC(t *testing.T) {
	str := func(s string) *string { return &s }
	tests := []struct {
		name          string
		bmc           BMCReader
		wantAddr, mac *string
		wantV6        *string
	}{
		{"no reader", nil, nil, nil, nil},
		{"no IPMI device", fakeBMC{err: bmcinfo.ErrNoDevice}, nil, nil, nil},
		{"BMC error", fakeBMC{err: errors.New("timeout")}, nil, nil, nil},
		{"address and MAC", fakeBMC{lan: bmcinfo.LAN{Channel: 1, Address: "192.0.2.41", MAC: "52:54:00:12:34:56"}}, str("192.0.2.41"), str("52:54:00:12:34:56"), nil},
		{"address without MAC", fakeBMC{lan: bmcinfo.LAN{Channel: 2, Address: "192.0.2.42"}}, str("192.0.2.42"), nil, nil},
		{"IPv4 and IPv6", fakeBMC{lan: bmcinfo.LAN{Channel: 1, Address: "192.0.2.41", MAC: "52:54:00:12:34:56", V6Address: "2001:db8::41"}},
			str("192.0.2.41"), str("52:54:00:12:34:56"), str("2001:db8::41")},
		{"IPv6 only", fakeBMC{lan: bmcinfo.LAN{Channel: 1, MAC: "52:54:00:12:34:56", V6Address: "2001:db8::41"}},
			nil, str("52:54:00:12:34:56"), str("2001:db8::41")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Collector{Root: t.TempDir(), NoBlockDevices: true, BMC: tc.bmc, Logger: slog.New(slog.DiscardHandler)}
			inv, err := c.Collect(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantAddr, inv.BMCAddress); diff != "" {
				t.Errorf("bmc_address (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.mac, inv.BMCMAC); diff != "" {
				t.Errorf("bmc_mac (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantV6, inv.BMCV6Address); diff != "" {
				t.Errorf("bmc_v6address (-want +got):\n%s", diff)
			}
		})
	}
}
