// Package driver defines the small interfaces the conductor uses to act on a
// machine (power, management, boot, deploy, inspect) and composes them into
// Ironic-style hardware types. Implementations live in sub-packages
// (driver/bmc for IPMI and Redfish through bmclib, driver/fake for tests).
package driver

import (
	"context"
	"errors"
	"time"

	"github.com/ferric-metal/ferric/ipa/protocol"
)

// Power states as Ironic reports them.
const (
	PowerOn  = "power on"
	PowerOff = "power off"
	PowerErr = "error"
)

// Power targets accepted by SetPowerState (Ironic's PUT /states/power targets).
const (
	TargetPowerOn      = "power on"
	TargetPowerOff     = "power off"
	TargetReboot       = "rebooting"
	TargetSoftPowerOff = "soft power off"
	TargetSoftReboot   = "soft rebooting"
)

// Boot devices.
const (
	BootPXE   = "pxe"
	BootDisk  = "disk"
	BootCDROM = "cdrom"
	BootBIOS  = "bios"
)

// ErrMissingInfo is wrapped by Validate errors naming missing driver_info keys.
var ErrMissingInfo = errors.New("missing driver_info")

// Node is what a driver needs to know about a node. Maps are the node's own
// (driver_info, properties, instance_info); drivers must not modify them.
type Node struct {
	UUID         string
	DriverInfo   map[string]any
	Properties   map[string]any
	InstanceInfo map[string]any
}

// Power reads and changes a machine's power state.
type Power interface {
	// Validate reports missing or invalid driver_info for this interface.
	Validate(n *Node) error
	// PowerState returns PowerOn or PowerOff.
	PowerState(ctx context.Context, n *Node) (string, error)
	// SetPowerState drives the machine to target (one of the Target* constants)
	// and waits at most timeout for it to get there.
	SetPowerState(ctx context.Context, n *Node, target string, timeout time.Duration) error
}

// Management sets the next boot device.
type Management interface {
	Validate(n *Node) error
	SetBootDevice(ctx context.Context, n *Node, device string, persistent bool) error
	// SupportedBootDevices lists the devices SetBootDevice accepts.
	SupportedBootDevices() []string
}

// Inspector reads a machine's hardware inventory out of band (from its
// BMC, without booting it), in the agent's inventory format.
type Inspector interface {
	Inventory(ctx context.Context, n *Node) (*protocol.Inventory, error)
}

// Result is what a driver call that acted reports for the node's
// driver_internal_info (for example which bmclib provider did the work).
type Result struct {
	Provider string
}
