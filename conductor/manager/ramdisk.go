package manager

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
)

// The ramdisk deploy (deploy interface ramdisk), as Ironic's: the instance
// is a ramdisk or ISO (instance_info boot_iso, or kernel and ramdisk) that
// the node's boot interface boots (driver.InstanceBooter); nothing is
// written to a disk and no agent runs. The deploy powers the machine off,
// has the boot interface prepare the instance's boot, sets that boot
// device persistently, powers on, and the node is active. Tear down powers
// off and has the boot interface undo it (eject the media).

// ramdiskDeploy reports whether the node's deploy interface is a ramdisk
// deploy.
func (m *Manager) ramdiskDeploy(n *store.Node) bool {
	_, ok := capability[driver.RamdiskDeploy](m, n, "deploy")
	return ok
}

// validateRamdiskDeploy is the deploy interface's validation of a ramdisk
// deploy ("" when valid), with Ironic's messages.
func (m *Manager) validateRamdiskDeploy(n *store.Node) string {
	if _, ok := capability[driver.InstanceBooter](m, n, "boot"); !ok {
		return "Invalid configuration: The boot interface must have the `ramdisk_boot` capability. You are using an incompatible boot interface."
	}
	if _, err := driver.ReadInstanceImage(driverNode(n)); err != nil {
		return err.Error()
	}
	return ""
}

// deployRamdisk boots the node's instance ramdisk or ISO (deploying ->
// active).
func (m *Manager) deployRamdisk(ctx context.Context, n *store.Node) error {
	ib, ok := capability[driver.InstanceBooter](m, n, "boot")
	if !ok {
		//lint:ignore ST1005 Ironic's text
		return fmt.Errorf("Failed to deploy node %s: %s", n.UUID, m.validateRamdiskDeploy(n))
	}
	if _, cd := capability[driver.ConfigDriveBooter](m, n, "boot"); !cd && n.InstanceInfo["configdrive"] != nil {
		m.log.Warn("manager: the configuration drive of a ramdisk deploy is ignored", "node", n.UUID, "boot_interface", n.Interfaces["boot"])
	}
	mg, err := m.management(n)
	if err != nil {
		return err
	}
	if err := m.powerOff(ctx, n); err != nil {
		return err
	}
	// Recorded first: a failed or interrupted prepare is undone by the
	// tear down.
	if err := m.recordInstanceBoot(ctx, n); err != nil {
		return err
	}
	if n, err = m.st.Node(n.UUID); err != nil {
		return err
	}
	dn := driverNode(n)
	dev, err := ib.PrepareInstance(ctx, dn)
	if err != nil {
		//lint:ignore ST1005 Ironic's last_error text
		return fmt.Errorf("Deploy step deploy.deploy failed on node %s: %w", n.UUID, err)
	}
	// "": the boot interface set the boot itself (UEFI HTTP boot).
	if dev != "" {
		if err := mg.SetBootDevice(ctx, dn, dev, true); err != nil {
			//lint:ignore ST1005 Ironic's last_error text
			return fmt.Errorf("Deploy step deploy.deploy failed on node %s: setting boot device to %s: %w", n.UUID, dev, err)
		}
	}
	pw, err := m.power(n)
	if err != nil {
		return err
	}
	if err := pw.SetPowerState(ctx, dn, driver.TargetPowerOn, m.cfg.PowerTimeout); err != nil {
		//lint:ignore ST1005 Ironic's last_error text
		return fmt.Errorf("Deploy step deploy.deploy failed on node %s: powering on: %w", n.UUID, err)
	}
	m.log.Info("manager: ramdisk deploy set up", "node", n.UUID, "boot_device", dev)
	return m.fire(ctx, n.UUID, sm.EventDone, func(n *store.Node) {
		on := driver.PowerOn
		n.PowerState = &on
		n.DeployStep = store.Object{}
		if dev != "" {
			n.DriverInternalInfo["boot_device"] = dev
			n.DriverInternalInfo["boot_device_persistent"] = true
		}
		n.DriverInternalInfo[instanceBootConductorKey] = m.host
		delete(n.DriverInternalInfo, "user_deploy_steps")
	})
}

// cleanUpInstanceBoot has the boot interface that prepared a ramdisk
// deploy's instance boot undo it (tear down, and a deploy that failed);
// nothing when none was prepared.
func (m *Manager) cleanUpInstanceBoot(ctx context.Context, uuid string) error {
	n, err := m.st.Node(uuid)
	if err != nil {
		return err
	}
	iface, _ := n.DriverInternalInfo[driver.InstanceBootKey].(string)
	if iface == "" {
		return nil
	}
	obj, ok := m.drivers.Object(n.Driver, "boot", iface)
	ib, isBooter := obj.(driver.InstanceBooter)
	if !ok || !isBooter {
		return notAvailable(m, "boot", iface)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if err := ib.CleanUpInstance(ctx, driverNode(n)); err != nil {
		return fmt.Errorf("cleaning up the instance boot of node %s: %w", uuid, err)
	}
	return m.update(ctx, uuid, func(n *store.Node) error {
		if n.DriverInternalInfo[driver.InstanceBootKey] == nil {
			return errUnchanged
		}
		delete(n.DriverInternalInfo, driver.InstanceBootKey)
		delete(n.DriverInternalInfo, instanceBootConductorKey)
		return nil
	})
}

// instanceBootConductorKey in driver_internal_info names the conductor
// that set up an active ramdisk deploy's instance boot (and serves its
// image).
const instanceBootConductorKey = "instance_boot_conductor"

// takeOverInstanceBoots prepares again, as Ironic's takeover does, the
// instance boot of this conductor's active ramdisk-deploy nodes that
// another conductor set up, or, at start (all), every one: a restarted
// conductor serves none of the images it published before (virtual media,
// UEFI HTTP boot), nor does a dead one, so they are published and handed
// to the BMC again. A node another task holds is left alone (tried at the
// next heartbeat); a failure is logged and recorded in last_error, and
// the node stays active.
func (m *Manager) takeOverInstanceBoots(ctx context.Context, all bool) {
	r := m.ring()
	for _, n := range m.st.Nodes(func(n *store.Node) bool {
		return n.ProvisionState == string(sm.Active) && n.DriverInternalInfo[driver.InstanceBootKey] != nil &&
			n.Reservation == nil && r.owner(n.ConductorGroup, n.UUID) == m.host &&
			(all || n.DriverInternalInfo[instanceBootConductorKey] != m.host)
	}) {
		if err := m.slot(); err != nil {
			return
		}
		if err := m.acquire(ctx, n.UUID, func(n *store.Node) error {
			if n.ProvisionState != string(sm.Active) {
				return userErr(ErrConflict, "node %s moved on", n.UUID)
			}
			return nil
		}); err != nil {
			m.release()
			continue
		}
		m.spawn(n.UUID, func(ctx context.Context) error {
			if err := m.prepareInstanceAgain(ctx, n.UUID); err != nil {
				msg := fmt.Sprintf("Failed to take over the instance boot of node %s: %v", n.UUID, err)
				m.log.Error("manager: instance boot takeover", "node", n.UUID, "err", err)
				_ = m.update(ctx, n.UUID, func(n *store.Node) error { n.LastError = &msg; return nil })
			}
			return nil
		})
	}
}

// prepareInstanceAgain has the node's boot interface prepare its
// instance's boot again and sets the boot device, without a power change.
func (m *Manager) prepareInstanceAgain(ctx context.Context, uuid string) error {
	n, err := m.st.Node(uuid)
	if err != nil {
		return err
	}
	ib, ok := capability[driver.InstanceBooter](m, n, "boot")
	if !ok {
		return notAvailable(m, "boot", n.Interfaces["boot"])
	}
	dev, err := ib.PrepareInstance(ctx, driverNode(n))
	if err != nil {
		return err
	}
	if dev != "" {
		mg, err := m.management(n)
		if err != nil {
			return err
		}
		if err := mg.SetBootDevice(ctx, driverNode(n), dev, true); err != nil {
			return err
		}
	}
	m.log.Info("manager: instance boot taken over", "node", uuid, "boot_device", dev)
	return m.update(ctx, uuid, func(n *store.Node) error {
		n.DriverInternalInfo[instanceBootConductorKey] = m.host
		return nil
	})
}

// adoptRamdisk takes over a machine that runs a ramdisk deploy's instance:
// as Ironic's ramdisk deploy prepares the instance's boot when a node is
// adopted, the boot interface sets it up (no power change). On a failure
// nothing stays recorded.
func (m *Manager) adoptRamdisk(ctx context.Context, n *store.Node) error {
	if reason := m.validateRamdiskDeploy(n); reason != "" {
		return errors.New(reason)
	}
	if err := m.recordInstanceBoot(ctx, n); err != nil {
		return err
	}
	if err := m.prepareInstanceAgain(ctx, n.UUID); err != nil {
		_ = m.update(ctx, n.UUID, func(n *store.Node) error {
			delete(n.DriverInternalInfo, driver.InstanceBootKey)
			delete(n.DriverInternalInfo, instanceBootConductorKey)
			return nil
		})
		return err
	}
	return nil
}

// recordInstanceBoot notes in driver_internal_info which boot interface set
// up node n's instance boot, so that a tear down (or a failed set-up)
// knows what to undo.
func (m *Manager) recordInstanceBoot(ctx context.Context, n *store.Node) error {
	iface := n.Interfaces["boot"]
	return m.update(ctx, n.UUID, func(n *store.Node) error {
		n.DriverInternalInfo[driver.InstanceBootKey] = iface
		return nil
	})
}
