// Package inventory parses the inspection payload that ironic-python-agent
// (and ferric's agent) posts into the hardware inventory (the agent's wire
// types, ipa/protocol) plus plugin data, and validates it.
//
// Field names and units follow IPA's documented format: sizes and memory
// totals in bytes, memory.physical_mb in MiB, cpu.frequency a string in MHz.
package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ferric-metal/ferric/ipa/protocol"
)

// ErrInvalid is wrapped by every parse and validation error.
var ErrInvalid = errors.New("invalid inspection data")

// The inventory types are the agent's wire types (ipa/protocol owns the
// format); optional strings are pointers, nil when the ramdisk sent null.
type (
	Inventory    = protocol.Inventory
	CPU          = protocol.CPU
	Memory       = protocol.Memory
	Disk         = protocol.Disk
	Interface    = protocol.Interface
	TLV          = protocol.TLV
	SystemVendor = protocol.SystemVendor
	Firmware     = protocol.Firmware
	Boot         = protocol.Boot
)

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
// JSON nulls in optional string fields read as nil.
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
	if err := Validate(&d.Inventory); err != nil {
		return nil, err
	}
	return d, nil
}

// Validate checks what processing needs: at least one interface, every
// interface with a MAC address.
func Validate(inv *Inventory) error {
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

// NormalizeMAC returns a 6-byte MAC address in lower case with colons.
func NormalizeMAC(s string) (string, error) {
	m, err := protocol.NormalizeMAC(s)
	if err != nil {
		return "", fmt.Errorf("inventory: %w: %w", ErrInvalid, err)
	}
	return m, nil
}
