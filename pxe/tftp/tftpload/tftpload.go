// Package tftpload is a TFTP load generator: one process running many
// concurrent read transfers with real TFTP packets (RFC 1350), asking for
// blksize (RFC 2348), tsize (RFC 2349) and windowsize (RFC 7440) options,
// and timing each transfer. Its clients are goroutines, not processes, so
// a storm of a thousand transfers measures the server, not the start-up
// of a thousand client programs.
package tftpload

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

// TFTP opcodes.
const (
	opRRQ   = 1
	opDATA  = 3
	opACK   = 4
	opERROR = 5
	opOACK  = 6
)

// errServer wraps an ERROR packet from the server.
var errServer = errors.New("tftpload: server error")

// Options of one transfer.
type Options struct {
	// BlockSize asks for the blksize option; 0 or 512 asks for none
	// (plain RFC 1350 transfer with 512-byte blocks).
	BlockSize int
	// WindowSize asks for the windowsize option when above 1.
	WindowSize int
	// TSize asks for the transfer size (tsize 0) and checks the received
	// length against the answer.
	TSize bool
	// Timeout is how long to wait for a packet before sending the last
	// packet again the first time; each further wait doubles, up to 8
	// times Timeout (as PXE ROMs back off). Default 1 s.
	Timeout time.Duration
	// Retries is how many times a packet is sent again before the
	// transfer fails. Default 5 (with the defaults: 1+2+4+8+8+8 = 31 s
	// of silence).
	Retries int
	// Want, when set, is the file's expected content: a transfer that
	// delivers anything else fails.
	Want []byte
}

func (o *Options) defaults() {
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.Retries <= 0 {
		o.Retries = 5
	}
}

// Result is the outcome of one transfer.
type Result struct {
	Duration    time.Duration // RRQ sent to last ACK sent
	Bytes       int64
	BlockSize   int // agreed (512 without an OACK)
	WindowSize  int // agreed (1 without the option)
	TSize       int64
	Retransmits int
	Err         error
}

// Get reads file from server (host:port) and returns how it went. The
// received data is checked, not kept.
func Get(ctx context.Context, server, file string, o Options) Result {
	srv, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return Result{Err: fmt.Errorf("tftpload: server %s: %w", server, err)}
	}
	conn, err := net.ListenUDP("udp", nil)
	if err != nil {
		return Result{Err: fmt.Errorf("tftpload: socket: %w", err)}
	}
	defer conn.Close()
	return get(ctx, conn, srv, file, o)
}

func get(ctx context.Context, conn *net.UDPConn, srv *net.UDPAddr, file string, o Options) Result {
	o.defaults()
	t := transfer{conn: conn, srv: srv, o: o, res: Result{BlockSize: 512, WindowSize: 1, TSize: -1}}
	start := time.Now()
	t.res.Err = t.run(ctx, file)
	t.res.Duration = time.Since(start)
	if t.res.Err != nil && t.srv.Port != srv.Port && !errors.Is(t.res.Err, errServer) {
		// Tell the server to stop (RFC 1350: an error ends a transfer).
		p := append([]byte{0, opERROR, 0, 0}, "transfer aborted by client\x00"...)
		_, _ = conn.WriteToUDP(p, t.srv)
	}
	return t.res
}

type transfer struct {
	conn *net.UDPConn
	srv  *net.UDPAddr // becomes the server's transfer port (TID)
	o    Options
	res  Result
	last []byte // packet sent last, sent again on timeout
}

func rrq(file string, o Options) []byte {
	b := binary.BigEndian.AppendUint16(nil, opRRQ)
	b = append(append(b, file...), 0)
	b = append(b, "octet\x00"...)
	opt := func(k string, v int) {
		b = append(append(b, k...), 0)
		b = append(strconv.AppendInt(b, int64(v), 10), 0)
	}
	if o.BlockSize > 0 && o.BlockSize != 512 {
		opt("blksize", o.BlockSize)
	}
	if o.TSize {
		opt("tsize", 0)
	}
	if o.WindowSize > 1 {
		opt("windowsize", o.WindowSize)
	}
	return b
}

func ack(block uint16) []byte {
	return []byte{0, opACK, byte(block >> 8), byte(block)}
}

func (t *transfer) send(p []byte, to *net.UDPAddr) error {
	t.last = p
	if _, err := t.conn.WriteToUDP(p, to); err != nil {
		return fmt.Errorf("tftpload: send: %w", err)
	}
	return nil
}

// recv waits for the next packet from the transfer's server, sending the
// last packet again on each timeout.
func (t *transfer) recv(ctx context.Context, buf []byte, first bool) ([]byte, error) {
	tries := 0
	wait := t.o.Timeout
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := t.conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
			return nil, err
		}
		n, from, err := t.conn.ReadFromUDP(buf)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return nil, fmt.Errorf("tftpload: receive: %w", err)
			}
			tries++
			if tries > t.o.Retries {
				return nil, fmt.Errorf("tftpload: no answer after %d retransmissions", t.o.Retries)
			}
			t.res.Retransmits++
			wait = min(2*wait, 8*t.o.Timeout)
			if _, err := t.conn.WriteToUDP(t.last, t.srv); err != nil {
				return nil, fmt.Errorf("tftpload: send: %w", err)
			}
			continue
		}
		if first {
			if !from.IP.Equal(t.srv.IP) {
				continue
			}
			t.srv = from // the server's transfer identifier
		} else if from.Port != t.srv.Port || !from.IP.Equal(t.srv.IP) {
			continue // another TID: not ours (RFC 1350 would answer an error; ignoring is enough)
		}
		if n < 4 {
			return nil, fmt.Errorf("tftpload: %d-byte packet", n)
		}
		return buf[:n], nil
	}
}

func (t *transfer) run(ctx context.Context, file string) error {
	bs := t.o.BlockSize
	if bs < 512 {
		bs = 512
	}
	buf := make([]byte, 4+max(bs, 512)+64)
	if err := t.send(rrq(file, t.o), t.srv); err != nil {
		return err
	}
	p, err := t.recv(ctx, buf, true)
	if err != nil {
		return err
	}
	switch binary.BigEndian.Uint16(p) {
	case opOACK:
		if err := t.oack(p[2:]); err != nil {
			return err
		}
		if err := t.send(ack(0), t.srv); err != nil {
			return err
		}
		p, err = t.recv(ctx, buf, false)
		if err != nil {
			return err
		}
	case opDATA:
		// The server ignored the options: plain RFC 1350.
		t.res.BlockSize, t.res.WindowSize, t.res.TSize = 512, 1, -1
	}
	return t.data(ctx, buf, p)
}

// oack reads the options the server agreed to.
func (t *transfer) oack(b []byte) error {
	parts := bytes.Split(bytes.TrimSuffix(b, []byte{0}), []byte{0})
	for i := 0; i+1 < len(parts); i += 2 {
		v, err := strconv.ParseInt(string(parts[i+1]), 10, 64)
		if err != nil {
			return fmt.Errorf("tftpload: OACK option %s=%q: %w", parts[i], parts[i+1], err)
		}
		switch string(bytes.ToLower(parts[i])) {
		case "blksize":
			if v < 8 || v > 65464 || (t.o.BlockSize > 0 && int(v) > t.o.BlockSize) {
				return fmt.Errorf("tftpload: OACK blksize %d outside what was asked", v)
			}
			t.res.BlockSize = int(v)
		case "windowsize":
			if v < 1 || v > int64(max(t.o.WindowSize, 1)) {
				return fmt.Errorf("tftpload: OACK windowsize %d outside what was asked", v)
			}
			t.res.WindowSize = int(v)
		case "tsize":
			t.res.TSize = v
		}
	}
	return nil
}

// data receives DATA packets, starting with p, acknowledging each window.
func (t *transfer) data(ctx context.Context, buf, p []byte) error {
	want := uint16(1)
	inWindow := 0
	for {
		switch op := binary.BigEndian.Uint16(p); op {
		case opERROR:
			code := binary.BigEndian.Uint16(p[2:])
			return fmt.Errorf("%w %d: %s", errServer, code, bytes.TrimRight(p[4:], "\x00"))
		case opDATA:
		default:
			return fmt.Errorf("tftpload: unexpected opcode %d", op)
		}
		block := binary.BigEndian.Uint16(p[2:])
		payload := p[4:]
		if block == want {
			if len(payload) > t.res.BlockSize {
				return fmt.Errorf("tftpload: block %d has %d bytes, blksize is %d", block, len(payload), t.res.BlockSize)
			}
			if t.o.Want != nil {
				end := t.res.Bytes + int64(len(payload))
				if end > int64(len(t.o.Want)) || !bytes.Equal(payload, t.o.Want[t.res.Bytes:end]) {
					return fmt.Errorf("tftpload: block %d differs from the expected file", block)
				}
			}
			t.res.Bytes += int64(len(payload))
			inWindow++
			last := len(payload) < t.res.BlockSize
			if last || inWindow >= t.res.WindowSize {
				if err := t.send(ack(block), t.srv); err != nil {
					return err
				}
				inWindow = 0
			}
			if last {
				return t.check()
			}
			want++
		} else {
			// A block sent again (our ACK was lost) or a gap in a window
			// (RFC 7440): acknowledge what arrived in order so the
			// server goes on from there.
			if err := t.send(ack(want-1), t.srv); err != nil {
				return err
			}
			inWindow = 0
		}
		var err error
		p, err = t.recv(ctx, buf, false)
		if err != nil {
			return err
		}
	}
}

func (t *transfer) check() error {
	if t.res.TSize >= 0 && t.o.TSize && t.res.TSize != t.res.Bytes {
		return fmt.Errorf("tftpload: received %d bytes, tsize said %d", t.res.Bytes, t.res.TSize)
	}
	if t.o.Want != nil && int64(len(t.o.Want)) != t.res.Bytes {
		return fmt.Errorf("tftpload: received %d bytes, want %d", t.res.Bytes, len(t.o.Want))
	}
	return nil
}

// Report summarises a storm.
type Report struct {
	Transfers   int
	Failed      int
	Wall        time.Duration // first RRQ to last transfer's end
	P50, P90    time.Duration // per-transfer durations of the successful ones
	P99, Max    time.Duration
	Bytes       int64
	Retransmits int
	FirstErr    error
	BlockSize   int // agreed in the first successful transfer
	WindowSize  int
}

func (r Report) String() string {
	s := fmt.Sprintf("transfers=%d failed=%d wall=%.3fs p50=%.1fms p90=%.1fms p99=%.1fms max=%.1fms bytes=%d retransmits=%d blksize=%d windowsize=%d",
		r.Transfers, r.Failed, r.Wall.Seconds(), ms(r.P50), ms(r.P90), ms(r.P99), ms(r.Max), r.Bytes, r.Retransmits, r.BlockSize, r.WindowSize)
	if r.FirstErr != nil {
		s += " first_error=" + strconv.Quote(r.FirstErr.Error())
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Storm runs n transfers of file at once (at most conc at a time when conc
// is above 0) and reports on them. The sockets are opened before the
// clock starts.
func Storm(ctx context.Context, server, file string, n, conc int, o Options) (Report, error) {
	if conc <= 0 || conc > n {
		conc = n
	}
	srv, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return Report{}, fmt.Errorf("tftpload: server %s: %w", server, err)
	}
	conns := make([]*net.UDPConn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range conns {
		if conns[i], err = net.ListenUDP("udp", nil); err != nil {
			return Report{}, fmt.Errorf("tftpload: socket %d of %d: %w", i+1, n, err)
		}
	}
	results := make([]Result, n)
	start := make(chan struct{})
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var ready sync.WaitGroup
	ready.Add(n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ready.Done()
			<-start
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = get(ctx, conns[i], srv, file, o)
		}()
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	wg.Wait()
	rep := Report{Transfers: n, Wall: time.Since(t0)}
	var ds []time.Duration
	for _, r := range results {
		rep.Retransmits += r.Retransmits
		if r.Err != nil {
			rep.Failed++
			if rep.FirstErr == nil {
				rep.FirstErr = r.Err
			}
			continue
		}
		if rep.BlockSize == 0 {
			rep.BlockSize, rep.WindowSize = r.BlockSize, r.WindowSize
		}
		rep.Bytes += r.Bytes
		ds = append(ds, r.Duration)
	}
	if len(ds) > 0 {
		slices.Sort(ds)
		q := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
		rep.P50, rep.P90, rep.P99, rep.Max = q(0.50), q(0.90), q(0.99), ds[len(ds)-1]
	}
	return rep, nil
}
