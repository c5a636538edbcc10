package bmc

import (
	"context"
	"fmt"
	"slices"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/common"
	"github.com/stmcginnis/gofish/redfish"

	"github.com/ferric-metal/ferric/conductor/driver"
)

var _ driver.BIOS = (*Redfish)(nil)

// The redfish bios interface, as Ironic's: the system's Bios resource
// read and changed with gofish (bmclib's BIOS calls do nothing on systems
// outside a few vendors' paths). Changes go to the settings object with
// apply time OnReset when the BMC offers it; they take effect at the next
// start, which the caller arranges.

// bios opens a session and reads the system's Bios resource.
func (d *Redfish) bios(ctx context.Context, n *driver.Node, what string) (*redfish.Bios, func(), error) {
	info, err := parseRedfishInfo(n)
	if err != nil {
		return nil, nil, err
	}
	sys, done, err := d.system(ctx, info, what)
	if err != nil {
		return nil, nil, err
	}
	b, err := sys.Bios()
	if err != nil {
		done()
		return nil, nil, fmt.Errorf("bmc: %s: reading the BIOS (%s): %s", info.addr(), what, cleanErr(err))
	}
	if b == nil {
		done()
		return nil, nil, fmt.Errorf("bmc: %s: the system has no Bios resource: %w", info.addr(), driver.ErrNoBIOS)
	}
	return b, done, nil
}

// BIOSSettings implements driver.BIOS.
func (d *Redfish) BIOSSettings(ctx context.Context, n *driver.Node) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, 4*d.cfg.CallTimeout)
	defer cancel()
	b, done, err := d.bios(ctx, n, "BIOS settings")
	if err != nil {
		return nil, err
	}
	defer done()
	return biosValues(b), nil
}

// ReadBIOS implements driver.BIOS: the settings and the registry through
// one session.
func (d *Redfish) ReadBIOS(ctx context.Context, n *driver.Node) (driver.BIOSSnapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, 4*d.cfg.CallTimeout)
	defer cancel()
	b, done, err := d.bios(ctx, n, "BIOS settings")
	if err != nil {
		return driver.BIOSSnapshot{}, err
	}
	defer done()
	reg, err := attributeRegistry(b)
	return driver.BIOSSnapshot{Values: biosValues(b), Registry: reg, RegistryErr: err}, nil
}

func biosValues(b *redfish.Bios) map[string]any {
	out := make(map[string]any, len(b.Attributes))
	for k, v := range b.Attributes {
		out[k] = v
	}
	return out
}

// ApplyBIOSSettings implements driver.BIOS.
func (d *Redfish) ApplyBIOSSettings(ctx context.Context, n *driver.Node, settings map[string]any) error {
	ctx, cancel := context.WithTimeout(ctx, 4*d.cfg.CallTimeout)
	defer cancel()
	b, done, err := d.bios(ctx, n, "applying BIOS settings")
	if err != nil {
		return err
	}
	defer done()
	var at common.ApplyTime
	if slices.Contains(b.AllowedAttributeUpdateApplyTimes(), common.OnResetApplyTime) {
		at = common.OnResetApplyTime
	}
	if err := b.UpdateBiosAttributesApplyAt(redfish.SettingsAttributes(settings), at); err != nil {
		return fmt.Errorf("bmc: applying BIOS settings: %s", cleanErr(err))
	}
	return nil
}

// ResetBIOS implements driver.BIOS.
func (d *Redfish) ResetBIOS(ctx context.Context, n *driver.Node) error {
	ctx, cancel := context.WithTimeout(ctx, 4*d.cfg.CallTimeout)
	defer cancel()
	b, done, err := d.bios(ctx, n, "BIOS factory reset")
	if err != nil {
		return err
	}
	defer done()
	if err := b.ResetBios(); err != nil {
		return fmt.Errorf("bmc: BIOS factory reset: %s", cleanErr(err))
	}
	return nil
}

var _ driver.Firmware = (*Redfish)(nil)

// FirmwareComponents implements driver.Firmware as Ironic's redfish
// firmware interface reads them: the system's BiosVersion ("bios") and
// the FirmwareVersion of the system's manager ("bmc"). It fails with
// driver.ErrUnsupported when the BMC reports neither.
func (d *Redfish) FirmwareComponents(ctx context.Context, n *driver.Node) ([]driver.FirmwareComponent, error) {
	var out []driver.FirmwareComponent
	err := d.withSystem(ctx, n, "firmware versions", func(sys *redfish.ComputerSystem) error {
		if sys.BIOSVersion != "" {
			out = append(out, driver.FirmwareComponent{Component: "bios", Version: sys.BIOSVersion})
		}
		if ms, err := sys.ManagedBy(); err == nil && len(ms) > 0 && ms[0].FirmwareVersion != "" {
			out = append(out, driver.FirmwareComponent{Component: "bmc", Version: ms[0].FirmwareVersion})
		}
		if out == nil {
			return fmt.Errorf("bmc: no firmware version reported: %w", driver.ErrUnsupported)
		}
		return nil
	})
	return out, err
}

// attributeRegistry reads the attribute registry the Bios resource
// names, found in the service's Registries (its English location, else
// the first), as sushy finds it for Ironic.
func attributeRegistry(b *redfish.Bios) (map[string]driver.BIOSAttribute, error) {
	if b.AttributeRegistry == "" {
		return nil, fmt.Errorf("bmc: the Bios resource names no attribute registry: %w", driver.ErrUnsupported)
	}
	root, err := gofish.ServiceRoot(b.GetClient())
	if err != nil {
		return nil, fmt.Errorf("bmc: reading the service root: %s", cleanErr(err))
	}
	files, err := root.Registries()
	if err != nil {
		return nil, fmt.Errorf("bmc: reading the registries: %s", cleanErr(err))
	}
	uri := ""
	for _, f := range files {
		if f.Registry != b.AttributeRegistry && f.ID != b.AttributeRegistry {
			continue
		}
		for _, l := range f.Location {
			if uri == "" || l.Language == "en" {
				uri = l.URI
			}
		}
	}
	if uri == "" {
		return nil, fmt.Errorf("bmc: attribute registry %s not found: %w", b.AttributeRegistry, driver.ErrUnsupported)
	}
	reg, err := redfish.GetAttributeRegistry(b.GetClient(), uri)
	if err != nil {
		return nil, fmt.Errorf("bmc: reading attribute registry %s: %s", b.AttributeRegistry, cleanErr(err))
	}
	out := make(map[string]driver.BIOSAttribute, len(reg.RegistryEntries.Attributes))
	for _, a := range reg.RegistryEntries.Attributes {
		ro, rr, uq := a.ReadOnly, a.ResetRequired, a.IsSystemUniqueProperty
		attr := driver.BIOSAttribute{Type: string(a.Type), ReadOnly: &ro, ResetRequired: &rr, Unique: &uq}
		switch a.Type {
		case redfish.EnumerationAttributeType:
			for _, v := range a.Value {
				name := v.ValueName
				if name == "" {
					name = v.ValueDisplayName
				}
				if name != "" {
					attr.AllowableValues = append(attr.AllowableValues, name)
				}
			}
		case redfish.IntegerAttributeType:
			lo, hi := a.LowerBound, a.UpperBound.Int64()
			attr.LowerBound, attr.UpperBound = &lo, &hi
		case redfish.StringAttributeType:
			lo, hi := a.MinLength, a.MaxLength
			attr.MinLength, attr.MaxLength = &lo, &hi
		}
		out[a.AttributeName] = attr
	}
	return out, nil
}
