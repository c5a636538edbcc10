package manager

import (
	"testing"

	"github.com/ferric-metal/ferric/conductor/store"
)

func TestBootsUEFI(t *testing.T) {
	tests := []struct {
		name       string
		props, ins map[string]any
		want       bool
	}{
		{"no capabilities", nil, nil, false},
		{"properties string", map[string]any{"capabilities": "cpu_vt:true,boot_mode:uefi"}, nil, true},
		{"properties bios", map[string]any{"capabilities": "boot_mode:bios"}, nil, false},
		{"instance_info overrides", map[string]any{"capabilities": "boot_mode:bios"}, map[string]any{"capabilities": map[string]any{"boot_mode": "uefi"}}, true},
		{"instance_info string overrides to bios", map[string]any{"capabilities": "boot_mode:uefi"}, map[string]any{"capabilities": "boot_mode:bios"}, false},
		{"case-insensitive", map[string]any{"capabilities": "boot_mode:UEFI"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := &store.Node{Properties: tc.props, InstanceInfo: tc.ins}
			if got := bootsUEFI(n); got != tc.want {
				t.Errorf("bootsUEFI = %v, want %v", got, tc.want)
			}
		})
	}
}
