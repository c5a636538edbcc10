package driver

// VIFBinder is a network interface that binds a node's VIFs to its
// ports, one VIF a port, as Ironic's flat interface does. A network
// interface that is not a VIFBinder (noop) accepts any VIF and keeps
// none, as Ironic's noop.
type VIFBinder interface {
	// BindsVIFs marks the binder; the API keeps the VIF on the port
	// (internal_info.tenant_vif_port_id).
	BindsVIFs()
}
