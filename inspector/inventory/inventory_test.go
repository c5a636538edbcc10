package inventory

import (
	"errors"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseFixtures(t *testing.T) {
	tests := []struct {
		file       string
		cpus       int
		arch       string
		physMB     int64
		disks      []string
		macs       []string
		pxe        string
		bmc        []string
		bootMode   string
		pluginKeys []string
	}{
		{
			file: "dell.json", cpus: 80, arch: "x86_64", physMB: 393216,
			disks:      []string{"/dev/sda", "/dev/sdb", "/dev/sdc"},
			macs:       []string{"b0:7b:25:de:0a:10", "b0:7b:25:de:0a:11"},
			pxe:        "b0:7b:25:de:0a:10",
			bmc:        []string{"10.10.0.21"},
			bootMode:   "uefi",
			pluginKeys: []string{"boot_interface", "configuration", "error", "root_disk"},
		},
		{
			file: "qemu.json", cpus: 2, arch: "x86_64", physMB: 4096,
			disks:      []string{"/dev/vda"},
			macs:       []string{"52:54:00:12:34:56"},
			pxe:        "52:54:00:12:34:56",
			bootMode:   "bios",
			pluginKeys: []string{"error", "root_disk"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			d, err := Parse(readFixture(t, tt.file))
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			inv := d.Inventory
			if inv.CPU.Count != tt.cpus || inv.CPU.Architecture != tt.arch || inv.Memory.PhysicalMB != tt.physMB {
				t.Errorf("cpu/memory = %d %q %d, want %d %q %d", inv.CPU.Count, inv.CPU.Architecture, inv.Memory.PhysicalMB, tt.cpus, tt.arch, tt.physMB)
			}
			var names []string
			for _, disk := range inv.Disks {
				names = append(names, disk.Name)
			}
			if diff := cmp.Diff(tt.disks, names); diff != "" {
				t.Errorf("disks (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.macs, inv.MACs()); diff != "" {
				t.Errorf("MACs() (-want +got):\n%s", diff)
			}
			if got := inv.PXEMAC(); got != tt.pxe {
				t.Errorf("PXEMAC() = %q, want %q", got, tt.pxe)
			}
			if diff := cmp.Diff(tt.bmc, inv.BMCAddresses()); diff != "" {
				t.Errorf("BMCAddresses() (-want +got):\n%s", diff)
			}
			if inv.Boot.CurrentBootMode != tt.bootMode {
				t.Errorf("boot mode = %q, want %q", inv.Boot.CurrentBootMode, tt.bootMode)
			}
			var keys []string
			for k := range d.PluginData {
				keys = append(keys, k)
			}
			if diff := cmp.Diff(tt.pluginKeys, keys, cmpSort); diff != "" {
				t.Errorf("plugin data keys (-want +got):\n%s", diff)
			}
			if d.Raw["cpu"] == nil {
				t.Errorf("Raw lacks cpu")
			}
		})
	}
}

var cmpSort = cmpopts.SortSlices(func(a, b string) bool { return a < b })

func TestDellLLDP(t *testing.T) {
	d, err := Parse(readFixture(t, "dell.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []TLV{{Type: 1, Value: "04b07b25de0a00"}, {Type: 2, Value: "0545746865726e6574312f31"}}
	if diff := cmp.Diff(want, d.Inventory.Interfaces[0].LLDP); diff != "" {
		t.Errorf("LLDP (-want +got):\n%s", diff)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"not json", `{`},
		{"not object", `[]`},
		{"no inventory", `{"root_disk": {}}`},
		{"null inventory", `{"inventory": null}`},
		{"inventory not object", `{"inventory": 3}`},
		{"no interfaces", `{"inventory": {"interfaces": []}}`},
		{"interface without mac", `{"inventory": {"interfaces": [{"name": "eth0"}]}}`},
		{"bad lldp", `{"inventory": {"interfaces": [{"name": "eth0", "mac_address": "52:54:00:00:00:01", "lldp": [[1]]}]}}`},
		{"wrong type", `{"inventory": {"cpu": {"count": "many"}, "interfaces": [{"name": "eth0", "mac_address": "52:54:00:00:00:01"}]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.in))
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse(%s) = %v, %v, want ErrInvalid", tt.in, d, err)
			}
		})
	}
}

func TestNormalizeMAC(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"AA:BB:CC:DD:EE:FF", "aa:bb:cc:dd:ee:ff", true},
		{"aa-bb-cc-dd-ee-ff", "aa:bb:cc:dd:ee:ff", true},
		{"aa:bb:cc:dd:ee", "", false},
		{"00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeMAC(tt.in)
			if got != tt.want || (err == nil) != tt.ok {
				t.Errorf("NormalizeMAC(%q) = %q, %v, want %q ok=%t", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(readFixture(f, "dell.json"))
	f.Add(readFixture(f, "qemu.json"))
	f.Add([]byte(`{"inventory": {"interfaces": [{"mac_address": "x", "lldp": [[1, "00"]]}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && d != nil {
				t.Fatalf("Parse returned data with error %v", err)
			}
			return
		}
		if len(d.Inventory.Interfaces) == 0 {
			t.Fatalf("Parse accepted an inventory without interfaces")
		}
		_ = d.Inventory.MACs()
		_ = d.Inventory.PXEMAC()
	})
}
