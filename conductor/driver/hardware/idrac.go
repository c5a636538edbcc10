package hardware

import "github.com/ferric-metal/ferric/conductor/driver"

// idrac is Ironic's idrac hardware type (ironic/drivers/drac.py) over
// Redfish: its idrac-redfish power, management, bios, raid, vendor and
// inspect interfaces are the Redfish driver (Ironic builds them on its
// redfish ones; the Dell OEM extras need an iDRAC), with the generic
// redfish ones where Ironic's idrac type also takes them. Its driver_info
// keys are redfish_*.
func idrac(im impls) *driver.HardwareType {
	rf := driver.Named("redfish", im.redfish)
	dell := driver.Named("idrac-redfish", im.redfish)
	return &driver.HardwareType{
		Name: "idrac",
		Interfaces: map[string]driver.Iface{
			"bios":       driver.Use(dell, rf, noBIOS),
			"boot":       driver.Use(ipxeBoot, pxeBoot),
			"console":    driver.Use(noConsole),
			"deploy":     driver.Use(direct, fakeDeploy, ramdiskDeploy, customAgent),
			"firmware":   driver.Use(rf, noFirmware),
			"inspect":    driver.Use(dell, agentInsp, noInspect),
			"management": driver.Use(dell),
			"network":    driver.Use(noop, flatNet),
			"power":      driver.Use(dell, rf),
			"raid":       driver.Use(dell, noRAID, agentRAID),
			"rescue":     driver.Use(noRescue, agentRescue),
			"storage":    driver.Use(noop),
			"vendor":     driver.Use(dell, rf, noVendor),
		},
		Properties: merge(deployProps, redfishProps),
	}
}
