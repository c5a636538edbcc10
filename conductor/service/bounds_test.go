package service

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

	"github.com/ferric-metal/ferric/conductor/httpserver"
)

// runConductor starts the whole conductor (service.Run) on loopback and
// returns the API and inspector addresses.
func runConductor(t *testing.T, mut func(*Config)) (api, inspector string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	inspector = ln.Addr().String()
	ln.Close()
	ready := make(chan string, 1)
	cfg := Config{APIListen: "127.0.0.1:0", StateDir: t.TempDir(), Hostname: "bounds", InspectorListen: inspector,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Ready: func(a string) { ready <- a }}
	if mut != nil {
		mut(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case api = <-ready:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("conductor not ready")
	}
	return api, inspector
}

func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	var c net.Conn
	var err error
	for i := 0; i < 50; i++ { // the inspector may still be starting
		if c, err = d.Dial("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func get(t *testing.T, c net.Conn, path string) int {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// TestConductorHeldConnections: on both the API and the inspector
// listener, a client holding idle and slow connections up to its cap gets
// 503 for more, while another client is served.
func TestConductorHeldConnections(t *testing.T) {
	api, insp := runConductor(t, func(c *Config) {
		c.HTTP = httpserver.Config{MaxConnsPerClient: 6, IdleTimeout: time.Hour, ReadTimeout: time.Hour}
	})
	for name, addr := range map[string]string{"api": api, "inspector": insp} {
		t.Run(name, func(t *testing.T) {
			for i := 0; i < 3; i++ {
				if code := get(t, dialFrom(t, "127.0.0.1", addr), "/"); code != 200 {
					t.Fatalf("idle connection %d: %d", i, code)
				}
			}
			for i := 0; i < 3; i++ {
				c := dialFrom(t, "127.0.0.1", addr)
				fmt.Fprintf(c, "POST /v1/nodes HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{")
			}
			for i := 0; i < 50; i++ {
				if code := get(t, dialFrom(t, "127.0.0.1", addr), "/"); code != http.StatusServiceUnavailable {
					t.Fatalf("connection %d from the holding client: %d, want 503", 7+i, code)
				}
			}
			if code := get(t, dialFrom(t, "127.0.0.2", addr), "/"); code != 200 {
				t.Fatalf("another client: %d, want 200", code)
			}
		})
	}
}

// TestConductorTLS: with --tls-cert/--tls-key the API (and the image
// store on it) and the inspector API speak HTTPS, and the public URL
// given to machines is https.
func TestConductorTLS(t *testing.T) {
	dir := t.TempDir()
	pool := writeCert(t, dir)
	api, insp := runConductor(t, func(c *Config) {
		c.HTTP = httpserver.Config{TLSCert: filepath.Join(dir, "cert.pem"), TLSKey: filepath.Join(dir, "key.pem")}
	})
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	for _, u := range []string{"https://" + api + "/v1", "https://" + api + "/images/v2/images", "https://" + insp + "/v1"} {
		var res *http.Response
		var err error
		for i := 0; i < 50; i++ {
			if res, err = cl.Get(u); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || res.TLS == nil {
			t.Errorf("GET %s = %d (TLS %v): %s", u, res.StatusCode, res.TLS != nil, body)
		}
		if u == "https://"+api+"/v1" && !bytesContains(body, "https://"+api+"/v1/") {
			t.Errorf("links of /v1 over TLS are not https: %s", body)
		}
	}
	if res, err := http.Get("http://" + api + "/v1"); err == nil && res.StatusCode == 200 {
		t.Error("plain http served by the TLS API")
	}
}

func bytesContains(b []byte, s string) bool { return strings.Contains(string(b), s) }

// writeCert makes a self-signed certificate for 127.0.0.1 in dir
// (cert.pem, key.pem) and returns a pool trusting it.
func writeCert(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ferric test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
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
