package dhcp

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

// RAConfig configures an RAResponder.
type RAConfig struct {
	// Interface to answer router solicitations on. Required.
	Interface string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// RAResponder answers ICMPv6 router solicitations with a router
// advertisement that carries no prefix, no managed/other flags and a
// router lifetime of 0. It configures nothing; it only tells iPXE's IPv6
// configurator that no router will come, which saves iPXE about 16 s of
// waiting before it uses its DHCPv4 address.
type RAResponder struct {
	ifi  *net.Interface
	conn *icmp.PacketConn
	p    *ipv6.PacketConn
	ra   []byte
	log  *slog.Logger
}

// NewRAResponder opens a raw ICMPv6 socket (root or CAP_NET_RAW) in the
// network namespace of the calling thread and joins ff02::2 on the
// interface.
func NewRAResponder(cfg RAConfig) (*RAResponder, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("dhcp: ra: interface %s: %w", cfg.Interface, err)
	}
	c, err := icmp.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		return nil, fmt.Errorf("dhcp: ra: listen: %w", err)
	}
	p := c.IPv6PacketConn()
	setup := []error{
		p.SetMulticastHopLimit(255),
		p.SetHopLimit(255),
		p.SetMulticastInterface(ifi),
		p.SetControlMessage(ipv6.FlagInterface, true),
		p.JoinGroup(ifi, &net.IPAddr{IP: net.ParseIP("ff02::2")}),
	}
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeRouterSolicitation)
	setup = append(setup, p.SetICMPFilter(&f))
	for _, err := range setup {
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("dhcp: ra: socket setup on %s: %w", cfg.Interface, err)
		}
	}
	ra, err := routerAdvertisement(ifi.HardwareAddr)
	if err != nil {
		c.Close()
		return nil, err
	}
	return &RAResponder{ifi: ifi, conn: c, p: p, ra: ra, log: cfg.Logger}, nil
}

// routerAdvertisement builds the RA body (RFC 4861 4.2): hop limit 64,
// flags 0, router lifetime 0, reachable 0, retrans 0, then a source
// link-layer address option when mac is known.
func routerAdvertisement(mac net.HardwareAddr) ([]byte, error) {
	body := []byte{64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if len(mac) == 6 {
		body = append(body, 1, 1)
		body = append(body, mac...)
	}
	b, err := (&icmp.Message{Type: ipv6.ICMPTypeRouterAdvertisement, Body: &icmp.RawBody{Data: body}}).Marshal(nil)
	if err != nil {
		return nil, fmt.Errorf("dhcp: ra: marshal: %w", err)
	}
	return b, nil
}

// Serve answers solicitations until ctx ends, then closes the socket and
// returns nil.
func (r *RAResponder) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { r.conn.Close() })
	defer stop()
	defer r.conn.Close()
	buf := make([]byte, 1500)
	dst := &net.IPAddr{IP: net.IPv6linklocalallnodes, Zone: r.ifi.Name}
	for {
		_, cm, src, err := r.p.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("dhcp: ra: read: %w", err)
		}
		if cm != nil && cm.IfIndex != r.ifi.Index {
			continue
		}
		if _, err := r.p.WriteTo(r.ra, nil, dst); err != nil {
			r.log.Warn("dhcp: ra: send failed", "err", err)
			continue
		}
		r.log.Debug("dhcp: router advertisement sent", "to", src.String())
	}
}
