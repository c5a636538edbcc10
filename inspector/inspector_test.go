package inspector

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/ferric-metal/ferric/inspector/inventory"
	"github.com/ferric-metal/ferric/inspector/rules"
	"github.com/ferric-metal/ferric/ipa/hints"
	"github.com/google/go-cmp/cmp"
)

func load(t *testing.T, name string) *inventory.Data {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	d, err := inventory.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func node(props map[string]any) Node {
	if props == nil {
		props = map[string]any{}
	}
	return Node{UUID: "n1", Fields: map[string]any{"uuid": "n1", "driver": "ipmi", "properties": props, "extra": map[string]any{}}}
}

func TestProcessFixtures(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		props map[string]any
		cfg   Config
		want  map[string]any
		ports []Port
		root  string
	}{
		{
			name: "dell defaults",
			file: "dell.json",
			want: map[string]any{
				"cpu_arch": "x86_64", "cpus": 80, "memory_mb": int64(393216), "local_gb": int64(446),
				"capabilities": "boot_mode:uefi,cpu_aes:true,cpu_hugepages_1g:true,cpu_txt:true,cpu_vt:true",
			},
			ports: []Port{{Address: "b0:7b:25:de:0a:10", PXEEnabled: true, Interface: "eno1"}},
			root:  "/dev/sda",
		},
		{
			name:  "dell hints and all ports, no spacing",
			file:  "dell.json",
			props: map[string]any{"root_device": map[string]any{"rotational": true}, "capabilities": "profile:compute"},
			cfg:   Config{AddPorts: AddPortsAll, NoPartitioningSpacing: true},
			want: map[string]any{
				"cpu_arch": "x86_64", "cpus": 80, "memory_mb": int64(393216), "local_gb": int64(3726),
				"capabilities": "boot_mode:uefi,cpu_aes:true,cpu_hugepages_1g:true,cpu_txt:true,cpu_vt:true,profile:compute",
			},
			ports: []Port{
				{Address: "b0:7b:25:de:0a:10", PXEEnabled: true, Interface: "eno1"},
				{Address: "b0:7b:25:de:0a:11", Interface: "eno2"},
			},
			root: "/dev/sdc",
		},
		{
			name:  "dell skip list, active ports",
			file:  "dell.json",
			props: map[string]any{"skip_block_devices": []any{map[string]any{"model": "<in> boss"}}},
			cfg:   Config{AddPorts: AddPortsActive},
			want: map[string]any{
				"cpu_arch": "x86_64", "cpus": 80, "memory_mb": int64(393216), "local_gb": int64(1787),
				"capabilities": "boot_mode:uefi,cpu_aes:true,cpu_hugepages_1g:true,cpu_txt:true,cpu_vt:true",
			},
			ports: []Port{{Address: "b0:7b:25:de:0a:10", PXEEnabled: true, Interface: "eno1"}},
			root:  "/dev/sdb",
		},
		{
			name: "qemu",
			file: "qemu.json",
			cfg:  Config{AddPorts: AddPortsDisabled},
			want: map[string]any{
				"cpu_arch": "x86_64", "cpus": 2, "memory_mb": int64(4096), "local_gb": int64(19),
				"capabilities": "boot_mode:bios,cpu_hugepages:true",
			},
			root: "/dev/vda",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Process(load(t, tt.file), node(tt.props), nil, tt.cfg)
			if res.Err != nil {
				t.Fatalf("Process() Err = %v", res.Err)
			}
			if diff := cmp.Diff(tt.want, res.Properties); diff != "" {
				t.Errorf("Properties (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.ports, res.Ports); diff != "" {
				t.Errorf("Ports (-want +got):\n%s", diff)
			}
			if res.RootDisk == nil || res.RootDisk.Name != tt.root {
				t.Errorf("RootDisk = %+v, want %s", res.RootDisk, tt.root)
			}
			if res.PluginData["macs"] == nil {
				t.Errorf("PluginData lacks macs")
			}
		})
	}
}

func TestProcessFailures(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(d *inventory.Data)
		props  map[string]any
		cfg    Config
		want   error
	}{
		{"ramdisk error", func(d *inventory.Data) { d.PluginData["error"] = "collector failed" }, nil, Config{}, ErrRamdisk},
		{"bad hints", nil, map[string]any{"root_device": map[string]any{"size": "big"}}, Config{}, hints.ErrInvalidHints},
		{"no disk matches", nil, map[string]any{"root_device": map[string]any{"vendor": "hgst"}}, Config{}, hints.ErrNoDevice},
		{"invalid macs", func(d *inventory.Data) {
			for i := range d.Inventory.Interfaces {
				d.Inventory.Interfaces[i].MACAddress = "zz"
			}
		}, nil, Config{}, ErrNoInterfaces},
		{"active without ip", func(d *inventory.Data) {
			d.Inventory.Interfaces[0].IPv4Address = nil
			d.Inventory.Interfaces[0].IPv6Address = nil
		}, nil, Config{AddPorts: AddPortsActive}, ErrNoInterfaces},
		{"loopback only", func(d *inventory.Data) {
			d.Inventory.Interfaces = []inventory.Interface{{Name: "lo", MACAddress: "00:00:00:00:00:01", IPv4Address: ptr("127.0.0.1")}}
		}, nil, Config{}, ErrNoInterfaces},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := load(t, "dell.json")
			if tt.mutate != nil {
				tt.mutate(d)
			}
			res := Process(d, node(tt.props), nil, tt.cfg)
			if !errors.Is(res.Err, tt.want) {
				t.Errorf("Process() Err = %v, want %v", res.Err, tt.want)
			}
		})
	}
}

func TestProcessPXEFallback(t *testing.T) {
	// Without a PXE MAC, add_ports=pxe adds every interface, none PXE-enabled.
	d := load(t, "dell.json")
	d.Inventory.Boot.PXEInterface = nil
	res := Process(d, node(nil), nil, Config{})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if len(res.Ports) != 2 || res.Ports[0].PXEEnabled || res.Ports[1].PXEEnabled {
		t.Errorf("Ports = %+v, want both interfaces, none PXE", res.Ports)
	}
}

func TestProcessRules(t *testing.T) {
	r1, err := rules.Parse([]byte(`{"uuid": "r1", "conditions": [
		{"op": "eq", "args": {"values": ["{inventory[system_vendor][manufacturer]}", "Dell Inc."]}},
		{"op": "ge", "args": {"values": ["{node[properties][local_gb]}", 100]}}],
		"actions": [
		{"op": "set-attribute", "args": {"path": "driver_info/ipmi_address", "value": "{inventory[bmc_address]}"}},
		{"op": "add-trait", "args": {"name": "CUSTOM_DELL"}},
		{"op": "set-plugin-data", "args": {"path": "vendor", "value": "dell"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := rules.Parse([]byte(`{"uuid": "r2", "conditions": [{"op": "eq", "args": {"values": ["{inventory[cpu][architecture]}", "aarch64"]}}],
		"actions": [{"op": "fail", "args": {"msg": "wrong arch"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	res := Process(load(t, "dell.json"), node(nil), []rules.Rule{r1, r2}, Config{})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	want := []rules.PatchOp{{Op: "add", Path: "/driver_info", Value: map[string]any{"ipmi_address": "10.10.0.21"}}}
	if diff := cmp.Diff(want, res.Patch); diff != "" {
		t.Errorf("Patch (-want +got):\n%s", diff)
	}
	if !slices.Equal(res.AddTraits, []string{"CUSTOM_DELL"}) {
		t.Errorf("AddTraits = %v", res.AddTraits)
	}
	if res.PluginData["vendor"] != "dell" || res.PluginData["root_disk"] == nil {
		t.Errorf("PluginData = %v", res.PluginData)
	}

	d := load(t, "qemu.json")
	r3, _ := rules.Parse([]byte(`{"conditions": [{"op": "eq", "args": {"values": ["{inventory[system_vendor][manufacturer]}", "QEMU"]}}], "actions": [{"op": "fail", "args": {"msg": "no VMs"}}]}`))
	res = Process(d, node(nil), []rules.Rule{r3}, Config{})
	if !errors.Is(res.Err, rules.ErrFailed) {
		t.Errorf("Process() Err = %v, want rules.ErrFailed", res.Err)
	}
}

type fakeNodes struct {
	bmc  map[string]string
	macs map[string]string
	err  error
}

func (f fakeNodes) FindByBMCAddress(_ context.Context, addrs []string) ([]string, error) {
	var out []string
	for _, a := range addrs {
		if id, ok := f.bmc[a]; ok {
			out = append(out, id)
		}
	}
	return out, f.err
}

func (f fakeNodes) FindByMACs(_ context.Context, macs []string) ([]string, error) {
	var out []string
	for _, m := range macs {
		if id, ok := f.macs[m]; ok {
			out = append(out, id)
		}
	}
	return out, f.err
}

func TestMatch(t *testing.T) {
	tests := []struct {
		name  string
		nodes fakeNodes
		want  string
		err   error
	}{
		{"by bmc", fakeNodes{bmc: map[string]string{"10.10.0.21": "a"}}, "a", nil},
		{"by mac", fakeNodes{macs: map[string]string{"b0:7b:25:de:0a:11": "a"}}, "a", nil},
		{"both agree", fakeNodes{bmc: map[string]string{"10.10.0.21": "a"}, macs: map[string]string{"b0:7b:25:de:0a:10": "a", "b0:7b:25:de:0a:11": "a"}}, "a", nil},
		{"disagree", fakeNodes{bmc: map[string]string{"10.10.0.21": "a"}, macs: map[string]string{"b0:7b:25:de:0a:10": "b"}}, "", ErrAmbiguous},
		{"none", fakeNodes{}, "", ErrNodeNotFound},
		{"store error", fakeNodes{err: context.Canceled}, "", context.Canceled},
	}
	d := load(t, "dell.json")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Match(context.Background(), tt.nodes, &d.Inventory)
			if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Errorf("Match() = %q, %v, want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func ptr(s string) *string { return &s }
