// Package netconfig configures the ramdisk's links from an OpenStack
// network_data.json before the agent looks itself up, so that a machine
// booted from virtual media reaches the conductor with no DHCP server.
//
// As with Ironic's virtual media boot, the file comes inside the boot ISO
// (or a second medium) labelled "config-2", at
// openstack/latest/network_data.json: Finder looks for a block device of
// that label (or, holding the file, Ironic's VMEDIA_BOOT_ISO or ferric's
// FERRIC_BOOT boot ISO label) and reads the file without writing: ISO9660 and FAT32 through
// github.com/diskfs/go-diskfs (no kernel filesystem module needed), other
// FAT through a read-only mount. The label is read from the superblock by
// hand (a few fixed offsets; the ramdisk has no udev or blkid).
//
// Parse checks the whole document and turns it into a Plan without touching
// the machine: physical links are named by MAC address, VLANs and bonds by
// the links they stand on; networks of type ipv4/ipv6 carry static
// addresses (netmask or prefix), routes and DNS servers; ipv4_dhcp,
// ipv6_dhcp and ipv6_slaac networks are left to the caller's DHCP. Apply
// makes the plan real through netlink (github.com/vishvananda/netlink) and,
// when a step fails, undoes what it did, so that bad input changes
// nothing. WriteResolvConf writes the DNS servers.
package netconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// ErrBadInput marks network data that cannot be applied; the message names
// the link or network at fault.
var ErrBadInput = errors.New("netconfig: bad network_data")

// Document is network_data.json as Nova and Ironic write it.
type Document struct {
	Links    []Link    `json:"links"`
	Networks []Network `json:"networks"`
	Services []Service `json:"services"`
}

// Link is one entry of "links".
type Link struct {
	ID                 string   `json:"id"`
	Type               string   `json:"type"`
	MAC                string   `json:"ethernet_mac_address"`
	MTU                *int     `json:"mtu"`
	VLANLink           string   `json:"vlan_link"`
	VLANID             int      `json:"vlan_id"`
	VLANMAC            string   `json:"vlan_mac_address"`
	BondLinks          []string `json:"bond_links"`
	BondMode           string   `json:"bond_mode"`
	BondMiimon         int      `json:"bond_miimon"`
	BondXmitHashPolicy string   `json:"bond_xmit_hash_policy"`
}

// Network is one entry of "networks".
type Network struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Link      string    `json:"link"`
	IPAddress string    `json:"ip_address"`
	Netmask   string    `json:"netmask"`
	Gateway   string    `json:"gateway"`
	Routes    []Route   `json:"routes"`
	Services  []Service `json:"services"`
}

// Route is one entry of a network's "routes".
type Route struct {
	Network string `json:"network"`
	Netmask string `json:"netmask"`
	Gateway string `json:"gateway"`
}

// Service is one entry of "services" (only type "dns" is used).
type Service struct {
	Type    string `json:"type"`
	Address string `json:"address"`
}

// Kinds of planned links.
const (
	KindPhysical = "physical"
	KindVLAN     = "vlan"
	KindBond     = "bond"
)

// physicalTypes are the link types that name an existing NIC by MAC
// (Nova's VIF types; Ironic writes "phy").
var physicalTypes = map[string]bool{
	"phy": true, "ethernet": true, "vif": true, "ovs": true, "bridge": true, "tap": true,
	"hw_veb": true, "hyperv": true, "vhostuser": true, "vdpa": true, "dvs": true,
	"802.1qbg": true, "802.1qbh": true, "ivs": true, "midonet": true, "macvtap": true,
}

// PlanLink is a link to bring up: an existing NIC (by MAC) or a VLAN or
// bond to create, in dependency order.
type PlanLink struct {
	ID   string
	Kind string
	MAC  net.HardwareAddr // physical: the NIC's; vlan/bond: the address to set (may be nil)
	MTU  int              // 0: leave
	// VLAN
	Parent string // link ID
	VLANID int
	// Bond
	Members        []string // link IDs
	BondMode       string
	Miimon         int
	XmitHashPolicy string
	// DHCP networks on this link: "ipv4_dhcp", "ipv6_dhcp", "ipv6_slaac".
	DHCP []string
}

// PlanAddr is a static address on a link.
type PlanAddr struct {
	Link   string
	Prefix netip.Prefix // address with its prefix length
}

// PlanRoute is a route through a link.
type PlanRoute struct {
	Link    string
	Dst     netip.Prefix
	Gateway netip.Addr
}

// Plan is a checked network_data.json.
type Plan struct {
	Links  []PlanLink
	Addrs  []PlanAddr
	Routes []PlanRoute
	DNS    []netip.Addr
}

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadInput}, args...)...)
}

// Parse checks b and returns its plan; nothing is touched.
func Parse(b []byte) (*Plan, error) {
	var d Document
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, badf("%v", err)
	}
	return d.Plan()
}

// Plan checks d and orders its links so that each comes after the links it
// stands on.
func (d *Document) Plan() (*Plan, error) {
	p := &Plan{}
	byID := map[string]*Link{}
	for i := range d.Links {
		l := &d.Links[i]
		if l.ID == "" {
			return nil, badf("link %d has no id", i)
		}
		if byID[l.ID] != nil {
			return nil, badf("link %q is listed twice", l.ID)
		}
		byID[l.ID] = l
	}
	// Order links depth first: members and parents first.
	state := map[string]int{} // 1 visiting, 2 done
	index := map[string]int{}
	var visit func(id string, from string) error
	visit = func(id, from string) error {
		l := byID[id]
		if l == nil {
			return badf("link %q names unknown link %q", from, id)
		}
		switch state[id] {
		case 1:
			return badf("link %q stands on itself", id)
		case 2:
			return nil
		}
		state[id] = 1
		pl := PlanLink{ID: l.ID}
		if l.MTU != nil {
			if *l.MTU < 68 || *l.MTU > 65535 {
				return badf("link %q: mtu %d out of range", l.ID, *l.MTU)
			}
			pl.MTU = *l.MTU
		}
		mac := func(s string, need bool) (net.HardwareAddr, error) {
			if s == "" && !need {
				return nil, nil
			}
			m, err := net.ParseMAC(s)
			if err != nil || len(m) != 6 {
				return nil, badf("link %q: bad MAC address %q", l.ID, s)
			}
			return m, nil
		}
		var err error
		switch t := strings.ToLower(l.Type); {
		case physicalTypes[t]:
			pl.Kind = KindPhysical
			if pl.MAC, err = mac(l.MAC, true); err != nil {
				return err
			}
		case t == "vlan":
			pl.Kind = KindVLAN
			if l.VLANID < 1 || l.VLANID > 4094 {
				return badf("link %q: vlan_id %d out of range 1-4094", l.ID, l.VLANID)
			}
			if l.VLANLink == "" {
				return badf("link %q: vlan without vlan_link", l.ID)
			}
			if err := visit(l.VLANLink, l.ID); err != nil {
				return err
			}
			pl.Parent, pl.VLANID = l.VLANLink, l.VLANID
			m := l.VLANMAC
			if m == "" {
				m = l.MAC
			}
			if pl.MAC, err = mac(m, false); err != nil {
				return err
			}
		case t == "bond":
			pl.Kind = KindBond
			if len(l.BondLinks) == 0 {
				return badf("link %q: bond without bond_links", l.ID)
			}
			mode := l.BondMode
			if mode == "" {
				mode = "balance-rr"
			}
			if !bondModes[mode] {
				return badf("link %q: unknown bond_mode %q", l.ID, l.BondMode)
			}
			for _, m := range l.BondLinks {
				if err := visit(m, l.ID); err != nil {
					return err
				}
				if byID[m].Type == "bond" || byID[m].Type == "vlan" {
					return badf("link %q: bond member %q is a %s", l.ID, m, byID[m].Type)
				}
			}
			pl.Members, pl.BondMode, pl.Miimon, pl.XmitHashPolicy = l.BondLinks, mode, l.BondMiimon, l.BondXmitHashPolicy
			if pl.MAC, err = mac(l.MAC, false); err != nil {
				return err
			}
		default:
			return badf("link %q: unknown link type %q", l.ID, l.Type)
		}
		state[id] = 2
		index[id] = len(p.Links)
		p.Links = append(p.Links, pl)
		return nil
	}
	for _, l := range d.Links {
		if err := visit(l.ID, l.ID); err != nil {
			return nil, err
		}
	}
	seenMAC := map[string]string{}
	for _, l := range p.Links {
		if l.Kind == KindPhysical {
			if other, ok := seenMAC[l.MAC.String()]; ok {
				return nil, badf("links %q and %q have the same MAC address %s", other, l.ID, l.MAC)
			}
			seenMAC[l.MAC.String()] = l.ID
		}
	}

	dns := func(ss []Service, where string) error {
		for _, s := range ss {
			if s.Type != "dns" {
				continue
			}
			a, err := netip.ParseAddr(s.Address)
			if err != nil {
				return badf("%s: bad dns address %q", where, s.Address)
			}
			for _, x := range p.DNS {
				if x == a {
					a = netip.Addr{}
				}
			}
			if a.IsValid() {
				p.DNS = append(p.DNS, a)
			}
		}
		return nil
	}
	for i, n := range d.Networks {
		name := n.ID
		if name == "" {
			name = fmt.Sprint(i)
		}
		li, ok := index[n.Link]
		if !ok {
			return nil, badf("network %q: unknown link %q", name, n.Link)
		}
		switch n.Type {
		case "ipv4_dhcp", "ipv6_dhcp", "ipv6_slaac", "dhcp4", "dhcp6":
			p.Links[li].DHCP = append(p.Links[li].DHCP, n.Type)
			continue
		case "ipv4", "ipv6":
		default:
			return nil, badf("network %q: unknown network type %q", name, n.Type)
		}
		v6 := n.Type == "ipv6"
		pfx, err := addrPrefix(n.IPAddress, n.Netmask, v6)
		if err != nil {
			return nil, badf("network %q: %v", name, err)
		}
		p.Addrs = append(p.Addrs, PlanAddr{Link: n.Link, Prefix: pfx})
		routes := n.Routes
		if n.Gateway != "" {
			def := "0.0.0.0"
			if v6 {
				def = "::"
			}
			routes = append(routes, Route{Network: def, Netmask: def, Gateway: n.Gateway})
		}
		for j, r := range routes {
			dst, err := addrPrefix(r.Network, r.Netmask, v6)
			if err != nil {
				return nil, badf("network %q route %d: %v", name, j, err)
			}
			gw, err := netip.ParseAddr(r.Gateway)
			if err != nil || gw.Is4() == v6 {
				return nil, badf("network %q route %d: bad gateway %q", name, j, r.Gateway)
			}
			pr := PlanRoute{Link: n.Link, Dst: dst.Masked(), Gateway: gw}
			dup := false
			for _, x := range p.Routes {
				dup = dup || (x.Dst == pr.Dst && x.Gateway == pr.Gateway)
			}
			if !dup {
				p.Routes = append(p.Routes, pr)
			}
		}
		if err := dns(n.Services, "network "+name); err != nil {
			return nil, err
		}
	}
	if err := dns(d.Services, "services"); err != nil {
		return nil, err
	}
	return p, nil
}

var bondModes = map[string]bool{
	"balance-rr": true, "active-backup": true, "balance-xor": true, "broadcast": true,
	"802.3ad": true, "balance-tlb": true, "balance-alb": true,
}

// addrPrefix reads an address with its prefix length from "a.b.c.d" and
// a dotted netmask, "addr/len", or an address and a prefix length or IPv6
// netmask.
func addrPrefix(ip, mask string, v6 bool) (netip.Prefix, error) {
	fam := "IPv4"
	if v6 {
		fam = "IPv6"
	}
	if strings.Contains(ip, "/") {
		p, err := netip.ParsePrefix(ip)
		if err != nil || p.Addr().Is4() == v6 || p.Addr().Is4In6() {
			return netip.Prefix{}, fmt.Errorf("bad %s address %q", fam, ip)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Is4() == v6 || a.Is4In6() {
		return netip.Prefix{}, fmt.Errorf("bad %s address %q", fam, ip)
	}
	bits := -1
	switch {
	case mask == "":
		return netip.Prefix{}, fmt.Errorf("%s address %q without netmask", fam, ip)
	case !strings.ContainsAny(mask, ".:"):
		var n int
		if _, err := fmt.Sscanf(mask, "%d", &n); err == nil && fmt.Sprint(n) == mask {
			bits = n
		}
	default:
		m, err := netip.ParseAddr(mask)
		if err == nil && m.Is4() != v6 {
			ones, size := net.IPMask(m.AsSlice()).Size()
			if size != 0 {
				bits = ones
			}
		}
	}
	if bits < 0 || bits > a.BitLen() {
		return netip.Prefix{}, fmt.Errorf("bad netmask %q for %s address %q", mask, fam, ip)
	}
	return netip.PrefixFrom(a, bits), nil
}
