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
// firmware and out-of-band inspection through the BMC's Redfish service.
func redfish(im impls) *driver.HardwareType {
	rf := driver.Named("redfish", im.redfish)
	return &driver.HardwareType{
		Name: "redfish",
		Interfaces: map[string]driver.Iface{
			"bios":       driver.Use(rf, noBIOS),
			"boot":       driver.Use(ipxeBoot, pxeBoot),
			"console":    driver.Use(noConsole),
			"deploy":     driver.Use(direct, fakeDeploy),
			"firmware":   driver.Use(noFirmware, rf),
			"inspect":    driver.Use(rf, agentInsp, noInspect),
			"management": driver.Use(rf),
			"network":    driver.Use(noop),
			"power":      driver.Use(rf),
			"raid":       driver.Use(noRAID, agentRAID),
			"rescue":     driver.Use(noRescue),
			"storage":    driver.Use(noop),
			"vendor":     driver.Use(noVendor, rf),
		},
		Properties: merge(deployProps, redfishProps),
	}
}
