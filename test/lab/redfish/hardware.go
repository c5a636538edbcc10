package redfish

import (
	"fmt"
	"hash/fnv"
	"net/http"
	"strings"
)

// Hardware is what a system reports about its components (for
// out-of-band inspection). Zero fields take DefaultHardware's values.
type Hardware struct {
	// CPUs is the number of logical CPUs (threads), spread over Sockets
	// processors (default 1).
	CPUs     int
	Sockets  int
	CPUModel string
	// CPUArch is the Redfish InstructionSet ("x86-64", "ARM-A64", ...).
	CPUArch string
	CPUMHz  int
	// MemoryGiB is the installed memory, reported in MemorySummary and as
	// one DIMM in the Memory collection.
	MemoryGiB float64
	// Disks; nil means DefaultHardware's, an empty slice none.
	Disks []Disk
	// MACs of the system's NICs. nil means one NIC with the machine's MAC
	// (when the Machine is a MACAddresser) or a stable made-up one; an
	// empty slice means no NIC.
	MACs         []string
	Manufacturer string
	Model        string
	Serial       string
	// Storage is how disks are exposed: "" both as Storage drives and as
	// SimpleStorage devices (as many BMCs do), "storage" or "simple" only
	// one of them.
	Storage string
	// RAIDTypes are the RAID levels the storage controller can build
	// (Redfish RAIDType values); nil means DefaultRAIDTypes, an empty
	// slice a controller without RAID (a plain HBA).
	RAIDTypes []string
	// VolumeApplyTime is when the controller builds and deletes volumes:
	// "" at once (Immediate), "OnReset" when the system next starts (the
	// request answers 202 with a task), as iDRACs do.
	VolumeApplyTime string
	// BIOSVersion is the system's BiosVersion, BMCVersion its manager's
	// FirmwareVersion.
	BIOSVersion, BMCVersion string
}

// Disk is one drive.
type Disk struct {
	Size                  int64
	Model, Vendor, Serial string
	// HDD: rotational media (MediaType HDD, else SSD).
	HDD bool
}

// MACAddresser is a Machine that knows its NIC's MAC address.
type MACAddresser interface {
	MACAddress() string
}

// DefaultHardware is a lab machine's: 2 CPUs, 4 GiB, one 10 GiB disk.
var DefaultHardware = Hardware{CPUs: 2, Sockets: 1, CPUModel: "QEMU Virtual CPU", CPUArch: "x86-64", CPUMHz: 2000,
	MemoryGiB: 4, Disks: []Disk{{Size: 10 << 30, Model: "QEMU HARDDISK", Vendor: "QEMU"}},
	Manufacturer: "ferric", Model: "QEMU lab machine", BIOSVersion: "1.16.3-ferric", BMCVersion: "0.1.0"}

func (s *Server) hardware(sys *system) Hardware {
	h := s.hw[sys.id]
	d := DefaultHardware
	if h.CPUs <= 0 {
		h.CPUs = d.CPUs
	}
	if h.Sockets <= 0 || h.Sockets > h.CPUs {
		h.Sockets = d.Sockets
	}
	if h.CPUModel == "" {
		h.CPUModel = d.CPUModel
	}
	if h.CPUArch == "" {
		h.CPUArch = d.CPUArch
	}
	if h.CPUMHz == 0 {
		h.CPUMHz = d.CPUMHz
	}
	if h.MemoryGiB == 0 {
		h.MemoryGiB = d.MemoryGiB
	}
	if h.Disks == nil {
		h.Disks = d.Disks
	}
	if h.Manufacturer == "" {
		h.Manufacturer = d.Manufacturer
	}
	if h.Model == "" {
		h.Model = d.Model
	}
	if h.Serial == "" {
		h.Serial = "FERRIC-" + sys.id
	}
	if h.BIOSVersion == "" {
		h.BIOSVersion = d.BIOSVersion
	}
	if h.BMCVersion == "" {
		h.BMCVersion = d.BMCVersion
	}
	if h.RAIDTypes == nil {
		h.RAIDTypes = DefaultRAIDTypes
	}
	if h.MACs == nil {
		mac := ""
		if ma, ok := sys.m.(MACAddresser); ok {
			mac = ma.MACAddress()
		}
		if mac == "" {
			f := fnv.New32a()
			f.Write([]byte(sys.id))
			v := f.Sum32()
			mac = fmt.Sprintf("52:54:00:%02x:%02x:%02x", byte(v>>16), byte(v>>8), byte(v))
		}
		h.MACs = []string{mac}
	}
	return h
}

// systemHardware is what the ComputerSystem resource shows of h.
func systemHardware(self string, h Hardware) obj {
	o := obj{
		"Manufacturer": h.Manufacturer,
		"Model":        h.Model,
		"SerialNumber": h.Serial,
		"BiosVersion":  h.BIOSVersion,
		"ProcessorSummary": obj{"Count": h.Sockets, "LogicalProcessorCount": h.CPUs, "Model": h.CPUModel,
			"Status": obj{"State": "Enabled", "Health": "OK"}},
		"MemorySummary":      obj{"TotalSystemMemoryGiB": h.MemoryGiB, "Status": obj{"State": "Enabled", "Health": "OK"}},
		"Processors":         ref(self + "/Processors"),
		"Memory":             ref(self + "/Memory"),
		"EthernetInterfaces": ref(self + "/EthernetInterfaces"),
	}
	if h.Storage != "storage" {
		o["SimpleStorage"] = ref(self + "/SimpleStorage")
	}
	if h.Storage != "simple" {
		o["Storage"] = ref(self + "/Storage")
	}
	return o
}

func collection(w http.ResponseWriter, self, typ, name string, members []obj) {
	writeJSON(w, http.StatusOK, obj{"@odata.id": self, "@odata.type": "#" + typ + "Collection." + typ + "Collection",
		"Name": name, "Members": members, "Members@odata.count": len(members)})
}

var enabled = obj{"State": "Enabled", "Health": "OK"}

// hardwareRoute serves the GET of a system's component resource sub
// (Processors, Memory, EthernetInterfaces, SimpleStorage, Storage and
// their members); false when sub is none of them.
func (s *Server) hardwareRoute(w http.ResponseWriter, sys *system, sub string) bool {
	h := s.hardware(sys)
	self := root + "/Systems/" + sys.id
	refs := func(kind, prefix string, n int) []obj {
		m := []obj{}
		for i := range n {
			m = append(m, ref(fmt.Sprintf("%s/%s/%s%d", self, kind, prefix, i)))
		}
		return m
	}
	var idx int
	member := func(kind, prefix string, n int) bool {
		rest, ok := strings.CutPrefix(sub, kind+"/"+prefix)
		if !ok {
			return false
		}
		_, err := fmt.Sscanf(rest, "%d", &idx)
		return err == nil && fmt.Sprint(idx) == rest && idx < n
	}
	hasSimple, hasStorage := h.Storage != "storage", h.Storage != "simple"
	switch {
	case sub == "Processors":
		collection(w, self+"/"+sub, "Processor", "Processors", refs("Processors", "cpu", h.Sockets))
	case member("Processors", "cpu", h.Sockets):
		threads := h.CPUs / h.Sockets
		if idx < h.CPUs%h.Sockets {
			threads++
		}
		arch := "x86"
		switch {
		case strings.HasPrefix(h.CPUArch, "ARM"):
			arch = "ARM"
		case strings.HasPrefix(h.CPUArch, "Power"):
			arch = "Power"
		case strings.HasPrefix(h.CPUArch, "MIPS"):
			arch = "MIPS"
		case strings.HasPrefix(h.CPUArch, "RV"):
			arch = "RISC-V"
		}
		writeJSON(w, http.StatusOK, obj{"@odata.id": self + "/" + sub, "@odata.type": "#Processor.v1_7_0.Processor",
			"Id": fmt.Sprintf("cpu%d", idx), "Name": fmt.Sprintf("Processor %d", idx), "Socket": fmt.Sprintf("CPU %d", idx),
			"ProcessorType": "CPU", "ProcessorArchitecture": arch, "InstructionSet": h.CPUArch, "Model": h.CPUModel,
			"Manufacturer": "QEMU", "MaxSpeedMHz": h.CPUMHz, "TotalCores": threads, "TotalThreads": threads, "Status": enabled})
	case sub == "Memory":
		collection(w, self+"/"+sub, "Memory", "Memory", refs("Memory", "dimm", 1))
	case member("Memory", "dimm", 1):
		writeJSON(w, http.StatusOK, obj{"@odata.id": self + "/" + sub, "@odata.type": "#Memory.v1_7_0.Memory",
			"Id": "dimm0", "Name": "DIMM 0", "MemoryType": "DRAM", "MemoryDeviceType": "DDR4",
			"CapacityMiB": int64(h.MemoryGiB * 1024), "Status": enabled})
	case sub == "EthernetInterfaces":
		collection(w, self+"/"+sub, "EthernetInterface", "Ethernet Interfaces", refs("EthernetInterfaces", "nic", len(h.MACs)))
	case member("EthernetInterfaces", "nic", len(h.MACs)):
		mac := h.MACs[idx]
		writeJSON(w, http.StatusOK, obj{"@odata.id": self + "/" + sub, "@odata.type": "#EthernetInterface.v1_4_0.EthernetInterface",
			"Id": fmt.Sprintf("nic%d", idx), "Name": fmt.Sprintf("nic%d", idx), "MACAddress": mac, "PermanentMACAddress": mac,
			"SpeedMbps": 1000, "LinkStatus": "LinkUp", "Status": enabled})
	case hasSimple && sub == "SimpleStorage":
		collection(w, self+"/"+sub, "SimpleStorage", "Simple Storage", []obj{ref(self + "/SimpleStorage/virtio")})
	case hasSimple && sub == "SimpleStorage/virtio":
		devs := []obj{}
		for i, d := range h.Disks {
			devs = append(devs, obj{"Name": diskName(i), "Manufacturer": d.Vendor, "Model": d.Model,
				"CapacityBytes": d.Size, "Status": enabled})
		}
		writeJSON(w, http.StatusOK, obj{"@odata.id": self + "/" + sub, "@odata.type": "#SimpleStorage.v1_2_0.SimpleStorage",
			"Id": "virtio", "Name": "virtio", "Devices": devs, "Status": enabled})
	case hasStorage && sub == "Storage":
		collection(w, self+"/"+sub, "Storage", "Storage", []obj{ref(self + "/Storage/1")})
	case hasStorage && sub == "Storage/1":
		s.getStorage(w, sys, h)
	case hasStorage && sub == "Storage/1/Volumes":
		s.listVolumes(w, sys)
	case hasStorage && strings.HasPrefix(sub, "Storage/1/Volumes/"):
		s.getVolume(w, sys, strings.TrimPrefix(sub, "Storage/1/Volumes/"))
	case hasStorage && member("Storage/1/Drives", "", len(h.Disks)):
		d := h.Disks[idx]
		media := "SSD"
		if d.HDD {
			media = "HDD"
		}
		serial := d.Serial
		if serial == "" {
			serial = fmt.Sprintf("%s-%s", h.Serial, diskName(idx))
		}
		writeJSON(w, http.StatusOK, obj{"@odata.id": self + "/" + sub, "@odata.type": "#Drive.v1_7_0.Drive",
			"Id": fmt.Sprint(idx), "Name": diskName(idx), "Manufacturer": d.Vendor, "Model": d.Model, "SerialNumber": serial,
			"CapacityBytes": d.Size, "MediaType": media, "Protocol": "SATA", "Status": enabled,
			"IndicatorLED": s.LED(self + "/" + sub), "Links": obj{"Volumes": s.driveVolumes(sys, idx)}})
	default:
		return false
	}
	return true
}

func diskName(i int) string { return fmt.Sprintf("sd%c", 'a'+i) }
