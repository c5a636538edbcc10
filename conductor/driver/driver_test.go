package driver

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCapabilities(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want map[string]string
	}{
		{"string", "boot_mode:uefi, cpu_vt:true", map[string]string{"boot_mode": "uefi", "cpu_vt": "true"}},
		{"map", map[string]any{"boot_mode": "bios"}, map[string]string{"boot_mode": "bios"}},
		{"junk", "nocolon,:x", map[string]string{}},
		{"nil", nil, map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Capabilities(tc.in)); diff != "" {
				t.Errorf("Capabilities(%v) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}
