package hardware

import "github.com/ferric-metal/ferric/conductor/driver"

// redfishProps are the driver_info keys of the Redfish BMC driver.
var redfishProps = map[string]string{
	"redfish_address":   "URL (or host) of the Redfish service. Required.",
	"redfish_system_id": "Redfish path of the ComputerSystem. Optional if the BMC has one system.",
	"redfish_username":  "Username for the BMC. Optional.",
	"redfish_password":  "Password for the BMC. Optional.",
	"redfish_verify_ca": "Verify the BMC's TLS certificate (true/false or a CA bundle path). Optional.",
}

// redfish is the redfish hardware type: power, management, BIOS,
// firmware, hardware RAID, BMC event subscriptions (vendor) and
// out-of-band inspection through the BMC's Redfish service. Each kind
// lists its implementations in the order of Ironic's
// supported_<kind>_interfaces (ironic/drivers/redfish.py), so the default
// is the one Ironic picks when the conductor enables them all, as metal3's
// Ironic does. When the conductor offers them, the ramdisk also boots from
// virtual media (redfish-virtual-media) and over UEFI HTTP (redfish-https).
func redfish(im impls) *driver.HardwareType {
	rf := driver.Named("redfish", im.redfish)
	boot := driver.Use(ipxeBoot, pxeBoot)
	if im.vmedia != nil {
		boot = boot.With("redfish-virtual-media", im.vmedia)
	}
	if im.https != nil {
		boot = boot.With("redfish-https", im.https)
	}
	return &driver.HardwareType{
		Name: "redfish",
		Interfaces: map[string]driver.Iface{
			"bios":       driver.Use(rf, noBIOS),
			"boot":       boot,
			"console":    driver.Use(noConsole),
			"deploy":     driver.Use(direct, fakeDeploy, ramdiskDeploy, customAgent),
			"firmware":   driver.Use(rf, noFirmware),
			"inspect":    driver.Use(rf, agentInsp, noInspect),
			"management": driver.Use(rf),
			"network":    driver.Use(noop, flatNet),
			"power":      driver.Use(rf),
			"raid":       driver.Use(rf, noRAID, agentRAID),
			"rescue":     driver.Use(noRescue, agentRescue),
			"storage":    driver.Use(noop),
			"vendor":     driver.Use(rf, noVendor),
		},
		Properties: merge(deployProps, redfishProps),
	}
}
