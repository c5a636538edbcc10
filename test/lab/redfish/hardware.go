package redfish

import (
	"fmt"
	"net/http"
)

// Hardware is what a system reports about its components (for
// out-of-band inspection). Zero fields take DefaultHardware's values.
type Hardware struct {
	CPUs      int
	CPUModel  string
	MemoryGiB float64
	// Disks are sizes in bytes.
	Disks []int64
	// MACs of the system's NICs.
	MACs   []string
	Serial string
}

// DefaultHardware is a lab machine's: 2 CPUs, 4 GiB, one 10 GiB disk.
var DefaultHardware = Hardware{CPUs: 2, CPUModel: "QEMU Virtual CPU", MemoryGiB: 4, Disks: []int64{10 << 30}}

func (s *Server) hardware(sys *system) Hardware {
	h := s.hw[sys.id]
	d := DefaultHardware
	if h.CPUs == 0 {
		h.CPUs = d.CPUs
	}
	if h.CPUModel == "" {
		h.CPUModel = d.CPUModel
	}
	if h.MemoryGiB == 0 {
		h.MemoryGiB = d.MemoryGiB
	}
	if h.Disks == nil {
		h.Disks = d.Disks
	}
	if h.Serial == "" {
		h.Serial = "FERRIC-" + sys.id
	}
	return h
}

// hardwareRoute serves EthernetInterfaces and SimpleStorage of a system.
func (s *Server) hardwareRoute(w http.ResponseWriter, sys *system, sub string) bool {
	h := s.hardware(sys)
	self := root + "/Systems/" + sys.id
	switch sub {
	case "EthernetInterfaces":
		members := []obj{}
		for i := range h.MACs {
			members = append(members, ref(fmt.Sprintf("%s/EthernetInterfaces/nic%d", self, i)))
		}
		writeJSON(w, http.StatusOK, obj{"@odata.id": self + "/EthernetInterfaces", "@odata.type": "#EthernetInterfaceCollection.EthernetInterfaceCollection",
			"Name": "Ethernet Interfaces", "Members": members, "Members@odata.count": len(members)})
		return true
	case "SimpleStorage":
		writeJSON(w, http.StatusOK, obj{"@odata.id": self + "/SimpleStorage", "@odata.type": "#SimpleStorageCollection.SimpleStorageCollection",
			"Name": "Simple Storage", "Members": []obj{ref(self + "/SimpleStorage/virtio")}, "Members@odata.count": 1})
		return true
	case "SimpleStorage/virtio":
		devs := []obj{}
		for i, size := range h.Disks {
			devs = append(devs, obj{"Name": fmt.Sprintf("vd%c", 'a'+i), "Manufacturer": "QEMU", "Model": "virtio-blk",
				"CapacityBytes": size, "Status": obj{"State": "Enabled", "Health": "OK"}})
		}
		writeJSON(w, http.StatusOK, obj{"@odata.id": self + "/SimpleStorage/virtio", "@odata.type": "#SimpleStorage.v1_2_0.SimpleStorage",
			"Id": "virtio", "Name": "virtio", "Devices": devs})
		return true
	}
	for i, mac := range h.MACs {
		if sub == fmt.Sprintf("EthernetInterfaces/nic%d", i) {
			writeJSON(w, http.StatusOK, obj{"@odata.id": self + "/" + sub, "@odata.type": "#EthernetInterface.v1_4_0.EthernetInterface",
				"Id": fmt.Sprintf("nic%d", i), "Name": fmt.Sprintf("nic%d", i), "MACAddress": mac, "PermanentMACAddress": mac,
				"SpeedMbps": 1000, "LinkStatus": "LinkUp", "Status": obj{"State": "Enabled", "Health": "OK"}})
			return true
		}
	}
	return false
}
