package bmc

import (
	"context"
	"regexp"
	"strings"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/redfish"

	"github.com/ferric-metal/ferric/conductor/driver"
)

var (
	_ driver.VendorDetector = (*Redfish)(nil)
	_ driver.VendorDetector = (*IPMI)(nil)
)

// DetectVendor implements driver.VendorDetector as Ironic's redfish
// management: the service root's Vendor, else the system's Manufacturer.
func (d *Redfish) DetectVendor(ctx context.Context, n *driver.Node) (vendor string, err error) {
	err = d.withSystem(ctx, n, "vendor", func(sys *redfish.ComputerSystem) error {
		if root, err := gofish.ServiceRoot(sys.GetClient()); err == nil && root.Vendor != "" {
			vendor = root.Vendor
			return nil
		}
		vendor = sys.Manufacturer
		return nil
	})
	return vendor, err
}

var manufacturerRE = regexp.MustCompile(`Manufacturer Name *: (.+)`)

// DetectVendor implements driver.VendorDetector as Ironic's ipmitool
// management: the Manufacturer Name of `ipmitool mc info`, lower-cased.
func (d *IPMI) DetectVendor(ctx context.Context, n *driver.Node) (string, error) {
	info, err := parseIPMIInfo(n)
	if err != nil {
		return "", err
	}
	out, err := d.ipmitool(ctx, info, "mc", "info")
	if err != nil {
		return "", err
	}
	if m := manufacturerRE.FindStringSubmatch(out); m != nil {
		return strings.ToLower(strings.TrimSpace(m[1])), nil
	}
	return "", nil
}
