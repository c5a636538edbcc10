package bmc

import (
	"context"
	"fmt"

	"github.com/stmcginnis/gofish/redfish"

	"github.com/ferric-metal/ferric/conductor/driver"
)

var _ driver.BootModes = (*Redfish)(nil)

// Boot mode and Secure Boot through Redfish, as Ironic's redfish
// management: the boot mode is the system's BootSourceOverrideMode
// (UEFI/Legacy), Secure Boot its SecureBoot resource.

func (d *Redfish) withSystem(ctx context.Context, n *driver.Node, what string, f func(*redfish.ComputerSystem) error) error {
	info, err := parseRedfishInfo(n)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 4*d.cfg.CallTimeout)
	defer cancel()
	sys, done, err := d.system(ctx, info, what)
	if err != nil {
		return err
	}
	defer done()
	return f(sys)
}

// BootMode implements driver.BootModes.
func (d *Redfish) BootMode(ctx context.Context, n *driver.Node) (mode string, err error) {
	err = d.withSystem(ctx, n, "boot mode", func(sys *redfish.ComputerSystem) error {
		switch sys.Boot.BootSourceOverrideMode {
		case redfish.UEFIBootSourceOverrideMode:
			mode = driver.BootModeUEFI
		case redfish.LegacyBootSourceOverrideMode:
			mode = driver.BootModeBIOS
		}
		return nil
	})
	return mode, err
}

// SetBootMode implements driver.BootModes.
func (d *Redfish) SetBootMode(ctx context.Context, n *driver.Node, mode string) error {
	want := redfish.UEFIBootSourceOverrideMode
	switch mode {
	case driver.BootModeUEFI:
	case driver.BootModeBIOS:
		want = redfish.LegacyBootSourceOverrideMode
	default:
		return fmt.Errorf("bmc: boot mode %q: want bios or uefi", mode)
	}
	return d.withSystem(ctx, n, "setting the boot mode", func(sys *redfish.ComputerSystem) error {
		if err := sys.SetBoot(redfish.Boot{BootSourceOverrideMode: want}); err != nil {
			return fmt.Errorf("bmc: setting boot mode to %s: %s", mode, cleanErr(err))
		}
		return nil
	})
}

// SecureBoot implements driver.BootModes.
func (d *Redfish) SecureBoot(ctx context.Context, n *driver.Node) (on bool, err error) {
	err = d.withSystem(ctx, n, "secure boot", func(sys *redfish.ComputerSystem) error {
		sb, err := sys.SecureBoot()
		if err != nil {
			return fmt.Errorf("bmc: reading secure boot: %s", cleanErr(err))
		}
		if sb == nil {
			return fmt.Errorf("bmc: the system has no SecureBoot resource: %w", driver.ErrUnsupported)
		}
		on = sb.SecureBootEnable
		return nil
	})
	return on, err
}

// SetSecureBoot implements driver.BootModes. As Ironic, it refuses to
// change Secure Boot on a machine booting in legacy BIOS mode.
func (d *Redfish) SetSecureBoot(ctx context.Context, n *driver.Node, on bool) error {
	return d.withSystem(ctx, n, "setting secure boot", func(sys *redfish.ComputerSystem) error {
		sb, err := sys.SecureBoot()
		if err != nil {
			return fmt.Errorf("bmc: reading secure boot: %s", cleanErr(err))
		}
		if sb == nil {
			return fmt.Errorf("bmc: the system has no SecureBoot resource: %w", driver.ErrUnsupported)
		}
		if sb.SecureBootEnable == on {
			return nil
		}
		if sys.Boot.BootSourceOverrideMode == redfish.LegacyBootSourceOverrideMode {
			//lint:ignore ST1005 Ironic's text, word for word
			return fmt.Errorf("Configuring secure boot requires UEFI for node %s", n.UUID)
		}
		sb.SecureBootEnable = on
		if err := sb.Update(); err != nil {
			//lint:ignore ST1005 Ironic's text, word for word
			return fmt.Errorf("Failed to set secure boot state on node %s to %v: %s", n.UUID, pyBool(on), cleanErr(err))
		}
		return nil
	})
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}
