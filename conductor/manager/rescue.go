package manager

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/ironichttp"
	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/ipa/shacrypt"
)

// Rescue through the agent, as Ironic's agent rescue interface: the
// rescue request stores the password hashed (SHA-512 crypt) in
// instance_info hashed_rescue_password (never in clear; the API masks
// it); the rescue powers the machine off, boots the rescue ramdisk
// (driver_info rescue_kernel/rescue_ramdisk) through the node's boot
// interface and waits (rescue wait); the agent's first heartbeat has the
// conductor send rescue.finalize_rescue with the hash, after which the
// ramdisk's boot is cleaned up (virtual media ejected) and the node is in
// rescue. Unrescue powers off, cleans up the rescue boot, boots the
// instance and the node is active again.
//
// With a network interface that switches networks (neutron), as Ironic's
// agent rescue: the rescue unbinds the tenant ports and puts the node on
// the rescuing network (ports recorded as rescuing_vif_port_id) before
// the ramdisk boots; once the agent finalized the rescue, the rescuing
// ports are removed and the tenant ports bound again, so the rescued
// machine is on its tenant networks. A failed or aborted rescue, and the
// unrescue, remove the rescuing ports; unrescue binds the tenant ports.

// agentRescuer is a rescue interface whose ramdisk's agent finalizes the
// rescue.
type agentRescuer interface{ RescuesWithAgent() }

const hashedRescuePasswordKey = "hashed_rescue_password"

// rescueTimeoutMsg is Ironic's last_error of a rescue wait timeout.
const rescueTimeoutMsg = "Timeout reached while waiting for rescue ramdisk callback for node"

func (m *Manager) agentRescue(n *store.Node) bool {
	_, ok := capability[agentRescuer](m, n, "rescue")
	return ok
}

// rescueRamdiskKeys are the driver_info keys of the rescue ramdisk, in the
// place of deploy_kernel and deploy_ramdisk.
var rescueRamdiskKeys = [2][2]string{{"deploy_kernel", "rescue_kernel"}, {"deploy_ramdisk", "rescue_ramdisk"}}

// rescueNode is dn with its rescue kernel and ramdisk in the place of the
// deploy ones, for the boot interfaces that boot "the ramdisk".
func rescueNode(dn *driver.Node) *driver.Node {
	out := *dn
	out.DriverInfo = maps.Clone(dn.DriverInfo)
	for _, k := range rescueRamdiskKeys {
		out.DriverInfo[k[0]] = dn.DriverInfo[k[1]]
	}
	return &out
}

// validateRescue checks a rescue request as Ironic's do_node_rescue
// (rescue interface, then the boot interface's rescue ramdisk) and
// answers Ironic's InstanceRescueFailure.
func (m *Manager) validateRescue(ctx context.Context, n *store.Node) error {
	fail := func(reason string) error {
		return userErr(ErrInvalidInput, "Failed to rescue instance %s for node %s: %s", deref(n.InstanceUUID), n.UUID, reason)
	}
	if m.offersNothing(n, "rescue") {
		return fail((&driver.UnsupportedError{Driver: n.Driver, Extension: "rescue"}).Error())
	}
	if !m.agentRescue(n) {
		return nil
	}
	// The network first, as Ironic's agent rescue validates: its
	// rescuing network, then (do_node_rescue) its other networks.
	if err := m.validateRescueNetworks(ctx, n); err != nil {
		var ie *ironichttp.Error
		if errors.As(err, &ie) && ie.Code == http.StatusBadRequest {
			return fail(ie.Msg)
		}
		return err
	}
	if m.isFake(n, "boot") {
		return nil
	}
	var missing []string
	for _, k := range rescueRamdiskKeys {
		if v, _ := n.DriverInfo[k[1]].(string); v == "" {
			missing = append(missing, "'"+k[1]+"'")
		}
	}
	if len(missing) == 0 {
		return nil
	}
	what := "Cannot validate PXE bootloader. Some parameters were missing in node's driver_info and configuration"
	if _, ok := m.ramdiskBooter(n, n.Interfaces["boot"]); ok {
		what = "Error validating Redfish virtual media. Some parameters were missing in node's driver_info"
	}
	return fail(fmt.Sprintf("%s. Missing are: [%s]", what, strings.Join(missing, ", ")))
}

// validateRescueNetworks checks the rescuing network of a node whose
// network interface switches networks, then its provisioning and
// cleaning networks.
func (m *Manager) validateRescueNetworks(ctx context.Context, n *store.Node) error {
	if v, ok := capability[driver.RescueNetworkValidator](m, n, "network"); ok {
		if err := v.ValidateRescueNetwork(ctx, driverNode(n)); err != nil {
			return err
		}
	}
	if sw, ok := capability[driver.NetworkSwitcher](m, n, "network"); ok {
		return sw.ValidateNetworks(ctx, driverNode(n))
	}
	return nil
}

// setRescuePassword records the hash of password (the clear password is
// never stored).
func setRescuePassword(n *store.Node, password string) error {
	h, err := shacrypt.Hash(password)
	if err != nil {
		return err
	}
	if n.InstanceInfo == nil {
		n.InstanceInfo = store.Object{}
	}
	delete(n.InstanceInfo, "rescue_password")
	n.InstanceInfo[hashedRescuePasswordKey] = h
	return nil
}

func removeRescuePassword(n *store.Node) {
	delete(n.InstanceInfo, "rescue_password")
	delete(n.InstanceInfo, hashedRescuePasswordKey)
}

// rescue is the task of a rescue request (active, rescue or a failed
// rescue/unrescue -> rescuing -> rescue wait).
func (m *Manager) rescue(ctx context.Context, n *store.Node) error {
	if !m.agentRescue(n) {
		return m.fire(ctx, n.UUID, sm.EventDone, nil) // fake
	}
	err := func() error {
		if err := m.powerOff(ctx, n); err != nil {
			return err
		}
		if err := m.cleanUpInstanceBoot(ctx, n.UUID); err != nil {
			return err
		}
		if err := m.update(ctx, n.UUID, func(n *store.Node) error { clearAgent(n); return nil }); err != nil {
			return err
		}
		if err := m.configureTenant(ctx, n, false); err != nil {
			return err
		}
		if err := m.addNetwork(ctx, n, driver.NetRescuing); err != nil {
			return err
		}
		cur, err := m.st.Node(n.UUID)
		if err != nil {
			return err
		}
		return m.bootRamdisk(ctx, cur)
	}()
	if err != nil {
		msg := fmt.Sprintf("Failed to rescue: %v", err)
		if cur, gerr := m.st.Node(n.UUID); gerr == nil {
			if rerr := m.removeNetwork(ctx, cur, driver.NetRescuing); rerr != nil {
				m.log.Warn("manager: removing the rescuing network after a failed rescue", "node", n.UUID, "err", rerr)
			}
		}
		return m.fire(ctx, n.UUID, sm.EventFail, func(n *store.Node) { n.LastError = &msg; removeRescuePassword(n) })
	}
	return m.fire(ctx, n.UUID, sm.EventWait, func(n *store.Node) { n.Reservation = nil })
}

// finalizeRescue runs on the rescue ramdisk's heartbeat (rescue wait ->
// rescuing -> rescue): the agent sets the password and stops; the
// ramdisk boot is cleaned up.
func (m *Manager) finalizeRescue(ctx context.Context, uuid string) error {
	if err := m.fire(ctx, uuid, sm.EventResume, nil); err != nil {
		return err
	}
	n, err := m.st.Node(uuid)
	if err != nil {
		return err
	}
	err = func() error {
		hash, _ := n.InstanceInfo[hashedRescuePasswordKey].(string)
		if hash == "" {
			return fmt.Errorf("Agent rescue requires rescue_password in instance_info") //lint:ignore ST1005 Ironic's message
		}
		if _, err := m.runAgent(ctx, uuid, "rescue.finalize_rescue", map[string]any{"rescue_password": hash, "hashed": true}); err != nil {
			return fmt.Errorf("Failed to rescue instance %s for node %s: Agent returned bad result for command finalize_rescue: %w", deref(n.InstanceUUID), uuid, err) //lint:ignore ST1005 Ironic's message
		}
		// The rescued machine goes to its tenant networks.
		if err := m.removeNetwork(ctx, n, driver.NetRescuing); err != nil {
			return err
		}
		return m.configureTenant(ctx, n, true)
	}()
	if err != nil {
		return m.rescuingError(ctx, uuid, fmt.Sprintf("Node failed to perform rescue operation. Error: %v", err))
	}
	m.log.Info("manager: node rescued", "node", uuid)
	return m.fire(ctx, uuid, sm.EventDone, func(n *store.Node) {
		removeRescuePassword(n)
		clearAgent(n)
		n.LastError = nil
	})
}

// rescuingError is Ironic's rescuing_error_handler: power off, clean up
// the rescue (password, ramdisk boot), and rescue failed with msg.
func (m *Manager) rescuingError(ctx context.Context, uuid, msg string) error {
	m.collectLogsOnFailure(ctx, uuid, nil)
	if n, err := m.st.Node(uuid); err == nil {
		if err := m.powerOff(ctx, n); err != nil {
			msg = fmt.Sprintf("Rescue operation was unsuccessful, clean up failed for node: %v", err)
		} else if err := m.removeNetwork(ctx, n, driver.NetRescuing); err != nil {
			msg = fmt.Sprintf("Rescue operation was unsuccessful, clean up failed for node: %v", err)
		}
	}
	return m.fire(ctx, uuid, sm.EventFail, func(n *store.Node) {
		n.LastError = &msg
		removeRescuePassword(n)
		clearAgent(n)
	})
}

// abortRescue ends an aborted rescue wait (now rescue failed) as Ironic:
// the rescue is cleaned up (the media is ejected with the transition),
// the power is left as it is.
func (m *Manager) abortRescue(ctx context.Context, uuid string) error {
	msg := "By request, the rescue operation was aborted."
	if n, err := m.st.Node(uuid); err == nil {
		if err := m.removeNetwork(ctx, n, driver.NetRescuing); err != nil {
			msg = "Failed to clean up rescue after aborting the operation"
			m.log.Warn("manager: removing the rescuing network after an abort", "node", uuid, "err", err)
		}
	}
	m.log.Info("manager: rescue aborted", "node", uuid)
	return m.update(ctx, uuid, func(n *store.Node) error {
		n.LastError = &msg
		removeRescuePassword(n)
		clearAgent(n)
		return nil
	})
}

// unrescue is the task of an unrescue request (rescue or a failed
// rescue/unrescue -> unrescuing -> active): power off, the rescue boot
// cleaned up, the instance booted again.
func (m *Manager) unrescue(ctx context.Context, n *store.Node) error {
	if !m.agentRescue(n) {
		return m.fire(ctx, n.UUID, sm.EventDone, nil) // fake
	}
	err := func() error {
		if err := m.powerOff(ctx, n); err != nil {
			return err
		}
		m.cleanUpRamdiskMedia(ctx, n.UUID)
		if err := m.update(ctx, n.UUID, func(n *store.Node) error {
			removeRescuePassword(n)
			clearAgent(n)
			return nil
		}); err != nil {
			return err
		}
		if err := m.removeNetwork(ctx, n, driver.NetRescuing); err != nil {
			return err
		}
		if err := m.configureTenant(ctx, n, true); err != nil {
			return err
		}
		if m.ramdiskDeploy(n) {
			if err := m.prepareInstanceAgain(ctx, n.UUID); err != nil {
				return err
			}
			if err := m.update(ctx, n.UUID, func(n *store.Node) error {
				n.DriverInternalInfo[driver.InstanceBootKey] = n.Interfaces["boot"]
				return nil
			}); err != nil {
				return err
			}
		} else if m.usesAgent(n) {
			mg, err := m.management(n)
			if err != nil {
				return err
			}
			if err := mg.SetBootDevice(ctx, driverNode(n), driver.BootDisk, true); err != nil {
				return err
			}
		}
		pw, err := m.power(n)
		if err != nil {
			return err
		}
		return pw.SetPowerState(ctx, driverNode(n), driver.TargetPowerOn, m.cfg.PowerTimeout)
	}()
	if err != nil {
		msg := fmt.Sprintf("Failed to unrescue: %v", err)
		return m.fire(ctx, n.UUID, sm.EventFail, func(n *store.Node) { n.LastError = &msg })
	}
	m.log.Info("manager: node unrescued", "node", n.UUID)
	return m.fire(ctx, n.UUID, sm.EventDone, func(n *store.Node) {
		on := driver.PowerOn
		n.PowerState = &on
		n.LastError = nil
	})
}
