package dhcp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Lease is one address bound to one client.
type Lease struct {
	IP     netip.Addr
	MAC    net.HardwareAddr
	Expiry time.Time
}

// Leases stores bound leases so that a restarted server never hands an
// address out twice. There is at most one lease per IP; Store replaces the
// lease for the same IP. Implementations must be safe for concurrent use.
type Leases interface {
	// Load returns every stored lease. The server calls it once, in New.
	Load(ctx context.Context) ([]Lease, error)
	// Store records l so that it survives at least a crash of the
	// process (LogLeases with SyncOnStore, and BoltLeases, also a power
	// loss); the server sends the ACK only after Store returned nil.
	Store(ctx context.Context, l Lease) error
	// Remove deletes the lease for ip; removing a missing lease is not an
	// error.
	Remove(ctx context.Context, ip netip.Addr) error
}

// ErrPoolExhausted is returned when no address is free.
var ErrPoolExhausted = errors.New("dhcp: address pool exhausted")

// Reservation pins a MAC to an address. The address may lie outside the
// dynamic range but must be inside the subnet.
type Reservation struct {
	MAC net.HardwareAddr
	IP  netip.Addr
}

type hw [6]byte

func toHW(mac net.HardwareAddr) (hw, bool) {
	var h hw
	if len(mac) != 6 {
		return h, false
	}
	copy(h[:], mac)
	return h, true
}

func ip4(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }
func addr4(u uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], u)
	return netip.AddrFrom4(b)
}

// binding is the in-memory state of one address.
type binding struct {
	ip     uint32
	mac    hw // zero for a declined address
	expiry time.Time
	bound  bool // ACKed and stored; false for an outstanding offer
}

// pool allocates addresses from [start, end] plus reservations. Memory is
// authoritative; bound leases are mirrored into a Leases store.
type pool struct {
	store      Leases
	leaseTime  time.Duration
	offerTime  time.Duration
	start, end uint32

	mu       sync.Mutex
	cursor   uint32
	byIP     map[uint32]*binding
	byMAC    map[hw]*binding
	resByMAC map[hw]uint32
	resByIP  map[uint32]hw
}

func newPool(ctx context.Context, log *slog.Logger, store Leases, start, end netip.Addr, res []Reservation, leaseTime, offerTime time.Duration) (*pool, error) {
	p := &pool{
		store: store, leaseTime: leaseTime, offerTime: offerTime,
		start: ip4(start), end: ip4(end), cursor: ip4(start),
		byIP: map[uint32]*binding{}, byMAC: map[hw]*binding{},
		resByMAC: map[hw]uint32{}, resByIP: map[uint32]hw{},
	}
	for _, r := range res {
		h, ok := toHW(r.MAC)
		if !ok || !r.IP.Is4() {
			return nil, fmt.Errorf("dhcp: reservation %v -> %v: need an Ethernet MAC and an IPv4 address", r.MAC, r.IP)
		}
		if _, dup := p.resByIP[ip4(r.IP)]; dup {
			return nil, fmt.Errorf("dhcp: address %v reserved twice", r.IP)
		}
		p.resByMAC[h], p.resByIP[ip4(r.IP)] = ip4(r.IP), h
	}
	ls, err := store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("dhcp: load leases: %w", err)
	}
	invalid := 0
	defer func() {
		if invalid > 0 {
			log.Warn("dhcp: stored leases without an IPv4 address or an Ethernet MAC were ignored", "count", invalid)
		}
	}()
	for _, l := range ls {
		h, ok := toHW(l.MAC)
		if !ok || !l.IP.Is4() {
			invalid++
			continue
		}
		u := ip4(l.IP)
		if !p.inRange(u) && p.resByIP[u] != h {
			continue // outside the pool now; kept in the store, never offered
		}
		if old := p.byMAC[h]; old != nil {
			if old.expiry.After(l.Expiry) {
				continue
			}
			delete(p.byIP, old.ip)
		}
		b := &binding{ip: u, mac: h, expiry: l.Expiry, bound: true}
		p.byIP[u], p.byMAC[h] = b, b
	}
	return p, nil
}

func (p *pool) inRange(u uint32) bool { return u >= p.start && u <= p.end }

// usable reports whether u may be given to h at now. Caller holds mu.
func (p *pool) usable(u uint32, h hw, now time.Time) bool {
	if r, ok := p.resByIP[u]; ok {
		return r == h
	}
	if !p.inRange(u) {
		return false
	}
	b := p.byIP[u]
	return b == nil || b.mac == h || now.After(b.expiry)
}

// take assigns u to h, dropping whatever binding h or u had. Caller holds mu.
func (p *pool) take(u uint32, h hw, now time.Time, bound bool, d time.Duration) *binding {
	if old := p.byMAC[h]; old != nil && old.ip == u && old.bound && !bound && p.byIP[u] == old {
		return old // re-offering a bound lease must not shorten or unbind it
	}
	if old := p.byIP[u]; old != nil && old.mac != h && p.byMAC[old.mac] == old {
		delete(p.byMAC, old.mac)
	}
	if old := p.byMAC[h]; old != nil && old.ip != u && p.byIP[old.ip] == old {
		delete(p.byIP, old.ip)
	}
	b := &binding{ip: u, mac: h, expiry: now.Add(d), bound: bound}
	p.byIP[u], p.byMAC[h] = b, b
	return b
}

// offer picks an address for mac: its reservation, its current binding,
// the requested address if free, or the next free one in the range.
func (p *pool) offer(mac net.HardwareAddr, requested netip.Addr, now time.Time) (netip.Addr, error) {
	h, ok := toHW(mac)
	if !ok {
		return netip.Addr{}, fmt.Errorf("dhcp: %v is not an Ethernet MAC", mac)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if u, ok := p.resByMAC[h]; ok {
		p.take(u, h, now, false, p.offerTime)
		return addr4(u), nil
	}
	if b := p.byMAC[h]; b != nil && p.usable(b.ip, h, now) {
		p.take(b.ip, h, now, false, p.offerTime)
		return addr4(b.ip), nil
	}
	if requested.Is4() && p.usable(ip4(requested), h, now) {
		u := ip4(requested)
		p.take(u, h, now, false, p.offerTime)
		return requested, nil
	}
	n := uint64(p.end) - uint64(p.start) + 1
	u := p.cursor
	for i := uint64(0); i < n; i++ {
		if u < p.start || u > p.end {
			u = p.start
		}
		if p.usable(u, h, now) {
			p.cursor = u + 1
			p.take(u, h, now, false, p.offerTime)
			return addr4(u), nil
		}
		u++
	}
	return netip.Addr{}, ErrPoolExhausted
}

// errNak says the client may not have the address it asked for.
var errNak = errors.New("dhcp: address not available to this client")

// bind commits ip to mac for the lease time and stores it. It returns
// errNak when ip is not the client's to have.
func (p *pool) bind(ctx context.Context, mac net.HardwareAddr, ip netip.Addr, now time.Time) (Lease, error) {
	h, ok := toHW(mac)
	if !ok || !ip.Is4() {
		return Lease{}, errNak
	}
	u := ip4(ip)
	p.mu.Lock()
	if r, ok := p.resByMAC[h]; ok && r != u {
		p.mu.Unlock()
		return Lease{}, errNak
	}
	if !p.usable(u, h, now) {
		p.mu.Unlock()
		return Lease{}, errNak
	}
	var prev netip.Addr
	if old := p.byMAC[h]; old != nil && old.ip != u && old.bound && p.byIP[old.ip] == old {
		prev = addr4(old.ip)
	}
	b := p.take(u, h, now, true, p.leaseTime)
	l := Lease{IP: ip, MAC: append(net.HardwareAddr(nil), mac...), Expiry: b.expiry}
	p.mu.Unlock()

	if err := p.store.Store(ctx, l); err != nil {
		p.mu.Lock()
		if p.byIP[u] == b {
			b.bound = false // keep the address held as an offer; the client retries
			b.expiry = now.Add(p.offerTime)
		}
		p.mu.Unlock()
		return Lease{}, fmt.Errorf("dhcp: store lease %v for %v: %w", ip, mac, err)
	}
	if prev.IsValid() {
		if err := p.store.Remove(ctx, prev); err != nil {
			return l, fmt.Errorf("dhcp: remove old lease %v for %v: %w", prev, mac, err)
		}
	}
	return l, nil
}

// release frees ip if mac holds it.
func (p *pool) release(ctx context.Context, mac net.HardwareAddr, ip netip.Addr) error {
	h, ok := toHW(mac)
	if !ok || !ip.Is4() {
		return nil
	}
	u := ip4(ip)
	p.mu.Lock()
	b := p.byIP[u]
	if b == nil || b.mac != h {
		p.mu.Unlock()
		return nil
	}
	delete(p.byIP, u)
	if p.byMAC[h] == b {
		delete(p.byMAC, h)
	}
	p.mu.Unlock()
	if err := p.store.Remove(ctx, ip); err != nil {
		return fmt.Errorf("dhcp: remove lease %v: %w", ip, err)
	}
	return nil
}

// decline marks ip as in use by someone else (the client found a conflict)
// for one lease time.
func (p *pool) decline(mac net.HardwareAddr, ip netip.Addr, now time.Time) {
	h, ok := toHW(mac)
	if !ok || !ip.Is4() {
		return
	}
	u := ip4(ip)
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.byIP[u]
	if b == nil || b.mac != h || !p.inRange(u) {
		return
	}
	if p.byMAC[h] == b {
		delete(p.byMAC, h)
	}
	p.byIP[u] = &binding{ip: u, expiry: now.Add(p.leaseTime)}
}
