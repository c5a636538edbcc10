// Package driver defines the small interfaces the conductor uses to act on a
// machine (power, management, boot, deploy, inspect, BIOS, firmware,
// vendor) and the registry of Ironic-style hardware types that offer them
// (Registry). The conductor asks an interface's implementation for a
// capability by type assertion, never by its name. Implementations live in
// sub-packages (driver/bmc for IPMI and Redfish through bmclib, driver/fake
// for the fake and noop interfaces); driver/hardware registers the hardware
// types.
package driver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	// PowerState is the power state the conductor last recorded ("" when
	// unknown).
	PowerState string
	// NetworkData is the node's network_data (API 1.66): the static
	// network configuration, in OpenStack's network_data.json format, a
	// ramdisk applies when there is no DHCP (empty when unset).
	NetworkData map[string]any
	// InstanceUUID is the node's instance_uuid ("" when unset).
	InstanceUUID string
}

// UEFI reports whether the node boots in UEFI mode: capabilities
// boot_mode:uefi in its properties, overridden by instance_info
// capabilities when present.
func (n *Node) UEFI() bool {
	mode := Capabilities(n.Properties["capabilities"])["boot_mode"]
	if m := Capabilities(n.InstanceInfo["capabilities"])["boot_mode"]; m != "" {
		mode = m
	}
	return strings.EqualFold(mode, "uefi")
}

// Capabilities parses a node's properties/capabilities value, which Ironic
// stores either as a string "k1:v1,k2:v2" or as a JSON object.
func Capabilities(v any) map[string]string {
	out := map[string]string{}
	switch c := v.(type) {
	case string:
		for _, kv := range strings.Split(c, ",") {
			k, val, ok := strings.Cut(kv, ":")
			if !ok {
				continue
			}
			if k = strings.TrimSpace(k); k != "" {
				out[k] = strings.TrimSpace(val)
			}
		}
	case map[string]any:
		for k, val := range c {
			switch x := val.(type) {
			case nil:
				out[k] = ""
			case string:
				out[k] = strings.TrimSpace(x)
			case float64:
				out[k] = strconv.FormatFloat(x, 'f', -1, 64)
			default:
				out[k] = fmt.Sprint(x)
			}
		}
	case map[string]string:
		for k, val := range c {
			out[k] = val
		}
	}
	return out
}

// Boot is a boot interface: how the machine starts the deploy ramdisk.
// The network boots (pxe, ipxe) set the PXE boot device and the
// conductor's DHCP and iPXE services serve the ramdisk.
type Boot interface {
	// Validate reports missing driver_info for booting the ramdisk.
	Validate(n *Node) error
}

// Deploy is a deploy interface.
type Deploy interface {
	// UsesAgent reports whether deploying drives the ramdisk's agent,
	// which writes the image (direct); a deploy that does not (fake)
	// finishes at once.
	UsesAgent() bool
}

// RamdiskInspector is an inspect interface that boots the ramdisk, whose
// agent posts the inventory (in-band inspection, Ironic's agent).
// Out-of-band inspect interfaces are Inspectors.
type RamdiskInspector interface {
	InspectsInRamdisk()
}

// Fake is implemented by Ironic's fake interfaces (driver/fake): their
// steps succeed and change nothing, their inspection finishes at once,
// and the power sync leaves their nodes alone.
type Fake interface {
	Fake()
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

// NMIInjector is a management interface that can send the machine a
// non-maskable interrupt (a diagnostic interrupt: the OS may dump and halt).
type NMIInjector interface {
	InjectNMI(ctx context.Context, n *Node) error
}

// VendorMethod describes a vendor passthru method as Ironic lists it.
type VendorMethod struct {
	HTTPMethods          []string `json:"http_methods"`
	Async                bool     `json:"async"`
	Description          string   `json:"description"`
	Attach               bool     `json:"attach"`
	RequireExclusiveLock bool     `json:"require_exclusive_lock"`
}

// Vendor is a vendor interface: driver-specific methods called through
// /v1/nodes/{node}/vendor_passthru.
type Vendor interface {
	Methods() map[string]VendorMethod
	// ValidateCall checks a call's arguments and the node's driver_info
	// before the call is accepted.
	ValidateCall(n *Node, method string, args map[string]any) error
	Call(ctx context.Context, n *Node, method string, args map[string]any) (any, error)
}

// Inspector reads a machine's hardware inventory out of band (from its
// BMC, without booting it), in the agent's inventory format.
type Inspector interface {
	Inventory(ctx context.Context, n *Node) (*protocol.Inventory, error)
}

// BIOS reads and changes a machine's BIOS settings (a bios interface).
// Changes take effect when the machine next starts.
type BIOS interface {
	// BIOSSettings returns the current settings, values with the JSON
	// types the BMC uses (string, float64, bool or nil).
	BIOSSettings(ctx context.Context, n *Node) (map[string]any, error)
	// ApplyBIOSSettings asks for settings to change at the next start.
	ApplyBIOSSettings(ctx context.Context, n *Node, settings map[string]any) error
	// ResetBIOS asks for the factory defaults at the next start.
	ResetBIOS(ctx context.Context, n *Node) error
	// ReadBIOS reads, in one exchange, what the conductor caches: the
	// current settings and their descriptions.
	ReadBIOS(ctx context.Context, n *Node) (BIOSSnapshot, error)
}

// BIOSSnapshot is the current BIOS settings (as BIOSSettings returns
// them) with the BMC's attribute registry describing them, by name;
// Registry is nil and RegistryErr says why when the BMC has none
// (ErrUnsupported) or it could not be read.
type BIOSSnapshot struct {
	Values      map[string]any
	Registry    map[string]BIOSAttribute
	RegistryErr error
}

// BIOSAttribute describes a BIOS setting as an attribute registry does.
// Nil fields are not described.
type BIOSAttribute struct {
	Type                   string // Enumeration, Integer, String, Boolean, Password
	AllowableValues        []string
	LowerBound, UpperBound *int64
	MinLength, MaxLength   *int64
	ReadOnly               *bool
	ResetRequired          *bool
	Unique                 *bool
}

// BootModes is what a management interface that handles boot modes
// (redfish) offers: the boot mode ("bios" or "uefi") and UEFI Secure Boot.
type BootModes interface {
	// BootMode returns the boot mode, "" when the BMC does not tell.
	BootMode(ctx context.Context, n *Node) (string, error)
	SetBootMode(ctx context.Context, n *Node, mode string) error
	// SecureBoot returns whether Secure Boot is enabled; ErrUnsupported
	// when the machine has no Secure Boot.
	SecureBoot(ctx context.Context, n *Node) (bool, error)
	SetSecureBoot(ctx context.Context, n *Node, on bool) error
}

// VendorDetector is a management interface that can tell the machine's
// vendor (Ironic's detect_vendor), "" when it cannot.
type VendorDetector interface {
	DetectVendor(ctx context.Context, n *Node) (string, error)
}

// Firmware reads the versions of a machine's firmware components (a
// firmware interface).
type Firmware interface {
	FirmwareComponents(ctx context.Context, n *Node) ([]FirmwareComponent, error)
}

// FirmwareUpdater is a firmware interface that flashes images (redfish):
// the BMC downloads the image at url and applies it; a BIOS image takes
// effect when the machine next starts.
type FirmwareUpdater interface {
	UpdateFirmware(ctx context.Context, n *Node, url string) error
}

// FirmwareComponent is one firmware and its version ("bios", "bmc").
type FirmwareComponent struct {
	Component, Version string
}

// Boot modes (Ironic's boot_modes).
const (
	BootModeBIOS = "bios"
	BootModeUEFI = "uefi"
)

// UnsupportedError is Ironic's UnsupportedDriverExtension: the node's
// interface does not offer an operation (a no-console console, a noop
// management's inject_nmi, a boot mode change on ipmitool).
type UnsupportedError struct{ Driver, Extension string }

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("Driver %s does not support %s (disabled or not implemented).", e.Driver, e.Extension)
}

// ErrUnsupported is returned when the machine does not offer a feature.
var ErrUnsupported = errors.New("not supported by the machine")

// ErrNoBIOS is returned by a BIOS interface when the machine does not
// expose its BIOS settings.
var ErrNoBIOS = errors.New("BIOS settings are not supported")

// Result is what a driver call that acted reports for the node's
// driver_internal_info (for example which bmclib provider did the work).
type Result struct {
	Provider string
}

// RamdiskBooter is a boot interface that boots the deploy ramdisk itself
// (virtual media) instead of the network boot by the conductor's DHCP and
// iPXE: PrepareRamdisk readies the boot and returns the boot device to
// set for the next start; CleanUpRamdisk undoes it when the ramdisk's
// work ends (on every path). inspection tells that the ramdisk inspects
// (its agent gets the inspection callback URL).
type RamdiskBooter interface {
	PrepareRamdisk(ctx context.Context, n *Node, inspection bool) (device string, err error)
	CleanUpRamdisk(ctx context.Context, n *Node) error
}

// VirtualMedia is a management interface with the BMC's virtual media
// (redfish): insert an image by URL into a device of a type ("cdrom",
// "floppy", "disk"; "" ejects every device), and read the devices.
type VirtualMedia interface {
	InsertMedia(ctx context.Context, n *Node, deviceType, url string) error
	EjectMedia(ctx context.Context, n *Node, deviceType string) error
	Media(ctx context.Context, n *Node) ([]MediaState, error)
}

// MediaState is one virtual media device of a BMC.
type MediaState struct {
	// ID is the device's Id at the BMC; Types the media types it takes
	// (Redfish MediaTypes: CD, DVD, Floppy, USBStick, ...).
	ID    string
	Types []string
	// Image is the URL inserted ("" when none).
	Image                    string
	Inserted, WriteProtected bool
	ConnectedVia             string
}
