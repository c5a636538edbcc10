package manager

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/console"
	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/store"
)

// shellConsole is a driver.SerialConsole whose attach command is a shell
// (the real ipmitool-socat against ipmi_sim is in test/e2e).
type shellConsole struct{}

func (shellConsole) ValidateConsole(*driver.Node) error    { return nil }
func (shellConsole) ConsolePort(*driver.Node) (int, error) { return 0, nil }
func (shellConsole) ConsoleCommands(n *driver.Node) (driver.Command, driver.Command, error) {
	return driver.Command{Path: "/bin/sh", Args: []string{"-c", "echo console of " + n.UUID + "; exec cat"}}, driver.Command{}, nil
}

func freeConsoleRange(t *testing.T) console.Config {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return console.Config{PortMin: p, PortMax: p}
}

func dialConsole(t *testing.T, port int, want string) {
	t.Helper()
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("console port %d: %v", port, err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	buf := make([]byte, 256)
	for !strings.Contains(b.String(), want) {
		n, err := c.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			t.Fatalf("console port %d: read %q, then %v; want %q", port, b.String(), err, want)
		}
	}
}

// A conductor runs the enabled consoles of the nodes it serves: at start
// (restored), not any more once another conductor takes the node (which
// then runs it), nor once the node is gone; a console that cannot start
// on the new conductor is disabled with Ironic's reason.
func TestConsoleReconcile(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	reg := fakeDrivers("console", "shell", shellConsole{})
	now := time.Now()
	putConductor(t, st, "c1", "", now)
	m1 := New(Config{Store: st, Hostname: "c1", Drivers: reg, Console: freeConsoleRange(t)})
	defer m1.consoles.Close()
	m2 := New(Config{Store: st, Hostname: "c2", Drivers: reg, Console: freeConsoleRange(t)})
	defer m2.consoles.Close()
	m3 := New(Config{Store: st, Hostname: "c3", Drivers: reg}) // no port range
	defer m3.consoles.Close()

	// Nodes that c2 will own once it is alive, and one that c3 will.
	var onC2 []string
	var onC3 string
	var ring2, ring3 *ring
	putConductor(t, st, "c2", "", now)
	ring2 = m1.buildRing()
	putConductor(t, st, "c2", "", now.Add(-time.Hour))
	putConductor(t, st, "c3", "", now)
	ring3 = m1.buildRing()
	putConductor(t, st, "c3", "", now.Add(-time.Hour))
	for i := 0; len(onC2) < 2 || onC3 == ""; i++ {
		u := fmt.Sprintf("00000000-0000-0000-0000-%012d", i)
		if len(onC2) < 2 && ring2.owner("", u) == "c2" {
			onC2 = append(onC2, u)
		} else if onC3 == "" && ring3.owner("", u) == "c3" && ring2.owner("", u) == "c1" {
			onC3 = u
		}
	}
	for _, u := range onC2 {
		n := fakeNode(u)
		n.Interfaces["console"] = "shell"
		n.ConsoleEnabled = true
		if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
			t.Fatal(err)
		}
	}
	// c1 alone: it restores both (only one port: the first wins, the
	// other fails and is disabled, as at Ironic's start).
	m1.reconcileConsoles(ctx, true)
	if got := m1.consoles.Nodes(); len(got) != 1 {
		t.Fatalf("c1 runs consoles %v, want one (a one-port range)", got)
	}
	running := m1.consoles.Nodes()[0]
	port, _ := m1.consoles.Port(running)
	dialConsole(t, port, "console of "+running)
	n, _ := st.Node(running)
	if got, _ := intOf(n.DriverInternalInfo[allocatedConsolePort]); got != port {
		t.Errorf("allocated port recorded %v, want %d", n.DriverInternalInfo[allocatedConsolePort], port)
	}
	disabled := 0
	for _, u := range onC2 {
		n, _ := st.Node(u)
		if u == running {
			continue
		}
		if n.ConsoleEnabled || !strings.Contains(deref(n.LastError), "while starting the conductor, so changing the console_enabled status to False") {
			t.Errorf("node %s without a port: console_enabled %v, last_error %q", u, n.ConsoleEnabled, deref(n.LastError))
		}
		disabled++
	}
	if disabled != 1 {
		t.Fatalf("%d consoles disabled, want 1", disabled)
	}

	// c2 comes alive: c1 stops the console, c2 starts it on its own port.
	putConductor(t, st, "c2", "", time.Now())
	m1.ringCache, m2.ringCache = nil, nil
	m1.reconcileConsoles(ctx, false)
	if got := m1.consoles.Nodes(); len(got) != 0 {
		t.Errorf("c1 still runs %v after c2 took the node", got)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
		c.Close()
		t.Errorf("c1's console port %d still accepts", port)
	}
	m2.reconcileConsoles(ctx, false)
	port2, ok := m2.consoles.Port(running)
	if !ok {
		t.Fatalf("c2 does not run the console of %s it took over", running)
	}
	dialConsole(t, port2, "console of "+running)

	// The node is deleted: c2 stops its console.
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.DeleteNode(running) }); err != nil {
		t.Fatal(err)
	}
	m2.reconcileConsoles(ctx, false)
	if got := m2.consoles.Nodes(); len(got) != 0 {
		t.Errorf("c2 still runs %v after the node was deleted", got)
	}

	// c3 (no port range) takes a node whose console is enabled: it cannot
	// start it and disables it with Ironic's takeover message.
	n3 := fakeNode(onC3)
	n3.Interfaces["console"] = "shell"
	n3.ConsoleEnabled = true
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutNode(n3) }); err != nil {
		t.Fatal(err)
	}
	putConductor(t, st, "c3", "", time.Now())
	m3.reconcileConsoles(ctx, false)
	n, _ = st.Node(onC3)
	if n.ConsoleEnabled || !strings.HasPrefix(deref(n.LastError), "Failed to start console while taking over the node "+onC3) {
		t.Errorf("takeover without a port: console_enabled %v, last_error %q", n.ConsoleEnabled, deref(n.LastError))
	}
}
