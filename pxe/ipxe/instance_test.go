package ipxe

import (
	"errors"
	"net"
	"strings"
	"testing"
)

// TestInstanceScript renders the boot of a ramdisk deploy's instance: an
// ISO by sanboot, or a kernel and initramfs with the instance's own
// parameters (none of the agent's); URLs and parameters that cannot be
// placed on an iPXE line are refused.
func TestInstanceScript(t *testing.T) {
	mac, _ := net.ParseMAC("52:54:00:12:34:56")
	console, _ := ParseParam("console=ttyS0")
	tests := []struct {
		name    string
		in      Instance
		want    []string
		wantErr bool
	}{
		{"iso", Instance{ISOURL: "http://10.0.0.1/live.iso"}, []string{"sanboot --no-describe http://10.0.0.1/live.iso || goto fail"}, false},
		{"kernel and ramdisk", Instance{KernelURL: "http://10.0.0.1/vmlinuz", InitrdURL: "https://10.0.0.1/initrd", Args: []Param{console}},
			[]string{"kernel http://10.0.0.1/vmlinuz initrd=ramdisk console=ttyS0 || goto fail", "initrd --name ramdisk https://10.0.0.1/initrd || goto fail", "boot || goto fail"}, false},
		{"iso not http", Instance{ISOURL: "ftp://10.0.0.1/live.iso"}, nil, true},
		{"iso with a space", Instance{ISOURL: "http://10.0.0.1/a b.iso"}, nil, true},
		{"no initrd", Instance{KernelURL: "http://10.0.0.1/vmlinuz"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Script(mac, Action{Kind: ActionInstance, Node: "n1", Instance: tc.in})
			if tc.wantErr {
				if !errors.Is(err, ErrInvalidArg) {
					t.Fatalf("Script() error = %v, want ErrInvalidArg", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(s, w+"\n") {
					t.Errorf("Script() =\n%s\nwant the line %q", s, w)
				}
			}
			if strings.Contains(s, "ipa-api-url") || strings.Contains(s, "BOOTIF") {
				t.Errorf("the instance got the agent's parameters:\n%s", s)
			}
		})
	}
	if got := ActionInstance.String(); got != "instance" {
		t.Errorf("ActionInstance.String() = %q", got)
	}
}
