package dhcp6

import (
	"bytes"
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/ferric-metal/ferric/pxe/dhcp"
)

// ClientMAC finds the client's Ethernet address: from its DUID (DUID-LL
// or DUID-LLT), else from the relay's client link-layer address option
// (RFC 6939), else from a modified EUI-64 link-local source address
// (iPXE and UEFI firmware form theirs from the MAC; iPXE's DUID is a
// DUID-UUID). It returns nil when none of them names one.
func ClientMAC(m *dhcpv6.Message, relayLLA net.HardwareAddr, src netip.Addr) net.HardwareAddr {
	switch d := m.Options.ClientID().(type) {
	case *dhcpv6.DUIDLL:
		if d.HWType == iana.HWTypeEthernet && len(d.LinkLayerAddr) == 6 {
			return d.LinkLayerAddr
		}
	case *dhcpv6.DUIDLLT:
		if d.HWType == iana.HWTypeEthernet && len(d.LinkLayerAddr) == 6 {
			return d.LinkLayerAddr
		}
	}
	if len(relayLLA) == 6 {
		return relayLLA
	}
	return macFromEUI64(src)
}

// macFromEUI64 inverts RFC 4291 appendix A for a link-local address whose
// interface identifier holds ff:fe in its middle.
func macFromEUI64(a netip.Addr) net.HardwareAddr {
	if !a.Is6() || !a.IsLinkLocalUnicast() {
		return nil
	}
	b := a.As16()
	if b[11] != 0xff || b[12] != 0xfe {
		return nil
	}
	return net.HardwareAddr{b[8] ^ 0x02, b[9], b[10], b[13], b[14], b[15]}
}

// ParseClient reads the boot-relevant fields of a DHCPv6 message into
// the same Client the DHCPv4 decision uses: the architecture (option 61),
// the vendor class (option 16, its first data item; UEFI sends
// "PXEClient:Arch:00007:UNDI:003016" or "HTTPClient:...") and whether the
// user class (option 15) says iPXE. It never fails.
func ParseClient(m *dhcpv6.Message) dhcp.Client {
	var c dhcp.Client
	if a := m.Options.ArchTypes(); len(a) > 0 {
		c.Arch, c.HasArch = a[0], true
	}
	for _, vc := range m.Options.VendorClasses() {
		for _, d := range vc.Data {
			if len(d) > 0 {
				c.VendorClass = string(d)
				break
			}
		}
		if c.VendorClass != "" {
			break
		}
	}
	for _, uc := range m.Options.UserClasses() {
		if bytes.Contains(uc, []byte("iPXE")) {
			c.IPXE = true
		}
	}
	return c
}

// BootFileURL turns a boot decision into the URL of option 59 (RFC
// 5970): URLs are sent as they are, TFTP file names as
// tftp://[server]/name.
func BootFileURL(b dhcp.Boot, server netip.Addr) string {
	if !b.TFTP {
		return b.File
	}
	u := url.URL{Scheme: "tftp", Host: "[" + server.WithZone("").String() + "]", Path: "/" + strings.TrimPrefix(b.File, "/")}
	return u.String()
}
