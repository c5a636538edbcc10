package driver

import "context"

// VIFBinder is a network interface that binds a node's VIFs to its
// ports, one VIF a port, as Ironic's flat interface does. A network
// interface that is not a VIFBinder (noop) accepts any VIF and keeps
// none, as Ironic's noop.
type VIFBinder interface {
	// BindsVIFs marks the binder; the API keeps the VIF on the port
	// (internal_info.tenant_vif_port_id).
	BindsVIFs()
}

// NetPort is a node's port as a network interface sees it.
type NetPort struct {
	UUID                string
	Address             string
	PXEEnabled          bool
	PhysicalNetwork     string // "" when unset
	LocalLinkConnection map[string]any
	InternalInfo        map[string]any
	Extra               map[string]any
}

// VIFNetwork is a VIF binder whose VIFs are ports of a network service
// (Ironic's neutron interface): a VIF must exist there, it may only go
// on a port of one of its network's physical networks, and attaching or
// detaching it updates the service's port.
type VIFNetwork interface {
	VIFBinder
	// VIFPhysnets returns the physical networks the VIF may be attached
	// on (none: any), or Ironic's error when the VIF is not a port of
	// the service.
	VIFPhysnets(ctx context.Context, vif string) ([]string, error)
	// UsablePort reports whether a port has what the interface needs to
	// carry a VIF (a local_link_connection).
	UsablePort(p NetPort) bool
	// VIFAttached updates the service's port after the VIF was kept on
	// p: its MAC address, and its binding (bound for an active node,
	// only its host otherwise).
	VIFAttached(ctx context.Context, n *Node, p NetPort, vif string, active bool) error
	// VIFDetached unbinds the service's port when unbind is set.
	VIFDetached(ctx context.Context, n *Node, vif string, unbind bool) error
}

// Net types of the networks a node is moved to while the ramdisk runs,
// and the internal_info key of the service's port made for each.
const (
	NetProvisioning = "provisioning"
	NetCleaning     = "cleaning"
	NetRescuing     = "rescuing"
	NetInspection   = "inspection"
)

// RescueNetworkValidator is a NetworkSwitcher that needs a rescuing
// network to rescue a node (Ironic's validate_rescue of the neutron
// interface).
type RescueNetworkValidator interface {
	// ValidateRescueNetwork checks that the node's rescuing network is
	// configured and exists.
	ValidateRescueNetwork(ctx context.Context, n *Node) error
}

// InspectionNetworker is a NetworkSwitcher that may move a node to an
// inspection network while its inspection ramdisk runs.
type InspectionNetworker interface {
	// HasInspectionNetwork reports whether the node has an inspection
	// network configured (without one, Ironic inspects the node where
	// it is).
	HasInspectionNetwork(n *Node) bool
}

// NetworkSwitcher is a network interface that moves a node between
// networks as its provision state changes (Ironic's neutron interface).
type NetworkSwitcher interface {
	// ValidateNetworks checks that the provisioning and cleaning
	// networks are configured and exist.
	ValidateNetworks(ctx context.Context, n *Node) error
	// AddNetwork creates a service port on the net type's network for
	// each PXE-enabled port and returns them by the node port's UUID.
	AddNetwork(ctx context.Context, netType string, n *Node, ports []NetPort) (map[string]string, error)
	// RemoveNetwork deletes the service ports AddNetwork made.
	RemoveNetwork(ctx context.Context, netType string, n *Node, ports []NetPort) error
	// ConfigureTenantNetworks binds the ports' VIFs to the node.
	ConfigureTenantNetworks(ctx context.Context, n *Node, ports []NetPort) error
	// UnconfigureTenantNetworks unbinds them.
	UnconfigureTenantNetworks(ctx context.Context, n *Node, ports []NetPort) error
}

// TenantVIFKey is the port internal_info key holding the tenant VIF.
const TenantVIFKey = "tenant_vif_port_id"
