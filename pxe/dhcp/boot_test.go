package dhcp

import (
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

var testBoot = BootConfig{
	ScriptURL:   "http://10.78.0.1:6385/boot/boot.ipxe",
	HTTPBootURL: "http://10.78.0.1:6385/boot/firmware/snponly.efi",
}

const (
	vcBIOS = "PXEClient:Arch:00000:UNDI:002001"
	vcUEFI = "PXEClient:Arch:00007:UNDI:003016"
	vcHTTP = "HTTPClient:Arch:00016:UNDI:003001"
)

func TestDecide(t *testing.T) {
	pxe := func(f Firmware, file string) Boot {
		return Boot{Firmware: f, File: file, TFTP: true, VendorClass: VendorPXEClient, VendorOptions: pxeVendorOptions}
	}
	tests := []struct {
		name   string
		client Client
		want   Boot
		ok     bool
	}{
		{"bios", Client{Arch: iana.INTEL_X86PC, HasArch: true, VendorClass: vcBIOS}, pxe(FirmwareBIOS, "undionly.kpxe"), true},
		{"uefi 7", Client{Arch: iana.EFI_BC, HasArch: true, VendorClass: vcUEFI}, pxe(FirmwareUEFI, "snponly.efi"), true},
		{"uefi 9", Client{Arch: iana.EFI_X86_64, HasArch: true, VendorClass: "PXEClient"}, pxe(FirmwareUEFI, "snponly.efi"), true},
		{"http boot", Client{Arch: iana.EFI_X86_64_HTTP, HasArch: true, VendorClass: vcHTTP},
			Boot{Firmware: FirmwareUEFIHTTP, File: testBoot.HTTPBootURL, VendorClass: VendorHTTPClient}, true},
		{"http arch with PXEClient", Client{Arch: iana.EFI_X86_64_HTTP, HasArch: true, VendorClass: "PXEClient"},
			Boot{Firmware: FirmwareUEFIHTTP, File: testBoot.HTTPBootURL, VendorClass: VendorHTTPClient}, true},
		{"http client arm64", Client{Arch: iana.EFI_ARM64_HTTP, HasArch: true, VendorClass: "HTTPClient"}, Boot{}, false},
		{"ipxe bios", Client{Arch: iana.INTEL_X86PC, HasArch: true, VendorClass: vcBIOS, IPXE: true},
			Boot{Firmware: FirmwareIPXE, File: testBoot.ScriptURL, VendorClass: VendorPXEClient, VendorOptions: pxeVendorOptions}, true},
		{"ipxe no vendor class", Client{IPXE: true}, Boot{Firmware: FirmwareIPXE, File: testBoot.ScriptURL}, true},
		{"no vendor class", Client{Arch: iana.INTEL_X86PC, HasArch: true}, Boot{}, false},
		{"pxe no arch", Client{VendorClass: "PXEClient"}, Boot{}, false},
		{"pxe arm64", Client{Arch: iana.EFI_ARM64, HasArch: true, VendorClass: "PXEClient"}, Boot{}, false},
		{"other vendor", Client{Arch: iana.INTEL_X86PC, HasArch: true, VendorClass: "MSFT 5.0"}, Boot{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Decide(tc.client, testBoot)
			if ok != tc.ok {
				t.Fatalf("Decide(%+v) ok = %v, want %v", tc.client, ok, tc.ok)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Decide(%+v) mismatch (-want +got):\n%s", tc.client, diff)
			}
		})
	}
	if _, ok := Decide(Client{VendorClass: vcHTTP}, BootConfig{ScriptURL: "x"}); ok {
		t.Error("Decide(HTTPClient) without HTTPBootURL = ok, want no boot")
	}
}

func TestParseClient(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	tests := []struct {
		name string
		mods []dhcpv4.Modifier
		want Client
	}{
		{"option 93", []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)), dhcpv4.WithOption(dhcpv4.OptClassIdentifier(vcUEFI))},
			Client{Arch: iana.EFI_X86_64, HasArch: true, VendorClass: vcUEFI}},
		{"arch from vendor class", []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClassIdentifier(vcHTTP))},
			Client{Arch: iana.EFI_X86_64_HTTP, HasArch: true, VendorClass: vcHTTP}},
		{"raw ipxe user class", []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionUserClassInformation, []byte("iPXE")))},
			Client{IPXE: true}},
		{"rfc 3004 ipxe user class", []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptUserClass("iPXE"))}, Client{IPXE: true}},
		{"bad vendor arch", []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:x0000"))},
			Client{VendorClass: "PXEClient:Arch:x0000"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := dhcpv4.NewDiscovery(mac, tc.mods...)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, ParseClient(m)); diff != "" {
				t.Errorf("ParseClient mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzDecide feeds raw packets through parsing, the boot decision and the
// reply builder: nothing may panic, and a positive decision must be
// consistent with the request.
func FuzzDecide(f *testing.F) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	for _, mods := range [][]dhcpv4.Modifier{
		{dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)), dhcpv4.WithOption(dhcpv4.OptClassIdentifier(vcBIOS))},
		{dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_BC)), dhcpv4.WithOption(dhcpv4.OptClassIdentifier(vcUEFI))},
		{dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64_HTTP)), dhcpv4.WithOption(dhcpv4.OptClassIdentifier(vcHTTP))},
		{dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionUserClassInformation, []byte("iPXE"))), dhcpv4.WithOption(dhcpv4.OptClassIdentifier(vcBIOS))},
		{},
	} {
		m, err := dhcpv4.NewDiscovery(mac, mods...)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(m.ToBytes())
	}
	f.Add([]byte{1, 1, 6, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		c := ParseClient(m)
		boot, ok := Decide(c, testBoot)
		if !ok {
			if !cmp.Equal(boot, Boot{}) {
				t.Fatalf("Decide(%+v) = %+v, false: want zero Boot", c, boot)
			}
			return
		}
		if boot.File == "" {
			t.Fatalf("Decide(%+v) = ok with empty file", c)
		}
		if c.IPXE && boot.File != testBoot.ScriptURL {
			t.Fatalf("iPXE client %+v got %q, want the script URL", c, boot.File)
		}
		if boot.TFTP != (boot.Firmware == FirmwareBIOS || boot.Firmware == FirmwareUEFI) {
			t.Fatalf("Decide(%+v) = %+v: TFTP must match PXE firmware", c, boot)
		}
		if boot.VendorClass != "" && !strings.HasPrefix(c.VendorClass, boot.VendorClass) && boot.Firmware != FirmwareUEFIHTTP {
			t.Fatalf("Decide(%+v) echoes vendor class %q the client did not send", c, boot.VendorClass)
		}
		reply, err := dhcpv4.NewReplyFromRequest(m)
		if err != nil {
			return
		}
		applyBoot(reply, boot, net.IPv4(10, 78, 0, 1))
		if _, err := dhcpv4.FromBytes(reply.ToBytes()); err != nil {
			t.Fatalf("reply for %+v does not parse back: %v", c, err)
		}
	})
}
