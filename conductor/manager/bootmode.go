package manager

import (
	"context"
	"errors"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/driver"
	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
)

// Boot mode and Secure Boot (API 1.75 fields, 1.76 changes), as Ironic:
// a change is accepted (202) unless the node is transitioning, runs on a
// worker under the node's lock, and records its failure in last_error;
// the node's boot_mode and secure_boot are what the management interface
// last read (cached when the node is verified, when cleaning starts, and
// after a change). Only management interfaces that handle boot modes
// (redfish) can change them; the others' changes fail as Ironic's do, with
// "does not support".

// unsupportedExt is Ironic's UnsupportedDriverExtension for node n.
func unsupportedExt(n *store.Node, ext string) error {
	return &driver.UnsupportedError{Driver: n.Driver, Extension: ext}
}

// ChangeBootMode sets the node's boot mode ("bios" or "uefi") on a worker.
func (m *Manager) ChangeBootMode(ctx context.Context, uuid, mode string) error {
	if mode != driver.BootModeBIOS && mode != driver.BootModeUEFI {
		return userErr(ErrInvalidInput, "Invalid boot mode %s requested for node. Allowed boot modes are: bios, uefi", mode)
	}
	return m.bootModeChange(ctx, uuid, "boot mode", func(ctx context.Context, n *store.Node, bm driver.BootModes) error {
		if bm == nil {
			//lint:ignore ST1005 Ironic's text, word for word
			return fmt.Errorf("Failed to change boot mode to '%s: %w", mode, unsupportedExt(n, "set_boot_mode"))
		}
		dn := driverNode(n)
		if cur, err := bm.BootMode(ctx, dn); err == nil && cur == mode {
			m.log.Info("manager: boot mode already set, no change", "node", uuid, "boot_mode", mode)
		} else if err := bm.SetBootMode(ctx, dn, mode); err != nil {
			//lint:ignore ST1005 Ironic's text, word for word
			return fmt.Errorf("Failed to change boot mode to '%s: %w", mode, err)
		}
		return m.update(ctx, uuid, func(n *store.Node) error { n.BootMode = &mode; return nil })
	})
}

// ChangeSecureBoot turns UEFI Secure Boot on or off on a worker.
func (m *Manager) ChangeSecureBoot(ctx context.Context, uuid string, on bool) error {
	word := "False"
	if on {
		word = "True"
	}
	return m.bootModeChange(ctx, uuid, "secure boot", func(ctx context.Context, n *store.Node, bm driver.BootModes) error {
		if bm == nil {
			//lint:ignore ST1005 Ironic's text, word for word
			return fmt.Errorf("Failed to change secure_boot state to '%s': %w", word, unsupportedExt(n, "set_secure_boot_state"))
		}
		dn := driverNode(n)
		if err := bm.SetSecureBoot(ctx, dn, on); err != nil {
			if errors.Is(err, driver.ErrUnsupported) {
				err = unsupportedExt(n, "set_secure_boot_state")
			}
			//lint:ignore ST1005 Ironic's text, word for word
			return fmt.Errorf("Failed to change secure_boot state to '%s': %w", word, err)
		}
		return m.update(ctx, uuid, func(n *store.Node) error { n.SecureBoot = &on; return nil })
	})
}

// bootModeChange checks the node, takes its lock, clears last_error and
// runs change on a worker; a failure lands in last_error, the node's
// provision state is unchanged.
func (m *Manager) bootModeChange(ctx context.Context, uuid, what string, change func(context.Context, *store.Node, driver.BootModes) error) error {
	n, mg, err := m.nodeManagement(uuid)
	if err != nil {
		return err
	}
	if sm.IsUnstable(sm.State(n.ProvisionState)) {
		return userErr(ErrConflict, "Node is in %s state. Since node is transitioning, the %s will not be set as this may interfere with ongoing changes and result in erroneous modification. Try again later.", n.ProvisionState, what)
	}
	if err := mg.Validate(driverNode(n)); err != nil {
		return userErr(ErrInvalidInput, "%v", err)
	}
	if err := m.slot(); err != nil {
		return err
	}
	if err := m.acquire(ctx, uuid, func(n *store.Node) error { n.LastError = nil; return nil }); err != nil {
		m.release()
		return err
	}
	m.spawn(uuid, func(ctx context.Context) error {
		n, err := m.st.Node(uuid)
		if err == nil {
			err = change(ctx, n, m.bootModes(n))
		}
		if err != nil {
			m.log.Warn("manager: "+what+" change failed", "node", uuid, "err", err)
			msg := err.Error()
			_ = m.update(ctx, uuid, func(n *store.Node) error { n.LastError = &msg; return nil })
		}
		return nil
	})
	return nil
}

// cacheBootMode records the boot mode and Secure Boot state the node's
// management interface reads (nil when it cannot tell), as Ironic's
// node_cache_boot_mode; it never fails its caller.
func (m *Manager) cacheBootMode(ctx context.Context, uuid string) {
	n, err := m.st.Node(uuid)
	if err != nil {
		return
	}
	bm := m.bootModes(n)
	if bm == nil {
		return
	}
	dn := driverNode(n)
	var mode *string
	if s, err := bm.BootMode(ctx, dn); err != nil {
		m.log.Warn("manager: reading the boot mode", "node", uuid, "err", err)
		return
	} else if s != "" {
		mode = &s
	}
	var secure *bool
	if on, err := bm.SecureBoot(ctx, dn); err == nil {
		secure = &on
	} else if !errors.Is(err, driver.ErrUnsupported) {
		m.log.Warn("manager: reading the secure boot state", "node", uuid, "err", err)
		return
	}
	_ = m.update(ctx, uuid, func(n *store.Node) error {
		if deref(n.BootMode) == deref(mode) && boolEq(n.SecureBoot, secure) {
			return errUnchanged
		}
		n.BootMode, n.SecureBoot = mode, secure
		return nil
	})
}

func boolEq(a, b *bool) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// updateCaches refreshes what Ironic's node_update_cache does: the
// vendor, the boot mode and Secure Boot state, the BIOS settings and the
// firmware versions.
func (m *Manager) updateCaches(ctx context.Context, uuid string) {
	m.cacheVendor(ctx, uuid)
	m.cacheBootMode(ctx, uuid)
	m.cacheBIOS(ctx, uuid)
	m.cacheFirmware(ctx, uuid)
}

// cacheFirmware records the firmware versions the node's firmware
// interface reads (redfish), as Ironic's cache_firmware_components; it
// never fails its caller.
func (m *Manager) cacheFirmware(ctx context.Context, uuid string) {
	n, err := m.st.Node(uuid)
	if err != nil {
		return
	}
	fw, ok := capability[driver.Firmware](m, n, "firmware")
	if !ok {
		return
	}
	comps, err := fw.FirmwareComponents(ctx, driverNode(n))
	if err != nil {
		m.log.Warn("manager: reading firmware versions", "node", uuid, "err", err)
		return
	}
	versions := make(map[string]string, len(comps))
	for _, c := range comps {
		versions[c.Component] = c.Version
	}
	if err := m.st.Update(ctx, func(tx store.Tx) error { return tx.SyncFirmwareComponents(uuid, versions) }); err != nil {
		m.log.Warn("manager: storing firmware versions", "node", uuid, "err", err)
	}
}

// cacheVendor records properties.vendor from the management interface
// when it is not set yet (vendors do not change on the fly), as Ironic's
// node_cache_vendor; it never fails its caller.
func (m *Manager) cacheVendor(ctx context.Context, uuid string) {
	n, err := m.st.Node(uuid)
	if err != nil {
		return
	}
	if v, _ := n.Properties["vendor"].(string); v != "" {
		return
	}
	vd, ok := capability[driver.VendorDetector](m, n, "management")
	if !ok {
		return
	}
	vendor, err := vd.DetectVendor(ctx, driverNode(n))
	if err != nil {
		m.log.Warn("manager: detecting the vendor", "node", uuid, "err", err)
		return
	}
	if vendor == "" {
		return
	}
	_ = m.update(ctx, uuid, func(n *store.Node) error {
		if n.Properties == nil {
			n.Properties = store.Object{}
		}
		n.Properties["vendor"] = vendor
		return nil
	})
	m.log.Info("manager: vendor detected", "node", uuid, "vendor", vendor)
}
