package netconfig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Options tune Apply.
type Options struct {
	// Handle is the netlink handle to work through; nil: this process's
	// network namespace.
	Handle *netlink.Handle
	Log    *slog.Logger
}

// Configured is an interface Apply gave static addresses or left to DHCP.
type Configured struct {
	ID        string // link id in network_data
	Interface string
	MAC       string // lower case, colon separated
	Addrs     []netip.Prefix
	DHCP      []string // network types to run DHCP for
}

// Result says what Apply did.
type Result struct {
	Interfaces []Configured
	DNS        []netip.Addr
}

// DHCPInterfaces are the interfaces left to DHCP.
func (r *Result) DHCPInterfaces() []string {
	var out []string
	for _, c := range r.Interfaces {
		if len(c.DHCP) > 0 {
			out = append(out, c.Interface)
		}
	}
	return out
}

// Apply configures the links of p. Physical links are found by MAC
// address before anything changes; when a later step fails, the steps
// done are undone in reverse and the error says which step failed.
func Apply(ctx context.Context, p *Plan, opt Options) (res *Result, err error) {
	h := opt.Handle
	if h == nil {
		h = &netlink.Handle{}
	}
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	all, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("netconfig: list links: %w", err)
	}
	byMAC := map[string]netlink.Link{}
	for _, l := range all {
		a := l.Attrs()
		// Bond members share the bond's MAC; the first (lowest index) is
		// the NIC itself unless it is a bond/vlan.
		if len(a.HardwareAddr) != 6 || l.Type() == "bond" || l.Type() == "vlan" {
			continue
		}
		if _, ok := byMAC[a.HardwareAddr.String()]; !ok {
			byMAC[a.HardwareAddr.String()] = l
		}
	}
	names := map[string]string{} // link id → interface name
	for _, pl := range p.Links {
		if pl.Kind != KindPhysical {
			continue
		}
		l, ok := byMAC[pl.MAC.String()]
		if !ok {
			return nil, badf("link %q: no interface with MAC address %s", pl.ID, pl.MAC)
		}
		names[pl.ID] = l.Attrs().Name
	}
	// Names of new links: the link id when it makes a valid free name,
	// else bondN / parent.VID.
	taken := map[string]bool{}
	for _, l := range all {
		taken[l.Attrs().Name] = true
	}
	for _, pl := range p.Links {
		if pl.Kind == KindPhysical {
			continue
		}
		var cands []string
		if pl.Kind == KindBond {
			cands = append(cands, pl.ID)
			for i := 0; i < 100; i++ {
				cands = append(cands, fmt.Sprintf("bond%d", i))
			}
		} else {
			cands = append(cands, fmt.Sprintf("%s.%d", names[pl.Parent], pl.VLANID), pl.ID, fmt.Sprintf("vlan%d", pl.VLANID))
		}
		for _, c := range cands {
			if len(c) > 0 && len(c) < unix.IFNAMSIZ && !strings.ContainsAny(c, "/ :") && !taken[c] {
				names[pl.ID] = c
				taken[c] = true
				break
			}
		}
		if names[pl.ID] == "" {
			return nil, badf("link %q: no free interface name", pl.ID)
		}
	}

	var undo []func() error
	defer func() {
		if err == nil {
			return
		}
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](); uerr != nil {
				log.Warn("netconfig: undo failed", "error", uerr)
			}
		}
	}()
	step := func(what string, do func() error, rollback func() error) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := do(); err != nil {
			return fmt.Errorf("netconfig: %s: %w", what, err)
		}
		if rollback != nil {
			undo = append(undo, rollback)
		}
		return nil
	}
	links := map[string]netlink.Link{}
	isMember := map[string]bool{}
	for _, pl := range p.Links {
		for _, m := range pl.Members {
			isMember[m] = true
		}
	}
	for _, pl := range p.Links {
		name := names[pl.ID]
		switch pl.Kind {
		case KindPhysical:
			l, _ := h.LinkByName(name)
			if l == nil {
				return nil, fmt.Errorf("netconfig: link %q: interface %s vanished", pl.ID, name)
			}
			links[pl.ID] = l
			if pl.MTU != 0 && pl.MTU != l.Attrs().MTU {
				old := l.Attrs().MTU
				if err := step(fmt.Sprintf("link %q: set mtu %d on %s", pl.ID, pl.MTU, name),
					func() error { return h.LinkSetMTU(l, pl.MTU) },
					func() error { return h.LinkSetMTU(l, old) }); err != nil {
					return nil, err
				}
			}
			if isMember[pl.ID] {
				continue // enslaved (down) by its bond
			}
			if l.Attrs().Flags&net.FlagUp == 0 {
				if err := step(fmt.Sprintf("link %q: set %s up", pl.ID, name),
					func() error { return h.LinkSetUp(l) },
					func() error { return h.LinkSetDown(l) }); err != nil {
					return nil, err
				}
			}
		case KindVLAN:
			parent := links[pl.Parent]
			attrs := netlink.NewLinkAttrs()
			attrs.Name, attrs.ParentIndex, attrs.HardwareAddr, attrs.MTU = name, parent.Attrs().Index, pl.MAC, pl.MTU
			v := &netlink.Vlan{LinkAttrs: attrs, VlanId: pl.VLANID}
			if err := step(fmt.Sprintf("link %q: add vlan %d on %s", pl.ID, pl.VLANID, parent.Attrs().Name),
				func() error { return h.LinkAdd(v) },
				func() error { return h.LinkDel(v) }); err != nil {
				return nil, err
			}
			if err := step(fmt.Sprintf("link %q: set %s up", pl.ID, name), func() error { return h.LinkSetUp(v) }, nil); err != nil {
				return nil, err
			}
			links[pl.ID] = v
		case KindBond:
			attrs := netlink.NewLinkAttrs()
			attrs.Name, attrs.HardwareAddr, attrs.MTU = name, pl.MAC, pl.MTU
			b := netlink.NewLinkBond(attrs)
			b.Mode = netlink.StringToBondMode(pl.BondMode)
			if pl.Miimon > 0 {
				b.Miimon = pl.Miimon
			}
			if pl.XmitHashPolicy != "" {
				hp := netlink.StringToBondXmitHashPolicy(pl.XmitHashPolicy)
				if hp == netlink.BOND_XMIT_HASH_POLICY_UNKNOWN {
					return nil, badf("link %q: unknown bond_xmit_hash_policy %q", pl.ID, pl.XmitHashPolicy)
				}
				b.XmitHashPolicy = hp
			}
			if err := step(fmt.Sprintf("link %q: add bond %s (%s)", pl.ID, name, pl.BondMode),
				func() error { return h.LinkAdd(b) },
				func() error { return h.LinkDel(b) }); err != nil {
				return nil, err
			}
			for _, m := range pl.Members {
				ml := links[m]
				wasUp := ml.Attrs().Flags&net.FlagUp != 0
				if err := step(fmt.Sprintf("link %q: enslave %s", pl.ID, ml.Attrs().Name),
					func() error {
						if err := h.LinkSetDown(ml); err != nil {
							return err
						}
						if err := h.LinkSetMasterByIndex(ml, b.Attrs().Index); err != nil {
							return err
						}
						return h.LinkSetUp(ml)
					},
					func() error {
						h.LinkSetNoMaster(ml)
						if wasUp {
							return h.LinkSetUp(ml)
						}
						return h.LinkSetDown(ml)
					}); err != nil {
					return nil, err
				}
			}
			if err := step(fmt.Sprintf("link %q: set %s up", pl.ID, name), func() error { return h.LinkSetUp(b) }, nil); err != nil {
				return nil, err
			}
			links[pl.ID] = b
		}
	}
	res = &Result{DNS: p.DNS}
	conf := map[string]*Configured{}
	for _, pl := range p.Links {
		l := links[pl.ID]
		c := &Configured{ID: pl.ID, Interface: names[pl.ID], DHCP: pl.DHCP}
		if l != nil {
			if fresh, _ := h.LinkByIndex(l.Attrs().Index); fresh != nil {
				c.MAC = fresh.Attrs().HardwareAddr.String()
			}
		}
		conf[pl.ID] = c
	}
	for _, a := range p.Addrs {
		l := links[a.Link]
		na := &netlink.Addr{IPNet: prefixNet(a.Prefix)}
		if a.Prefix.Addr().Is6() {
			na.Flags = unix.IFA_F_NODAD // reachable at once, as a static address should be
		}
		if err := step(fmt.Sprintf("link %q: add address %s to %s", a.Link, a.Prefix, l.Attrs().Name),
			func() error { return h.AddrAdd(l, na) },
			func() error { return h.AddrDel(l, na) }); err != nil {
			return nil, err
		}
		conf[a.Link].Addrs = append(conf[a.Link].Addrs, a.Prefix)
	}
	for _, r := range p.Routes {
		l := links[r.Link]
		nr := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: prefixNet(r.Dst), Gw: r.Gateway.AsSlice()}
		if r.Dst.Bits() == 0 {
			nr.Dst = nil // default route
			if r.Gateway.Is6() {
				nr.Family = unix.AF_INET6
			}
		}
		if err := step(fmt.Sprintf("link %q: add route to %s via %s", r.Link, r.Dst, r.Gateway),
			func() error {
				err := h.RouteAdd(nr)
				if errors.Is(err, unix.EEXIST) {
					return nil
				}
				return err
			},
			func() error { return h.RouteDel(nr) }); err != nil {
			return nil, err
		}
	}
	for _, pl := range p.Links {
		c := conf[pl.ID]
		if len(c.Addrs) > 0 || len(c.DHCP) > 0 {
			res.Interfaces = append(res.Interfaces, *c)
			log.Info("netconfig: configured", "link", c.ID, "interface", c.Interface, "mac", c.MAC, "addrs", c.Addrs, "dhcp", c.DHCP)
		}
	}
	return res, nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// WriteResolvConf writes nameserver lines for dns to path (atomically);
// with no servers it leaves path alone.
func WriteResolvConf(path string, dns []netip.Addr) error {
	if len(dns) == 0 {
		return nil
	}
	var b bytes.Buffer
	b.WriteString("# written by ferric-agent from network_data.json\n")
	for _, a := range dns {
		fmt.Fprintf(&b, "nameserver %s\n", a)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("netconfig: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("netconfig: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("netconfig: %w", err)
	}
	return nil
}
