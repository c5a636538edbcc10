// Package inventory holds the Go types of the hardware inventory that
// ironic-python-agent (and ferric's agent) reports during inspection and
// lookup, and parses the inspection payload into inventory plus plugin data.
//
// Field names and units follow IPA's documented format: sizes and memory
// totals in bytes, memory.physical_mb in MiB, cpu.frequency a string in MHz.
package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
)

// ErrInvalid is wrapped by every parse and validation error.
var ErrInvalid = errors.New("invalid inspection data")

// Inventory is IPA's hardware inventory.
type Inventory struct {
	CPU          CPU          `json:"cpu"`
	Memory       Memory       `json:"memory"`
	Disks        []Disk       `json:"disks"`
	Interfaces   []Interface  `json:"interfaces"`
	SystemVendor SystemVendor `json:"system_vendor"`
	Boot         Boot         `json:"boot"`
	BMCAddress   string       `json:"bmc_address,omitempty"`
	BMCV6Address string       `json:"bmc_v6address,omitempty"`
	BMCMAC       string       `json:"bmc_mac,omitempty"`
	Hostname     string       `json:"hostname,omitempty"`
}

// CPU describes the processors.
type CPU struct {
	ModelName string `json:"model_name"`
	// Frequency is in MHz, as a string (IPA reports lscpu's value).
	Frequency    string   `json:"frequency"`
	Count        int      `json:"count"`
	Architecture string   `json:"architecture"`
	Flags        []string `json:"flags"`
	SocketCount  int      `json:"socket_count,omitempty"`
}

// Memory describes RAM.
type Memory struct {
	// Total is the OS-visible memory in bytes.
	Total int64 `json:"total"`
	// PhysicalMB is the installed memory in MiB (from SMBIOS).
	PhysicalMB int64 `json:"physical_mb"`
}

// Disk is a block device. Size is in bytes.
type Disk struct {
	Name               string `json:"name"`
	Model              string `json:"model"`
	Size               int64  `json:"size"`
	Rotational         bool   `json:"rotational"`
	WWN                string `json:"wwn"`
	WWNWithExtension   string `json:"wwn_with_extension,omitempty"`
	WWNVendorExtension string `json:"wwn_vendor_extension,omitempty"`
	Serial             string `json:"serial"`
	Vendor             string `json:"vendor"`
	HCTL               string `json:"hctl"`
	ByPath             string `json:"by_path"`
	Tran               string `json:"tran,omitempty"`
}

// Interface is a network interface.
type Interface struct {
	Name        string `json:"name"`
	MACAddress  string `json:"mac_address"`
	IPv4Address string `json:"ipv4_address"`
	IPv6Address string `json:"ipv6_address"`
	HasCarrier  bool   `json:"has_carrier"`
	LLDP        []TLV  `json:"lldp"`
	Vendor      string `json:"vendor"`
	Product     string `json:"product"`
	ClientID    string `json:"client_id"`
	BIOSDevName string `json:"biosdevname"`
	SpeedMbps   int    `json:"speed_mbps,omitempty"`
	PCIAddress  string `json:"pci_address,omitempty"`
	Driver      string `json:"driver,omitempty"`
}

// TLV is one raw LLDP TLV: its type and its value as hex, sent by IPA as a
// two-element JSON array.
type TLV struct {
	Type  int
	Value string
}

// MarshalJSON writes the TLV as [type, "hex"].
func (t TLV) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{t.Type, t.Value})
}

// UnmarshalJSON reads [type, "hex"].
func (t *TLV) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("inventory: lldp tlv: %w", err)
	}
	if len(raw) != 2 {
		return fmt.Errorf("inventory: lldp tlv has %d elements, want 2: %w", len(raw), ErrInvalid)
	}
	if err := json.Unmarshal(raw[0], &t.Type); err != nil {
		return fmt.Errorf("inventory: lldp tlv type: %w", err)
	}
	if err := json.Unmarshal(raw[1], &t.Value); err != nil {
		return fmt.Errorf("inventory: lldp tlv value: %w", err)
	}
	return nil
}

// SystemVendor identifies the machine.
type SystemVendor struct {
	ProductName  string   `json:"product_name"`
	SerialNumber string   `json:"serial_number"`
	Manufacturer string   `json:"manufacturer"`
	Firmware     Firmware `json:"firmware"`
}

// Firmware is the system firmware (BIOS/UEFI).
type Firmware struct {
	Vendor    string `json:"vendor"`
	Version   string `json:"version"`
	BuildDate string `json:"build_date"`
}

// Boot describes how the ramdisk was booted.
type Boot struct {
	// CurrentBootMode is "uefi" or "bios".
	CurrentBootMode string `json:"current_boot_mode"`
	// PXEInterface is the MAC the machine PXE-booted from (BOOTIF), possibly
	// in pxelinux form "01-aa-bb-cc-dd-ee-ff".
	PXEInterface string `json:"pxe_interface"`
}

// Data is one inspection payload: the inventory and everything else the
// ramdisk sent (plugin data: root_disk, error, logs, lldp_raw, ...).
type Data struct {
	Inventory Inventory
	// Raw is the inventory as the ramdisk sent it, keys unknown to Inventory
	// included; inspection rules format values from it.
	Raw map[string]any
	// PluginData is every top-level key but "inventory".
	PluginData map[string]any
}

// Parse decodes an inspection payload ({"inventory": {...}, ...}) and
// validates it as Ironic's continue_inspection schema does: the inventory
// must be present with at least one interface, each with a mac_address.
// JSON nulls in string fields read as "".
func Parse(b []byte) (*Data, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("inventory: %w: %w", ErrInvalid, err)
	}
	rawInv, ok := top["inventory"]
	if !ok || bytes.Equal(bytes.TrimSpace(rawInv), []byte("null")) {
		return nil, fmt.Errorf("inventory: %w: the inventory is required", ErrInvalid)
	}
	d := &Data{PluginData: map[string]any{}}
	if err := json.Unmarshal(rawInv, &d.Inventory); err != nil {
		return nil, fmt.Errorf("inventory: %w: %w", ErrInvalid, err)
	}
	if err := json.Unmarshal(rawInv, &d.Raw); err != nil {
		return nil, fmt.Errorf("inventory: %w: the inventory must be an object: %w", ErrInvalid, err)
	}
	for k, v := range top {
		if k == "inventory" {
			continue
		}
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			return nil, fmt.Errorf("inventory: %w: %s: %w", ErrInvalid, k, err)
		}
		d.PluginData[k] = x
	}
	if err := d.Inventory.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// Validate checks what processing needs: at least one interface, every
// interface with a MAC address.
func (inv *Inventory) Validate() error {
	if len(inv.Interfaces) == 0 {
		return fmt.Errorf("inventory: %w: inventory.interfaces must list at least one interface", ErrInvalid)
	}
	for i, iface := range inv.Interfaces {
		if iface.MACAddress == "" {
			return fmt.Errorf("inventory: %w: inventory.interfaces[%d] (%q) has no mac_address", ErrInvalid, i, iface.Name)
		}
	}
	return nil
}

// MACs returns every valid interface MAC, normalised (lower case, colons).
func (inv *Inventory) MACs() []string {
	var out []string
	for _, iface := range inv.Interfaces {
		if m, err := NormalizeMAC(iface.MACAddress); err == nil {
			out = append(out, m)
		}
	}
	return out
}

// PXEMAC returns the normalised MAC the machine booted from, accepting the
// pxelinux form "01-aa-bb-cc-dd-ee-ff"; "" when unknown or invalid.
func (inv *Inventory) PXEMAC() string {
	m := inv.Boot.PXEInterface
	if m == "" {
		return ""
	}
	if strings.Contains(m, "-") {
		_, rest, _ := strings.Cut(m, "-")
		m = strings.ReplaceAll(rest, "-", ":")
	}
	n, err := NormalizeMAC(m)
	if err != nil {
		return ""
	}
	return n
}

// BMCAddresses returns the non-empty BMC addresses (IPv4 then IPv6),
// ignoring the 0.0.0.0 and :: placeholders IPA reports for an unconfigured
// BMC.
func (inv *Inventory) BMCAddresses() []string {
	var out []string
	for _, a := range []string{inv.BMCAddress, inv.BMCV6Address} {
		a = strings.TrimSpace(a)
		if a == "" || a == "0.0.0.0" || a == "::" || a == "::/0" {
			continue
		}
		out = append(out, a)
	}
	return out
}

// NormalizeMAC returns a 6-byte MAC address in lower case with colons.
func NormalizeMAC(s string) (string, error) {
	hw, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("inventory: %w: %q is not a MAC address", ErrInvalid, s)
	}
	return hw.String(), nil
}
