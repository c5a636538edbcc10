package manager

import (
	"context"
	"fmt"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
)

// Virtual media boot of the ramdisk (boot interface redfish-virtual-media):
// bootRamdisk has the node's RamdiskBooter insert the ramdisk ISO and
// records it in driver_internal_info; whenever the node then leaves the
// ramdisk states (the step succeeded, failed or was aborted, or a restarted
// conductor failed it) the media is ejected: after each transition fired,
// after each task, at start (what a dead run left inserted) and at each
// timeout check (any other path, and ejects that failed before).

// vmediaKey in driver_internal_info names the boot interface whose ramdisk
// media is inserted.
const vmediaKey = "vmedia_boot_interface"

// ramdiskStates are the states in which a node runs the ramdisk.
var ramdiskStates = map[sm.State]bool{sm.Deploying: true, sm.DeployWait: true, sm.Cleaning: true, sm.CleanWait: true,
	sm.Inspecting: true, sm.InspectWait: true, sm.Rescuing: true, sm.RescueWait: true, sm.Servicing: true, sm.ServiceWait: true}

// ramdiskBooter returns the node's implementation iface of its boot
// interface if it boots the ramdisk itself.
func (m *Manager) ramdiskBooter(n *store.Node, iface string) (driver.RamdiskBooter, bool) {
	obj, ok := m.drivers.Object(n.Driver, "boot", iface)
	if !ok {
		return nil, false
	}
	rb, ok := obj.(driver.RamdiskBooter)
	return rb, ok
}

// prepareRamdiskBoot readies the ramdisk boot and returns the boot device
// for the next start: PXE, or what the node's RamdiskBooter answers.
func (m *Manager) prepareRamdiskBoot(ctx context.Context, n *store.Node) (string, error) {
	iface := n.Interfaces["boot"]
	rb, ok := m.ramdiskBooter(n, iface)
	if !ok {
		return driver.BootPXE, nil
	}
	// Recorded first: a conductor that dies during the insert ejects at
	// its next start.
	if err := m.update(ctx, n.UUID, func(n *store.Node) error {
		n.DriverInternalInfo[vmediaKey] = iface
		return nil
	}); err != nil {
		return "", err
	}
	st := sm.State(n.ProvisionState)
	dn := driverNode(n)
	if st == sm.Rescuing || st == sm.RescueWait {
		dn = rescueNode(dn)
	}
	dev, err := rb.PrepareRamdisk(ctx, dn, st == sm.Inspecting || st == sm.InspectWait)
	if err != nil {
		return "", fmt.Errorf("preparing the virtual media boot of node %s: %w", n.UUID, err)
	}
	return dev, nil
}

// cleanUpRamdiskMedia ejects the ramdisk media of a node that left the
// ramdisk states. A failed eject is logged and tried again at the next
// transition or start.
func (m *Manager) cleanUpRamdiskMedia(ctx context.Context, uuid string) {
	n, err := m.st.Node(uuid)
	if err != nil {
		return
	}
	iface, _ := n.DriverInternalInfo[vmediaKey].(string)
	if iface == "" || ramdiskStates[sm.State(n.ProvisionState)] {
		return
	}
	rb, ok := m.ramdiskBooter(n, iface)
	if !ok {
		m.log.Warn("manager: cannot eject the ramdisk media: boot interface not available", "node", uuid, "boot_interface", iface)
		return
	}
	// An aborted task's context is done: the eject still runs.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if err := rb.CleanUpRamdisk(ctx, driverNode(n)); err != nil {
		m.log.Warn("manager: ejecting the ramdisk media", "node", uuid, "err", err)
		return
	}
	if err := m.update(ctx, uuid, func(n *store.Node) error {
		if n.DriverInternalInfo[vmediaKey] == nil {
			return errUnchanged
		}
		delete(n.DriverInternalInfo, vmediaKey)
		return nil
	}); err != nil {
		m.log.Warn("manager: recording the ramdisk media ejected", "node", uuid, "err", err)
	}
}

// recoverRamdiskMedia ejects the media of unlocked nodes of this
// conductor that left the ramdisk states with their media inserted.
func (m *Manager) recoverRamdiskMedia(ctx context.Context) {
	r := m.ring()
	for _, n := range m.st.Nodes(func(n *store.Node) bool {
		return n.DriverInternalInfo[vmediaKey] != nil && n.Reservation == nil && r.owner(n.ConductorGroup, n.UUID) == m.host
	}) {
		m.cleanUpRamdiskMedia(ctx, n.UUID)
	}
}
