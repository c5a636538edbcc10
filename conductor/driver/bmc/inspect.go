package bmc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/redfish"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

var _ driver.Inspector = (*Redfish)(nil)

// Inventory reads the system's hardware out of band through the standard
// Redfish resources Ironic's redfish inspection reads, using gofish, the
// Redfish library under bmclib: CPUs from Processors (threads summed, as
// Ironic's cpus; ProcessorSummary when absent), memory from MemorySummary
// (Memory modules when absent), NICs from EthernetInterfaces, disks from
// Storage drives (SimpleStorage devices when there are none), vendor and
// boot mode from the ComputerSystem. Nothing is changed on the machine.
// bmclib's own Inventory is not used: it only accepts the system paths of
// a few vendors (Dell, Supermicro, ...) and always reads the first system,
// so it reads nothing from other BMCs, the lab's emulator among them.
func (d *Redfish) Inventory(ctx context.Context, n *driver.Node) (*protocol.Inventory, error) {
	info, err := parseRedfishInfo(n)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 4*d.cfg.CallTimeout)
	defer cancel()
	sys, done, err := d.system(ctx, info, "inventory")
	if err != nil {
		return nil, err
	}
	defer done()
	inv := inventoryOf(sys)
	processors(sys, inv)
	if inv.Memory.PhysicalMB <= 0 {
		mib := memoryMiB(sys)
		inv.Memory = protocol.Memory{Total: mib << 20, PhysicalMB: mib}
	}
	if inv.BMCAddress == nil {
		h := info.host
		inv.BMCAddress = &h
	}
	ifaces, err := sys.EthernetInterfaces()
	if err != nil {
		return nil, fmt.Errorf("bmc: %s: reading the system's ethernet interfaces: %s", info.addr(), cleanErr(err))
	}
	for _, e := range ifaces {
		mac := e.MACAddress
		if mac == "" {
			mac = e.PermanentMACAddress
		}
		if mac == "" {
			continue
		}
		iface := protocol.Interface{Name: e.ID, MACAddress: strings.ToLower(mac), HasCarrier: e.LinkStatus == redfish.LinkUpLinkStatus, LLDP: []protocol.TLV{}}
		if e.SpeedMbps > 0 {
			s := e.SpeedMbps
			iface.SpeedMbps = &s
		}
		inv.Interfaces = append(inv.Interfaces, iface)
	}
	// gofish reads collection members concurrently: order them by name.
	sort.Slice(inv.Interfaces, func(i, j int) bool { return inv.Interfaces[i].Name < inv.Interfaces[j].Name })
	// Disks: Storage drives, else SimpleStorage devices (BMCs offering
	// both list the same disks twice; a missing collection is not an
	// error).
	if st, err := sys.Storage(); err == nil {
		for _, s := range st {
			drives, err := s.Drives()
			if err != nil {
				continue
			}
			for i, dr := range drives {
				if dr.CapacityBytes <= 0 {
					continue
				}
				inv.Disks = append(inv.Disks, protocol.Disk{Name: diskName(dr.Name, s.ID, i), Model: dr.Model,
					Size: dr.CapacityBytes, Serial: optStr(dr.SerialNumber), Vendor: optStr(dr.Manufacturer),
					Rotational: dr.MediaType == redfish.HDDMediaType, Tran: optStr(strings.ToLower(string(dr.Protocol)))})
			}
		}
	}
	if len(inv.Disks) == 0 {
		if ss, err := sys.SimpleStorages(); err == nil {
			for _, s := range ss {
				for i, dev := range s.Devices {
					if dev.CapacityBytes <= 0 {
						continue
					}
					inv.Disks = append(inv.Disks, protocol.Disk{Name: diskName(dev.Name, s.ID, i), Model: dev.Model,
						Size: dev.CapacityBytes, Vendor: optStr(dev.Manufacturer)})
				}
			}
		}
	}
	sort.SliceStable(inv.Disks, func(i, j int) bool { return inv.Disks[i].Name < inv.Disks[j].Name })
	if len(inv.Interfaces) == 0 {
		return nil, fmt.Errorf("bmc: %s: the system reports no ethernet interface with a MAC address: %w", info.addr(), errNoNICs)
	}
	var missing []string
	if inv.CPU.Count <= 0 {
		missing = append(missing, "CPU count")
	}
	if inv.Memory.PhysicalMB <= 0 {
		missing = append(missing, "memory size")
	}
	if missing != nil {
		return nil, fmt.Errorf("bmc: %s: the system does not report its %s: %w", info.addr(), strings.Join(missing, " nor its "), errIncomplete)
	}
	return inv, nil
}

var errIncomplete = errors.New("incomplete inventory")

// system opens a gofish session to the node's BMC and reads its
// ComputerSystem (redfish_system_id, or the only one); done logs out. what
// names the operation in errors. ctx bounds the whole exchange.
func (d *Redfish) system(ctx context.Context, info redfishInfo, what string) (*redfish.ComputerSystem, func(), error) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: !info.verify, RootCAs: info.caPool}} //nolint:gosec // redfish_verify_ca=false asks for it
	c, err := gofish.ConnectContext(ctx, gofish.ClientConfig{Endpoint: info.endpoint(), Username: info.username,
		Password: info.password, Insecure: !info.verify, BasicAuth: !info.session,
		HTTPClient: &http.Client{Transport: tr, Timeout: d.cfg.CallTimeout}})
	if err != nil {
		tr.CloseIdleConnections()
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("bmc: %s did not answer in time (%s): %w", info.addr(), what, ErrNoAnswer)
		}
		return nil, nil, fmt.Errorf("bmc: %s: %s: %s", info.addr(), what, cleanErr(err))
	}
	done := func() {
		c.Logout()
		tr.CloseIdleConnections()
	}
	var sys *redfish.ComputerSystem
	if info.systemID != "" {
		sys, err = redfish.GetComputerSystem(c, info.systemID)
	} else {
		var systems []*redfish.ComputerSystem
		systems, err = c.Service.Systems()
		if err == nil && len(systems) != 1 {
			done()
			return nil, nil, fmt.Errorf("bmc: %s has %d systems; set %s", info.addr(), len(systems), KeyRedfishSystemID)
		}
		if err == nil {
			sys = systems[0]
		}
	}
	if err != nil {
		done()
		return nil, nil, fmt.Errorf("bmc: %s: reading the system (%s): %s", info.addr(), what, cleanErr(err))
	}
	return sys, done, nil
}

// processors refines inv's CPU from the Processors collection: the count
// is the sum of the CPUs' threads (as Ironic reports cpus), the
// architecture is the first CPU's instruction set.
func processors(sys *redfish.ComputerSystem, inv *protocol.Inventory) {
	procs, err := sys.Processors()
	if err != nil {
		return
	}
	sort.Slice(procs, func(i, j int) bool { return procs[i].ID < procs[j].ID })
	threads, sockets := 0, 0
	for _, p := range procs {
		if p.ProcessorType != "" && p.ProcessorType != redfish.CPUProcessorType {
			continue
		}
		if p.Status.State == "Absent" {
			continue
		}
		n := p.TotalThreads
		if n <= 0 {
			n = p.TotalCores
		}
		if n <= 0 {
			n = 1
		}
		threads += n
		sockets++
		if sockets > 1 {
			continue
		}
		if inv.CPU.ModelName == "" {
			inv.CPU.ModelName = p.Model
		}
		if p.MaxSpeedMHz > 0 {
			inv.CPU.Frequency = fmt.Sprint(int(p.MaxSpeedMHz))
		}
		if a := cpuArch(string(p.InstructionSet), string(p.ProcessorArchitecture)); a != "" {
			inv.CPU.Architecture = a
		}
	}
	if threads > 0 {
		inv.CPU.Count = threads
		inv.CPU.SocketCount = sockets
	}
}

// cpuArch maps a Redfish instruction set (or, without one, processor
// architecture) to the kernel's name the agent reports; "" when unknown.
func cpuArch(set, arch string) string {
	switch set {
	case "x86-64":
		return "x86_64"
	case "x86":
		return "i686"
	case "IA-64":
		return "ia64"
	case "ARM-A64":
		return "aarch64"
	case "ARM-A32":
		return "armv7l"
	case "MIPS64":
		return "mips64"
	case "MIPS32":
		return "mips"
	case "PowerISA":
		return "ppc64le"
	case "RV64":
		return "riscv64"
	case "RV32":
		return "riscv32"
	}
	switch arch {
	case "x86":
		return "x86_64"
	case "ARM":
		return "aarch64"
	case "Power":
		return "ppc64le"
	case "RISC-V":
		return "riscv64"
	}
	return ""
}

// memoryMiB sums the system's memory modules, for BMCs without a
// MemorySummary.
func memoryMiB(sys *redfish.ComputerSystem) int64 {
	mods, err := sys.Memory()
	if err != nil {
		return 0
	}
	var total int64
	for _, m := range mods {
		if m.Status.State == "Absent" {
			continue
		}
		total += int64(m.CapacityMiB)
	}
	return total
}

var errNoNICs = errors.New("no NICs")

// inventoryOf maps a ComputerSystem's summaries to the agent's format.
func inventoryOf(sys *redfish.ComputerSystem) *protocol.Inventory {
	cpus := sys.ProcessorSummary.LogicalProcessorCount
	if cpus <= 0 {
		cpus = sys.ProcessorSummary.Count
	}
	memMiB := int64(sys.MemorySummary.TotalSystemMemoryGiB * 1024)
	mode := "bios"
	if strings.EqualFold(string(sys.Boot.BootSourceOverrideMode), "UEFI") {
		mode = "uefi"
	}
	return &protocol.Inventory{
		CPU:          protocol.CPU{ModelName: sys.ProcessorSummary.Model, Count: cpus, Architecture: "x86_64", Flags: []string{}},
		Memory:       protocol.Memory{Total: memMiB << 20, PhysicalMB: memMiB},
		SystemVendor: protocol.SystemVendor{ProductName: sys.Model, SerialNumber: sys.SerialNumber, Manufacturer: sys.Manufacturer},
		Boot:         protocol.Boot{CurrentBootMode: mode},
		Disks:        []protocol.Disk{},
		Interfaces:   []protocol.Interface{},
		Hostname:     sys.HostName,
	}
}

func diskName(name, controller string, i int) string {
	if name != "" {
		return name
	}
	return fmt.Sprintf("%s-%d", controller, i)
}

func optStr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
