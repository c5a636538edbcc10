package lab

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestChassisBootDevice(t *testing.T) {
	q, err := NewQEMU(MachineConfig{Name: "vm0", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args    []string
		want    string // output of "get power boot" afterwards
		wantErr bool
	}{
		{args: []string{"get", "power", "boot"}, want: "power:0\nboot:default\n"},
		{args: []string{"set", "boot", "pxe"}, want: "power:0\nboot:pxe\n"},
		{args: []string{"set", "boot", `"default"`}, want: "power:0\nboot:default\n"},
		{args: []string{"set", "boot", "cdrom"}, want: "power:0\nboot:cdrom\n"},
		{args: []string{"set", "boot", "none"}, want: "power:0\nboot:default\n"},
		{args: []string{"set", "reset", "1"}, want: "power:0\nboot:default\n"},
		{args: []string{"set", "boot", "floppy"}, wantErr: true},
		{args: []string{"get", "fan"}, wantErr: true},
		{args: []string{"check"}, wantErr: true},
		{args: []string{"explode"}, wantErr: true},
	}
	for _, tc := range tests {
		var out bytes.Buffer
		err := Chassis(context.Background(), q, tc.args, &out)
		if (err != nil) != tc.wantErr {
			t.Fatalf("Chassis(%q) = %v, want error %v", tc.args, err, tc.wantErr)
		}
		if tc.wantErr {
			continue
		}
		out.Reset()
		if err := Chassis(context.Background(), q, []string{"get", "power", "boot"}, &out); err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.want {
			t.Errorf("after Chassis(%q): get = %q, want %q", tc.args, out.String(), tc.want)
		}
	}
}

func TestFirmwareBootOrder(t *testing.T) {
	log := "SeaBIOS\nboot order:\n1: /pci@i0cf8/scsi@2/disk@0,0\n2: /pci@i0cf8/ethernet@3/ethernet-phy@0\nPCI: x\n" +
		"SeaBIOS again\nboot order:\n1: /pci@i0cf8/ethernet@3/ethernet-phy@0\n2: /pci@i0cf8/scsi@2/disk@0,0\nBooting from ROM...\n"
	p := filepath.Join(t.TempDir(), "fw.log")
	if err := os.WriteFile(p, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	order, n, err := FirmwareBootOrder(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/pci@i0cf8/ethernet@3/ethernet-phy@0", "/pci@i0cf8/scsi@2/disk@0,0"}
	if n != 2 || !cmp.Equal(order, want) {
		t.Errorf("FirmwareBootOrder() = %q, %d, want %q, 2", order, n, want)
	}
}

func TestQEMUArgs(t *testing.T) {
	tests := []struct {
		net, boot, wantNet, wantNIC string
	}{
		{"user", "disk", "user,id=n0,restrict=on", "bootindex=2"},
		{"tap:tap3", "pxe", "tap,id=n0,ifname=tap3,script=no,downscript=no", "bootindex=1"},
	}
	for _, tc := range tests {
		q, err := NewQEMU(MachineConfig{Name: "vm0", Dir: t.TempDir(), Net: tc.net})
		if err != nil {
			t.Fatal(err)
		}
		if err := q.SetBootDevice(context.Background(), tc.boot); err != nil {
			t.Fatal(err)
		}
		args := q.Args()
		var netdev, nic string
		for i, a := range args {
			if a == "-netdev" {
				netdev = args[i+1]
			}
			if a == "-device" && bytes.HasPrefix([]byte(args[i+1]), []byte("virtio-net-pci")) {
				nic = args[i+1]
			}
		}
		if netdev != tc.wantNet || !bytes.Contains([]byte(nic), []byte(tc.wantNIC)) {
			t.Errorf("Args() net %q nic %q, want %q and %q", netdev, nic, tc.wantNet, tc.wantNIC)
		}
	}
}
