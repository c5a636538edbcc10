// Package inspector processes the data a ramdisk posts at the end of
// in-band inspection, as Ironic's built-in inspection and ironic-inspector
// do with their default hooks: it finds the node the data belongs to,
// checks the ramdisk's error, validates the network interfaces and chooses
// the ports to create, computes the scheduling properties (cpus, memory_mb,
// local_gb, cpu_arch, capabilities), selects the root disk with the node's
// root device hints and runs the inspection rules.
//
// Everything here is a pure function over the inventory and a snapshot of
// the node; the conductor persists the Result.
package inspector

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/ferric-metal/ferric/inspector/inventory"
	"github.com/ferric-metal/ferric/inspector/rules"
	"github.com/ferric-metal/ferric/ipa/hints"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// Errors. Match them with errors.Is.
var (
	// ErrRamdisk: the ramdisk reported an error in its payload.
	ErrRamdisk = errors.New("ramdisk reported an error")
	// ErrNoInterfaces: no interface survives validation.
	ErrNoInterfaces = errors.New("no valid network interfaces")
	// ErrNodeNotFound: no node has the inventory's BMC address or MACs.
	ErrNodeNotFound = errors.New("no node matches the inspection data")
	// ErrAmbiguous: the BMC address and MACs point at different nodes.
	ErrAmbiguous = errors.New("inspection data matches more than one node")
)

// Which interfaces become ports (Ironic's [inspector]add_ports).
const (
	AddPortsPXE      = "pxe"
	AddPortsActive   = "active"
	AddPortsAll      = "all"
	AddPortsDisabled = "disabled"
)

// Config holds the processing settings.
type Config struct {
	// AddPorts is pxe (default), active, all or disabled.
	AddPorts string
	// NoPartitioningSpacing keeps local_gb at the root disk's full size
	// instead of one GiB less ([inspector]disk_partitioning_spacing=false).
	NoPartitioningSpacing bool
}

// Node is the snapshot of a node that processing needs.
type Node struct {
	UUID string
	// Fields is the node as its API JSON (driver, driver_info, properties,
	// extra, ...), seen by rules as {node...} and patched by them.
	Fields map[string]any
	Traits []string
}

func (n Node) properties() map[string]any {
	p, _ := n.Fields["properties"].(map[string]any)
	return p
}

// Port is a port to create for the node.
type Port struct {
	Address    string
	PXEEnabled bool
	// Interface is the name the ramdisk gave the interface (eno1).
	Interface string
}

// Result is what processing asks the conductor to persist.
type Result struct {
	// Properties are keys to set in node.properties.
	Properties map[string]any
	// Ports are the ports to create (those that do not exist yet).
	Ports []Port
	// RootDisk is the selected root disk, nil if there is none.
	RootDisk *inventory.Disk
	// Patch, AddTraits and RemoveTraits come from inspection rules and are
	// applied after Properties.
	Patch        []rules.PatchOp
	AddTraits    []string
	RemoveTraits []string
	// PluginData is the plugin data to store with the inventory.
	PluginData map[string]any
	Logs       []rules.LogEntry
	// Err is set when inspection must fail (the node goes to inspect
	// failed with Err as last_error); the fields above hold what was
	// computed before the failure.
	Err error
}

// Nodes finds nodes for incoming inspection data. The conductor implements
// it over its store; each method returns the UUIDs of matching nodes
// (normally those being inspected).
type Nodes interface {
	FindByBMCAddress(ctx context.Context, addresses []string) ([]string, error)
	FindByMACs(ctx context.Context, macs []string) ([]string, error)
}

// Match returns the node the inventory belongs to: the one node its BMC
// addresses or MACs point at.
func Match(ctx context.Context, nodes Nodes, inv *inventory.Inventory) (string, error) {
	var ids []string
	if addrs := inv.BMCAddresses(); len(addrs) > 0 {
		got, err := nodes.FindByBMCAddress(ctx, addrs)
		if err != nil {
			return "", fmt.Errorf("inspector: lookup by BMC address: %w", err)
		}
		ids = append(ids, got...)
	}
	if macs := inv.MACs(); len(macs) > 0 {
		got, err := nodes.FindByMACs(ctx, macs)
		if err != nil {
			return "", fmt.Errorf("inspector: lookup by MAC: %w", err)
		}
		ids = append(ids, got...)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("inspector: BMC %v, MACs %v: %w", inv.BMCAddresses(), inv.MACs(), ErrNodeNotFound)
	case 1:
		return ids[0], nil
	}
	return "", fmt.Errorf("inspector: nodes %s: %w", strings.Join(ids, ", "), ErrAmbiguous)
}

// cpuFlagCapabilities maps CPU flags to the capabilities Ironic's
// cpu-capabilities hook sets.
var cpuFlagCapabilities = []struct{ flag, capability string }{
	{"vmx", "cpu_vt"},
	{"svm", "cpu_vt"},
	{"aes", "cpu_aes"},
	{"pse", "cpu_hugepages"},
	{"pdpe1gb", "cpu_hugepages_1g"},
	{"smx", "cpu_txt"},
}

// Process runs the processing hooks and the rules over inspection data d for
// node n. It never returns a partial Result without Err explaining why.
func Process(d *inventory.Data, n Node, rs []rules.Rule, cfg Config) Result {
	res := Result{Properties: map[string]any{}, PluginData: map[string]any{}}
	for k, v := range d.PluginData {
		res.PluginData[k] = v
	}
	inv := &d.Inventory

	// ramdisk-error
	if e, ok := d.PluginData["error"]; ok && e != nil && e != "" {
		res.Err = fmt.Errorf("inspector: node %s: %w: %v", n.UUID, ErrRamdisk, e)
		return res
	}

	// validate-interfaces and ports
	valid, err := validInterfaces(inv, cfg.AddPorts)
	if err != nil {
		res.Err = fmt.Errorf("inspector: node %s: %w", n.UUID, err)
		return res
	}
	var macs []any
	for _, p := range valid {
		macs = append(macs, p.Address)
	}
	res.PluginData["macs"] = macs
	if cfg.AddPorts != AddPortsDisabled {
		res.Ports = valid
	}

	// architecture, cpus, memory
	if inv.CPU.Architecture != "" {
		res.Properties["cpu_arch"] = inv.CPU.Architecture
	}
	if inv.CPU.Count > 0 {
		res.Properties["cpus"] = inv.CPU.Count
	}
	switch {
	case inv.Memory.PhysicalMB > 0:
		res.Properties["memory_mb"] = inv.Memory.PhysicalMB
	case inv.Memory.Total > 0:
		res.Properties["memory_mb"] = (inv.Memory.Total + 1<<20 - 1) >> 20
	}

	// root-device
	props := n.properties()
	disk, err := rootDisk(d, props)
	if err != nil {
		res.Err = fmt.Errorf("inspector: node %s: %w", n.UUID, err)
		return res
	}
	if disk != nil {
		res.RootDisk = disk
		res.PluginData["root_disk"] = map[string]any{"name": disk.Name, "size": float64(disk.Size)}
		if gb := disk.Size / hints.GiB; gb > 0 {
			if !cfg.NoPartitioningSpacing {
				gb--
			}
			res.Properties["local_gb"] = gb
		}
	}

	// boot-mode and cpu-capabilities
	caps := rules.ParseCapabilities(props["capabilities"])
	if m := inv.Boot.CurrentBootMode; m == "uefi" || m == "bios" {
		caps["boot_mode"] = m
	}
	for _, fc := range cpuFlagCapabilities {
		if slices.Contains(inv.CPU.Flags, fc.flag) {
			caps[fc.capability] = "true"
		}
	}
	if len(caps) > 0 {
		res.Properties["capabilities"] = rules.FormatCapabilities(caps)
	}

	// rules, seeing the node with the new properties
	if len(rs) > 0 {
		fields := map[string]any{}
		for k, v := range n.Fields {
			fields[k] = v
		}
		np := map[string]any{}
		for k, v := range props {
			np[k] = v
		}
		for k, v := range res.Properties {
			np[k] = v
		}
		fields["properties"] = np
		ch, err := rules.Apply(rs, rules.Context{Node: fields, Inventory: d.Raw, PluginData: res.PluginData, Traits: n.Traits})
		res.Patch, res.AddTraits, res.RemoveTraits, res.Logs = ch.Patch, ch.AddTraits, ch.RemoveTraits, ch.Logs
		if ch.PluginData != nil {
			res.PluginData = ch.PluginData
		}
		if err != nil {
			res.Err = fmt.Errorf("inspector: node %s: %w", n.UUID, err)
		}
	}
	return res
}

// validInterfaces applies Ironic's validate-interfaces hook.
func validInterfaces(inv *inventory.Inventory, addPorts string) ([]Port, error) {
	if addPorts == "" {
		addPorts = AddPortsPXE
	}
	pxe := inv.PXEMAC()
	var out []Port
	seen := 0
	for _, iface := range inv.Interfaces {
		if iface.Name == "" || iface.MACAddress == "" {
			continue
		}
		mac, err := inventory.NormalizeMAC(iface.MACAddress)
		if err != nil {
			continue
		}
		seen++
		ip := protocol.Str(iface.IPv4Address)
		if ip == "" {
			ip, _, _ = strings.Cut(protocol.Str(iface.IPv6Address), "%")
		}
		isPXE := mac == pxe
		if iface.Name == "lo" || isLoopback(ip) {
			continue
		}
		if addPorts == AddPortsPXE && pxe != "" && !isPXE {
			continue
		}
		if addPorts == AddPortsActive && ip == "" {
			continue
		}
		out = append(out, Port{Address: mac, PXEEnabled: isPXE, Interface: iface.Name})
	}
	if seen == 0 {
		return nil, fmt.Errorf("%w: none has a name and a valid MAC address", ErrNoInterfaces)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no network interfaces match the configuration (add_ports set to %q)", ErrNoInterfaces, addPorts)
	}
	return out, nil
}

func isLoopback(ip string) bool {
	a, err := netip.ParseAddr(ip)
	return err == nil && a.IsLoopback()
}

// rootDisk selects the root disk: by the node's root device hints (after
// skip_block_devices) when it has them, else the ramdisk's own guess
// (plugin data root_disk) when it names a disk of the inventory, else the
// smallest disk of at least 4 GiB. No disks at all gives nil.
func rootDisk(d *inventory.Data, props map[string]any) (*inventory.Disk, error) {
	disks := d.Inventory.Disks
	if len(disks) == 0 {
		return nil, nil
	}
	raw, _ := props["root_device"].(map[string]any)
	hs, err := hints.Parse(raw)
	if err != nil {
		return nil, err
	}
	skip, err := hints.ParseSkip(props["skip_block_devices"])
	if err != nil {
		return nil, err
	}
	if len(hs) == 0 && len(skip) == 0 {
		if guess, ok := d.PluginData["root_disk"].(map[string]any); ok {
			for i := range disks {
				if disks[i].Name == guess["name"] {
					return &disks[i], nil
				}
			}
		}
	}
	disk, err := hints.Select(disks, hs, skip, hints.MinDefaultSize)
	if err != nil {
		return nil, err
	}
	return &disk, nil
}
