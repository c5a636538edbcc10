package dhcp6

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/ferric-metal/ferric/pxe/dhcp"
)

// MaxRangeSize is the largest address range a pool accepts. A
// provisioning network needs one address per machine; the bound keeps a
// full scan of an exhausted pool short.
const MaxRangeSize = 1 << 20

// ErrPoolExhausted is returned when no address is free.
var ErrPoolExhausted = errors.New("dhcp6: address pool exhausted")

// errNoBinding says the client may not have the address it asked for.
var errNoBinding = errors.New("dhcp6: address not available to this client")

type hw [6]byte

func toHW(mac net.HardwareAddr) (hw, bool) {
	var h hw
	if len(mac) != 6 {
		return h, false
	}
	copy(h[:], mac)
	return h, true
}

type binding struct {
	ip     netip.Addr
	mac    hw // zero for a declined address
	expiry time.Time
	bound  bool // replied to a Request and stored; false for an advertised address
}

// pool hands out addresses of [start, start+size) to MACs. Memory is
// authoritative; bound leases are mirrored into a dhcp.Leases store (the
// same interface and record shape as the DHCPv4 leases).
type pool struct {
	store     dhcp.Leases
	leaseTime time.Duration
	offerTime time.Duration
	start     netip.Addr
	size      uint64

	mu     sync.Mutex
	cursor uint64
	byIP   map[netip.Addr]*binding
	byMAC  map[hw]*binding
}

// rangeSize returns the number of addresses in [start, end], or an error
// when the range is empty, mixed or larger than MaxRangeSize.
func rangeSize(start, end netip.Addr) (uint64, error) {
	if !start.Is6() || !end.Is6() || start.Is4In6() || end.Is4In6() || end.Less(start) {
		return 0, fmt.Errorf("dhcp6: range %v-%v: need two IPv6 addresses, start first", start, end)
	}
	s, e := new(big.Int).SetBytes(start.AsSlice()), new(big.Int).SetBytes(end.AsSlice())
	n := new(big.Int).Sub(e, s)
	if !n.IsUint64() || n.Uint64() >= MaxRangeSize {
		return 0, fmt.Errorf("dhcp6: range %v-%v holds more than %d addresses", start, end, MaxRangeSize)
	}
	return n.Uint64() + 1, nil
}

// nth returns start+i.
func nth(start netip.Addr, i uint64) netip.Addr {
	b := start.As16()
	carry := i
	for k := 15; k >= 0 && carry > 0; k-- {
		sum := uint64(b[k]) + carry&0xff
		b[k] = byte(sum)
		carry = carry>>8 + sum>>8
	}
	return netip.AddrFrom16(b)
}

func newPool(ctx context.Context, store dhcp.Leases, start, end netip.Addr, leaseTime, offerTime time.Duration) (*pool, error) {
	size, err := rangeSize(start, end)
	if err != nil {
		return nil, err
	}
	p := &pool{store: store, leaseTime: leaseTime, offerTime: offerTime, start: start, size: size,
		byIP: map[netip.Addr]*binding{}, byMAC: map[hw]*binding{}}
	ls, err := store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("dhcp6: load leases: %w", err)
	}
	for _, l := range ls {
		h, ok := toHW(l.MAC)
		if !ok || !p.inRange(l.IP) {
			continue // outside the pool now: kept in the store, never handed out
		}
		if old := p.byMAC[h]; old != nil {
			if old.expiry.After(l.Expiry) {
				continue
			}
			delete(p.byIP, old.ip)
		}
		b := &binding{ip: l.IP, mac: h, expiry: l.Expiry, bound: true}
		p.byIP[l.IP], p.byMAC[h] = b, b
	}
	return p, nil
}

func (p *pool) inRange(a netip.Addr) bool {
	return a.Is6() && !a.Less(p.start) && !nth(p.start, p.size-1).Less(a)
}

// usable reports whether a may be given to h at now. Caller holds mu.
func (p *pool) usable(a netip.Addr, h hw, now time.Time) bool {
	if !p.inRange(a) {
		return false
	}
	b := p.byIP[a]
	return b == nil || b.mac == h || now.After(b.expiry)
}

// take assigns a to h, dropping what h or a had. Caller holds mu.
func (p *pool) take(a netip.Addr, h hw, now time.Time, bound bool, d time.Duration) *binding {
	if old := p.byMAC[h]; old != nil && old.ip == a && old.bound && !bound && p.byIP[a] == old {
		return old // advertising a bound lease again must not shorten it
	}
	if old := p.byIP[a]; old != nil && old.mac != h && p.byMAC[old.mac] == old {
		delete(p.byMAC, old.mac)
	}
	if old := p.byMAC[h]; old != nil && old.ip != a && p.byIP[old.ip] == old {
		delete(p.byIP, old.ip)
	}
	b := &binding{ip: a, mac: h, expiry: now.Add(d), bound: bound}
	p.byIP[a], p.byMAC[h] = b, b
	return b
}

// offer picks an address for mac: its current binding, the address it
// asked for if free, or the next free one.
func (p *pool) offer(mac net.HardwareAddr, want netip.Addr, now time.Time) (netip.Addr, error) {
	h, ok := toHW(mac)
	if !ok {
		return netip.Addr{}, fmt.Errorf("dhcp6: %v is not an Ethernet MAC", mac)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if b := p.byMAC[h]; b != nil && p.usable(b.ip, h, now) {
		p.take(b.ip, h, now, false, p.offerTime)
		return b.ip, nil
	}
	if want.IsValid() && p.usable(want, h, now) {
		p.take(want, h, now, false, p.offerTime)
		return want, nil
	}
	for i := uint64(0); i < p.size; i++ {
		off := (p.cursor + i) % p.size
		a := nth(p.start, off)
		if p.usable(a, h, now) {
			p.cursor = off + 1
			p.take(a, h, now, false, p.offerTime)
			return a, nil
		}
	}
	return netip.Addr{}, ErrPoolExhausted
}

// bind commits a to mac for the lease time and stores it before it
// returns; errNoBinding when a is not the client's to have.
func (p *pool) bind(ctx context.Context, mac net.HardwareAddr, a netip.Addr, now time.Time) (dhcp.Lease, error) {
	h, ok := toHW(mac)
	if !ok {
		return dhcp.Lease{}, errNoBinding
	}
	p.mu.Lock()
	if !p.usable(a, h, now) {
		p.mu.Unlock()
		return dhcp.Lease{}, errNoBinding
	}
	var prev netip.Addr
	if old := p.byMAC[h]; old != nil && old.ip != a && old.bound && p.byIP[old.ip] == old {
		prev = old.ip
	}
	b := p.take(a, h, now, true, p.leaseTime)
	l := dhcp.Lease{IP: a, MAC: append(net.HardwareAddr(nil), mac...), Expiry: b.expiry}
	p.mu.Unlock()
	if err := p.store.Store(ctx, l); err != nil {
		p.mu.Lock()
		if p.byIP[a] == b {
			b.bound, b.expiry = false, now.Add(p.offerTime)
		}
		p.mu.Unlock()
		return dhcp.Lease{}, fmt.Errorf("dhcp6: store lease %v for %v: %w", a, mac, err)
	}
	if prev.IsValid() {
		if err := p.store.Remove(ctx, prev); err != nil {
			return l, fmt.Errorf("dhcp6: remove old lease %v for %v: %w", prev, mac, err)
		}
	}
	return l, nil
}

// release frees a if mac holds it.
func (p *pool) release(ctx context.Context, mac net.HardwareAddr, a netip.Addr) error {
	h, ok := toHW(mac)
	if !ok {
		return nil
	}
	p.mu.Lock()
	b := p.byIP[a]
	if b == nil || b.mac != h {
		p.mu.Unlock()
		return nil
	}
	delete(p.byIP, a)
	if p.byMAC[h] == b {
		delete(p.byMAC, h)
	}
	p.mu.Unlock()
	if err := p.store.Remove(ctx, a); err != nil {
		return fmt.Errorf("dhcp6: remove lease %v: %w", a, err)
	}
	return nil
}

// decline marks a as used by someone else for one lease time.
func (p *pool) decline(mac net.HardwareAddr, a netip.Addr, now time.Time) {
	h, ok := toHW(mac)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.byIP[a]
	if b == nil || b.mac != h {
		return
	}
	if p.byMAC[h] == b {
		delete(p.byMAC, h)
	}
	p.byIP[a] = &binding{ip: a, expiry: now.Add(p.leaseTime)}
}
