package manager

import (
	"context"
	"fmt"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/store"
)

// The network switches of a node whose network interface moves it
// between networks (Ironic's neutron interface), as Ironic's agent
// deploy and cleaning call them:
//   - deploy: the tenant ports unbound, then ports on the provisioning
//     network while the ramdisk runs; after the image is written and the
//     machine is off, those removed and the tenant ports bound to the
//     node before it boots its disk;
//   - tear-down: the tenant ports unbound once the machine is off;
//   - cleaning: ports on the cleaning network while the ramdisk runs,
//     removed when cleaning ends;
//   - rescue: the tenant ports unbound and ports on the rescuing
//     network while the rescue ramdisk boots; once rescued, those
//     removed and the tenant ports bound again (see rescue.go);
//   - in-band inspection: ports on the inspection network, when one is
//     configured, while the ramdisk runs; removed when it ends.
//
// The ports made are kept in the node's ports' internal_info
// (<net type>_vif_port_id).

// netPorts returns the node's ports as a network interface sees them.
func (m *Manager) netPorts(uuid string) []driver.NetPort {
	var out []driver.NetPort
	for _, p := range m.st.Ports(func(p *store.Port) bool { return p.NodeUUID == uuid }) {
		np := driver.NetPort{UUID: p.UUID, Address: p.Address, PXEEnabled: p.PXEEnabled,
			LocalLinkConnection: p.LocalLinkConnection, InternalInfo: p.InternalInfo, Extra: p.Extra}
		if p.PhysicalNetwork != nil {
			np.PhysicalNetwork = *p.PhysicalNetwork
		}
		out = append(out, np)
	}
	return out
}

// vifKey is the port internal_info key of a net type's service port.
func vifKey(netType string) string { return netType + "_vif_port_id" }

// addNetwork puts the node on a net type's network (when its network
// interface switches networks) and records the service's ports.
func (m *Manager) addNetwork(ctx context.Context, n *store.Node, netType string) error {
	sw, ok := capability[driver.NetworkSwitcher](m, n, "network")
	if !ok || !m.switchesFor(n, netType) {
		return nil
	}
	made, err := sw.AddNetwork(ctx, netType, driverNode(n), m.netPorts(n.UUID))
	if err != nil {
		return fmt.Errorf("adding the %s network to node %s: %w", netType, n.UUID, err)
	}
	return m.setPortVIFs(ctx, n.UUID, vifKey(netType), made)
}

// removeNetwork takes the node off a net type's network.
func (m *Manager) removeNetwork(ctx context.Context, n *store.Node, netType string) error {
	sw, ok := capability[driver.NetworkSwitcher](m, n, "network")
	if !ok || !m.switchesFor(n, netType) {
		return nil
	}
	if err := sw.RemoveNetwork(ctx, netType, driverNode(n), m.netPorts(n.UUID)); err != nil {
		return fmt.Errorf("removing the %s network from node %s: %w", netType, n.UUID, err)
	}
	return m.setPortVIFs(ctx, n.UUID, vifKey(netType), nil)
}

// switchesFor reports whether the node changes networks for a net type:
// always, but for inspection only with an inspection network (without
// one, Ironic's neutron interface leaves inspection where the node is).
func (m *Manager) switchesFor(n *store.Node, netType string) bool {
	if netType != driver.NetInspection {
		return true
	}
	in, ok := capability[driver.InspectionNetworker](m, n, "network")
	return ok && in.HasInspectionNetwork(driverNode(n))
}

// setPortVIFs sets key in each port's internal_info to its value in
// vifs, and removes it from the others.
func (m *Manager) setPortVIFs(ctx context.Context, uuid, key string, vifs map[string]string) error {
	return m.st.Update(ctx, func(tx store.Tx) error {
		for _, p := range m.st.Ports(func(p *store.Port) bool { return p.NodeUUID == uuid }) {
			v, set := vifs[p.UUID]
			if _, had := p.InternalInfo[key]; !had && !set {
				continue
			}
			pp, err := tx.Port(p.UUID)
			if err != nil {
				return err
			}
			if pp.InternalInfo == nil {
				pp.InternalInfo = store.Object{}
			}
			if set {
				pp.InternalInfo[key] = v
			} else {
				delete(pp.InternalInfo, key)
			}
			if err := tx.PutPort(pp); err != nil {
				return err
			}
		}
		return nil
	})
}

// configureTenant binds the node's tenant ports to it (or unbinds them,
// when bind is false).
func (m *Manager) configureTenant(ctx context.Context, n *store.Node, bind bool) error {
	sw, ok := capability[driver.NetworkSwitcher](m, n, "network")
	if !ok {
		return nil
	}
	ports := m.netPorts(n.UUID)
	if bind {
		if err := sw.ConfigureTenantNetworks(ctx, driverNode(n), ports); err != nil {
			return fmt.Errorf("binding the tenant ports of node %s: %w", n.UUID, err)
		}
		return nil
	}
	if err := sw.UnconfigureTenantNetworks(ctx, driverNode(n), ports); err != nil {
		return fmt.Errorf("unbinding the tenant ports of node %s: %w", n.UUID, err)
	}
	return nil
}

// toProvisioning moves a node starting a deploy to the provisioning
// network.
func (m *Manager) toProvisioning(ctx context.Context, n *store.Node) error {
	if err := m.configureTenant(ctx, n, false); err != nil {
		return err
	}
	return m.addNetwork(ctx, n, driver.NetProvisioning)
}

// toTenant moves a deployed node (powered off) from the provisioning
// network to its tenant networks.
func (m *Manager) toTenant(ctx context.Context, n *store.Node) error {
	if err := m.removeNetwork(ctx, n, driver.NetProvisioning); err != nil {
		return err
	}
	return m.configureTenant(ctx, n, true)
}
