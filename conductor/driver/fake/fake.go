// Package fake holds Ironic's fake and noop interface implementations:
// they touch no machine and succeed at once. fake-hardware nodes use them
// throughout; manual-management nodes use fake power and noop management.
package fake

import (
	"context"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
)

// Power is the fake power interface: a power change succeeds at once and
// the power state is whatever the conductor last recorded.
type Power struct{}

// Management is the fake management interface: every boot device is
// accepted, and an NMI does nothing, as with Ironic's.
type Management struct{ NoopManagement }

// NoopManagement is the noop management interface (manual-management):
// boot devices are accepted and ignored; it cannot inject an NMI.
type NoopManagement struct{}

// Interface is the fake implementation of the other interface kinds
// (bios, boot, console, firmware, inspect, raid, rescue, storage, vendor):
// its steps succeed and change nothing, its inspection finishes at once.
type Interface struct{}

// Deploy is the fake deploy interface: a deploy finishes at once, without
// the ramdisk.
type Deploy struct{ Interface }

// Noop is the noop implementation (network, storage): supported, and
// nothing to do.
type Noop struct{}

var (
	_ driver.Power       = Power{}
	_ driver.Fake        = Power{}
	_ driver.Management  = Management{}
	_ driver.NMIInjector = Management{}
	_ driver.Management  = NoopManagement{}
	_ driver.Boot        = Interface{}
	_ driver.Fake        = Interface{}
	_ driver.Deploy      = Deploy{}
)

// Validate accepts any driver_info.
func (Power) Validate(*driver.Node) error { return nil }

// PowerState is the recorded power state, power off when none is.
func (Power) PowerState(_ context.Context, n *driver.Node) (string, error) {
	if n.PowerState != "" {
		return n.PowerState, nil
	}
	return driver.PowerOff, nil
}

// SetPowerState succeeds at once.
func (Power) SetPowerState(context.Context, *driver.Node, string, time.Duration) error { return nil }

// Fake marks the fake power interface (not synced).
func (Power) Fake() {}

// InjectNMI does nothing, as Ironic's fake management.
func (Management) InjectNMI(context.Context, *driver.Node) error { return nil }

// Validate accepts any driver_info.
func (NoopManagement) Validate(*driver.Node) error { return nil }

// SetBootDevice succeeds and changes nothing.
func (NoopManagement) SetBootDevice(context.Context, *driver.Node, string, bool) error { return nil }

// SupportedBootDevices lists the devices Ironic's fake management lists.
func (NoopManagement) SupportedBootDevices() []string {
	return []string{driver.BootPXE, driver.BootDisk, driver.BootCDROM, driver.BootBIOS}
}

// Validate accepts any driver_info.
func (Interface) Validate(*driver.Node) error { return nil }

// Fake marks the fake interfaces.
func (Interface) Fake() {}

// UsesAgent is false: the fake deploy needs no ramdisk.
func (Deploy) UsesAgent() bool { return false }
