package harness

import (
	"fmt"
	"net"
	"strconv"
	"testing"
)

// PickPort returns a TCP port on host that was free a moment ago: the
// kernel's choice for a listener on port 0, closed again, for a process
// that must be told its port before it listens (a conductor restarted on
// the same address, an agent, keystone). Another process may take the
// port in between; the suites accept that small race.
func PickPort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("pick a free port on %s: %w", host, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreePort is PickPort on 127.0.0.1 for a test: no port fails the test.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := PickPort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// FreeAddr is PickPort for a test as host:port (host may be an IPv6
// address); no port fails the test.
func FreeAddr(t testing.TB, host string) string {
	t.Helper()
	p, err := PickPort(host)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(host, strconv.Itoa(p))
}
