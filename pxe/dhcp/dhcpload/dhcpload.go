// Package dhcpload drives a full-mode DHCPv4 server the way a relay agent
// full of booting machines does: DISCOVERs from new MACs, a REQUEST for
// every OFFER, and a record of every ACK (address and MAC). Replies come
// back unicast to the relay's port 67, so one UDP socket carries any
// number of clients without raw sockets. Tests use it to load a server
// and then check that every acknowledged lease is kept (after a kill -9,
// a restart) and that no address is handed out twice.
package dhcpload

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Relay sends DHCP traffic as a relay agent (giaddr: the address its
// socket is bound to) to one server.
type Relay struct {
	conn   *net.UDPConn
	server *net.UDPAddr
	giaddr net.IP
	prefix [2]byte

	mu      sync.Mutex
	request bool // answer OFFERs with a REQUEST
	sent    uint32
	acked   map[netip.Addr]string // address -> MAC of every ACK
	offered map[string]netip.Addr // MAC -> address of its last OFFER
	done    chan struct{}
}

// NewRelay reads replies on conn (bound to the relay's IPv4 address, port
// 67) and sends to server (port 67). MACs it makes up start with 52:
// prefix (a locally administered range).
func NewRelay(conn *net.UDPConn, server *net.UDPAddr, prefix byte) *Relay {
	la, _ := conn.LocalAddr().(*net.UDPAddr)
	r := &Relay{conn: conn, server: server, giaddr: la.IP.To4(), prefix: [2]byte{0x52, prefix}, request: true,
		acked: map[netip.Addr]string{}, offered: map[string]netip.Addr{}, done: make(chan struct{})}
	go r.read()
	return r
}

func (r *Relay) read() {
	defer close(r.done)
	buf := make([]byte, 1500)
	for {
		n, _, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		m, err := dhcpv4.FromBytes(buf[:n])
		if err != nil {
			continue
		}
		ip, _ := netip.AddrFromSlice(m.YourIPAddr.To4())
		switch m.MessageType() {
		case dhcpv4.MessageTypeOffer:
			r.mu.Lock()
			r.offered[m.ClientHWAddr.String()] = ip
			request := r.request
			r.mu.Unlock()
			if request {
				if req, err := dhcpv4.NewRequestFromOffer(m, dhcpv4.WithGatewayIP(r.giaddr)); err == nil {
					_, _ = r.conn.WriteToUDP(req.ToBytes(), r.server)
				}
			}
		case dhcpv4.MessageTypeAck:
			r.mu.Lock()
			r.acked[ip] = m.ClientHWAddr.String()
			r.mu.Unlock()
		}
	}
}

// SetRequest sets whether OFFERs are answered with a REQUEST (the
// default) or only recorded (to ask which address a MAC would get).
func (r *Relay) SetRequest(on bool) {
	r.mu.Lock()
	r.request = on
	r.mu.Unlock()
}

// MAC is the i-th MAC the relay makes up.
func (r *Relay) MAC(i uint32) net.HardwareAddr {
	return net.HardwareAddr{r.prefix[0], r.prefix[1], byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}

// Discover sends a DISCOVER from mac.
func (r *Relay) Discover(mac net.HardwareAddr) error {
	d, err := dhcpv4.NewDiscovery(mac, dhcpv4.WithGatewayIP(r.giaddr))
	if err != nil {
		return fmt.Errorf("dhcpload: %w", err)
	}
	r.mu.Lock()
	r.sent++
	xid := r.sent
	r.mu.Unlock()
	binary.BigEndian.PutUint32(d.TransactionID[:], xid)
	if _, err := r.conn.WriteToUDP(d.ToBytes(), r.server); err != nil {
		return fmt.Errorf("dhcpload: send: %w", err)
	}
	return nil
}

// Run sends DISCOVERs from new MACs (the relay's MAC(0), MAC(1), ...) at
// about rate per second until until (called between bursts with the
// number of ACKs so far) returns true, ctx ends (an error) or the relay
// has sent limit.
func (r *Relay) Run(ctx context.Context, rate int, limit uint32, until func(acked int) bool) error {
	const tick = 10 * time.Millisecond
	perTick := max(1, rate/int(time.Second/tick))
	t := time.NewTicker(tick)
	defer t.Stop()
	for next := uint32(0); ; {
		if until(r.AckCount()) {
			return nil
		}
		for range perTick {
			if next >= limit {
				return nil
			}
			if err := r.Discover(r.MAC(next)); err != nil {
				return err
			}
			next++
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dhcpload: %d ACKs of %d DISCOVERs: %w", r.AckCount(), next, ctx.Err())
		case <-t.C:
		}
	}
}

// AckCount is the number of distinct addresses ACKed so far.
func (r *Relay) AckCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.acked)
}

// Acked returns a copy of the ACKed leases: address -> MAC.
func (r *Relay) Acked() map[netip.Addr]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[netip.Addr]string, len(r.acked))
	for k, v := range r.acked {
		out[k] = v
	}
	return out
}

// Offered returns the address last offered to mac.
func (r *Relay) Offered(mac string) (netip.Addr, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ip, ok := r.offered[mac]
	return ip, ok
}

// OfferCount is how many MACs got an OFFER.
func (r *Relay) OfferCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.offered)
}

// Sent is how many DISCOVERs the relay sent.
func (r *Relay) Sent() uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sent
}

// Close closes the socket and waits for the reader.
func (r *Relay) Close() {
	r.conn.Close()
	<-r.done
}
