package lab

import (
	"strings"
	"testing"
)

// TestQEMUArgsHTTPBoot: a UEFI machine with HTTPBoot has a NIC without
// option ROM and OVMF's PXE off; a BIOS machine ignores it.
func TestQEMUArgsHTTPBoot(t *testing.T) {
	for _, tc := range []struct {
		firmware string
		want     bool
	}{{"uefi", true}, {"bios", false}} {
		q, err := NewQEMU(MachineConfig{Name: "vm0", Dir: t.TempDir(), Firmware: tc.firmware, HTTPBoot: true})
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(q.Args(), " ")
		for _, w := range []string{",romfile=", "-fw_cfg name=opt/org.tianocore/IPv4PXESupport,string=no",
			"-fw_cfg name=opt/org.tianocore/IPv6PXESupport,string=no"} {
			if strings.Contains(got, w) != tc.want {
				t.Errorf("%s: Args() = %s\nhas %q: %v, want %v", tc.firmware, got, w, !tc.want, tc.want)
			}
		}
	}
}
