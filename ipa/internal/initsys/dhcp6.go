package initsys

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/nclient6"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// dhcpv6Lease gets an address for i by DHCPv6 (Solicit, Advertise, Request,
// Reply) and puts it on i as a /128: the on-link prefix comes from the
// router advertisement the kernel takes itself (managed flag, prefix
// not autonomous), as a Linux host does with a stateful DHCPv6 server.
func dhcpv6Lease(ctx context.Context, i net.Interface) (Lease, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	// The client binds the link-local address, which is tentative (not
	// bindable) until duplicate address detection ends, about a second
	// after the link came up.
	// Zones by index, not by name: net resolves names through a cache
	// that a process working in several network namespaces (a test)
	// may have filled from another one.
	zone := strconv.Itoa(i.Index)
	var c *nclient6.Client
	for {
		ll, err := dhcpv6.GetLinkLocalAddr(i.Name)
		var conn *net.UDPConn
		if err == nil {
			conn, err = net.ListenUDP("udp6", &net.UDPAddr{IP: ll, Port: dhcpv6.DefaultClientPort, Zone: zone})
		}
		if err == nil {
			c, err = nclient6.NewWithConn(conn, i.HardwareAddr, nclient6.WithTimeout(4*time.Second), nclient6.WithRetry(5),
				nclient6.WithBroadcastAddr(&net.UDPAddr{IP: dhcpv6.AllDHCPRelayAgentsAndServers, Port: dhcpv6.DefaultServerPort, Zone: zone}))
			if err != nil {
				conn.Close()
			}
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return Lease{}, fmt.Errorf("dhcp6 on %s: %w", i.Name, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	defer c.Close()
	adv, err := c.Solicit(ctx)
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp6 solicit on %s: %w", i.Name, err)
	}
	rep, err := c.Request(ctx, adv)
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp6 request on %s: %w", i.Name, err)
	}
	addr, err := replyAddress(rep)
	if err != nil {
		return Lease{}, fmt.Errorf("dhcp6 on %s: %w", i.Name, err)
	}
	lease := Lease{Interface: i.Name, MAC: i.HardwareAddr.String(), Addr: addr}
	link, err := netlink.LinkByIndex(i.Index)
	if err != nil {
		return lease, fmt.Errorf("dhcp6: link %s: %w", i.Name, err)
	}
	// NODAD: the server handed the address out; waiting a second more
	// for DAD would only delay the lookup.
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: &addr, Flags: unix.IFA_F_NODAD}); err != nil && !errors.Is(err, unix.EEXIST) {
		return lease, fmt.Errorf("dhcp6: add %s to %s: %w", addr.String(), i.Name, err)
	}
	return lease, nil
}

// replyAddress is the address of the first IA_NA of a Reply.
func replyAddress(rep *dhcpv6.Message) (net.IPNet, error) {
	for _, ia := range rep.Options.IANA() {
		if st := ia.Options.Status(); st != nil && st.StatusCode != 0 {
			return net.IPNet{}, fmt.Errorf("IA_NA status %s: %s", st.StatusCode, st.StatusMessage)
		}
		if a := ia.Options.OneAddress(); a != nil && a.IPv6Addr.To16() != nil && a.IPv6Addr.To4() == nil {
			return net.IPNet{IP: a.IPv6Addr, Mask: net.CIDRMask(128, 128)}, nil
		}
	}
	return net.IPNet{}, errors.New("the Reply holds no address")
}
