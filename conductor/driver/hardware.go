package driver

import "slices"

// Interface kinds of a hardware type, as Ironic names them.
var InterfaceKinds = []string{
	"bios", "boot", "console", "deploy", "firmware", "inspect", "management",
	"network", "power", "raid", "rescue", "storage", "vendor",
}

// Iface lists the implementations a hardware type accepts for one interface
// kind and the default one.
type Iface struct {
	Default string
	Enabled []string
}

// HardwareType is an Ironic hardware type ("driver" in the API).
type HardwareType struct {
	Name       string
	Interfaces map[string]Iface
	// Properties documents the driver_info keys (key -> help text).
	Properties map[string]string
}

// Accepts reports whether impl is enabled for kind.
func (h *HardwareType) Accepts(kind, impl string) bool {
	return slices.Contains(h.Interfaces[kind].Enabled, impl)
}

func iface(def string, more ...string) Iface {
	return Iface{Default: def, Enabled: append([]string{def}, more...)}
}

var deployProps = map[string]string{
	"deploy_kernel":                "UUID (from the image store) or URL of the deployment kernel. Required.",
	"deploy_ramdisk":               "UUID (from the image store) or URL of the ramdisk with the agent. Required.",
	"kernel_append_params":         "Additional kernel parameters for the deploy ramdisk. Optional.",
	"force_persistent_boot_device": "Boot device is persistent (\"Always\"), one-off (\"Never\") or as requested (\"Default\"). Optional.",
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

// HardwareTypes returns the hardware types this conductor serves.
func HardwareTypes() []*HardwareType {
	return []*HardwareType{
		{
			Name: "fake-hardware",
			Interfaces: map[string]Iface{
				"bios": iface("fake", "no-bios"), "boot": iface("fake", "ipxe", "pxe"),
				"console": iface("fake", "no-console"), "deploy": iface("fake", "direct"),
				"firmware": iface("fake", "no-firmware"), "inspect": iface("fake", "agent", "no-inspect"),
				"management": iface("fake"), "network": iface("noop"), "power": iface("fake"),
				"raid": iface("fake", "no-raid", "agent"), "rescue": iface("fake", "no-rescue"),
				"storage": iface("noop", "fake"), "vendor": iface("fake", "no-vendor"),
			},
			Properties: map[string]string{},
		},
		{
			Name: "ipmi",
			Interfaces: map[string]Iface{
				"bios": iface("no-bios"), "boot": iface("ipxe", "pxe"), "console": iface("no-console"),
				"deploy": iface("direct", "fake"), "firmware": iface("no-firmware"),
				"inspect": iface("agent", "no-inspect"), "management": iface("ipmitool"),
				"network": iface("noop"), "power": iface("ipmitool"), "raid": iface("no-raid", "agent"),
				"rescue": iface("no-rescue"), "storage": iface("noop"), "vendor": iface("no-vendor", "ipmitool"),
			},
			Properties: merge(deployProps, map[string]string{
				"ipmi_address":      "IP address or hostname of the node's BMC. Required.",
				"ipmi_port":         "Remote IPMI RMCP port (default 623). Optional.",
				"ipmi_username":     "Username for the BMC. Optional.",
				"ipmi_password":     "Password for the BMC. Optional.",
				"ipmi_cipher_suite": "IPMI 2.0 cipher suite to use (ipmitool -C). Optional.",
			}),
		},
		{
			Name: "redfish",
			Interfaces: map[string]Iface{
				"bios": iface("redfish", "no-bios"), "boot": iface("ipxe", "pxe"), "console": iface("no-console"),
				"deploy": iface("direct", "fake"), "firmware": iface("no-firmware", "redfish"),
				"inspect": iface("redfish", "agent", "no-inspect"), "management": iface("redfish"),
				"network": iface("noop"), "power": iface("redfish"), "raid": iface("no-raid", "agent"),
				"rescue": iface("no-rescue"), "storage": iface("noop"), "vendor": iface("no-vendor", "redfish"),
			},
			Properties: merge(deployProps, map[string]string{
				"redfish_address":   "URL (or host) of the Redfish service. Required.",
				"redfish_system_id": "Redfish path of the ComputerSystem. Optional if the BMC has one system.",
				"redfish_username":  "Username for the BMC. Optional.",
				"redfish_password":  "Password for the BMC. Optional.",
				"redfish_verify_ca": "Verify the BMC's TLS certificate (true/false or a CA bundle path). Optional.",
			}),
		},
		{
			Name: "manual-management",
			Interfaces: map[string]Iface{
				"bios": iface("no-bios"), "boot": iface("ipxe", "pxe"), "console": iface("no-console"),
				"deploy": iface("direct", "fake"), "firmware": iface("no-firmware"),
				"inspect": iface("agent", "no-inspect"), "management": iface("noop"),
				"network": iface("noop"), "power": iface("fake"), "raid": iface("no-raid", "agent"),
				"rescue": iface("no-rescue"), "storage": iface("noop"), "vendor": iface("no-vendor"),
			},
			Properties: deployProps,
		},
	}
}

// LookupHardwareType returns the named hardware type or nil.
func LookupHardwareType(name string) *HardwareType {
	for _, h := range HardwareTypes() {
		if h.Name == name {
			return h
		}
	}
	return nil
}
