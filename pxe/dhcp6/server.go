// Package dhcp6 is ferric's DHCPv6 server and router advertiser for
// network boot on IPv6 provisioning networks, built on
// github.com/insomniacslk/dhcp/dhcpv6.
//
// The Server hands out addresses (IA_NA, stateful) from a range on one
// interface, persists bound leases through the same dhcp.Leases interface
// as the DHCPv4 server (the crash-safe lease log with IPv6 records and a
// bbolt store of its own bucket are included; a REPLY that binds an
// address is sent only once Leases.Store returned), and
// sends the boot-file URL (option 59, RFC 5970) that the DHCPv4 boot
// decision (dhcp.Decide) picks: the iPXE script to iPXE (user class
// "iPXE"), an iPXE EFI binary over HTTP to UEFI HTTP boot (vendor class
// HTTPClient, answered with HTTPClient), and a tftp:// URL to UEFI PXE.
// Messages relayed once or more (RELAY-FORW) are answered through the
// relays.
//
// The RA type sends router advertisements with the managed and other
// flags set and the provisioning prefix on-link but not autonomous, so
// that clients take their address from DHCPv6 and not from SLAAC.
package dhcp6

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/ferric-metal/ferric/pxe/dhcp"
)

// Defaults used when a Config field is left zero.
const (
	DefaultPort      = dhcpv6.DefaultServerPort // 547
	DefaultLeaseTime = time.Hour
	// DefaultOfferTime is how long an advertised address is held for the
	// client's Request.
	DefaultOfferTime = 30 * time.Second
	// DefaultWorkers is how many messages are handled at once.
	DefaultWorkers = 64
)

// enterprisePXE is the IANA enterprise number UEFI firmware puts in its
// vendor class option (343, Intel).
const enterprisePXE = 343

// allDHCPAgents is ff02::1:2, where clients send their messages.
var allDHCPAgents = netip.MustParseAddr("ff02::1:2")

// Config configures a Server.
type Config struct {
	// Interface to serve on. Required.
	Interface string
	// ServerIP is this server's global address on Interface, used in
	// tftp:// boot URLs. Default: the interface's first global IPv6
	// address (inside Prefix when Prefix is set).
	ServerIP netip.Addr
	// Prefix of the served network (Confirm answers NotOnLink outside it;
	// the RA announces it). Default: the prefix of ServerIP on Interface.
	Prefix netip.Prefix
	// RangeStart and RangeEnd bound the address pool (inclusive, at most
	// MaxRangeSize addresses). Required.
	RangeStart, RangeEnd netip.Addr
	// Boot names the boot files and URLs; Boot.ScriptURL is required. Use
	// URLs whose hosts the clients reach over IPv6 (bracketed literals).
	Boot dhcp.BootConfig
	// Hosts decides which MACs are answered. Required.
	Hosts dhcp.Hosts
	// AllowUnknown answers MACs Hosts does not know.
	AllowUnknown bool
	// DNS servers (option 23), sent when set.
	DNS []netip.Addr
	// LeaseTime is the valid and preferred lifetime of an address
	// (default DefaultLeaseTime); OfferTime defaults to DefaultOfferTime.
	LeaseTime time.Duration
	OfferTime time.Duration
	// Leases stores bound leases. Required.
	Leases dhcp.Leases
	// Port defaults to DefaultPort.
	Port int
	// Workers defaults to DefaultWorkers.
	Workers int
	// RouterAdvertisements also runs an RA on Interface that announces
	// Prefix with the managed and other flags.
	RouterAdvertisements bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Stats counts messages since the server was created.
type Stats struct {
	Received  uint64 // datagrams read
	Malformed uint64 // not parseable, no client ID, or a server's message type
	Ignored   uint64 // valid but nothing to answer (another server chosen, ...)
	Unknown   uint64 // no MAC found, or MAC not known to Hosts and AllowUnknown unset
	Advertise uint64
	Replies   uint64
	Errors    uint64 // Hosts or Leases failed, pool exhausted, send failed
}

type counters struct {
	received, malformed, ignored, unknown, advertise, replies, errors atomic.Uint64
}

// Server is a DHCPv6 server. Create it with New, run it with Serve.
type Server struct {
	cfg   Config
	log   *slog.Logger
	duid  dhcpv6.DUID
	pool  *pool
	conn  net.PacketConn
	ra    *RA
	c     counters
	now   func() time.Time
	ifIdx int
}

// New validates cfg, loads the leases and opens the socket (UDP port 547
// on Interface, joined to ff02::1:2) in the network namespace of the
// calling thread.
func New(ctx context.Context, cfg Config) (*Server, error) {
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("dhcp6: interface %q: %w", cfg.Interface, err)
	}
	if err := resolveAddrs(&cfg, ifi); err != nil {
		return nil, err
	}
	s, err := prepare(ctx, cfg, ifi.HardwareAddr)
	if err != nil {
		return nil, err
	}
	s.ifIdx = ifi.Index
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			if serr == nil {
				serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, cfg.Interface)
			}
		}); err != nil {
			return err
		}
		return serr
	}}
	c, err := lc.ListenPacket(ctx, "udp6", net.JoinHostPort("::", fmt.Sprint(s.cfg.Port)))
	if err != nil {
		return nil, fmt.Errorf("dhcp6: listen on %s port %d: %w", cfg.Interface, s.cfg.Port, err)
	}
	if err := ipv6.NewPacketConn(c).JoinGroup(ifi, &net.UDPAddr{IP: net.IP(allDHCPAgents.AsSlice())}); err != nil {
		c.Close()
		return nil, fmt.Errorf("dhcp6: join ff02::1:2 on %s: %w", cfg.Interface, err)
	}
	s.conn = c
	if cfg.RouterAdvertisements {
		ra, err := NewRA(RAConfig{Interface: cfg.Interface, Prefix: s.cfg.Prefix, Managed: true, Other: true, Logger: s.log})
		if err != nil {
			c.Close()
			return nil, err
		}
		s.ra = ra
	}
	return s, nil
}

// resolveAddrs fills ServerIP and Prefix from the interface.
func resolveAddrs(cfg *Config, ifi *net.Interface) error {
	if cfg.ServerIP.IsValid() && cfg.Prefix.IsValid() {
		return nil
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return fmt.Errorf("dhcp6: addresses of %s: %w", ifi.Name, err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.To4() != nil || !ipn.IP.IsGlobalUnicast() {
			continue
		}
		ip, _ := netip.AddrFromSlice(ipn.IP)
		ones, _ := ipn.Mask.Size()
		if cfg.ServerIP.IsValid() && cfg.ServerIP != ip || cfg.Prefix.IsValid() && !cfg.Prefix.Contains(ip) {
			continue
		}
		if !cfg.ServerIP.IsValid() {
			cfg.ServerIP = ip
		}
		if !cfg.Prefix.IsValid() {
			cfg.Prefix = netip.PrefixFrom(ip, ones).Masked()
		}
		return nil
	}
	return fmt.Errorf("dhcp6: interface %s has no global IPv6 address (set Config.ServerIP and Config.Prefix)", ifi.Name)
}

// prepare validates cfg, fills defaults and loads the leases; it opens no
// socket. serverMAC makes the server's DUID (DUID-LL).
func prepare(ctx context.Context, cfg Config, serverMAC net.HardwareAddr) (*Server, error) {
	switch {
	case cfg.Interface == "":
		return nil, errors.New("dhcp6: Config.Interface is required")
	case cfg.Hosts == nil:
		return nil, errors.New("dhcp6: Config.Hosts is required")
	case cfg.Leases == nil:
		return nil, errors.New("dhcp6: Config.Leases is required")
	case cfg.Boot.ScriptURL == "":
		return nil, errors.New("dhcp6: Config.Boot.ScriptURL is required")
	case !cfg.ServerIP.Is6() || !cfg.Prefix.IsValid() || !cfg.Prefix.Addr().Is6():
		return nil, fmt.Errorf("dhcp6: need an IPv6 server address and prefix, got %v and %v", cfg.ServerIP, cfg.Prefix)
	}
	cfg.Prefix = cfg.Prefix.Masked()
	if !cfg.Prefix.Contains(cfg.RangeStart) || !cfg.Prefix.Contains(cfg.RangeEnd) {
		return nil, fmt.Errorf("dhcp6: range %v-%v is not inside prefix %v", cfg.RangeStart, cfg.RangeEnd, cfg.Prefix)
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.LeaseTime <= 0 {
		cfg.LeaseTime = DefaultLeaseTime
	}
	if cfg.OfferTime <= 0 {
		cfg.OfferTime = DefaultOfferTime
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(serverMAC) != 6 {
		// No Ethernet address (a test's dummy device): a DUID-LL of zeros
		// would be shared; make one from the server address instead.
		b := cfg.ServerIP.As16()
		serverMAC = net.HardwareAddr{0x02, b[11], b[12], b[13], b[14], b[15]}
	}
	p, err := newPool(ctx, cfg.Leases, cfg.RangeStart, cfg.RangeEnd, cfg.LeaseTime, cfg.OfferTime)
	if err != nil {
		return nil, err
	}
	return &Server{
		cfg: cfg, log: cfg.Logger, pool: p, now: time.Now,
		duid: &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: append(net.HardwareAddr(nil), serverMAC...)},
	}, nil
}

// ServerIP returns the address used in tftp:// boot URLs.
func (s *Server) ServerIP() netip.Addr { return s.cfg.ServerIP }

// Prefix returns the served prefix.
func (s *Server) Prefix() netip.Prefix { return s.cfg.Prefix }

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	c := &s.c
	return Stats{Received: c.received.Load(), Malformed: c.malformed.Load(), Ignored: c.ignored.Load(),
		Unknown: c.unknown.Load(), Advertise: c.advertise.Load(), Replies: c.replies.Load(), Errors: c.errors.Load()}
}

// Serve answers messages until ctx ends, then closes the socket, waits
// for the messages being handled and returns nil.
func (s *Server) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { s.conn.Close() })
	defer stop()
	var wg sync.WaitGroup
	raErr := make(chan error, 1)
	if s.ra != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.ra.Serve(ctx); err != nil {
				raErr <- err
				cancel()
			}
		}()
	}
	sem := make(chan struct{}, s.cfg.Workers)
	s.log.Info("dhcp6: serving", "interface", s.cfg.Interface, "prefix", s.cfg.Prefix.String(),
		"range", s.cfg.RangeStart.String()+"-"+s.cfg.RangeEnd.String())
	var err error
	for {
		buf := make([]byte, 1500)
		n, peer, rerr := s.conn.ReadFrom(buf)
		if rerr != nil {
			if ctx.Err() == nil {
				err = fmt.Errorf("dhcp6: read: %w", rerr)
			}
			break
		}
		s.c.received.Add(1)
		up, ok := peer.(*net.UDPAddr)
		if !ok {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			reply, dst := s.handle(ctx, buf[:n], up)
			if reply == nil {
				return
			}
			if _, werr := s.conn.WriteTo(reply, dst); werr != nil {
				s.c.errors.Add(1)
				s.log.Warn("dhcp6: send failed", "dst", dst.String(), "err", werr)
			}
		}()
	}
	cancel()
	s.conn.Close()
	wg.Wait()
	select {
	case e := <-raErr:
		if err == nil {
			err = e
		}
	default:
	}
	return err
}

// handle decides the answer to the datagram b from peer: the bytes to
// send and where, or nil for none. It never panics on any input.
func (s *Server) handle(ctx context.Context, b []byte, peer *net.UDPAddr) ([]byte, *net.UDPAddr) {
	pkt, err := dhcpv6.FromBytes(b)
	if err != nil {
		s.c.malformed.Add(1)
		return nil, nil
	}
	var (
		msg   *dhcpv6.Message
		relay *dhcpv6.RelayMessage
		lla   net.HardwareAddr
	)
	switch p := pkt.(type) {
	case *dhcpv6.RelayMessage:
		if p.MessageType != dhcpv6.MessageTypeRelayForward {
			s.c.malformed.Add(1)
			return nil, nil
		}
		relay = p
		// The relay next to the client is the innermost one; it adds the
		// client's link-layer address (RFC 6939).
		var cur dhcpv6.DHCPv6 = p
		for depth := 0; cur != nil && cur.IsRelay(); depth++ {
			r := cur.(*dhcpv6.RelayMessage)
			if depth > 32 {
				s.c.malformed.Add(1)
				return nil, nil
			}
			if _, a := r.Options.ClientLinkLayerAddress(); len(a) == 6 {
				lla = a
			}
			cur = r.Options.RelayMessage()
		}
		m, ok := cur.(*dhcpv6.Message)
		if !ok {
			s.c.malformed.Add(1)
			return nil, nil
		}
		msg = m
	case *dhcpv6.Message:
		msg = p
	default:
		s.c.malformed.Add(1)
		return nil, nil
	}
	var src netip.Addr
	if peer != nil {
		src, _ = netip.AddrFromSlice(peer.IP)
		if relay != nil {
			src, _ = netip.AddrFromSlice(relay.PeerAddr) // the client's address as the first relay saw it
		}
	}
	reply := s.answer(ctx, msg, lla, src.Unmap())
	if reply == nil {
		return nil, nil
	}
	if relay != nil {
		rr, err := dhcpv6.NewRelayReplFromRelayForw(relay, reply)
		if err != nil {
			s.c.errors.Add(1)
			return nil, nil
		}
		return rr.ToBytes(), peer
	}
	return reply.ToBytes(), peer
}

// answer builds the reply to one client message, or nil.
func (s *Server) answer(ctx context.Context, m *dhcpv6.Message, lla net.HardwareAddr, src netip.Addr) *dhcpv6.Message {
	switch m.MessageType {
	case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeConfirm, dhcpv6.MessageTypeRenew,
		dhcpv6.MessageTypeRebind, dhcpv6.MessageTypeRelease, dhcpv6.MessageTypeDecline, dhcpv6.MessageTypeInformationRequest:
	default:
		s.c.malformed.Add(1) // a server's or relay's message type
		return nil
	}
	cid := m.Options.ClientID()
	if cid == nil && m.MessageType != dhcpv6.MessageTypeInformationRequest {
		s.c.malformed.Add(1)
		return nil
	}
	// Messages for one server must name this one; Solicit, Confirm,
	// Rebind and Information-request may name none (RFC 8415 16).
	sid := m.Options.ServerID()
	switch m.MessageType {
	case dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRelease, dhcpv6.MessageTypeDecline:
		if sid == nil || !sid.Equal(s.duid) {
			s.c.ignored.Add(1)
			return nil
		}
	default:
		if sid != nil && !sid.Equal(s.duid) {
			s.c.ignored.Add(1)
			return nil
		}
	}
	mac := ClientMAC(m, lla, src)
	if mac == nil {
		s.c.unknown.Add(1)
		s.log.Debug("dhcp6: no MAC for client", "src", src.String())
		return nil
	}
	known, err := s.cfg.Hosts.PXEEnabled(ctx, mac)
	if err != nil {
		s.c.errors.Add(1)
		s.log.Error("dhcp6: host lookup failed", "mac", mac.String(), "err", err)
		return nil
	}
	if !known && !s.cfg.AllowUnknown {
		s.c.unknown.Add(1)
		s.log.Debug("dhcp6: unknown MAC ignored", "mac", mac.String())
		return nil
	}
	boot, bootOK := dhcp.Decide(ParseClient(m), s.cfg.Boot)
	rt := dhcpv6.MessageTypeReply
	if m.MessageType == dhcpv6.MessageTypeSolicit && m.GetOneOption(dhcpv6.OptionRapidCommit) == nil {
		rt = dhcpv6.MessageTypeAdvertise
	}
	reply := &dhcpv6.Message{MessageType: rt, TransactionID: m.TransactionID}
	if cid != nil {
		reply.AddOption(dhcpv6.OptClientID(cid))
	}
	reply.AddOption(dhcpv6.OptServerID(s.duid))
	now := s.now()
	status := func(code iana.StatusCode, msg string) dhcpv6.Option {
		return &dhcpv6.OptStatusCode{StatusCode: code, StatusMessage: msg}
	}
	switch m.MessageType {
	case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRebind:
		ias := m.Options.IANA()
		if len(ias) == 0 {
			if m.MessageType == dhcpv6.MessageTypeSolicit {
				reply.AddOption(status(iana.StatusNoAddrsAvail, "no IA_NA in the Solicit"))
			}
			break
		}
		if rt == dhcpv6.MessageTypeReply && m.MessageType == dhcpv6.MessageTypeSolicit {
			reply.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionRapidCommit})
		}
		if rt == dhcpv6.MessageTypeAdvertise {
			// 255: the client need not wait for other servers' answers.
			reply.AddOption(dhcpv6.OptPreference(255))
		}
		// One address per machine: the first IA_NA gets it, any other is
		// told there is none.
		for i, ia := range ias {
			out := &dhcpv6.OptIANA{IaId: ia.IaId}
			if i > 0 {
				out.Options.Add(status(iana.StatusNoAddrsAvail, "one address per client"))
				reply.AddOption(out)
				continue
			}
			var want netip.Addr
			if a := ia.Options.OneAddress(); a != nil {
				want, _ = netip.AddrFromSlice(a.IPv6Addr)
			}
			addr, err := s.assign(ctx, m.MessageType, rt, mac, want, now)
			switch {
			case errors.Is(err, errNoBinding):
				out.Options.Add(status(iana.StatusNoBinding, "address not available to this client"))
			case errors.Is(err, ErrPoolExhausted):
				out.Options.Add(status(iana.StatusNoAddrsAvail, "address pool exhausted"))
			case err != nil:
				s.c.errors.Add(1)
				s.log.Error("dhcp6: cannot assign an address", "mac", mac.String(), "err", err)
				return nil // the client retries; no lease was promised
			default:
				out.T1, out.T2 = s.cfg.LeaseTime/2, s.cfg.LeaseTime*4/5
				out.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: net.IP(addr.AsSlice()),
					PreferredLifetime: s.cfg.LeaseTime, ValidLifetime: s.cfg.LeaseTime})
				s.log.Log(ctx, levelOf(rt), "dhcp6: "+rt.String(), "mac", mac.String(), "ip", addr.String(),
					"firmware", boot.Firmware.String())
			}
			reply.AddOption(out)
		}
	case dhcpv6.MessageTypeConfirm:
		code, text := iana.StatusSuccess, "on link"
		for _, ia := range m.Options.IANA() {
			for _, a := range ia.Options.Addresses() {
				if ip, ok := netip.AddrFromSlice(a.IPv6Addr); !ok || !s.cfg.Prefix.Contains(ip) {
					code, text = iana.StatusNotOnLink, "not on this link"
				}
			}
		}
		reply.AddOption(status(code, text))
	case dhcpv6.MessageTypeRelease, dhcpv6.MessageTypeDecline:
		for _, ia := range m.Options.IANA() {
			for _, a := range ia.Options.Addresses() {
				ip, ok := netip.AddrFromSlice(a.IPv6Addr)
				if !ok {
					continue
				}
				if m.MessageType == dhcpv6.MessageTypeDecline {
					s.pool.decline(mac, ip, now)
					s.log.Warn("dhcp6: address declined", "mac", mac.String(), "ip", ip.String())
				} else if err := s.pool.release(ctx, mac, ip); err != nil {
					s.c.errors.Add(1)
					s.log.Error("dhcp6: release failed", "mac", mac.String(), "err", err)
				}
			}
		}
		reply.AddOption(status(iana.StatusSuccess, "done"))
	}
	if bootOK {
		reply.AddOption(dhcpv6.OptBootFileURL(BootFileURL(boot, s.cfg.ServerIP)))
		if boot.Firmware == dhcp.FirmwareUEFIHTTP {
			// UEFI HTTP boot takes only answers that say HTTPClient.
			reply.AddOption(&dhcpv6.OptVendorClass{EnterpriseNumber: enterprisePXE, Data: [][]byte{[]byte(dhcp.VendorHTTPClient)}})
		}
	}
	if len(s.cfg.DNS) > 0 {
		dns := make([]net.IP, len(s.cfg.DNS))
		for i, d := range s.cfg.DNS {
			dns[i] = net.IP(d.AsSlice())
		}
		reply.AddOption(dhcpv6.OptDNS(dns...))
	}
	if rt == dhcpv6.MessageTypeAdvertise {
		s.c.advertise.Add(1)
	} else {
		s.c.replies.Add(1)
	}
	return reply
}

// assign finds (Advertise) or binds (Reply) the client's address.
func (s *Server) assign(ctx context.Context, mt, rt dhcpv6.MessageType, mac net.HardwareAddr, want netip.Addr, now time.Time) (netip.Addr, error) {
	if mt == dhcpv6.MessageTypeRenew || mt == dhcpv6.MessageTypeRebind {
		// Extend what the client holds; nothing else.
		l, err := s.pool.bind(ctx, mac, want, now)
		return l.IP, err
	}
	addr, err := s.pool.offer(mac, want, now)
	if err != nil || rt == dhcpv6.MessageTypeAdvertise {
		return addr, err
	}
	l, err := s.pool.bind(ctx, mac, addr, now)
	return l.IP, err
}

func levelOf(rt dhcpv6.MessageType) slog.Level {
	if rt == dhcpv6.MessageTypeReply {
		return slog.LevelInfo
	}
	return slog.LevelDebug
}
