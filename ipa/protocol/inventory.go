package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
)

// Inventory is the hardware inventory in ironic-python-agent's format: sent
// as "inventory" to inspection (POST /v1/continue_inspection) and used by
// the agent for root device selection. Sizes are bytes.
type Inventory struct {
	CPU          CPU          `json:"cpu"`
	Memory       Memory       `json:"memory"`
	Disks        []Disk       `json:"disks"`
	Interfaces   []Interface  `json:"interfaces"`
	BMCAddress   *string      `json:"bmc_address"`
	BMCV6Address *string      `json:"bmc_v6address"`
	BMCMAC       *string      `json:"bmc_mac"`
	SystemVendor SystemVendor `json:"system_vendor"`
	Boot         Boot         `json:"boot"`
	Hostname     string       `json:"hostname"`
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

// Memory describes RAM: Total is what the OS sees (bytes), PhysicalMB the
// installed size (MiB) used for the node's memory_mb.
type Memory struct {
	Total      int64 `json:"total"`
	PhysicalMB int64 `json:"physical_mb"`
}

// Disk is one block device candidate (no partitions, loop, ram, rom).
type Disk struct {
	Name               string  `json:"name"`
	Model              string  `json:"model"`
	Size               int64   `json:"size"`
	Rotational         bool    `json:"rotational"`
	WWN                *string `json:"wwn"`
	Serial             *string `json:"serial"`
	Vendor             *string `json:"vendor"`
	WWNWithExtension   *string `json:"wwn_with_extension"`
	WWNVendorExtension *string `json:"wwn_vendor_extension"`
	HCTL               *string `json:"hctl"`
	ByPath             *string `json:"by_path"`
	LogicalSectors     int     `json:"logical_sectors,omitempty"`
	PhysicalSectors    int     `json:"physical_sectors,omitempty"`
	Tran               *string `json:"tran,omitempty"`
}

// Interface is one network interface.
type Interface struct {
	Name        string  `json:"name"`
	MACAddress  string  `json:"mac_address"`
	IPv4Address *string `json:"ipv4_address"`
	IPv6Address *string `json:"ipv6_address"`
	HasCarrier  bool    `json:"has_carrier"`
	LLDP        []TLV   `json:"lldp"`
	Vendor      *string `json:"vendor"`
	Product     *string `json:"product"`
	ClientID    *string `json:"client_id"`
	Biosdevname *string `json:"biosdevname"`
	SpeedMbps   *int    `json:"speed_mbps,omitempty"`
	PCIAddress  *string `json:"pci_address,omitempty"`
	Driver      *string `json:"driver,omitempty"`
}

// SystemVendor is DMI system information.
type SystemVendor struct {
	ProductName  string   `json:"product_name"`
	SerialNumber string   `json:"serial_number"`
	Manufacturer string   `json:"manufacturer"`
	Firmware     Firmware `json:"firmware"`
}

// Firmware is DMI BIOS information.
type Firmware struct {
	Vendor    string `json:"vendor"`
	Version   string `json:"version"`
	BuildDate string `json:"build_date"`
}

// Boot describes how the ramdisk was booted.
type Boot struct {
	// CurrentBootMode is "uefi" or "bios".
	CurrentBootMode string `json:"current_boot_mode"`
	// PXEInterface is the MAC from BOOTIF, if any.
	PXEInterface *string `json:"pxe_interface"`
}

// InspectionData is the body the agent posts to the inspection callback
// (ipa-inspection-callback-url: Ironic's POST /v1/continue_inspection or
// ironic-inspector's POST /v1/continue). Everything but Inventory becomes
// the node's plugin data.
type InspectionData struct {
	Inventory Inventory `json:"inventory"`
	// RootDisk is the agent's own root device guess (no hints), nil when
	// no disk qualifies.
	RootDisk *Disk `json:"root_disk"`
	// BootInterface is BOOTIF in pxelinux form ("01-aa-bb-cc-dd-ee-ff"),
	// nil when unknown (deprecated in IPA, still sent).
	BootInterface *string                 `json:"boot_interface"`
	Configuration InspectionConfiguration `json:"configuration"`
	// Error holds what went wrong while collecting; nil when nothing did.
	// A non-null error fails inspection (ramdisk-error hook).
	Error *string `json:"error"`
	// Logs is the ramdisk's logs, base64 of a gzip'd tar (IPA's "logs"
	// collector); the conductor keeps them as ramdisk logs and never
	// stores them with the inspection data.
	Logs string `json:"logs,omitempty"`
}

// InspectionConfiguration names what collected the data.
type InspectionConfiguration struct {
	Collectors []string            `json:"collectors"`
	Managers   []InspectionManager `json:"managers"`
}

// InspectionManager is one hardware manager and its version.
type InspectionManager struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// InspectionResponse is the answer to an inspection post: {"uuid": ...}
// from ironic-inspector and older Ironic, the lookup shape (node and a
// fresh agent token) from Ironic with API ≥ 1.84.
type InspectionResponse struct {
	UUID string `json:"uuid"`
	LookupResponse
}

// TLV is one raw LLDP TLV: its type and its value as hex, sent by IPA as a
// two-element JSON array [type, "hex"].
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
		return fmt.Errorf("protocol: lldp tlv: %w", err)
	}
	if len(raw) != 2 {
		return fmt.Errorf("protocol: lldp tlv has %d elements, want 2", len(raw))
	}
	if err := json.Unmarshal(raw[0], &t.Type); err != nil {
		return fmt.Errorf("protocol: lldp tlv type: %w", err)
	}
	if err := json.Unmarshal(raw[1], &t.Value); err != nil {
		return fmt.Errorf("protocol: lldp tlv value: %w", err)
	}
	return nil
}

// Str returns *p, or "" for nil: the inventory's optional strings read as
// empty when IPA sent null.
func Str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// ErrBadMAC is returned by NormalizeMAC.
var ErrBadMAC = errors.New("not a MAC address")

// NormalizeMAC returns a 6-byte MAC address in lower case with colons.
func NormalizeMAC(s string) (string, error) {
	hw, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("protocol: %q: %w", s, ErrBadMAC)
	}
	return hw.String(), nil
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
	return BootMAC(Str(inv.Boot.PXEInterface))
}

// BootMAC normalises a BOOTIF value: a MAC, or its pxelinux form
// "01-aa-bb-cc-dd-ee-ff"; "" when invalid.
func BootMAC(m string) string {
	if strings.Count(m, "-") == 6 {
		_, rest, _ := strings.Cut(m, "-")
		m = rest
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
	for _, p := range []*string{inv.BMCAddress, inv.BMCV6Address} {
		a := strings.TrimSpace(Str(p))
		if a == "" || a == "0.0.0.0" || a == "::" || a == "::/0" {
			continue
		}
		out = append(out, a)
	}
	return out
}
