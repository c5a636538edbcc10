package dhcp

import (
	"bytes"
	"net"
	"strconv"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// Vendor class identifiers (option 60) of network boot clients.
const (
	VendorPXEClient  = "PXEClient"
	VendorHTTPClient = "HTTPClient"
)

// Default first-stage files (TFTP names, relative to the TFTP root).
const (
	DefaultBIOSFile = "undionly.kpxe"
	DefaultUEFIFile = "snponly.efi"
)

// pxeVendorOptions is option 43 with PXE sub-option 6 (discovery control)
// = 8: skip boot-server discovery and boot the file named in the offer.
// Without it PXE ROMs and iPXE wait seconds for a ProxyDHCP answer.
var pxeVendorOptions = []byte{6, 1, 8, 255}

// Firmware is the kind of network boot client, as far as DHCP can tell.
type Firmware int

const (
	FirmwareNone     Firmware = iota // not a network boot client
	FirmwareBIOS                     // PXE ROM, x86 BIOS (arch 0)
	FirmwareUEFI                     // UEFI PXE, x86-64 (arch 7 or 9)
	FirmwareUEFIHTTP                 // UEFI HTTP boot (arch 15/16 or vendor class HTTPClient)
	FirmwareIPXE                     // iPXE already running (user class "iPXE")
)

func (f Firmware) String() string {
	switch f {
	case FirmwareBIOS:
		return "bios"
	case FirmwareUEFI:
		return "uefi"
	case FirmwareUEFIHTTP:
		return "uefi-http"
	case FirmwareIPXE:
		return "ipxe"
	default:
		return "none"
	}
}

// Client is what the boot decision looks at in a request.
type Client struct {
	// Arch is option 93 (first value) or, without it, the Arch field of a
	// "PXEClient:Arch:xxxxx:..." vendor class. HasArch says one was found.
	Arch    iana.Arch
	HasArch bool
	// VendorClass is option 60.
	VendorClass string
	// IPXE is set when option 77 carries "iPXE" (iPXE sends the bare
	// string, not RFC 3004 encoding).
	IPXE bool
}

// ParseClient extracts the boot-relevant fields of m. It never fails: a
// field that is missing or malformed is left zero.
func ParseClient(m *dhcpv4.DHCPv4) Client {
	c := Client{VendorClass: m.ClassIdentifier()}
	if a := m.ClientArch(); len(a) > 0 {
		c.Arch, c.HasArch = a[0], true
	} else if arch, ok := archFromVendorClass(c.VendorClass); ok {
		c.Arch, c.HasArch = arch, true
	}
	c.IPXE = bytes.Contains(m.GetOneOption(dhcpv4.OptionUserClassInformation), []byte("iPXE"))
	return c
}

// archFromVendorClass reads "PXEClient:Arch:00007:UNDI:003016".
func archFromVendorClass(vc string) (iana.Arch, bool) {
	parts := strings.Split(vc, ":")
	if len(parts) < 3 || parts[1] != "Arch" || len(parts[2]) != 5 {
		return 0, false
	}
	n, err := strconv.ParseUint(parts[2], 10, 16)
	if err != nil {
		return 0, false
	}
	return iana.Arch(n), true
}

// BootConfig names what each kind of client is sent.
type BootConfig struct {
	// BIOSFile is the TFTP file for BIOS PXE. Default DefaultBIOSFile.
	BIOSFile string
	// UEFIFile is the TFTP file for x86-64 UEFI PXE. Default DefaultUEFIFile.
	UEFIFile string
	// HTTPBootURL is the URL of an iPXE EFI binary for UEFI HTTP boot, e.g.
	// "http://10.99.0.1:6385/boot/firmware/snponly.efi". Empty: HTTP boot
	// clients get no boot answer.
	HTTPBootURL string
	// ScriptURL is the iPXE script for clients already running iPXE, e.g.
	// "http://10.99.0.1:6385/boot/boot.ipxe". Required.
	ScriptURL string
}

func (b *BootConfig) setDefaults() {
	if b.BIOSFile == "" {
		b.BIOSFile = DefaultBIOSFile
	}
	if b.UEFIFile == "" {
		b.UEFIFile = DefaultUEFIFile
	}
}

// Boot is the boot part of a reply.
type Boot struct {
	Firmware Firmware
	// File is the boot file: a TFTP name when TFTP is set, else a URL.
	File string
	TFTP bool
	// VendorClass is echoed as option 60 ("" for none).
	VendorClass string
	// VendorOptions is option 43 (nil for none).
	VendorOptions []byte
}

// Decide picks the boot answer for a client. ok is false when the client
// is not a network boot client this server can serve (no boot information
// is sent then). It is pure: the same input gives the same output.
//
// Order matters: a client already in iPXE gets the script URL even though
// it also says PXEClient, which breaks the chainload loop.
func Decide(c Client, cfg BootConfig) (b Boot, ok bool) {
	cfg.setDefaults()
	pxe := strings.HasPrefix(c.VendorClass, VendorPXEClient)
	httpc := strings.HasPrefix(c.VendorClass, VendorHTTPClient)
	switch {
	case c.IPXE:
		if cfg.ScriptURL == "" {
			return Boot{}, false
		}
		b = Boot{Firmware: FirmwareIPXE, File: cfg.ScriptURL}
	case httpc || c.HasArch && isHTTPArch(c.Arch) && pxe:
		if cfg.HTTPBootURL == "" || c.HasArch && !isHTTPArch(c.Arch) {
			return Boot{}, false
		}
		return Boot{Firmware: FirmwareUEFIHTTP, File: cfg.HTTPBootURL, VendorClass: VendorHTTPClient}, true
	case pxe && c.HasArch && c.Arch == iana.INTEL_X86PC:
		b = Boot{Firmware: FirmwareBIOS, File: cfg.BIOSFile, TFTP: true}
	case pxe && c.HasArch && (c.Arch == iana.EFI_BC || c.Arch == iana.EFI_X86_64):
		b = Boot{Firmware: FirmwareUEFI, File: cfg.UEFIFile, TFTP: true}
	default:
		return Boot{}, false
	}
	if pxe {
		b.VendorClass = VendorPXEClient
		b.VendorOptions = pxeVendorOptions
	}
	return b, true
}

// isHTTPArch reports the x86 UEFI HTTP boot architectures (15, 16).
func isHTTPArch(a iana.Arch) bool {
	return a == iana.EFI_X86_HTTP || a == iana.EFI_X86_64_HTTP
}

// applyBoot writes b into reply; siaddr is the TFTP server.
func applyBoot(reply *dhcpv4.DHCPv4, b Boot, siaddr net.IP) {
	if b.File == "" {
		return
	}
	reply.ServerIPAddr = siaddr
	if len(b.File) < 128 {
		reply.BootFileName = b.File
	}
	reply.UpdateOption(dhcpv4.OptBootFileName(b.File))
	if b.TFTP {
		reply.UpdateOption(dhcpv4.OptTFTPServerName(siaddr.String()))
	}
	if b.VendorClass != "" {
		reply.UpdateOption(dhcpv4.OptClassIdentifier(b.VendorClass))
	}
	if b.VendorOptions != nil {
		reply.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation, b.VendorOptions))
	}
}
