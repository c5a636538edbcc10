// Package httpserver is the one place ferric's HTTP listeners (the Ironic
// API with its boot files and image store, the ironic-inspector API) are
// built: read, write and idle timeouts on every server, a cap on
// connections in total and per client address (past it a connection is
// answered 503 and closed), progress deadlines for streaming transfers,
// and TLS from a certificate and key.
package httpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"
)

// Defaults of Config.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 120 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxConnsPerClient = 128
	// DefaultMaxConns is the cap when the file descriptor limit is high;
	// under a low limit the cap is half of it (see Config.maxConns).
	DefaultMaxConns = 4096
)

// Config bounds a server's connections and sets its TLS. Zero values
// take the defaults; a negative timeout or cap turns it off.
type Config struct {
	// ReadHeaderTimeout bounds reading a request's headers, ReadTimeout
	// the whole request (headers and body), WriteTimeout the answer, and
	// IdleTimeout a keep-alive connection waiting for its next request.
	// Streaming routes wrapped in Progress replace the read and write
	// bounds with a progress deadline.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxConns caps the open connections of the listener, and
	// MaxConnsPerClient those from one client IP address.
	MaxConns, MaxConnsPerClient int
	// TLSCert and TLSKey are PEM files: when set, the server speaks HTTPS.
	TLSCert, TLSKey string
	Log             *slog.Logger
}

func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// Server returns an http.Server with the configured timeouts serving h.
func (c Config) Server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: orDefault(c.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       orDefault(c.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      orDefault(c.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       orDefault(c.IdleTimeout, DefaultIdleTimeout),
		// A request's headers stay small.
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(c.log().Handler(), slog.LevelDebug),
	}
}

func (c Config) log() *slog.Logger {
	if c.Log == nil {
		return slog.Default()
	}
	return c.Log
}

// TLS returns the server TLS configuration (nil without a certificate).
func (c Config) TLS() (*tls.Config, error) {
	if c.TLSCert == "" && c.TLSKey == "" {
		return nil, nil
	}
	if c.TLSCert == "" || c.TLSKey == "" {
		return nil, errors.New("httpserver: TLS needs both a certificate and a key (--tls-cert, --tls-key)")
	}
	pair, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("httpserver: TLS: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair},
		NextProtos: []string{"http/1.1"}}, nil
}

// Scheme is "https" with TLS, "http" without.
func (c Config) Scheme() string {
	if c.TLSCert != "" {
		return "https"
	}
	return "http"
}

// maxConns is the total cap: MaxConns, or by default the smaller of
// DefaultMaxConns and half the process's file descriptor limit (the rest
// is for the store, images, BMC and agent connections).
func (c Config) maxConns() int {
	if c.MaxConns != 0 {
		return c.MaxConns
	}
	n := DefaultMaxConns
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Cur > 0 && rl.Cur/2 < uint64(n) {
		n = max(int(rl.Cur/2), 16)
	}
	return n
}

// Listener wraps ln with the connection caps and, when configured, TLS.
func (c Config) Listener(ln net.Listener) (net.Listener, error) {
	tc, err := c.TLS()
	if err != nil {
		return nil, err
	}
	per := c.MaxConnsPerClient
	if per == 0 {
		per = DefaultMaxConnsPerClient
	}
	ln = Limit(ln, c.maxConns(), per, tc == nil, c.log())
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	return ln, nil
}

// Serve serves h on ln (wrapped by Listener) until ctx ends, then shuts
// down, giving requests in flight 10 s.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, c Config) error {
	wl, err := c.Listener(ln)
	if err != nil {
		ln.Close()
		return err
	}
	hs := c.Server(h)
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	err = hs.Serve(wl)
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	return err
}
