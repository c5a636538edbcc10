package fetch

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// batchClient returns a client whose transport batches reads, and a func
// reporting the batchConn of the last request (nil when the connection is
// not one).
func batchClient(tlsConf *tls.Config) (*http.Client, func() *batchConn) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConf
	BatchReads(tr)
	var last net.Conn
	c := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		r = r.WithContext(httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { last = i.Conn },
		}))
		return tr.RoundTrip(r)
	})}
	return c, func() *batchConn {
		if b, ok := last.(*batchConn); ok {
			return b
		}
		if tc, ok := last.(*tls.Conn); ok {
			if b, ok := tc.NetConn().(*batchConn); ok {
				return b
			}
		}
		return nil
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func lowat(t *testing.T, c *batchConn) int {
	t.Helper()
	var v int
	var gerr error
	if err := c.raw.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT) }); err != nil || gerr != nil {
		t.Fatalf("SO_RCVLOWAT: %v %v", err, gerr)
	}
	return v
}

// TestBatchReads reads bodies of every framing into buffers larger than
// what is left of them, from a server that pauses mid-body: each read must
// end with the bytes that came, never wait for bytes that will not.
func TestBatchReads(t *testing.T) {
	data := payload(5<<20 + 100)
	pause := func(w http.ResponseWriter, b []byte) {
		w.Write(b[:100<<10])
		w.(http.Flusher).Flush()
		time.Sleep(50 * time.Millisecond)
		w.Write(b[100<<10:])
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		b := data[:n]
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", strconv.Itoa(n))
			pause(w, b)
		case "/chunked": // Flush before the end: no Content-Length
			pause(w, b)
		case "/close": // HTTP/1.0 style: the body ends with the connection
			conn, bw, _ := w.(http.Hijacker).Hijack()
			defer conn.Close()
			bw.WriteString("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
			bw.Write(b[:100<<10])
			bw.Flush()
			time.Sleep(50 * time.Millisecond)
			bw.Write(b[100<<10:])
			bw.Flush()
		}
	})
	plain := httptest.NewServer(handler)
	defer plain.Close()
	secure := httptest.NewTLSServer(handler)
	defer secure.Close()

	for _, tc := range []struct {
		name string
		srv  *httptest.Server
		tls  *tls.Config
		// lowat after the reads: batched (batchMax or less), or left at 1.
		batched bool
	}{
		{"http", plain, nil, true},
		{"https", secure, secure.Client().Transport.(*http.Transport).TLSClientConfig, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, conn := batchClient(tc.tls)
			for _, path := range []string{"/length", "/chunked", "/close"} {
				// Twice each: the second request reuses the connection
				// (except /close).
				for _, n := range []int{len(data), 100<<10 + 3} {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tc.srv.URL+path+"?n="+strconv.Itoa(n), nil)
					resp, err := client.Do(req)
					if err != nil {
						cancel()
						t.Fatalf("GET %s: %v", path, err)
					}
					got := make([]byte, 0, n)
					buf := make([]byte, 4<<20)
					seen := 0 // SO_RCVLOWAT after the first read from the socket
					for {
						k, err := resp.Body.Read(buf)
						got = append(got, buf[:k]...)
						// (Not after the read that ends the body: the transport
						// then reads the next response's head.)
						if c := conn(); c != nil && k > 4096 && len(got) < n && seen == 0 && path != "/close" {
							seen = lowat(t, c)
						}
						if err == io.EOF {
							break
						}
						if err != nil {
							t.Fatalf("GET %s n=%d: read after %d bytes: %v", path, n, len(got), err)
						}
					}
					resp.Body.Close()
					cancel()
					if !bytes.Equal(got, data[:n]) {
						t.Fatalf("GET %s n=%d: got %d bytes, not the body", path, n, len(got))
					}
					if conn() == nil {
						t.Fatalf("GET %s: the connection is not batched", path)
					}
					// Reads of a body are batched on plain HTTP (at most
					// what is left of the body or the chunk); TLS
					// connections are left alone.
					switch {
					case path == "/close", seen == 0 && n < len(data):
					case !tc.batched && seen != 1,
						tc.batched && (seen <= 1 || seen > batchMax),
						tc.batched && path == "/length" && n == len(data) && seen != batchMax:
						t.Errorf("GET %s n=%d: SO_RCVLOWAT %d while reading the body", path, n, seen)
					}
				}
			}
		})
	}
}

// TestBatchConnTLS: a connection whose first write is a TLS handshake
// record is never batched, one that starts with a request line is.
func TestBatchConnTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := payload(1 << 20)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				first := make([]byte, 5) // both first writes are 5 bytes
				if _, err := io.ReadFull(c, first); err == nil {
					c.Write(data)
				}
			}()
		}
	}()
	tr := &http.Transport{}
	BatchReads(tr)
	for _, tc := range []struct {
		first []byte
		want  int
	}{
		{[]byte("GET /"), batchMax},
		{[]byte{tlsHandshake, 3, 1, 0, 0}, 1},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := tr.DialContext(ctx, "tcp", ln.Addr().String())
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(tc.first); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(data))
		n, err := c.Read(buf) // one read, asking for all of it
		if err != nil {
			t.Fatal(err)
		}
		if got := lowat(t, c.(*batchConn)); got != tc.want {
			t.Errorf("first write %q: SO_RCVLOWAT %d after a large read, want %d", tc.first, got, tc.want)
		}
		if _, err := io.ReadFull(c, buf[n:]); err != nil || !bytes.Equal(buf, data) {
			t.Fatalf("reading the rest: %v", err)
		}
		c.Close()
	}
}
