// Package dhcp is ferric's DHCPv4 server for network boot, built on
// github.com/insomniacslk/dhcp.
//
// It runs in one of two modes:
//
//   - ModeProxy answers only network boot clients, with boot information
//     and no address, on port 67 (ProxyDHCP offers beside the site's own
//     DHCP server) and port 4011 (PXE boot-server requests).
//   - ModeFull hands out addresses from a range on one interface, with
//     static reservations, and stores bound leases through Leases so a
//     restart never reuses a bound address. Two stores are included:
//     LogLeases (an append-only log: the ACK waits only for a write(2),
//     fdatasync runs in group commits) and BoltLeases (bbolt).
//
// Which boot file a client gets is decided by Decide, a pure function of
// the request's architecture (option 93), vendor class (option 60) and user
// class (option 77). Whether a MAC gets an answer at all is asked of the
// conductor through Hosts. Malformed packets are dropped and counted; see
// Stats. An optional IPv6 router advertisement responder (see RAResponder)
// saves iPXE its 16-second wait for a router.
package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/insomniacslk/dhcp/iana"
	"golang.org/x/net/ipv4"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// Mode selects how the server answers.
type Mode int

const (
	// ModeProxy answers PXE/HTTP boot clients with boot information only.
	ModeProxy Mode = iota + 1
	// ModeFull is a complete DHCP server for one interface.
	ModeFull
)

func (m Mode) String() string {
	switch m {
	case ModeProxy:
		return "proxy"
	case ModeFull:
		return "full"
	default:
		return fmt.Sprintf("Mode(%d)", int(m))
	}
}

// Defaults used when a Config field is left zero.
const (
	DefaultPort      = dhcpv4.ServerPort // 67
	DefaultProxyPort = 4011              // PXE boot-server port (ModeProxy)
	DefaultLeaseTime = time.Hour
	// DefaultOfferTime is how long an offered address is held for the
	// client's REQUEST.
	DefaultOfferTime = 30 * time.Second
	// DefaultWorkers is how many packets are handled at once; lease stores
	// of concurrent ACKs share one database commit.
	DefaultWorkers = 256
	// DefaultQueueLen is how many received packets may wait for a worker
	// before new ones are dropped (and counted in Stats.Dropped).
	DefaultQueueLen = 1024
)

// Hosts is what the DHCP server needs from the conductor: whether a MAC
// belongs to a port that should network boot (the port's pxe_enabled). An
// error means the answer is unknown; the request is then dropped.
type Hosts interface {
	PXEEnabled(ctx context.Context, mac net.HardwareAddr) (known bool, err error)
}

// Config configures a Server.
type Config struct {
	Mode Mode
	// Interface to serve on (SO_BINDTODEVICE). Required.
	Interface string
	// ServerIP is this server's address on Interface, sent as server
	// identifier and TFTP server (siaddr). Default: the interface's first
	// IPv4 address (inside Subnet when Subnet is set).
	ServerIP netip.Addr
	// Boot names the boot files and URLs. Boot.ScriptURL is required.
	Boot BootConfig
	// Hosts decides which MACs are answered. Required.
	Hosts Hosts
	// AllowUnknown answers MACs that Hosts does not know (discovery and
	// inspection of new machines).
	AllowUnknown bool

	// Full mode only.

	// Subnet of the served network. Default: the prefix of ServerIP on
	// Interface.
	Subnet netip.Prefix
	// RangeStart and RangeEnd bound the dynamic pool (inclusive). Required.
	RangeStart, RangeEnd netip.Addr
	// Reservations pin MACs to addresses.
	Reservations []Reservation
	// Router (option 3) and DNS (option 6) are sent when set.
	Router netip.Addr
	DNS    []netip.Addr
	// LeaseTime defaults to DefaultLeaseTime; OfferTime to DefaultOfferTime.
	LeaseTime time.Duration
	OfferTime time.Duration
	// Leases stores bound leases. Required.
	Leases Leases

	// Port is the DHCP server port. Default DefaultPort.
	Port int
	// ProxyPort is the PXE boot-server port in proxy mode. Default
	// DefaultProxyPort.
	ProxyPort int
	// Workers and QueueLen default to DefaultWorkers and DefaultQueueLen.
	Workers  int
	QueueLen int
	// RouterAdvertisements also runs an RAResponder on Interface.
	RouterAdvertisements bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Stats counts packets since the server was created.
type Stats struct {
	Received  uint64 // datagrams read
	Malformed uint64 // not parseable, not a BOOTREQUEST, no message type, or not Ethernet
	Dropped   uint64 // queue full
	Ignored   uint64 // valid but nothing to answer (not a boot client in proxy mode, other server chosen, ...)
	Unknown   uint64 // MAC not known to Hosts and AllowUnknown unset
	Offers    uint64
	Acks      uint64
	Naks      uint64
	Releases  uint64
	Declines  uint64
	Errors    uint64 // Hosts or Leases failed, pool exhausted, send failed
}

type counters struct {
	received, malformed, dropped, ignored, unknown, offers, acks, naks, releases, declines, errors atomic.Uint64
}

// Server is a DHCPv4 server. Create it with New and run it with Serve.
type Server struct {
	cfg      Config
	log      *slog.Logger
	serverIP net.IP
	mask     net.IPMask
	pool     *pool // nil in proxy mode
	conns    []listener
	ra       *RAResponder
	c        counters
	ackTime  histogram
	now      func() time.Time
}

type listener struct {
	conn net.PacketConn
	port int
}

type packet struct {
	buf  []byte
	peer *net.UDPAddr
	l    listener
	at   time.Time // when it was read
}

// New validates cfg, loads the leases (full mode) and opens the sockets in
// the network namespace of the calling thread.
func New(ctx context.Context, cfg Config) (*Server, error) {
	s, err := prepare(ctx, cfg)
	if err != nil {
		return nil, err
	}
	ports := []int{s.cfg.Port}
	if s.cfg.Mode == ModeProxy {
		ports = append(ports, s.cfg.ProxyPort)
	}
	for _, port := range ports {
		c, err := server4.NewIPv4UDPConn(s.cfg.Interface, &net.UDPAddr{IP: net.IPv4zero, Port: port})
		if err != nil {
			s.closeConns()
			return nil, fmt.Errorf("dhcp: listen on %s port %d: %w", s.cfg.Interface, port, err)
		}
		setBuffers(c, s.log)
		s.conns = append(s.conns, listener{conn: c, port: port})
	}
	if s.cfg.RouterAdvertisements {
		ra, err := NewRAResponder(RAConfig{Interface: s.cfg.Interface, Logger: s.cfg.Logger})
		if err != nil {
			s.closeConns()
			return nil, err
		}
		s.ra = ra
	}
	return s, nil
}

// prepare validates cfg, fills defaults and loads leases; it opens no
// socket.
func prepare(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Mode != ModeProxy && cfg.Mode != ModeFull {
		return nil, fmt.Errorf("dhcp: unknown mode %v", cfg.Mode)
	}
	if cfg.Interface == "" {
		return nil, errors.New("dhcp: Config.Interface is required")
	}
	if cfg.Hosts == nil {
		return nil, errors.New("dhcp: Config.Hosts is required")
	}
	if cfg.Boot.ScriptURL == "" {
		return nil, errors.New("dhcp: Config.Boot.ScriptURL is required")
	}
	cfg.Boot.setDefaults()
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.ProxyPort == 0 {
		cfg.ProxyPort = DefaultProxyPort
	}
	if cfg.LeaseTime == 0 {
		cfg.LeaseTime = DefaultLeaseTime
	}
	if cfg.OfferTime == 0 {
		cfg.OfferTime = DefaultOfferTime
	}
	if cfg.Workers == 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.QueueLen == 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: time.Now}
	if err := s.resolveAddrs(); err != nil {
		return nil, err
	}
	if cfg.Mode == ModeFull {
		if err := s.checkRange(); err != nil {
			return nil, err
		}
		if cfg.Leases == nil {
			return nil, errors.New("dhcp: Config.Leases is required in full mode")
		}
		p, err := newPool(ctx, cfg.Logger, cfg.Leases, cfg.RangeStart, cfg.RangeEnd, cfg.Reservations, cfg.LeaseTime, cfg.OfferTime)
		if err != nil {
			return nil, err
		}
		s.pool = p
	}
	return s, nil
}

func (s *Server) resolveAddrs() error {
	if s.cfg.ServerIP.Is4() && s.cfg.Subnet.IsValid() {
		s.cfg.Subnet = s.cfg.Subnet.Masked()
		s.serverIP = net.IP(s.cfg.ServerIP.AsSlice())
		s.mask = net.CIDRMask(s.cfg.Subnet.Bits(), 32)
		return nil
	}
	ifi, err := net.InterfaceByName(s.cfg.Interface)
	if err != nil {
		return fmt.Errorf("dhcp: interface %s: %w", s.cfg.Interface, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return fmt.Errorf("dhcp: addresses of %s: %w", s.cfg.Interface, err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.To4() == nil {
			continue
		}
		ip, _ := netip.AddrFromSlice(ipn.IP.To4())
		ones, _ := ipn.Mask.Size()
		pfx := netip.PrefixFrom(ip, ones).Masked()
		if s.cfg.ServerIP.IsValid() && s.cfg.ServerIP != ip {
			continue
		}
		if s.cfg.Subnet.IsValid() && !s.cfg.Subnet.Contains(ip) {
			continue
		}
		if !s.cfg.ServerIP.IsValid() {
			s.cfg.ServerIP = ip
		}
		if !s.cfg.Subnet.IsValid() {
			s.cfg.Subnet = pfx
		}
		break
	}
	if !s.cfg.ServerIP.IsValid() {
		return fmt.Errorf("dhcp: interface %s has no IPv4 address (set Config.ServerIP)", s.cfg.Interface)
	}
	if !s.cfg.Subnet.IsValid() {
		s.cfg.Subnet = netip.PrefixFrom(s.cfg.ServerIP, 24).Masked()
	}
	s.serverIP = net.IP(s.cfg.ServerIP.AsSlice())
	s.mask = net.CIDRMask(s.cfg.Subnet.Bits(), 32)
	return nil
}

func (s *Server) checkRange() error {
	c := s.cfg
	if !c.RangeStart.Is4() || !c.RangeEnd.Is4() || c.RangeEnd.Less(c.RangeStart) {
		return fmt.Errorf("dhcp: range %v–%v: need two IPv4 addresses, start first", c.RangeStart, c.RangeEnd)
	}
	if !c.Subnet.Contains(c.RangeStart) || !c.Subnet.Contains(c.RangeEnd) {
		return fmt.Errorf("dhcp: range %v–%v is not inside subnet %v", c.RangeStart, c.RangeEnd, c.Subnet)
	}
	for _, r := range c.Reservations {
		if !c.Subnet.Contains(r.IP) {
			return fmt.Errorf("dhcp: reservation %v for %v is not inside subnet %v", r.IP, r.MAC, c.Subnet)
		}
	}
	return nil
}

// socketBuffer is the receive and send buffer asked for each DHCP socket:
// room for a few thousand packets, so a burst waits in the kernel instead
// of being dropped while the server is busy.
const socketBuffer = 4 << 20

// setBuffers enlarges c's socket buffers, past net.core.rmem_max when the
// process may (SO_RCVBUFFORCE needs CAP_NET_ADMIN).
func setBuffers(c net.PacketConn, log *slog.Logger) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	var serr error
	_ = raw.Control(func(fd uintptr) {
		for _, o := range [][2]int{{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}, {unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], socketBuffer) != nil {
				if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], socketBuffer); err != nil {
					serr = err
				}
			}
		}
	})
	if serr != nil {
		log.Debug("dhcp: cannot enlarge socket buffers", "err", serr)
	}
}

func (s *Server) closeConns() {
	for _, l := range s.conns {
		l.conn.Close()
	}
}

// ServerIP returns the address the server identifies itself with.
func (s *Server) ServerIP() netip.Addr { return s.cfg.ServerIP }

// Stats returns a snapshot of the packet counters.
func (s *Server) Stats() Stats {
	c := &s.c
	return Stats{
		Received: c.received.Load(), Malformed: c.malformed.Load(), Dropped: c.dropped.Load(),
		Ignored: c.ignored.Load(), Unknown: c.unknown.Load(), Offers: c.offers.Load(), Acks: c.acks.Load(),
		Naks: c.naks.Load(), Releases: c.releases.Load(), Declines: c.declines.Load(), Errors: c.errors.Load(),
	}
}

// Serve answers requests until ctx ends, then closes the sockets, waits for
// the packets being handled and returns nil. It returns an error if a
// socket fails. Serve can be called once.
func (s *Server) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	queue := make(chan packet, s.cfg.QueueLen)
	var workers sync.WaitGroup
	for range s.cfg.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for p := range queue {
				s.handlePacket(gctx, p)
			}
		}()
	}
	var readers sync.WaitGroup
	for _, l := range s.conns {
		readers.Add(1)
		g.Go(func() error {
			defer readers.Done()
			return s.readLoop(gctx, l, queue)
		})
	}
	if s.ra != nil {
		g.Go(func() error { return s.ra.Serve(gctx) })
	}
	g.Go(func() error {
		<-gctx.Done()
		s.closeConns()
		return nil
	})
	s.log.Info("dhcp: serving", "mode", s.cfg.Mode.String(), "interface", s.cfg.Interface, "server_ip", s.cfg.ServerIP.String())
	err := g.Wait()
	readers.Wait()
	close(queue)
	workers.Wait()
	if ctx.Err() != nil && errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// bufs recycles receive buffers (one per packet in flight).
var bufs = sync.Pool{New: func() any { b := make([]byte, 1500); return &b }}

// readBatch is how many datagrams one recvmmsg(2) may return: under load
// one system call reads many packets.
const readBatch = 32

func (s *Server) readLoop(ctx context.Context, l listener, queue chan<- packet) error {
	pc := ipv4.NewPacketConn(l.conn)
	msgs := make([]ipv4.Message, readBatch)
	held := make([]*[]byte, readBatch)
	for i := range msgs {
		held[i] = bufs.Get().(*[]byte)
		msgs[i].Buffers = [][]byte{(*held[i])[:cap(*held[i])]}
	}
	for {
		n, err := pc.ReadBatch(msgs, 0)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("dhcp: read port %d: %w", l.port, err)
		}
		s.c.received.Add(uint64(n))
		now := time.Now()
		for i := range n {
			up, _ := msgs[i].Addr.(*net.UDPAddr)
			select {
			case queue <- packet{buf: (*held[i])[:msgs[i].N], peer: up, l: l, at: now}:
				// The worker returns the buffer to the pool; take another.
				held[i] = bufs.Get().(*[]byte)
				msgs[i].Buffers[0] = (*held[i])[:cap(*held[i])]
			default:
				s.c.dropped.Add(1)
			}
		}
	}
}

func (s *Server) handlePacket(ctx context.Context, p packet) {
	m, err := dhcpv4.FromBytes(p.buf)
	b := p.buf[:cap(p.buf)]
	bufs.Put(&b) // FromBytes copies what it keeps
	if err != nil {
		s.c.malformed.Add(1)
		s.log.Debug("dhcp: malformed packet", "peer", p.peer.String(), "err", err)
		return
	}
	reply, dst := s.handle(ctx, m, p.l.port, p.peer)
	if reply == nil {
		return
	}
	if _, err := p.l.conn.WriteTo(reply.ToBytes(), dst); err != nil {
		s.c.errors.Add(1)
		s.log.Warn("dhcp: send failed", "mac", m.ClientHWAddr.String(), "dst", dst.String(), "err", err)
		return
	}
	if !p.at.IsZero() && reply.MessageType() == dhcpv4.MessageTypeAck {
		s.ackTime.add(time.Since(p.at))
	}
}

// AckLatency returns quantiles (for example 0.5 and 0.99) of the time from
// reading a REQUEST off the socket to having sent its ACK: the server's
// own part of the REQUEST→ACK time, lease store included, to within 19 %.
func (s *Server) AckLatency(qs ...float64) []time.Duration { return s.ackTime.quantiles(qs) }

// histogram counts durations in buckets growing by 2^(1/4) from 1 µs.
type histogram struct{ b [100]atomic.Uint64 }

func (h *histogram) add(d time.Duration) {
	i := 0
	if us := float64(d) / float64(time.Microsecond); us > 1 {
		i = min(int(4*math.Log2(us))+1, len(h.b)-1)
	}
	h.b[i].Add(1)
}

func (h *histogram) quantiles(qs []float64) []time.Duration {
	var counts [100]uint64
	var total uint64
	for i := range h.b {
		counts[i] = h.b[i].Load()
		total += counts[i]
	}
	out := make([]time.Duration, len(qs))
	if total == 0 {
		return out
	}
	for j, q := range qs {
		want := uint64(math.Ceil(q * float64(total)))
		var seen uint64
		for i, c := range counts {
			seen += c
			if seen >= max(want, 1) {
				// The bucket's upper bound.
				out[j] = time.Duration(math.Pow(2, float64(i)/4) * float64(time.Microsecond))
				break
			}
		}
	}
	return out
}

// handle decides the reply to m, received on port from peer, and where to
// send it. A nil reply means no answer.
func (s *Server) handle(ctx context.Context, m *dhcpv4.DHCPv4, port int, peer *net.UDPAddr) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	mt := m.MessageType()
	if m.OpCode != dhcpv4.OpcodeBootRequest || m.HWType != iana.HWTypeEthernet ||
		len(m.ClientHWAddr) != 6 || mt == dhcpv4.MessageTypeNone {
		s.c.malformed.Add(1)
		return nil, nil
	}
	mac := m.ClientHWAddr
	known, err := s.cfg.Hosts.PXEEnabled(ctx, mac)
	if err != nil {
		s.c.errors.Add(1)
		s.log.Error("dhcp: host lookup failed", "mac", mac.String(), "err", err)
		return nil, nil
	}
	if !known && !s.cfg.AllowUnknown {
		s.c.unknown.Add(1)
		s.log.Debug("dhcp: unknown MAC ignored", "mac", mac.String())
		return nil, nil
	}
	client := ParseClient(m)
	boot, bootOK := Decide(client, s.cfg.Boot)
	if s.cfg.Mode == ModeProxy {
		return s.handleProxy(m, mt, port, peer, boot, bootOK)
	}
	return s.handleFull(ctx, m, mt, boot, bootOK)
}

func (s *Server) handleProxy(m *dhcpv4.DHCPv4, mt dhcpv4.MessageType, port int, peer *net.UDPAddr, boot Boot, ok bool) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	if !ok {
		s.c.ignored.Add(1)
		return nil, nil
	}
	var rt dhcpv4.MessageType
	switch {
	case port == s.cfg.Port && mt == dhcpv4.MessageTypeDiscover:
		rt = dhcpv4.MessageTypeOffer
	case port == s.cfg.ProxyPort && (mt == dhcpv4.MessageTypeRequest || mt == dhcpv4.MessageTypeInform):
		rt = dhcpv4.MessageTypeAck
	default:
		// REQUESTs on port 67 belong to the site's DHCP server.
		s.c.ignored.Add(1)
		return nil, nil
	}
	reply := newReply(m,
		dhcpv4.WithMessageType(rt),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.serverIP)),
	)
	// A ProxyDHCP answer must name PXEClient even to an iPXE client.
	if boot.VendorClass == "" {
		boot.VendorClass = VendorPXEClient
	}
	applyBoot(reply, boot, s.serverIP)
	s.count(rt)
	if s.log.Enabled(context.Background(), slog.LevelInfo) {
		s.log.Info("dhcp: proxy "+rt.String(), "mac", m.ClientHWAddr.String(), "firmware", boot.Firmware.String(), "file", boot.File)
	}
	dst := s.destination(m, rt)
	if port == s.cfg.ProxyPort && peer != nil && !peer.IP.Equal(net.IPv4bcast) && !peer.IP.IsUnspecified() {
		dst = peer // boot-server replies go back where the request came from
	}
	return reply, dst
}

func (s *Server) handleFull(ctx context.Context, m *dhcpv4.DHCPv4, mt dhcpv4.MessageType, boot Boot, bootOK bool) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	mac := m.ClientHWAddr
	now := s.now()
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		var want netip.Addr
		if r := m.RequestedIPAddress(); r != nil {
			want, _ = netip.AddrFromSlice(r.To4())
		}
		ip, err := s.pool.offer(mac, want, now)
		if err != nil {
			s.c.errors.Add(1)
			s.log.Warn("dhcp: no address to offer", "mac", mac.String(), "err", err)
			return nil, nil
		}
		return s.addressReply(m, dhcpv4.MessageTypeOffer, ip, boot, bootOK)
	case dhcpv4.MessageTypeRequest:
		ip, ok := s.requestedAddr(m)
		if !ok {
			s.c.ignored.Add(1) // another server was chosen, or nothing asked for
			return nil, nil
		}
		if !s.cfg.Subnet.Contains(ip) {
			return s.nak(m)
		}
		if _, err := s.pool.bind(ctx, mac, ip, now); err != nil {
			if errors.Is(err, errNak) {
				return s.nak(m)
			}
			s.c.errors.Add(1)
			s.log.Error("dhcp: cannot bind lease", "mac", mac.String(), "ip", ip.String(), "err", err)
			return nil, nil
		}
		return s.addressReply(m, dhcpv4.MessageTypeAck, ip, boot, bootOK)
	case dhcpv4.MessageTypeRelease:
		s.c.releases.Add(1)
		ip, _ := netip.AddrFromSlice(m.ClientIPAddr.To4())
		if err := s.pool.release(ctx, mac, ip); err != nil {
			s.c.errors.Add(1)
			s.log.Error("dhcp: release failed", "mac", mac.String(), "err", err)
		}
		return nil, nil
	case dhcpv4.MessageTypeDecline:
		s.c.declines.Add(1)
		if r := m.RequestedIPAddress(); r != nil {
			ip, _ := netip.AddrFromSlice(r.To4())
			s.pool.decline(mac, ip, now)
			s.log.Warn("dhcp: address declined", "mac", mac.String(), "ip", ip.String())
		}
		return nil, nil
	case dhcpv4.MessageTypeInform:
		return s.addressReply(m, dhcpv4.MessageTypeAck, netip.Addr{}, boot, bootOK)
	default:
		s.c.ignored.Add(1)
		return nil, nil
	}
}

// requestedAddr finds the address a REQUEST asks for (RFC 2131 4.3.2).
// ok is false when the client chose another server.
func (s *Server) requestedAddr(m *dhcpv4.DHCPv4) (netip.Addr, bool) {
	if sid := m.ServerIdentifier(); sid != nil && !sid.IsUnspecified() {
		if !sid.Equal(s.serverIP) {
			return netip.Addr{}, false // SELECTING another server's offer
		}
	}
	if r := m.RequestedIPAddress(); r != nil && r.To4() != nil {
		ip, _ := netip.AddrFromSlice(r.To4())
		return ip, true // SELECTING or INIT-REBOOT
	}
	if ci := m.ClientIPAddr.To4(); ci != nil && !ci.IsUnspecified() {
		ip, _ := netip.AddrFromSlice(ci)
		return ip, true // RENEWING or REBINDING
	}
	return netip.Addr{}, false
}

func (s *Server) addressReply(m *dhcpv4.DHCPv4, rt dhcpv4.MessageType, ip netip.Addr, boot Boot, bootOK bool) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(rt),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.serverIP)),
		dhcpv4.WithOption(dhcpv4.OptSubnetMask(s.mask)),
	}
	if ip.IsValid() {
		mods = append(mods,
			dhcpv4.WithYourIP(net.IP(ip.AsSlice())),
			dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(s.cfg.LeaseTime)),
			dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(s.cfg.LeaseTime/2)),
			dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(s.cfg.LeaseTime*7/8)),
		)
	}
	if s.cfg.Router.IsValid() {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRouter(net.IP(s.cfg.Router.AsSlice()))))
	}
	if len(s.cfg.DNS) > 0 {
		dns := make([]net.IP, len(s.cfg.DNS))
		for i, d := range s.cfg.DNS {
			dns[i] = net.IP(d.AsSlice())
		}
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptDNS(dns...)))
	}
	reply := newReply(m, mods...)
	if bootOK {
		applyBoot(reply, boot, s.serverIP)
	}
	s.count(rt)
	lvl := slog.LevelDebug
	if rt == dhcpv4.MessageTypeAck {
		lvl = slog.LevelInfo
	}
	if s.log.Enabled(context.Background(), lvl) {
		s.log.Log(context.Background(), lvl, "dhcp: "+rt.String(), "mac", m.ClientHWAddr.String(), "ip", ip.String(),
			"firmware", boot.Firmware.String(), "file", boot.File)
	}
	return reply, s.destination(m, rt)
}

func (s *Server) nak(m *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	reply := newReply(m,
		dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.serverIP)),
	)
	s.c.naks.Add(1)
	s.log.Info("dhcp: NAK", "mac", m.ClientHWAddr.String())
	return reply, s.destination(m, dhcpv4.MessageTypeNak)
}

// newReply builds a reply to req as dhcpv4.NewReplyFromRequest does (same
// fields, relay agent information and client identifier copied) without
// drawing a random transaction ID from crypto/rand first, only to replace
// it with req's: that cost a tenth of the server's time per packet.
func newReply(req *dhcpv4.DHCPv4, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	d := &dhcpv4.DHCPv4{
		OpCode: dhcpv4.OpcodeBootRequest, HWType: iana.HWTypeEthernet, ClientHWAddr: make(net.HardwareAddr, 6),
		ClientIPAddr: net.IPv4zero, YourIPAddr: net.IPv4zero, ServerIPAddr: net.IPv4zero, GatewayIPAddr: net.IPv4zero,
		Options: make(dhcpv4.Options),
	}
	for _, mod := range []dhcpv4.Modifier{
		dhcpv4.WithReply(req),
		dhcpv4.WithGatewayIP(req.GatewayIPAddr),
		dhcpv4.WithOptionCopied(req, dhcpv4.OptionRelayAgentInformation),
		dhcpv4.WithOptionCopied(req, dhcpv4.OptionClientIdentifier),
	} {
		mod(d)
	}
	for _, mod := range mods {
		mod(d)
	}
	return d
}

func (s *Server) count(rt dhcpv4.MessageType) {
	switch rt {
	case dhcpv4.MessageTypeOffer:
		s.c.offers.Add(1)
	case dhcpv4.MessageTypeAck:
		s.c.acks.Add(1)
	}
}

// destination applies RFC 2131 4.1: relay agent first, then the client's
// own address, else broadcast (a client without an address cannot be
// reached by unicast without an ARP entry).
func (s *Server) destination(m *dhcpv4.DHCPv4, rt dhcpv4.MessageType) *net.UDPAddr {
	if gi := m.GatewayIPAddr.To4(); gi != nil && !gi.IsUnspecified() {
		return &net.UDPAddr{IP: gi, Port: dhcpv4.ServerPort}
	}
	if ci := m.ClientIPAddr.To4(); ci != nil && !ci.IsUnspecified() && rt != dhcpv4.MessageTypeNak {
		return &net.UDPAddr{IP: ci, Port: dhcpv4.ClientPort}
	}
	return &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
}
