package bmc

import (
	"context"
	"fmt"
	"slices"

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
	out := make(map[string]any, len(b.Attributes))
	for k, v := range b.Attributes {
		out[k] = v
	}
	return out, nil
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
