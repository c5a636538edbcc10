package manager

import (
	"fmt"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/store"
)

// The node's interfaces: the manager finds the object behind each of a
// node's interfaces in the driver registry (by the node's hardware type,
// the interface kind and the implementation's name) and asks it for the
// capability it needs by type assertion.

// object returns the object behind the node's implementation of kind: nil
// for an implementation that offers nothing (no-bios, ...) and for a kind
// the node does not name.
func (m *Manager) object(n *store.Node, kind string) (any, error) {
	impl := n.Interfaces[kind]
	if impl == "" {
		return nil, nil
	}
	obj, ok := m.drivers.Object(n.Driver, kind, impl)
	if !ok {
		return nil, notAvailable(m, kind, impl)
	}
	return obj, nil
}

func notAvailable(m *Manager, kind, impl string) error {
	return fmt.Errorf("%s interface %q is not available on conductor %s", kind, impl, m.host)
}

// offersNothing reports whether the node's implementation of kind is one
// that offers nothing (no-bios, no-rescue, ...).
func (m *Manager) offersNothing(n *store.Node, kind string) bool {
	obj, err := m.object(n, kind)
	return err == nil && obj == nil && n.Interfaces[kind] != ""
}

// capability returns the node's implementation of kind as a T; ok is
// false when it is unknown or is not a T.
func capability[T any](m *Manager, n *store.Node, kind string) (T, bool) {
	obj, _ := m.object(n, kind)
	c, ok := obj.(T)
	return c, ok
}

// isFake reports whether the node's implementation of kind is a fake one.
func (m *Manager) isFake(n *store.Node, kind string) bool {
	_, ok := capability[driver.Fake](m, n, kind)
	return ok
}

func (m *Manager) power(n *store.Node) (driver.Power, error) {
	p, ok := capability[driver.Power](m, n, "power")
	if !ok {
		return nil, notAvailable(m, "power", n.Interfaces["power"])
	}
	return recorded{Power: p, m: m}, nil
}

func (m *Manager) management(n *store.Node) (driver.Management, error) {
	mg, ok := capability[driver.Management](m, n, "management")
	if !ok {
		return nil, notAvailable(m, "management", n.Interfaces["management"])
	}
	return recorded{mg: mg, m: m}, nil
}

// bios returns the node's bios interface, or nil when it does not read
// BIOS settings (no-bios, and fake, which reads and changes nothing, as
// Ironic's).
func (m *Manager) bios(n *store.Node) (driver.BIOS, error) {
	obj, err := m.object(n, "bios")
	if err != nil {
		return nil, err
	}
	b, _ := obj.(driver.BIOS)
	return b, nil
}

// biosSteps reports whether the node's bios interface offers the BIOS
// steps (a real one, or fake, whose steps do nothing).
func (m *Manager) biosSteps(n *store.Node) bool {
	b, _ := m.bios(n)
	return b != nil || m.isFake(n, "bios")
}

// vendor returns the node's vendor interface; nil when it offers no
// methods (no-vendor, fake).
func (m *Manager) vendor(n *store.Node) driver.Vendor {
	v, _ := capability[driver.Vendor](m, n, "vendor")
	return v
}

// bootModes returns the node's management interface as driver.BootModes,
// or nil when it does not handle boot modes.
func (m *Manager) bootModes(n *store.Node) driver.BootModes {
	bm, _ := capability[driver.BootModes](m, n, "management")
	return bm
}

// usesAgent reports whether a node's deploy interface drives the ramdisk.
func (m *Manager) usesAgent(n *store.Node) bool {
	d, ok := capability[driver.Deploy](m, n, "deploy")
	return ok && d.UsesAgent()
}

// firmwareUpdaterOf returns the updater behind the node's implementation
// of kind (firmware or management), if it flashes images.
func (m *Manager) firmwareUpdaterOf(n *store.Node, kind string) (driver.FirmwareUpdater, bool) {
	return capability[driver.FirmwareUpdater](m, n, kind)
}
