package protocol

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
	Name        string     `json:"name"`
	MACAddress  string     `json:"mac_address"`
	IPv4Address *string    `json:"ipv4_address"`
	IPv6Address *string    `json:"ipv6_address"`
	HasCarrier  bool       `json:"has_carrier"`
	LLDP        [][]string `json:"lldp"`
	Vendor      *string    `json:"vendor"`
	Product     *string    `json:"product"`
	ClientID    *string    `json:"client_id"`
	Biosdevname *string    `json:"biosdevname"`
	SpeedMbps   *int       `json:"speed_mbps,omitempty"`
	PCIAddress  *string    `json:"pci_address,omitempty"`
	Driver      *string    `json:"driver,omitempty"`
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
