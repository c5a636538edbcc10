package dhcp6

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

// Defaults of RAConfig.
const (
	// DefaultRAInterval is how often an unsolicited advertisement is sent
	// (RFC 4861's MaxRtrAdvInterval may be as low as 4 s; machines booting
	// listen for a few seconds only, and most send a solicitation anyway).
	DefaultRAInterval = 30 * time.Second
	// DefaultPrefixLifetime is the valid and preferred lifetime of the
	// announced prefix.
	DefaultPrefixLifetime = 24 * time.Hour
)

// The first initialAdvertisements unsolicited advertisements are at most
// initialInterval apart.
const (
	initialAdvertisements = 3
	initialInterval       = 2 * time.Second
)

// RAConfig configures an RA.
type RAConfig struct {
	// Interface to advertise on. Required.
	Interface string
	// Prefix is announced on-link (prefix information option, L set);
	// none when invalid.
	Prefix netip.Prefix
	// Managed and Other set the M and O flags: addresses, and other
	// configuration, come from DHCPv6.
	Managed, Other bool
	// Autonomous sets the A flag of the prefix: hosts form addresses of
	// their own (SLAAC). Leave it off with stateful DHCPv6.
	Autonomous bool
	// RouterLifetime is 0 by default: this host is not a default router,
	// only the source of the provisioning network's configuration.
	RouterLifetime time.Duration
	// PrefixLifetime defaults to DefaultPrefixLifetime.
	PrefixLifetime time.Duration
	// Interval between unsolicited advertisements; DefaultRAInterval when
	// zero, none when negative.
	Interval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// RA answers router solicitations on one interface, and advertises
// every Interval unsolicited, with the advertisement RAConfig describes.
type RA struct {
	cfg  RAConfig
	ifi  *net.Interface
	conn *icmp.PacketConn
	p    *ipv6.PacketConn
	msg  []byte
	log  *slog.Logger
}

// NewRA opens a raw ICMPv6 socket (root or CAP_NET_RAW) in the network
// namespace of the calling thread and joins ff02::2 on the interface.
func NewRA(cfg RAConfig) (*RA, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultRAInterval
	}
	if cfg.PrefixLifetime <= 0 {
		cfg.PrefixLifetime = DefaultPrefixLifetime
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("dhcp6: ra: interface %q: %w", cfg.Interface, err)
	}
	msg, err := BuildRA(cfg, ifi.HardwareAddr)
	if err != nil {
		return nil, err
	}
	c, err := icmp.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		return nil, fmt.Errorf("dhcp6: ra: listen: %w", err)
	}
	p := c.IPv6PacketConn()
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeRouterSolicitation)
	for _, err := range []error{
		p.SetMulticastHopLimit(255),
		p.SetHopLimit(255),
		p.SetMulticastInterface(ifi),
		p.SetControlMessage(ipv6.FlagInterface|ipv6.FlagHopLimit, true),
		p.JoinGroup(ifi, &net.IPAddr{IP: net.ParseIP("ff02::2")}),
		p.SetICMPFilter(&f),
	} {
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("dhcp6: ra: socket setup on %s: %w", cfg.Interface, err)
		}
	}
	return &RA{cfg: cfg, ifi: ifi, conn: c, p: p, msg: msg, log: cfg.Logger}, nil
}

// BuildRA returns the ICMPv6 router advertisement (RFC 4861 4.2) that cfg
// describes, with a source link-layer address option when mac is an
// Ethernet address. The checksum is left to the kernel.
func BuildRA(cfg RAConfig, mac net.HardwareAddr) ([]byte, error) {
	if cfg.RouterLifetime < 0 || cfg.RouterLifetime > 9000*time.Second {
		return nil, fmt.Errorf("dhcp6: ra: router lifetime %v is outside 0-9000 s", cfg.RouterLifetime)
	}
	if cfg.Prefix.IsValid() && (!cfg.Prefix.Addr().Is6() || cfg.Prefix.Addr().Is4In6()) {
		return nil, fmt.Errorf("dhcp6: ra: prefix %v is not IPv6", cfg.Prefix)
	}
	body := make([]byte, 12)
	body[0] = 64 // current hop limit
	if cfg.Managed {
		body[1] |= 0x80
	}
	if cfg.Other {
		body[1] |= 0x40
	}
	binary.BigEndian.PutUint16(body[2:], uint16(cfg.RouterLifetime/time.Second))
	if len(mac) == 6 {
		body = append(body, 1, 1) // source link-layer address, 8 bytes
		body = append(body, mac...)
	}
	if cfg.Prefix.IsValid() {
		pl := cfg.PrefixLifetime
		if pl <= 0 {
			pl = DefaultPrefixLifetime
		}
		secs := uint32(min(pl/time.Second, 0xfffffffe))
		opt := make([]byte, 32)
		opt[0], opt[1] = 3, 4 // prefix information, 32 bytes
		opt[2] = byte(cfg.Prefix.Bits())
		opt[3] = 0x80 // on-link
		if cfg.Autonomous {
			opt[3] |= 0x40
		}
		binary.BigEndian.PutUint32(opt[4:], secs)
		binary.BigEndian.PutUint32(opt[8:], secs)
		a := cfg.Prefix.Masked().Addr().As16()
		copy(opt[16:], a[:])
		body = append(body, opt...)
	}
	b, err := (&icmp.Message{Type: ipv6.ICMPTypeRouterAdvertisement, Body: &icmp.RawBody{Data: body}}).Marshal(nil)
	if err != nil {
		return nil, fmt.Errorf("dhcp6: ra: marshal: %w", err)
	}
	return b, nil
}

// ErrBadSolicitation is wrapped by ParseSolicitation's errors.
var ErrBadSolicitation = errors.New("dhcp6: invalid router solicitation")

// ParseSolicitation validates an ICMPv6 router solicitation (RFC 4861
// 6.1.1: type 133, code 0, at least 8 bytes, every option of non-zero
// length inside the message, no source link-layer address option from
// the unspecified address) and returns the source link-layer address
// option's address, if any.
func ParseSolicitation(b []byte, src netip.Addr) (net.HardwareAddr, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadSolicitation, len(b))
	}
	if b[0] != byte(ipv6.ICMPTypeRouterSolicitation) || b[1] != 0 {
		return nil, fmt.Errorf("%w: type %d code %d", ErrBadSolicitation, b[0], b[1])
	}
	var lla net.HardwareAddr
	for opts := b[8:]; len(opts) > 0; {
		if len(opts) < 2 || opts[1] == 0 || int(opts[1])*8 > len(opts) {
			return nil, fmt.Errorf("%w: bad option length", ErrBadSolicitation)
		}
		n := int(opts[1]) * 8
		if opts[0] == 1 {
			if src.IsUnspecified() {
				return nil, fmt.Errorf("%w: link-layer address option from the unspecified address", ErrBadSolicitation)
			}
			if n == 8 {
				lla = append(net.HardwareAddr(nil), opts[2:8]...)
			}
		}
		opts = opts[n:]
	}
	return lla, nil
}

// Serve advertises until ctx ends, then closes the socket and returns
// nil.
func (r *RA) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { r.conn.Close() })
	defer stop()
	defer r.conn.Close()
	if r.cfg.Interval > 0 {
		go func() {
			// The first advertisements come faster (RFC 4861 6.2.4): the
			// interface's link-local address may still be tentative at the
			// start, and hosts that came up with it are waiting.
			for n := 0; ; n++ {
				r.send("periodic")
				wait := r.cfg.Interval
				if n < initialAdvertisements {
					wait = min(wait, initialInterval)
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}()
	}
	buf := make([]byte, 1500)
	for {
		n, cm, src, err := r.p.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("dhcp6: ra: read: %w", err)
		}
		if cm != nil && (cm.IfIndex != r.ifi.Index || cm.HopLimit != 255) {
			continue // RFC 4861 6.1.1: solicitations come from the link itself
		}
		var from netip.Addr
		if ia, ok := src.(*net.IPAddr); ok {
			from, _ = netip.AddrFromSlice(ia.IP)
		}
		if _, err := ParseSolicitation(buf[:n], from); err != nil {
			r.log.Debug("dhcp6: ra: solicitation dropped", "from", from.String(), "err", err)
			continue
		}
		r.send(from.String())
	}
}

func (r *RA) send(why string) {
	// The zone by index: names go through a process-wide cache that may
	// know another network namespace's interfaces.
	dst := &net.IPAddr{IP: net.IPv6linklocalallnodes, Zone: strconv.Itoa(r.ifi.Index)}
	if _, err := r.p.WriteTo(r.msg, nil, dst); err != nil {
		r.log.Warn("dhcp6: ra: send failed", "err", err)
		return
	}
	r.log.Debug("dhcp6: router advertisement sent", "to", why)
}
