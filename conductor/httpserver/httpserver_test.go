package httpserver

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// start serves h with c on 127.0.0.1 and returns the address.
func start(t *testing.T, c Config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	c.Log = quiet
	go func() { done <- Serve(ctx, ln, h, c) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

var hello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	fmt.Fprint(w, "hello")
})

// dialFrom opens a connection to addr from the local IP from.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// get sends a GET on c and returns the status (0 when the connection is
// closed without an answer).
func get(t *testing.T, c net.Conn) int {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// TestHeldConnections: one client holding idle keep-alive connections
// and slow requests gets 503 past its cap, and other clients are still
// served; the total cap holds across clients.
func TestHeldConnections(t *testing.T) {
	addr := start(t, Config{MaxConns: 12, MaxConnsPerClient: 8, IdleTimeout: time.Hour, ReadTimeout: time.Hour}, hello)
	var held []net.Conn
	for i := 0; i < 4; i++ { // idle keep-alive connections
		c := dialFrom(t, "127.0.0.1", addr)
		if code := get(t, c); code != 200 {
			t.Fatalf("idle connection %d: first request %d", i, code)
		}
		held = append(held, c)
	}
	for i := 0; i < 4; i++ { // requests whose body never comes
		c := dialFrom(t, "127.0.0.1", addr)
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc")
		held = append(held, c)
	}
	for i := 0; i < 20; i++ {
		if code := get(t, dialFrom(t, "127.0.0.1", addr)); code != http.StatusServiceUnavailable {
			t.Fatalf("connection %d past the per-client cap: %d, want 503", 9+i, code)
		}
	}
	if code := get(t, dialFrom(t, "127.0.0.2", addr)); code != 200 {
		t.Fatalf("another client while one holds its cap: %d, want 200", code)
	}
	// The total cap of 12: 8 held by 127.0.0.1, 1 by 127.0.0.2 (kept
	// alive), 3 more by 127.0.0.3.
	for i := 0; i < 3; i++ {
		c := dialFrom(t, "127.0.0.3", addr)
		if code := get(t, c); code != 200 {
			t.Fatalf("127.0.0.3 connection %d: %d", i, code)
		}
	}
	if code := get(t, dialFrom(t, "127.0.0.4", addr)); code != http.StatusServiceUnavailable {
		t.Fatalf("past the total cap: %d, want 503", code)
	}
	// Closing held connections frees their places.
	for _, c := range held {
		c.Close()
	}
	waitFor(t, "a freed place", func() bool { return get(t, dialFrom(t, "127.0.0.1", addr)) == 200 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// closed reports whether the server closes c (EOF) within 5 s.
func closed(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c)
	return err == nil // EOF, not a timeout
}

// TestTimeouts: idle connections and slow request bodies are closed,
// which frees their places for the client.
func TestTimeouts(t *testing.T) {
	// The timeouts leave a loaded machine a second between the steps that
	// need both connections still open.
	addr := start(t, Config{MaxConnsPerClient: 2, IdleTimeout: time.Second, ReadTimeout: 1500 * time.Millisecond,
		ReadHeaderTimeout: time.Second}, hello)
	idle := dialFrom(t, "127.0.0.1", addr)
	if code := get(t, idle); code != 200 {
		t.Fatal(code)
	}
	slow := dialFrom(t, "127.0.0.1", addr)
	fmt.Fprintf(slow, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab")
	if code := get(t, dialFrom(t, "127.0.0.1", addr)); code != http.StatusServiceUnavailable {
		t.Fatalf("third connection: %d, want 503", code)
	}
	if !closed(idle) {
		t.Error("idle keep-alive connection not closed")
	}
	if !closed(slow) {
		t.Error("slow request body not cut")
	}
	headers := dialFrom(t, "127.0.0.1", addr)
	fmt.Fprintf(headers, "GET / HTTP/1.1\r\n")
	if !closed(headers) {
		t.Error("slow request headers not cut")
	}
	waitFor(t, "places freed", func() bool { return get(t, dialFrom(t, "127.0.0.1", addr)) == 200 })
}

// TestProgress: a streaming route outlives the server's total timeouts as
// long as bytes move, and a stalled transfer is cut.
func TestProgress(t *testing.T) {
	// Bytes move every 50 ms; a transfer is cut after progressCut without
	// one (20 times that, so that a loaded machine's pauses cut nothing).
	const progressCut = time.Second
	const total = 20
	mux := http.NewServeMux()
	mux.Handle("/up", Progress(progressCut, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, n)
	})))
	mux.Handle("/down", Progress(progressCut, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < total; i++ {
			if _, err := w.Write([]byte(strings.Repeat("x", 1000))); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
	})))
	addr := start(t, Config{ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond}, mux)

	// An upload sending a little every 50 ms for 1 s (5 times ReadTimeout).
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < total; i++ {
			_, _ = pw.Write([]byte("0123456789"))
			time.Sleep(50 * time.Millisecond)
		}
		pw.Close()
	}()
	res, err := http.Post("http://"+addr+"/up", "application/octet-stream", pr)
	if err != nil {
		t.Fatalf("steady upload: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != fmt.Sprint(total*10) {
		t.Fatalf("steady upload: %d %s", res.StatusCode, body)
	}
	// A download trickling for 1 s.
	res, err = http.Get("http://" + addr + "/down")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err != nil || n != total*1000 {
		t.Fatalf("steady download: %d bytes, %v", n, err)
	}
	// An upload that stalls: the server cuts it.
	c := dialFrom(t, "127.0.0.1", addr)
	fmt.Fprintf(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
	if !closed(c) {
		t.Error("stalled upload not cut")
	}
}

// TestTLS: with a certificate and key the server speaks HTTPS only.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	pool := writeCert(t, dir)
	addr := start(t, Config{TLSCert: filepath.Join(dir, "cert.pem"), TLSKey: filepath.Join(dir, "key.pem")}, hello)
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	res, err := cl.Get("https://" + addr + "/")
	if err != nil {
		t.Fatalf("https GET: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "hello" || res.TLS == nil {
		t.Fatalf("https GET: %d %q", res.StatusCode, body)
	}
	if res, err := http.Get("http://" + addr + "/"); err == nil && res.StatusCode == 200 {
		t.Error("plain http served on a TLS listener")
	}
	if _, err := (Config{TLSCert: filepath.Join(dir, "cert.pem")}).TLS(); err == nil {
		t.Error("a certificate without a key accepted")
	}
}

// writeCert makes a self-signed certificate for 127.0.0.1 (cert.pem,
// key.pem in dir) and returns a pool trusting it.
func writeCert(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ferric test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return pool
}

func TestClientOf(t *testing.T) {
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 4000}, "10.0.0.5"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:10.0.0.5"), Port: 4000}, "10.0.0.5"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa::1"), Port: 4000}, "2001:db8:1:2::/64"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:bbbb::9"), Port: 4000}, "2001:db8:1:2::/64"},
		{&net.UnixAddr{Name: "@x", Net: "unix"}, "@x"},
	} {
		if got := clientOf(tc.addr); got != tc.want {
			t.Errorf("clientOf(%v) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}
