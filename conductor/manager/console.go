package manager

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/console"
	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/store"
)

// Serial consoles, as Ironic's console interfaces: PUT states/console
// validates, takes the node's lock and starts or stops the console on a
// worker, which records console_enabled (or last_error). The console of a
// driver.SerialConsole runs on this conductor (conductor/console) while
// the node is this conductor's on the hash ring and console_enabled is
// true: reconcileConsoles, at start and on each heartbeat, starts the ones
// missing (a conductor restart, a node taken over from a dead conductor)
// and stops those of nodes deleted, disabled or now served by another
// conductor. A console that cannot be started there is disabled with the
// reason in last_error, as Ironic's conductor does at start.

// allocatedConsolePort is the driver_internal_info key of a port taken
// from the range (Ironic's allocated_ipmi_terminal_port).
const allocatedConsolePort = "allocated_ipmi_terminal_port"

// consoleMissingPort is Ironic's answer when neither the node nor the
// conductor gives a console port.
const consoleMissingPort = "Either missing 'ipmi_terminal_port' parameter in node's driver_info or [console]port_range is not configured"

// Consoles is the server of this conductor's serial consoles.
func (m *Manager) Consoles() *console.Server { return m.consoles }

// serialConsole returns the node's console interface when it is a
// driver.SerialConsole, after validating the node's driver_info for it.
func (m *Manager) serialConsole(n *store.Node) (driver.SerialConsole, bool, error) {
	sc, ok := capability[driver.SerialConsole](m, n, "console")
	if !ok {
		return nil, false, nil
	}
	dn := driverNode(n)
	if err := sc.ValidateConsole(dn); err != nil {
		return nil, true, userErr(ErrInvalidInput, "%v", err)
	}
	if p, _ := sc.ConsolePort(dn); p == 0 && !m.consoles.HasRange() {
		return nil, true, userErr(ErrInvalidInput, "%s", consoleMissingPort)
	}
	return sc, true, nil
}

// SetConsole enables or disables the node's console (PUT
// /v1/nodes/{node}/states/console). Consoles that are not serial (fake)
// only record the flag.
func (m *Manager) SetConsole(ctx context.Context, uuid string, enabled bool) error {
	n, err := m.st.Node(uuid)
	if err != nil {
		return userErr(ErrNotFound, "Node %s could not be found.", uuid)
	}
	sc, serial, err := m.serialConsole(n)
	if err != nil {
		return err
	}
	if !serial {
		return m.update(ctx, uuid, func(n *store.Node) error {
			if n.ConsoleEnabled == enabled {
				return errUnchanged
			}
			n.ConsoleEnabled, n.LastError = enabled, nil
			return nil
		})
	}
	if n.ConsoleEnabled == enabled {
		m.log.Info("manager: no console action: the console is already in that state", "node", uuid, "enabled", enabled)
		return nil
	}
	if err := m.slot(); err != nil {
		return err
	}
	if err := m.acquire(ctx, uuid, func(n *store.Node) error { n.LastError = nil; return nil }); err != nil {
		m.release()
		return err
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer m.release()
		ctx := m.ctx()
		defer m.unlock(ctx, uuid)
		op := "enabling"
		var err error
		if enabled {
			err = m.startConsole(ctx, uuid, sc)
		} else {
			op = "disabling"
			m.stopConsole(ctx, uuid)
		}
		if err != nil && ctx.Err() == nil {
			msg := fmt.Sprintf("Error %s the console on node %s. Reason: %v", op, uuid, err)
			m.log.Error("manager: "+msg, "node", uuid)
			if uerr := m.update(ctx, uuid, func(n *store.Node) error { n.LastError = &msg; return nil }); uerr != nil {
				m.log.Error("manager: record console failure", "node", uuid, "err", uerr)
			}
			return
		}
		if err != nil {
			return
		}
		if uerr := m.update(ctx, uuid, func(n *store.Node) error {
			n.ConsoleEnabled, n.LastError = enabled, nil
			return nil
		}); uerr != nil {
			m.log.Error("manager: record console state", "node", uuid, "err", uerr)
		}
	}()
	return nil
}

// startConsole starts the node's console here and records a port taken
// from the range in driver_internal_info.
func (m *Manager) startConsole(ctx context.Context, uuid string, sc driver.SerialConsole) error {
	n, err := m.st.Node(uuid)
	if err != nil {
		return err
	}
	dn := driverNode(n)
	port, err := sc.ConsolePort(dn)
	if err != nil {
		return err
	}
	attach, detach, err := sc.ConsoleCommands(dn)
	if err != nil {
		return err
	}
	got, err := m.consoles.Start(ctx, uuid, port, console.Command(attach), console.Command(detach))
	if err != nil {
		return err
	}
	return m.update(ctx, uuid, func(n *store.Node) error {
		if port != 0 {
			if _, ok := n.DriverInternalInfo[allocatedConsolePort]; !ok {
				return errUnchanged
			}
			delete(n.DriverInternalInfo, allocatedConsolePort)
			return nil
		}
		if n.DriverInternalInfo == nil {
			n.DriverInternalInfo = map[string]any{}
		}
		n.DriverInternalInfo[allocatedConsolePort] = got
		return nil
	})
}

// stopConsole stops the node's console here (if it runs) and forgets a
// port taken from the range.
func (m *Manager) stopConsole(ctx context.Context, uuid string) {
	m.consoles.Stop(ctx, uuid)
	err := m.update(ctx, uuid, func(n *store.Node) error {
		if _, ok := n.DriverInternalInfo[allocatedConsolePort]; !ok {
			return errUnchanged
		}
		delete(n.DriverInternalInfo, allocatedConsolePort)
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		m.log.Error("manager: release console port", "node", uuid, "err", err)
	}
}

// NodeDeleted stops the console of a node just deleted (Ironic stops it
// on delete).
func (m *Manager) NodeDeleted(ctx context.Context, uuid string) {
	m.consoles.Stop(ctx, uuid)
}

// ConsoleInfo answers GET /v1/nodes/{node}/states/console.
func (m *Manager) ConsoleInfo(ctx context.Context, uuid string) (map[string]any, error) {
	n, err := m.st.Node(uuid)
	if err != nil {
		return nil, userErr(ErrNotFound, "Node %s could not be found.", uuid)
	}
	if !n.ConsoleEnabled {
		return map[string]any{"console_enabled": false, "console_info": nil}, nil
	}
	sc, serial, err := m.serialConsole(n)
	if err != nil {
		return nil, err
	}
	if !serial {
		return map[string]any{"console_enabled": true, "console_info": map[string]any{}}, nil
	}
	port, ok := m.consoles.Port(uuid)
	if !ok {
		port, _ = sc.ConsolePort(driverNode(n))
		if port == 0 {
			port, _ = intOf(n.DriverInternalInfo[allocatedConsolePort])
		}
	}
	return map[string]any{"console_enabled": true, "console_info": map[string]any{"type": "socat", "url": m.consoles.URL(port)}}, nil
}

func intOf(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case float64:
		return int(x), true
	case int64:
		return int(x), true
	}
	return 0, false
}

// reconcileConsoles runs here the consoles of the enabled nodes this
// conductor serves and stops the others. boot tells the failure message
// apart: at conductor start or when taking a node over.
func (m *Manager) reconcileConsoles(ctx context.Context, boot bool) {
	r := m.ring()
	want := map[string]bool{}
	for _, n := range m.st.Nodes(func(n *store.Node) bool {
		return n.ConsoleEnabled && r.owner(n.ConductorGroup, n.UUID) == m.host
	}) {
		if _, ok := capability[driver.SerialConsole](m, n, "console"); ok {
			want[n.UUID] = true
		}
	}
	for _, uuid := range m.consoles.Nodes() {
		if want[uuid] {
			continue
		}
		if n, err := m.st.Node(uuid); err == nil && n.Reservation != nil {
			continue // a console request or another task holds it
		}
		m.log.Info("manager: stopping a console this conductor no longer serves", "node", uuid)
		m.consoles.Stop(ctx, uuid)
	}
	for uuid := range want {
		if _, ok := m.consoles.Port(uuid); ok {
			continue
		}
		n, err := m.st.Node(uuid)
		if err != nil || n.Reservation != nil || !n.ConsoleEnabled {
			continue // the next round
		}
		sc, _, err := m.serialConsole(n)
		if err == nil {
			err = m.startConsole(ctx, uuid, sc)
		}
		if err == nil {
			m.log.Info("manager: console restored", "node", uuid)
			continue
		}
		if ctx.Err() != nil {
			return // the conductor stops: the console stays enabled
		}
		msg := fmt.Sprintf("Failed to start console while taking over the node %s: %v.", uuid, err)
		if boot {
			msg = fmt.Sprintf("Failed to start console of node %s while starting the conductor, so changing the console_enabled status to False, error: %v", uuid, err)
		}
		m.log.Error("manager: "+msg, "node", uuid)
		if uerr := m.update(ctx, uuid, func(n *store.Node) error {
			n.ConsoleEnabled, n.LastError = false, &msg
			return nil
		}); uerr != nil {
			m.log.Error("manager: record console failure", "node", uuid, "err", uerr)
		}
	}
}

// consoleConfig is the console server's configuration, logging to the
// manager's log.
func consoleConfig(cfg Config) console.Config {
	c := cfg.Console
	if c.Log == nil {
		c.Log = cfg.Log
	}
	return c
}
