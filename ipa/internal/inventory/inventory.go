// Package inventory collects the hardware inventory (IPA's format, see
// protocol.Inventory) from /proc and /sys under a configurable root, so that
// tests can run it against a fake tree.
package inventory

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ferric-metal/ferric/ipa/internal/bmcinfo"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// Collector reads the inventory below Root ("/" in the ramdisk).
type Collector struct {
	Root string
	// BootIF is the PXE MAC (boot.pxe_interface).
	BootIF string
	// ExtraDisks are files used as disks (process mode); they are listed
	// after the real block devices.
	ExtraDisks []string
	// NoBlockDevices skips /sys/block (process mode).
	NoBlockDevices bool
	// MACs, when set, are the only interfaces reported (process mode,
	// --mac): the real interface with each MAC, or a stand-in "mac<i>" with
	// carrier when the machine has none, so that the inventory stays valid
	// for inspection.
	MACs []string
	// BMC reads the BMC's LAN address in-band (bmcinfo.InBand in the
	// agent); nil, or a machine without an IPMI device, leaves bmc_address
	// and bmc_mac null.
	BMC BMCReader
	// Logger receives why the BMC could not be read (default slog.Default).
	Logger *slog.Logger
}

// BMCReader reads the machine's BMC LAN settings.
type BMCReader interface {
	ReadLAN(ctx context.Context) (bmcinfo.LAN, error)
}

func (c *Collector) path(p string) string { return filepath.Join(c.Root, p) }

func (c *Collector) read(p string) string {
	b, err := os.ReadFile(c.path(p))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Collect gathers the inventory.
func (c *Collector) Collect(ctx context.Context) (protocol.Inventory, error) {
	inv := protocol.Inventory{
		CPU:    c.cpu(),
		Memory: c.memory(),
		Disks:  c.disks(),
		SystemVendor: protocol.SystemVendor{
			ProductName: c.read("sys/class/dmi/id/product_name"), SerialNumber: c.read("sys/class/dmi/id/product_serial"),
			Manufacturer: c.read("sys/class/dmi/id/sys_vendor"),
			Firmware: protocol.Firmware{Vendor: c.read("sys/class/dmi/id/bios_vendor"), Version: c.read("sys/class/dmi/id/bios_version"),
				BuildDate: c.read("sys/class/dmi/id/bios_date")},
		},
		Boot:     protocol.Boot{CurrentBootMode: "bios", PXEInterface: strp(c.BootIF)},
		Hostname: c.read("proc/sys/kernel/hostname"),
	}
	if _, err := os.Stat(c.path("sys/firmware/efi")); err == nil {
		inv.Boot.CurrentBootMode = "uefi"
	}
	inv.Interfaces = c.interfaces()
	if len(c.MACs) > 0 {
		inv.Interfaces = onlyMACs(inv.Interfaces, c.MACs)
	}
	if inv.Disks == nil {
		inv.Disks = []protocol.Disk{}
	}
	c.bmc(ctx, &inv)
	return inv, ctx.Err()
}

// bmc fills bmc_address, bmc_v6address and bmc_mac when the BMC answers
// in-band.
func (c *Collector) bmc(ctx context.Context, inv *protocol.Inventory) {
	if c.BMC == nil {
		return
	}
	lan, err := c.BMC.ReadLAN(ctx)
	if err != nil {
		if !errors.Is(err, bmcinfo.ErrNoDevice) {
			log := c.Logger
			if log == nil {
				log = slog.Default()
			}
			log.Warn("inventory: BMC address not readable in-band", "error", err)
		}
		return
	}
	inv.BMCAddress, inv.BMCMAC, inv.BMCV6Address = strp(lan.Address), strp(lan.MAC), strp(lan.V6Address)
}

func (c *Collector) cpu() protocol.CPU {
	cpu := protocol.CPU{Architecture: runtime.GOARCH, Flags: []string{}}
	if cpu.Architecture == "amd64" {
		cpu.Architecture = "x86_64"
	} else if cpu.Architecture == "arm64" {
		cpu.Architecture = "aarch64"
	}
	f, err := os.Open(c.path("proc/cpuinfo"))
	if err != nil {
		return cpu
	}
	defer f.Close()
	sockets := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "processor":
			cpu.Count++
		case "model name":
			cpu.ModelName = v
		case "cpu MHz":
			if cpu.Frequency == "" {
				cpu.Frequency = v
			}
		case "flags", "Features":
			if len(cpu.Flags) == 0 {
				cpu.Flags = strings.Fields(v)
			}
		case "physical id":
			sockets[v] = true
		}
	}
	if mhz := c.read("sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"); mhz != "" {
		if khz, err := strconv.Atoi(mhz); err == nil {
			cpu.Frequency = strconv.Itoa(khz / 1000)
		}
	}
	cpu.SocketCount = max(len(sockets), 1)
	return cpu
}

func (c *Collector) memory() protocol.Memory {
	var m protocol.Memory
	for _, line := range strings.Split(c.read("proc/meminfo"), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				m.Total = kb * 1024
			}
		}
	}
	// Installed memory: the sum of memory blocks is closer to the DIMM size
	// than MemTotal; round MemTotal up to 128 MiB when unavailable.
	if bs := c.read("sys/devices/system/memory/block_size_bytes"); bs != "" {
		if size, err := strconv.ParseInt(bs, 16, 64); err == nil {
			ents, _ := os.ReadDir(c.path("sys/devices/system/memory"))
			n := int64(0)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), "memory") && c.read("sys/devices/system/memory/"+e.Name()+"/online") == "1" {
					n++
				}
			}
			m.PhysicalMB = n * size >> 20
		}
	}
	if m.PhysicalMB == 0 {
		m.PhysicalMB = (m.Total>>20 + 127) / 128 * 128
	}
	return m
}

var skipDisk = []string{"loop", "ram", "zram", "sr", "fd", "md", "dm-", "nbd"}

func (c *Collector) disks() []protocol.Disk {
	var out []protocol.Disk
	if !c.NoBlockDevices {
		ents, _ := os.ReadDir(c.path("sys/block"))
		for _, e := range ents {
			name := e.Name()
			skip := false
			for _, p := range skipDisk {
				if strings.HasPrefix(name, p) {
					skip = true
				}
			}
			base := "sys/block/" + name
			if skip || c.read(base+"/removable") == "1" && strings.HasPrefix(name, "sr") {
				continue
			}
			sectors, _ := strconv.ParseInt(c.read(base+"/size"), 10, 64)
			if sectors == 0 {
				continue
			}
			d := protocol.Disk{Name: "/dev/" + name, Size: sectors * 512,
				Model:      c.read(base + "/device/model"),
				Rotational: c.read(base+"/queue/rotational") == "1",
				Serial:     strp(c.read(base + "/device/serial")),
				Vendor:     strp(c.read(base + "/device/vendor")),
				WWN:        strp(c.read(base + "/device/wwid")),
			}
			if d.Serial == nil {
				d.Serial = strp(c.read(base + "/serial"))
			}
			d.LogicalSectors, _ = strconv.Atoi(c.read(base + "/queue/logical_block_size"))
			d.PhysicalSectors, _ = strconv.Atoi(c.read(base + "/queue/physical_block_size"))
			if strings.HasPrefix(name, "nvme") {
				d.Tran = strp("nvme")
			} else if strings.HasPrefix(name, "vd") {
				d.Tran = strp("virtio")
			}
			if link, err := os.Readlink(c.path(base + "/device")); err == nil {
				hctl := filepath.Base(link)
				if strings.Count(hctl, ":") == 3 {
					d.HCTL = &hctl
				}
			}
			out = append(out, d)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	}
	for _, p := range c.ExtraDisks {
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		size := st.Size()
		if st.Mode()&os.ModeDevice != 0 {
			if f, err := os.Open(p); err == nil {
				if n, err := f.Seek(0, 2); err == nil {
					size = n
				}
				f.Close()
			}
		}
		out = append(out, protocol.Disk{Name: p, Model: "file", Size: size, LogicalSectors: 512, PhysicalSectors: 512})
	}
	return out
}

func (c *Collector) interfaces() []protocol.Interface {
	out := []protocol.Interface{}
	ents, _ := os.ReadDir(c.path("sys/class/net"))
	addrs := map[string][2]string{}
	if ifs, err := net.Interfaces(); err == nil && c.Root == "/" {
		for _, i := range ifs {
			as, _ := i.Addrs()
			var v4, v6 string
			for _, a := range as {
				if ipn, ok := a.(*net.IPNet); ok {
					if ipn.IP.To4() != nil && v4 == "" {
						v4 = ipn.IP.String()
					} else if ipn.IP.To4() == nil && v6 == "" && !ipn.IP.IsLinkLocalUnicast() {
						v6 = ipn.IP.String()
					}
				}
			}
			addrs[i.Name] = [2]string{v4, v6}
		}
	}
	for _, e := range ents {
		name := e.Name()
		base := "sys/class/net/" + name
		if name == "lo" || c.read(base+"/type") != "1" {
			continue
		}
		if _, err := os.Stat(c.path(base + "/device")); err != nil {
			continue // virtual (bridge, veth, ...)
		}
		mac := c.read(base + "/address")
		it := protocol.Interface{Name: name, MACAddress: mac, HasCarrier: c.read(base+"/carrier") == "1", LLDP: []protocol.TLV{},
			Vendor: strp(c.read(base + "/device/vendor")), Product: strp(c.read(base + "/device/device")),
			IPv4Address: strp(addrs[name][0]), IPv6Address: strp(addrs[name][1])}
		if sp, err := strconv.Atoi(c.read(base + "/speed")); err == nil && sp > 0 {
			it.SpeedMbps = &sp
		}
		if link, err := os.Readlink(c.path(base + "/device")); err == nil {
			it.PCIAddress = strp(filepath.Base(link))
		}
		if link, err := os.Readlink(c.path(base + "/device/driver")); err == nil {
			it.Driver = strp(filepath.Base(link))
		}
		out = append(out, it)
	}
	return out
}

// onlyMACs keeps the interfaces with the given MACs, in their order,
// standing in for missing ones.
func onlyMACs(have []protocol.Interface, macs []string) []protocol.Interface {
	out := make([]protocol.Interface, 0, len(macs))
	for i, m := range macs {
		norm, err := protocol.NormalizeMAC(m)
		if err != nil {
			continue
		}
		idx := slices.IndexFunc(have, func(it protocol.Interface) bool {
			n, _ := protocol.NormalizeMAC(it.MACAddress)
			return n == norm
		})
		if idx >= 0 {
			out = append(out, have[idx])
			continue
		}
		out = append(out, protocol.Interface{Name: fmt.Sprintf("mac%d", i), MACAddress: norm, HasCarrier: true, LLDP: []protocol.TLV{}})
	}
	return out
}

// MACs returns the MAC addresses of the physical interfaces (lookup list),
// BootIF first when present.
func MACs(inv protocol.Inventory, bootIF string) []string {
	var out []string
	if bootIF != "" {
		out = append(out, bootIF)
	}
	for _, i := range inv.Interfaces {
		if i.MACAddress != "" && !bytes.EqualFold([]byte(i.MACAddress), []byte(bootIF)) {
			out = append(out, i.MACAddress)
		}
	}
	return out
}
