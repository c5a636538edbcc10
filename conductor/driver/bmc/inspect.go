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
// Redfish resources Ironic's redfish inspection reads (ComputerSystem
// processor and memory summaries, EthernetInterfaces, SimpleStorage and
// Storage drives), using gofish, the Redfish library under bmclib.
// bmclib's own Inventory is not used: it only accepts the resource paths of
// a few vendors (Dell, Supermicro, ASRock), so it reads nothing from other
// BMCs, the lab's emulator among them.
func (d *Redfish) Inventory(ctx context.Context, n *driver.Node) (*protocol.Inventory, error) {
	info, err := parseRedfishInfo(n)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 4*d.cfg.CallTimeout)
	defer cancel()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: !info.verify, RootCAs: info.caPool}} //nolint:gosec // redfish_verify_ca=false asks for it
	defer tr.CloseIdleConnections()
	c, err := gofish.ConnectContext(ctx, gofish.ClientConfig{Endpoint: info.endpoint(), Username: info.username,
		Password: info.password, Insecure: !info.verify, BasicAuth: !info.session,
		HTTPClient: &http.Client{Transport: tr, Timeout: d.cfg.CallTimeout}})
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("bmc: %s did not answer within %s (inventory): %w", info.addr(), 4*d.cfg.CallTimeout, ErrNoAnswer)
		}
		return nil, fmt.Errorf("bmc: %s: inventory: %s", info.addr(), cleanErr(err))
	}
	defer c.Logout()
	var sys *redfish.ComputerSystem
	if info.systemID != "" {
		sys, err = redfish.GetComputerSystem(c, info.systemID)
	} else {
		var systems []*redfish.ComputerSystem
		systems, err = c.Service.Systems()
		if err == nil && len(systems) != 1 {
			return nil, fmt.Errorf("bmc: %s has %d systems; set %s", info.addr(), len(systems), KeyRedfishSystemID)
		}
		if err == nil {
			sys = systems[0]
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bmc: %s: reading the system: %s", info.addr(), cleanErr(err))
	}
	inv := inventoryOf(sys)
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
	// Disks: SimpleStorage devices, then Storage drives (BMCs offer one or
	// the other; a missing collection is not an error).
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
					Rotational: dr.MediaType == redfish.HDDMediaType})
			}
		}
	}
	sort.SliceStable(inv.Disks, func(i, j int) bool { return inv.Disks[i].Name < inv.Disks[j].Name })
	if len(inv.Interfaces) == 0 {
		return nil, fmt.Errorf("bmc: %s: the system reports no ethernet interface with a MAC address: %w", info.addr(), errNoNICs)
	}
	return inv, nil
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
