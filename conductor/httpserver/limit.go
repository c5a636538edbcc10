package httpserver

import (
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// rejectBody is the whole answer to a connection past a cap.
const rejectBody = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n" +
	"Content-Length: 33\r\nRetry-After: 1\r\nConnection: close\r\n\r\nToo many connections; try again.\n"

// maxRejecting bounds the connections being answered 503 at once; past
// it they are closed at once.
const maxRejecting = 64

// Limit returns a listener that holds at most max connections, and at
// most perClient from one IP address. A connection past a cap is answered
// with a plain HTTP 503 (when answer is set: not under TLS, whose client
// expects a handshake) and closed; Accept goes on with the next one.
// max or perClient ≤ 0 leaves that cap off.
func Limit(ln net.Listener, max, perClient int, answer bool, log *slog.Logger) net.Listener {
	return &limitListener{Listener: ln, max: max, perClient: perClient, answer: answer, log: log,
		per: map[string]int{}, rejecting: make(chan struct{}, maxRejecting)}
}

type limitListener struct {
	net.Listener
	max, perClient int
	answer         bool
	log            *slog.Logger

	mu        sync.Mutex
	total     int
	per       map[string]int
	rejecting chan struct{}
	lastWarn  time.Time
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host := clientOf(c.RemoteAddr())
		l.mu.Lock()
		if l.max > 0 && l.total >= l.max || l.perClient > 0 && l.per[host] >= l.perClient {
			warn := time.Since(l.lastWarn) > 10*time.Second
			if warn {
				l.lastWarn = time.Now()
			}
			total, mine := l.total, l.per[host]
			l.mu.Unlock()
			if warn {
				l.log.Warn("httpserver: connection refused past a cap", "client", host, "client_conns", mine,
					"conns", total, "max_conns", l.max, "max_conns_per_client", l.perClient)
			}
			l.reject(c)
			continue
		}
		l.total++
		l.per[host]++
		l.mu.Unlock()
		return &limitedConn{Conn: c, release: func() { l.release(host) }}, nil
	}
}

func (l *limitListener) release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.per[host]--; l.per[host] <= 0 {
		delete(l.per, host)
	}
}

// reject answers c with a 503 and closes it, in the background and a
// bounded number at a time.
func (l *limitListener) reject(c net.Conn) {
	if !l.answer {
		c.Close()
		return
	}
	select {
	case l.rejecting <- struct{}{}:
	default:
		c.Close()
		return
	}
	go func() {
		defer func() { <-l.rejecting }()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err := io.WriteString(c, rejectBody); err != nil {
			return
		}
		// Half-close and drain what the client sent, so that closing
		// does not reset the connection before the client reads the 503.
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}

// clientOf names the client of a remote address for the per-client cap:
// its IPv4 address, or the /64 of an IPv6 address (one host holds a
// whole /64, as the authenticator counts sources too).
func clientOf(a net.Addr) string {
	var ip net.IP
	if ta, ok := a.(*net.TCPAddr); ok {
		ip = ta.IP
	} else if host, _, err := net.SplitHostPort(a.String()); err == nil {
		ip = net.ParseIP(host)
	}
	switch {
	case ip == nil:
		return a.String()
	case ip.To4() != nil:
		return ip.String()
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// ReadFrom keeps the connection's own ReadFrom (sendfile) reachable.
func (c *limitedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite half-closes the connection when it can.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
