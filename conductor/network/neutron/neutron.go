// Package neutron is Ironic's neutron network interface: a node's VIFs
// are Neutron ports, checked against Neutron when attached and matched
// to the node's ports by physical network; tenant ports are bound to the
// node (binding:host_id = node UUID, vnic_type baremetal, the ports'
// local_link_connection in the binding profile) when it goes active and
// unbound when it is torn down; while the ramdisk runs, the node gets
// ports of its own on the provisioning or cleaning network.
//
// It talks to Neutron's v2.0 API through gophercloud, with a Keystone
// session (the service catalog's network endpoint) or a configured
// endpoint without authentication (Neutron's auth_strategy = noauth).
package neutron

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/ironichttp"
)

// VNICBaremetal is the vnic_type of a bare-metal port.
const VNICBaremetal = "baremetal"

// Config configures the interface.
type Config struct {
	// Client is Neutron's networking v2 client (see NoAuthClient,
	// KeystoneClient).
	Client *gophercloud.ServiceClient
	// ProvisioningNetwork, CleaningNetwork, RescuingNetwork and
	// InspectionNetwork are the UUIDs or names of the networks the
	// ramdisk boots on, unless a node's driver_info names its own
	// (Ironic's [neutron] provisioning_network, cleaning_network,
	// rescuing_network, inspection_network).
	ProvisioningNetwork, CleaningNetwork, RescuingNetwork, InspectionNetwork string
	// Log receives the interface's logs (default slog.Default()).
	Log *slog.Logger
}

// Network is the neutron network interface.
type Network struct {
	c   *gophercloud.ServiceClient
	cfg Config
	log *slog.Logger
}

var (
	_ driver.VIFNetwork             = (*Network)(nil)
	_ driver.NetworkSwitcher        = (*Network)(nil)
	_ driver.RescueNetworkValidator = (*Network)(nil)
	_ driver.InspectionNetworker    = (*Network)(nil)
)

// New returns the interface.
func New(cfg Config) *Network {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	return &Network{c: cfg.Client, cfg: cfg, log: log}
}

// NoAuthClient is a client of the Neutron at endpoint (its root, e.g.
// http://127.0.0.1:9696/) sending no token.
func NoAuthClient(endpoint string) *gophercloud.ServiceClient {
	if !strings.HasSuffix(endpoint, "/") {
		endpoint += "/"
	}
	return &gophercloud.ServiceClient{
		ProviderClient: &gophercloud.ProviderClient{HTTPClient: http.Client{}},
		Endpoint:       endpoint,
		ResourceBase:   endpoint + "v2.0/",
		Type:           "network",
	}
}

// KeystoneClient authenticates with Keystone and finds Neutron in the
// service catalog (interface public, in region if set); the session
// re-authenticates when its token expires.
func KeystoneClient(ctx context.Context, opts gophercloud.AuthOptions, region string) (*gophercloud.ServiceClient, error) {
	opts.AllowReauth = true
	pc, err := openstack.AuthenticatedClient(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("neutron: keystone: %w", err)
	}
	c, err := openstack.NewNetworkV2(pc, gophercloud.EndpointOpts{Region: region})
	if err != nil {
		return nil, fmt.Errorf("neutron: service catalog: %w", err)
	}
	return c, nil
}

// BindsVIFs marks the interface a VIF binder.
func (*Network) BindsVIFs() {}

// networkError is Ironic's NetworkError (500).
func networkError(format string, args ...any) error {
	return ironichttp.Errorf(http.StatusInternalServerError, format, args...)
}

// invalid is Ironic's InvalidParameterValue (400).
func invalid(format string, args ...any) error {
	return ironichttp.Errorf(http.StatusBadRequest, format, args...)
}

// missing is Ironic's MissingParameterValue (400).
func missing(format string, args ...any) error {
	return ironichttp.Errorf(http.StatusBadRequest, format, args...)
}

func notFound(err error) bool { return gophercloud.ResponseCodeIs(err, http.StatusNotFound) }

// port is a Neutron port with its binding (its own fields: gophercloud's
// types decode themselves and would drop the extensions').
type port struct {
	ID         string         `json:"id"`
	NetworkID  string         `json:"network_id"`
	MACAddress string         `json:"mac_address"`
	Status     string         `json:"status"`
	HostID     string         `json:"binding:host_id"`
	VNICType   string         `json:"binding:vnic_type"`
	VIFType    string         `json:"binding:vif_type"`
	Profile    map[string]any `json:"binding:profile"`
}

// network is a Neutron network with its provider attributes.
type network struct {
	ID              string           `json:"id"`
	PhysicalNetwork string           `json:"provider:physical_network"`
	Segments        []map[string]any `json:"segments"`
}

func (nw *Network) getPort(ctx context.Context, id string) (*port, error) {
	var p port
	if err := ports.Get(ctx, nw.c, id).ExtractInto(&p); err != nil {
		return nil, err
	}
	return &p, nil
}

// attrs is a port's attributes as sent (null values included, which
// gophercloud's option structs cannot send).
type attrs map[string]any

// portOpts carries attrs as gophercloud's port options (a struct: it
// reads request headers from the options' fields).
type portOpts struct{ a attrs }

func (o portOpts) ToPortUpdateMap() (map[string]any, error) {
	return map[string]any{"port": map[string]any(o.a)}, nil
}

func (o portOpts) ToPortCreateMap() (map[string]any, error) {
	return map[string]any{"port": map[string]any(o.a)}, nil
}

func (nw *Network) updatePort(ctx context.Context, id string, a attrs) (*port, error) {
	var p port
	if err := ports.Update(ctx, nw.c, id, portOpts{a}).ExtractInto(&p); err != nil {
		return nil, err
	}
	return &p, nil
}

// VIFPhysnets returns the physical networks of the VIF's network (those
// of its segments when it has several), as Ironic's
// get_physnets_by_port_uuid, without the routed-network subnet lookup.
func (nw *Network) VIFPhysnets(ctx context.Context, vif string) ([]string, error) {
	p, err := nw.getPort(ctx, vif)
	if notFound(err) {
		return nil, invalid("Neutron port %s was not found", vif)
	}
	if err != nil {
		return nil, networkError("Could not retrieve neutron port: %v", err)
	}
	net, err := nw.findNetwork(ctx, p.NetworkID, "network")
	if err != nil {
		return nil, err
	}
	var out []string
	if net.Segments != nil {
		for _, s := range net.Segments {
			if pn, _ := s["provider:physical_network"].(string); pn != "" {
				out = append(out, pn)
			}
		}
		return out, nil
	}
	if net.PhysicalNetwork != "" {
		out = append(out, net.PhysicalNetwork)
	}
	return out, nil
}

// findNetwork finds a network by UUID, or else by name, with Ironic's
// errors.
func (nw *Network) findNetwork(ctx context.Context, uuidOrName, netType string) (*network, error) {
	var net network
	err := networks.Get(ctx, nw.c, uuidOrName).ExtractInto(&net)
	if err == nil {
		return &net, nil
	}
	if !notFound(err) {
		return nil, networkError("Could not retrieve network: %v", err)
	}
	pages, err := networks.List(nw.c, networks.ListOpts{Name: uuidOrName}).AllPages(ctx)
	if err != nil {
		return nil, networkError("Could not retrieve network: %v", err)
	}
	var found []network
	if err := networks.ExtractNetworksInto(pages, &found); err != nil {
		return nil, networkError("Could not retrieve network: %v", err)
	}
	switch len(found) {
	case 0:
		return nil, invalid("%s with name or UUID %s was not found", netType, uuidOrName)
	case 1:
		return &found[0], nil
	}
	ids := make([]string, len(found))
	for i, f := range found {
		ids[i] = f.ID
	}
	return nil, invalid("More than one %s was found for name %s: %s", netType, uuidOrName, strings.Join(ids, ", "))
}

// UsablePort reports whether a port can carry a VIF: the neutron
// interface needs its local_link_connection (an InfiniBand port, with a
// client-id, excepted), as Ironic's validate_port_info.
func (*Network) UsablePort(p driver.NetPort) bool {
	if id, _ := p.Extra["client-id"].(string); id != "" {
		return true
	}
	return len(p.LocalLinkConnection) > 0
}

// VIFAttached updates the Neutron port of a VIF just kept on p, as
// Ironic's neutron interface: its MAC address becomes the port's; then,
// for an active node, it is bound to the node (the tenant network), and
// otherwise only seeded with the node as its host.
func (nw *Network) VIFAttached(ctx context.Context, n *driver.Node, p driver.NetPort, vif string, active bool) error {
	if p.Address != "" {
		if err := nw.updateAddress(ctx, vif, p.Address); err != nil {
			return networkError("Unable to attach VIF %s because Ironic can not update Neutron port %s MAC address to match physical MAC address %s", vif, vif, p.Address)
		}
	}
	if active {
		return nw.plug(ctx, n, p, vif)
	}
	// As Ironic's update_port_host_id: unbind a port bound elsewhere,
	// then name the node its host, with no profile yet.
	cur, err := nw.getPort(ctx, vif)
	if notFound(err) {
		return networkError("The neutron port %s was not found when we expect it to exist. We cannot proceed.", vif)
	}
	if err != nil {
		return networkError("An unknown error was encountered while attempting to retrieve neutron port %s. Error: %v", vif, err)
	}
	if cur.HostID != "" {
		if err := nw.unbind(ctx, vif, false); err != nil {
			return err
		}
	}
	if _, err := nw.updatePort(ctx, vif, attrs{"binding:vnic_type": VNICBaremetal, "binding:host_id": n.UUID, "binding:profile": map[string]any{}}); err != nil {
		return networkError("Could not seed network configuration for VIF %sto node %s, possible network, state, or access permission issue. %v", vif, n.UUID, err)
	}
	return nil
}

// updateAddress sets a Neutron port's MAC address; a bound port is
// unbound first and bound again after, as Neutron refuses to change a
// bound port's address.
func (nw *Network) updateAddress(ctx context.Context, vif, mac string) error {
	cur, err := nw.getPort(ctx, vif)
	if err != nil {
		return fmt.Errorf("neutron: port %s: %w", vif, err)
	}
	if strings.EqualFold(cur.MACAddress, mac) {
		return nil
	}
	if cur.HostID != "" {
		if _, err := nw.updatePort(ctx, vif, attrs{"binding:host_id": "", "binding:profile": map[string]any{}}); err != nil {
			return fmt.Errorf("neutron: unbinding port %s: %w", vif, err)
		}
	}
	if _, err := nw.updatePort(ctx, vif, attrs{"mac_address": mac}); err != nil {
		return fmt.Errorf("neutron: port %s address: %w", vif, err)
	}
	if cur.HostID != "" {
		if _, err := nw.updatePort(ctx, vif, attrs{"binding:host_id": cur.HostID, "binding:profile": cur.Profile}); err != nil {
			return fmt.Errorf("neutron: binding port %s again: %w", vif, err)
		}
	}
	return nil
}

// plug binds a VIF to the node through port p, as Ironic's
// plug_port_to_tenant_network.
func (nw *Network) plug(ctx context.Context, n *driver.Node, p driver.NetPort, vif string) error {
	profile := map[string]any{"local_link_information": []any{p.LocalLinkConnection}}
	if p.PhysicalNetwork != "" {
		profile["physical_network"] = p.PhysicalNetwork
	}
	a := attrs{"binding:vnic_type": VNICBaremetal, "binding:host_id": n.UUID, "binding:profile": profile}
	if p.Address != "" {
		a["mac_address"] = p.Address
	}
	if id, _ := p.Extra["client-id"].(string); id != "" {
		a["extra_dhcp_opts"] = []any{map[string]any{"opt_name": "61", "opt_value": id}}
	}
	bound, err := nw.updatePort(ctx, vif, a)
	if err != nil {
		return networkError("Could not add public network VIF %s to node %s, possible network issue. %v", vif, n.UUID, err)
	}
	nw.log.Info("neutron: tenant port bound", "node", n.UUID, "vif", vif, "vif_type", bound.VIFType, "status", bound.Status)
	if failOnBinding(n) && bound.VIFType == "binding_failed" {
		return networkError("Could not add public network VIF %s to node %s, possible network issue. Port %s failed to reach status ACTIVE", vif, n.UUID, vif)
	}
	return nil
}

// failOnBinding is the node's driver_info fail_on_binding_failure
// (Ironic's default, without Smart NICs, is false).
func failOnBinding(n *driver.Node) bool {
	switch v := n.DriverInfo["fail_on_binding_failure"].(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(v, "true") || v == "1" || strings.EqualFold(v, "yes") || strings.EqualFold(v, "on")
	}
	return false
}

// unbind clears a port's binding (and its MAC address when resetMAC),
// ignoring a port already gone, as Ironic's unbind_neutron_port.
func (nw *Network) unbind(ctx context.Context, vif string, resetMAC bool) error {
	_, err := nw.updatePort(ctx, vif, attrs{"binding:host_id": "", "binding:profile": map[string]any{}})
	if err == nil && resetMAC {
		// A second request: Neutron refuses a bound port's new address.
		_, err = nw.updatePort(ctx, vif, attrs{"mac_address": nil})
	}
	switch {
	case notFound(err):
		nw.log.Info("neutron: port not found while unbinding", "vif", vif)
		return nil
	case err != nil:
		return networkError("Unable to clear binding profile for neutron port %s. Error: %v", vif, err)
	}
	return nil
}

// VIFDetached unbinds a detached VIF's port when unbind is set (the node
// is active, deleting or available, as Ironic).
func (nw *Network) VIFDetached(ctx context.Context, n *driver.Node, vif string, unbind bool) error {
	if !unbind {
		return nil
	}
	return nw.unbind(ctx, vif, true)
}

// ConfigureTenantNetworks binds every port's VIF to the node; a node
// none of whose ports has a VIF fails, as Ironic's.
func (nw *Network) ConfigureTenantNetworks(ctx context.Context, n *driver.Node, ps []driver.NetPort) error {
	if len(ps) == 0 {
		return networkError("No ports are associated with node %s", n.UUID)
	}
	bound := 0
	for _, p := range ps {
		vif, _ := p.InternalInfo[driver.TenantVIFKey].(string)
		if vif == "" {
			continue
		}
		if err := nw.plug(ctx, n, p, vif); err != nil {
			return err
		}
		bound++
	}
	if bound == 0 {
		return networkError("No neutron ports or portgroups are associated with node %s", n.UUID)
	}
	return nil
}

// UnconfigureTenantNetworks unbinds the ports' VIFs (Nova deletes them).
func (nw *Network) UnconfigureTenantNetworks(ctx context.Context, n *driver.Node, ps []driver.NetPort) error {
	for _, p := range ps {
		vif, _ := p.InternalInfo[driver.TenantVIFKey].(string)
		if vif == "" {
			continue
		}
		if err := nw.unbind(ctx, vif, p.Address != ""); err != nil {
			return err
		}
	}
	return nil
}

// networkName is the node's network of a net type: its driver_info
// <type>_network, else the configured one, as Ironic.
func (nw *Network) networkName(netType string, n *driver.Node) string {
	if name, _ := n.DriverInfo[netType+"_network"].(string); name != "" {
		return name
	}
	switch netType {
	case driver.NetProvisioning:
		return nw.cfg.ProvisioningNetwork
	case driver.NetCleaning:
		return nw.cfg.CleaningNetwork
	case driver.NetRescuing:
		return nw.cfg.RescuingNetwork
	case driver.NetInspection:
		return nw.cfg.InspectionNetwork
	}
	return ""
}

// networkFor is the UUID of the node's network of a net type, with
// Ironic's errors (validate_network: the net type named "<type>
// network").
func (nw *Network) networkFor(ctx context.Context, netType string, n *driver.Node) (string, error) {
	name := nw.networkName(netType, n)
	if name == "" {
		return "", missing("UUID or name of %s network is not set in configuration", netType)
	}
	net, err := nw.findNetwork(ctx, name, netType+" network")
	if err != nil {
		return "", err
	}
	return net.ID, nil
}

// ValidateRescueNetwork checks the node's rescuing network, as Ironic's
// validate_rescue of the neutron interface.
func (nw *Network) ValidateRescueNetwork(ctx context.Context, n *driver.Node) error {
	_, err := nw.networkFor(ctx, driver.NetRescuing, n)
	return err
}

// HasInspectionNetwork reports whether the node has an inspection
// network (its driver_info inspection_network or the configured one);
// without one, Ironic's validate_inspection falls back to inspection
// on the node's current network.
func (nw *Network) HasInspectionNetwork(n *driver.Node) bool {
	return nw.networkName(driver.NetInspection, n) != ""
}

// ValidateNetworks checks the cleaning and provisioning networks, as
// Ironic's neutron interface validates them.
func (nw *Network) ValidateNetworks(ctx context.Context, n *driver.Node) error {
	for _, t := range []string{driver.NetCleaning, driver.NetProvisioning} {
		if _, err := nw.networkFor(ctx, t, n); err != nil {
			return err
		}
	}
	return nil
}

// AddNetwork creates, for each PXE-enabled port, a Neutron port on the
// net type's network bound to the node (Ironic's add_ports_to_network),
// after removing any left from before. A port that cannot be made is
// logged; none made is an error.
func (nw *Network) AddNetwork(ctx context.Context, netType string, n *driver.Node, ps []driver.NetPort) (map[string]string, error) {
	netID, err := nw.networkFor(ctx, netType, n)
	if err != nil {
		return nil, err
	}
	if err := nw.removePorts(ctx, netID, n, ps); err != nil {
		nw.log.Warn("neutron: rolling back ports", "node", n.UUID, "network", netID, "err", err)
	}
	var todo []driver.NetPort
	for _, p := range ps {
		if p.PXEEnabled {
			todo = append(todo, p)
		}
	}
	if len(todo) == 0 {
		return nil, networkError("No available PXE-enabled ports on node %s.", n.UUID)
	}
	device := n.UUID
	if n.InstanceUUID != "" {
		device = n.InstanceUUID
	}
	out := map[string]string{}
	var failed []string
	for _, p := range todo {
		if !nw.UsablePort(p) {
			failed = append(failed, p.UUID)
			continue
		}
		var created port
		err := ports.Create(ctx, nw.c, portOpts{attrs{"network_id": netID, "admin_state_up": true,
			"binding:vnic_type": VNICBaremetal, "device_id": device}}).ExtractInto(&created)
		if err == nil {
			profile := map[string]any{"local_link_information": []any{p.LocalLinkConnection}}
			if p.PhysicalNetwork != "" {
				profile["physical_network"] = p.PhysicalNetwork
			}
			_, err = nw.updatePort(ctx, created.ID, attrs{"binding:host_id": n.UUID, "device_owner": "baremetal:none",
				"mac_address": p.Address, "binding:profile": profile})
		}
		if err != nil {
			nw.log.Warn("neutron: could not create a port", "node", n.UUID, "port", p.UUID, "network", netID, "err", err)
			failed = append(failed, p.UUID)
			continue
		}
		out[p.UUID] = created.ID
	}
	if len(failed) == len(todo) {
		_ = nw.removePorts(ctx, netID, n, ps)
		return nil, networkError("Failed to create neutron ports for node's %s ports %s.", n.UUID, strings.Join(failed, ", "))
	}
	nw.log.Info("neutron: ports created", "node", n.UUID, "network", netID, "net_type", netType, "ports", out)
	return out, nil
}

// RemoveNetwork deletes the node's ports on the net type's network.
func (nw *Network) RemoveNetwork(ctx context.Context, netType string, n *driver.Node, ps []driver.NetPort) error {
	netID, err := nw.networkFor(ctx, netType, n)
	if err != nil {
		return err
	}
	return nw.removePorts(ctx, netID, n, ps)
}

// removePorts deletes the ports on a network with the PXE-enabled
// ports' MAC addresses, as Ironic's remove_ports_from_network.
func (nw *Network) removePorts(ctx context.Context, netID string, n *driver.Node, ps []driver.NetPort) error {
	for _, p := range ps {
		if !p.PXEEnabled || p.Address == "" {
			continue
		}
		pages, err := ports.List(nw.c, ports.ListOpts{NetworkID: netID, MACAddress: p.Address}).AllPages(ctx)
		if err != nil {
			return networkError("Could not get given network VIF for %s from neutron, possible network issue. %v", n.UUID, err)
		}
		found, err := ports.ExtractPorts(pages)
		if err != nil {
			return networkError("Could not get given network VIF for %s from neutron, possible network issue. %v", n.UUID, err)
		}
		for _, f := range found {
			err := ports.Delete(ctx, nw.c, f.ID).ExtractErr()
			if err != nil && !notFound(err) {
				return networkError("Could not remove VIF %s of node %s, possibly a network issue: %v", f.ID, n.UUID, err)
			}
		}
	}
	return nil
}
