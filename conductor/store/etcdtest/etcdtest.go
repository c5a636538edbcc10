// Package etcdtest runs a real etcd server (go.etcd.io/etcd/server/v3's
// embed) inside a test process, on 127.0.0.1 ports the kernel picks, with
// its data in a temporary directory. Only tests import it.
package etcdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// Server is a running etcd.
type Server struct {
	Etcd     *embed.Etcd
	Endpoint string // client URL
}

// freeURL returns an http URL on a free loopback port.
func freeURL() (url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return url.URL{}, err
	}
	addr := l.Addr().String()
	l.Close()
	return url.URL{Scheme: "http", Host: addr}, nil
}

// StartServer starts an etcd server keeping its data in dir; Close stops
// it.
func StartServer(dir string) (*Server, error) { return startServer(dir, nil) }

// startServer starts a server; with tlsInfo its clients speak TLS (https
// URLs) and must show a certificate of its CA.
func startServer(dir string, tlsInfo *transport.TLSInfo) (*Server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 { // a port taken between freeURL and the listen: retry
		cfg := embed.NewConfig()
		cfg.Name = "ferric-test"
		cfg.Dir = dir
		cu, err := freeURL()
		if err != nil {
			return nil, err
		}
		pu, err := freeURL()
		if err != nil {
			return nil, err
		}
		if tlsInfo != nil {
			cu.Scheme = "https"
			cfg.ClientTLSInfo = *tlsInfo
		}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
		cfg.LogLevel = "error"
		cfg.LogOutputs = []string{filepath.Join(dir, "etcd.log")} // closing logs harmless errors
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			lastErr = err
			continue
		}
		select {
		case <-e.Server.ReadyNotify():
		case <-time.After(30 * time.Second):
			e.Close()
			return nil, fmt.Errorf("etcdtest: server not ready after 30 s")
		}
		return &Server{Etcd: e, Endpoint: cu.String()}, nil
	}
	return nil, fmt.Errorf("etcdtest: %w", lastErr)
}

// Close stops the server.
func (s *Server) Close() { s.Etcd.Close() }

// Start starts an etcd server that stops when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := StartServer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Client returns a client of the server, closed when the test ends.
func (s *Server) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.Endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(fmt.Errorf("etcdtest: %w", err))
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Certs are the PEM files of a TLS test server: its CA, and a client
// certificate and key that CA signed.
type Certs struct {
	CA, ClientCert, ClientKey string
}

// StartTLS starts a server that speaks TLS and requires client
// certificates, with certificates made for the test in a temporary
// directory.
func StartTLS(t testing.TB) (*Server, Certs) {
	t.Helper()
	dir := t.TempDir()
	certs, server, err := makeCerts(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := startServer(filepath.Join(dir, "data"), &transport.TLSInfo{CertFile: server[0], KeyFile: server[1],
		TrustedCAFile: certs.CA, ClientCertAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, certs
}

// makeCerts writes a CA, a server certificate for 127.0.0.1 and a client
// certificate into dir.
func makeCerts(dir string) (Certs, [2]string, error) {
	newKey := func() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }
	write := func(name, typ string, der []byte) (string, error) {
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
	}
	caKey, err := newKey()
	if err != nil {
		return Certs{}, [2]string{}, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ferric test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return Certs{}, [2]string{}, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return Certs{}, [2]string{}, err
	}
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage) (string, string, error) {
		key, err := newKey()
		if err != nil {
			return "", "", err
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return "", "", err
		}
		kder, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return "", "", err
		}
		c, err := write(cn+".pem", "CERTIFICATE", der)
		if err != nil {
			return "", "", err
		}
		k, err := write(cn+"-key.pem", "EC PRIVATE KEY", kder)
		return c, k, err
	}
	caPath, err := write("ca.pem", "CERTIFICATE", caDER)
	if err != nil {
		return Certs{}, [2]string{}, err
	}
	sc, sk, err := leaf(2, "server", x509.ExtKeyUsageServerAuth)
	if err != nil {
		return Certs{}, [2]string{}, err
	}
	cc, ck, err := leaf(3, "client", x509.ExtKeyUsageClientAuth)
	if err != nil {
		return Certs{}, [2]string{}, err
	}
	return Certs{CA: caPath, ClientCert: cc, ClientKey: ck}, [2]string{sc, sk}, nil
}
