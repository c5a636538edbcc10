// Package hardware registers the hardware types a ferric conductor serves
// (fake-hardware, ipmi, redfish, idrac, manual-management): for each, the
// implementations it enables for every interface kind and its defaults.
// The API (node interfaces, GET /v1/drivers) and the manager read only
// this registry.
//
// To add:
//   - a hardware type: one function here returning its
//     driver.HardwareType (see redfish.go), and its line in New; nothing
//     else changes. It may name the implementations other types use
//     (one object each, in impls) under their names or its own.
//   - an implementation of an interface kind (a redfish raid or vendor
//     interface, a virtual media boot): its object (in driver/bmc, or
//     with the generic ones below), and driver.Named(name, object) in the
//     types that enable it.
//   - a capability the manager needs (driver.RAID, a virtual media
//     boot): a small interface in package driver that the object
//     implements; the manager asks for it by type assertion on the
//     node's implementation of that kind (manager/drivers.go).
package hardware

import (
	"errors"
	"log/slog"
	"strings"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/driver/bmc"
	"github.com/ferric-metal/ferric/conductor/driver/fake"
	"github.com/ferric-metal/ferric/conductor/driver/vmedia"
)

// Config configures the implementations.
type Config struct {
	// Log receives the BMC drivers' logs (default slog.Default()).
	Log *slog.Logger
	// VirtualMediaBoot, when set, is the redfish hardware type's
	// redfish-virtual-media boot interface; it gets the Redfish driver
	// as its virtual media.
	VirtualMediaBoot *vmedia.Boot
	// HTTPSBoot, when set, is the redfish hardware type's redfish-https
	// boot interface (UEFI HTTP boot); it gets the Redfish driver to set
	// the boot URI.
	HTTPSBoot *vmedia.HTTPSBoot
	// NetworkInstance, when set, prepares and undoes what the ipxe and
	// pxe boot interfaces serve of a ramdisk deploy's instance (the
	// conductor's cached copies of its images).
	NetworkInstance driver.InstanceBooter
	// Neutron, when set, is the neutron network interface every hardware
	// type offers (conductor/network/neutron).
	Neutron NeutronNetwork
}

// NeutronNetwork is what the neutron network interface does.
type NeutronNetwork interface {
	driver.VIFNetwork
	driver.NetworkSwitcher
}

// New returns the registry of the hardware types, in the order the API
// lists them.
func New(cfg Config) *driver.Registry {
	im := newImpls(cfg)
	types := []*driver.HardwareType{
		fakeHardware(im),
		ipmi(im),
		redfish(im),
		idrac(im),
		manualManagement(im),
	}
	if cfg.NetworkInstance != nil {
		// The network boot interfaces every type names, with the
		// conductor's instance images.
		nb := netBoot{instance: cfg.NetworkInstance}
		for _, t := range types {
			for _, name := range []string{"ipxe", "pxe"} {
				if t.Accepts("boot", name) {
					t.Interfaces["boot"] = t.Interfaces["boot"].With(name, nb)
				}
			}
		}
	}
	if cfg.Neutron != nil {
		for _, t := range types {
			t.Interfaces["network"] = t.Interfaces["network"].With("neutron", cfg.Neutron)
		}
	}
	return driver.MustRegistry(types...)
}

// impls are the implementations the hardware types share, one object
// each, so that every hardware type naming "redfish" calls the same BMC
// driver.
type impls struct {
	ipmitool *bmc.IPMI
	socat    *bmc.IPMISocatConsole
	redfish  *bmc.Redfish
	vmedia   *vmedia.Boot // nil: not offered
	https    *vmedia.HTTPSBoot
}

func newImpls(cfg Config) impls {
	bcfg := bmc.Config{Logger: cfg.Log}
	im := impls{ipmitool: bmc.NewIPMI(bcfg), socat: &bmc.IPMISocatConsole{}, redfish: bmc.NewRedfish(bcfg), vmedia: cfg.VirtualMediaBoot, https: cfg.HTTPSBoot}
	if im.vmedia != nil {
		im.vmedia.SetMedia(im.redfish)
	}
	if im.https != nil {
		im.https.SetBooter(im.redfish)
	}
	return im
}

// The implementations several hardware types enable.
var (
	fakeImpl    = driver.Named("fake", fake.Interface{})
	fakePower   = driver.Named("fake", fake.Power{})
	fakeDeploy  = driver.Named("fake", fake.Deploy{})
	noop        = driver.Named("noop", fake.Noop{})
	flatNet     = driver.Named("flat", flatNetwork{})
	direct      = driver.Named("direct", agentDeploy{})
	agentInsp   = driver.Named("agent", agentInspect{})
	agentRAID   = driver.Named("agent", agentRAIDImpl{})
	ipxeBoot    = driver.Named("ipxe", netBoot{})
	pxeBoot     = driver.Named("pxe", netBoot{})
	noBIOS      = driver.Named("no-bios", nil)
	noConsole   = driver.Named("no-console", nil)
	noFirmware  = driver.Named("no-firmware", nil)
	noInspect   = driver.Named("no-inspect", nil)
	noRAID      = driver.Named("no-raid", nil)
	noRescue    = driver.Named("no-rescue", nil)
	noVendor    = driver.Named("no-vendor", nil)
	deployProps = map[string]string{
		"deploy_kernel":                "UUID (from the image store) or URL of the deployment kernel. Required.",
		"deploy_ramdisk":               "UUID (from the image store) or URL of the ramdisk with the agent. Required.",
		"kernel_append_params":         "Additional kernel parameters for the deploy ramdisk. Optional.",
		"force_persistent_boot_device": "Boot device is persistent (\"Always\"), one-off (\"Never\") or as requested (\"Default\"). Optional.",
	}
)

// flatNetwork is Ironic's flat network interface: the instance and the
// ramdisk share one network, and each VIF is bound to a free port.
type flatNetwork struct{}

// BindsVIFs marks the flat interface a VIF binder.
func (flatNetwork) BindsVIFs() {}

// agentDeploy is the direct deploy: the ramdisk's agent writes the image.
type agentDeploy struct{}

func (agentDeploy) UsesAgent() bool { return true }

// agentInspect is in-band inspection: the ramdisk's agent posts the
// inventory.
type agentInspect struct{}

func (agentInspect) InspectsInRamdisk() {}

// agentRAIDImpl is the agent raid interface: the ramdisk's agent runs its
// RAID steps (the conductor only passes them on).
type agentRAIDImpl struct{}

// BuildsWithAgent marks the RAID built by the ramdisk's agent.
func (agentRAIDImpl) BuildsWithAgent() {}

// netBoot is the pxe and ipxe boot: the machine network-boots the deploy
// ramdisk the node's driver_info names.
type netBoot struct {
	instance driver.InstanceBooter // nil: nothing to prepare
}

var (
	_ driver.Deploy           = agentDeploy{}
	_ driver.RamdiskInspector = agentInspect{}
	_ driver.Boot             = netBoot{}
	_ driver.VIFBinder        = flatNetwork{}
)

// Validate reports the deploy ramdisk's missing driver_info keys.
func (netBoot) Validate(n *driver.Node) error {
	var missing []string
	for _, k := range []string{"deploy_kernel", "deploy_ramdisk"} {
		if v, _ := n.DriverInfo[k].(string); v == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return errors.New("Some parameters were missing in node's driver_info. Missing are: " + strings.Join(missing, ", "))
	}
	return nil
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func fakeHardware(impls) *driver.HardwareType {
	return &driver.HardwareType{
		Name: "fake-hardware",
		Interfaces: map[string]driver.Iface{
			"bios":       driver.Use(fakeImpl, noBIOS),
			"boot":       driver.Use(fakeImpl, ipxeBoot, pxeBoot),
			"console":    driver.Use(fakeImpl, noConsole),
			"deploy":     driver.Use(fakeDeploy, direct, ramdiskDeploy, customAgent),
			"firmware":   driver.Use(fakeImpl, noFirmware),
			"inspect":    driver.Use(fakeImpl, agentInsp, noInspect),
			"management": driver.Use(driver.Named("fake", fake.Management{})),
			"network":    driver.Use(noop, flatNet),
			"power":      driver.Use(fakePower),
			"raid":       driver.Use(fakeImpl, noRAID, agentRAID),
			"rescue":     driver.Use(fakeImpl, noRescue, agentRescue),
			"storage":    driver.Use(noop, fakeImpl),
			"vendor":     driver.Use(fakeImpl, noVendor),
		},
		Properties: map[string]string{},
	}
}

func ipmi(im impls) *driver.HardwareType {
	ipmitool := driver.Named("ipmitool", im.ipmitool)
	return &driver.HardwareType{
		Name: "ipmi",
		Interfaces: map[string]driver.Iface{
			"bios":       driver.Use(noBIOS),
			"boot":       driver.Use(ipxeBoot, pxeBoot),
			"console":    driver.Use(noConsole, driver.Named("ipmitool-socat", im.socat)),
			"deploy":     driver.Use(direct, fakeDeploy, ramdiskDeploy, customAgent),
			"firmware":   driver.Use(noFirmware),
			"inspect":    driver.Use(agentInsp, noInspect),
			"management": driver.Use(ipmitool),
			"network":    driver.Use(noop, flatNet),
			"power":      driver.Use(ipmitool),
			"raid":       driver.Use(noRAID, agentRAID),
			"rescue":     driver.Use(noRescue, agentRescue),
			"storage":    driver.Use(noop),
			"vendor":     driver.Use(ipmitool, noVendor),
		},
		Properties: merge(deployProps, map[string]string{
			"ipmi_address":       "IP address or hostname of the node's BMC. Required.",
			"ipmi_port":          "Remote IPMI RMCP port (default 623). Optional.",
			"ipmi_username":      "Username for the BMC. Optional.",
			"ipmi_password":      "Password for the BMC. Optional.",
			"ipmi_cipher_suite":  "IPMI 2.0 cipher suite to use (ipmitool -C). Optional.",
			"ipmi_terminal_port": "TCP port the conductor serves the node's serial console on (ipmitool-socat console). Optional: without it, a port of the conductor's --console-port-range.",
		}),
	}
}

func manualManagement(impls) *driver.HardwareType {
	return &driver.HardwareType{
		Name: "manual-management",
		Interfaces: map[string]driver.Iface{
			"bios":       driver.Use(noBIOS),
			"boot":       driver.Use(ipxeBoot, pxeBoot),
			"console":    driver.Use(noConsole),
			"deploy":     driver.Use(direct, fakeDeploy, ramdiskDeploy, customAgent),
			"firmware":   driver.Use(noFirmware),
			"inspect":    driver.Use(agentInsp, noInspect),
			"management": driver.Use(driver.Named("noop", fake.NoopManagement{})),
			"network":    driver.Use(noop, flatNet),
			"power":      driver.Use(fakePower),
			"raid":       driver.Use(noRAID, agentRAID),
			"rescue":     driver.Use(noRescue, agentRescue),
			"storage":    driver.Use(noop),
			"vendor":     driver.Use(noVendor),
		},
		Properties: deployProps,
	}
}
