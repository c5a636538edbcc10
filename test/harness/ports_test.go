package harness

import (
	"net"
	"strings"
	"testing"
)

// A picked address can be listened on, on loopback IPv4 and IPv6, and a
// host that is not this machine's is an error naming the host.
func TestFreeAddr(t *testing.T) {
	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			if host == "::1" {
				if l, err := net.Listen("tcp", "[::1]:0"); err != nil {
					t.Skipf("no IPv6 loopback: %v", err)
				} else {
					l.Close()
				}
			}
			addr := FreeAddr(t, host)
			h, port, err := net.SplitHostPort(addr)
			if err != nil || h != host || port == "0" {
				t.Fatalf("FreeAddr(%q) = %q (%v), want %s:PORT", host, addr, err, host)
			}
			l, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatalf("listen on the picked address %s: %v", addr, err)
			}
			l.Close()
		})
	}
	if p := FreePort(t); p <= 0 || p > 65535 {
		t.Fatalf("FreePort = %d", p)
	}
	if _, err := PickPort("192.0.2.1"); err == nil || !strings.Contains(err.Error(), "192.0.2.1") {
		t.Fatalf("PickPort on a foreign address: %v, want an error naming it", err)
	}
}
