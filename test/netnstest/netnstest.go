// Package netnstest creates throw-away network namespaces joined by veth
// pairs for tests that need real interfaces (DHCP broadcasts,
// SO_BINDTODEVICE, raw sockets). Everything it creates is removed in
// t.Cleanup, also when the test fails.
package netnstest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Skip skips t unless the process is root and the ip tool is installed.
func Skip(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces (run the tests as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip tool (Debian package iproute2)")
	}
}

var seq atomic.Uint32

// NS is a named network namespace.
type NS struct {
	Name string
}

// Unique returns a short name that is unique to this process, for
// namespaces and interfaces (at most 15 bytes).
func Unique(prefix string) string {
	return fmt.Sprintf("%s%d%d", prefix, os.Getpid()%10000, seq.Add(1))
}

// IP runs the ip tool with args and fails t on error.
func IP(t testing.TB, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// New creates a namespace with lo up and deletes it when the test ends.
func New(t testing.TB, prefix string) *NS {
	t.Helper()
	ns := &NS{Name: Unique(prefix)}
	IP(t, "netns", "add", ns.Name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns.Name, err, out)
		}
	})
	IP(t, "-n", ns.Name, "link", "set", "lo", "up")
	return ns
}

// Pair creates two namespaces joined by a veth pair named "veth0" in both,
// with addresses aCIDR and bCIDR (empty: none), all links up.
func Pair(t testing.TB, aCIDR, bCIDR string) (a, b *NS) {
	t.Helper()
	a, b = New(t, "pxa"), New(t, "pxb")
	tmpA, tmpB := Unique("pva"), Unique("pvb")
	IP(t, "link", "add", tmpA, "type", "veth", "peer", "name", tmpB)
	t.Cleanup(func() {
		// Only left behind when a step below failed; ignore "not found".
		_ = exec.Command("ip", "link", "del", tmpA).Run()
	})
	IP(t, "link", "set", tmpA, "netns", a.Name)
	IP(t, "link", "set", tmpB, "netns", b.Name)
	IP(t, "-n", a.Name, "link", "set", tmpA, "name", "veth0")
	IP(t, "-n", b.Name, "link", "set", tmpB, "name", "veth0")
	for _, x := range []struct {
		ns   *NS
		cidr string
	}{{a, aCIDR}, {b, bCIDR}} {
		if x.cidr != "" {
			IP(t, "-n", x.ns.Name, "addr", "add", x.cidr, "dev", "veth0")
		}
		IP(t, "-n", x.ns.Name, "link", "set", "veth0", "up")
	}
	return a, b
}

// Do runs fn on an OS thread switched into the namespace. Sockets that fn
// opens stay in the namespace and may be used from any goroutine after Do
// returns. fn must not start goroutines that need the namespace.
func (ns *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + ns.Name)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns.Name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: the runtime discards it when this
			// goroutine exits, so no other goroutine runs in the namespace.
			errc <- fmt.Errorf("setns back: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// HostPair creates a veth pair with one end in this process's namespace
// (returned by name, address hostCIDR) and the other, "veth0", in a new
// namespace (address peerCIDR, empty: none), links up. Servers that start
// goroutines of their own (a whole conductor) listen on the host end.
func HostPair(t testing.TB, hostCIDR, peerCIDR string) (hostIf string, peer *NS) {
	t.Helper()
	peer = New(t, "pxh")
	hostIf, tmp := Unique("pvh"), Unique("pvp")
	IP(t, "link", "add", hostIf, "type", "veth", "peer", "name", tmp)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", hostIf).Run() })
	IP(t, "link", "set", tmp, "netns", peer.Name)
	IP(t, "-n", peer.Name, "link", "set", tmp, "name", "veth0")
	if hostCIDR != "" {
		IP(t, "addr", "add", hostCIDR, "dev", hostIf)
	}
	IP(t, "link", "set", hostIf, "up")
	if peerCIDR != "" {
		IP(t, "-n", peer.Name, "addr", "add", peerCIDR, "dev", "veth0")
	}
	IP(t, "-n", peer.Name, "link", "set", "veth0", "up")
	return hostIf, peer
}
