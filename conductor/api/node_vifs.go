package api

import (
	"context"
	"net/http"
	"slices"
	"sort"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/store"
)

// VIFs follow the node's network interface, as Ironic's: a VIF binder
// (flat) keeps each VIF on a free port of the node
// (internal_info.tenant_vif_port_id); a VIF network (neutron) also checks
// the VIF against the network service, keeps it only on a port of one of
// its physical networks and updates the service's port; any other (noop)
// accepts every VIF, keeps none and lists none.

const vifKey = driver.TenantVIFKey

// vifNetwork is the node's network interface when it is a VIF network.
func (s *Server) vifNetwork(n *store.Node) (driver.VIFNetwork, bool) {
	obj, _ := s.mgr.Drivers().Object(n.Driver, "network", n.Interfaces["network"])
	vn, ok := obj.(driver.VIFNetwork)
	return vn, ok
}

// netPort is a port as a network interface sees it.
func netPort(p *store.Port) driver.NetPort {
	np := driver.NetPort{UUID: p.UUID, Address: p.Address, PXEEnabled: p.PXEEnabled,
		LocalLinkConnection: p.LocalLinkConnection, InternalInfo: p.InternalInfo, Extra: p.Extra}
	if p.PhysicalNetwork != nil {
		np.PhysicalNetwork = *p.PhysicalNetwork
	}
	return np
}

// vifDriverNode is the node as a network interface sees it.
func vifDriverNode(n *store.Node) *driver.Node {
	return &driver.Node{UUID: n.UUID, DriverInfo: n.DriverInfo, Properties: n.Properties, InstanceInfo: n.InstanceInfo}
}

// bindsVIFs reports whether the node's network interface keeps VIFs.
func (s *Server) bindsVIFs(n *store.Node) bool {
	obj, _ := s.mgr.Drivers().Object(n.Driver, "network", n.Interfaces["network"])
	_, ok := obj.(driver.VIFBinder)
	return ok
}

func (s *Server) listVIFs(c echo.Context, n *store.Node) error {
	out := []map[string]string{}
	if s.bindsVIFs(n) {
		// Ironic lists the ports' VIFs, in the ports' order.
		for _, p := range s.st.Ports(func(p *store.Port) bool { return p.NodeUUID == n.UUID }) {
			if v, _ := p.InternalInfo[vifKey].(string); v != "" {
				out = append(out, map[string]string{"id": v})
			}
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"vifs": out})
}

func (s *Server) attachVIF(c echo.Context, n *store.Node) error {
	body, _, err := readJSONObject(c, "vif")
	if err != nil {
		return err
	}
	id, _ := body["id"].(string)
	if id == "" {
		return badRequest("Schema error for vif: 'id' is a required property")
	}
	if e := ironichttp.ArgUUIDOrName("id", id); e != nil {
		return e
	}
	portUUID, _ := body["port_uuid"].(string)
	if portUUID != "" && ver(c) < 67 {
		return notAcceptable("The port_uuid parameter is not supported by version %s.", ver(c))
	}
	if !s.bindsVIFs(n) {
		return c.NoContent(http.StatusNoContent) // noop: nothing to bind
	}
	ctx := c.Request().Context()
	vn, isNet := s.vifNetwork(n)
	var physnets []string
	if isNet {
		if physnets, err = vn.VIFPhysnets(ctx, id); err != nil {
			return err
		}
	}
	var kept *store.Port
	err = s.st.Update(ctx, func(tx store.Tx) error {
		n, err := tx.Node(n.UUID)
		if err != nil {
			return err
		}
		chosen, err := s.freePort(n.UUID, id, portUUID, vn, physnets)
		if err != nil {
			return err
		}
		p, err := tx.Port(chosen.UUID)
		if err != nil {
			return err
		}
		if p.InternalInfo == nil {
			p.InternalInfo = store.Object{}
		}
		p.InternalInfo[vifKey] = id
		if err := tx.PutPort(p); err != nil {
			return err
		}
		n.VIFs = append(n.VIFs, id)
		kept = p
		return tx.PutNode(n)
	})
	if err != nil {
		return err
	}
	if isNet {
		active := n.ProvisionState == "active"
		if err := vn.VIFAttached(ctx, vifDriverNode(n), netPort(kept), id, active); err != nil {
			// The service's port was not updated: the VIF is not kept.
			s.forgetVIF(ctx, n.UUID, id)
			return err
		}
	}
	return c.NoContent(http.StatusNoContent)
}

// forgetVIF takes back a VIF whose attachment failed.
func (s *Server) forgetVIF(ctx context.Context, nodeUUID, vif string) {
	err := s.st.Update(ctx, func(tx store.Tx) error {
		n, err := tx.Node(nodeUUID)
		if err != nil {
			return err
		}
		if _, err := s.unbindPorts(tx, nodeUUID, vif); err != nil {
			return err
		}
		if i := slices.Index(n.VIFs, vif); i >= 0 {
			n.VIFs = slices.Delete(n.VIFs, i, i+1)
		}
		return tx.PutNode(n)
	})
	if err != nil {
		s.log.Error("api: taking back a VIF", "node", nodeUUID, "vif", vif, "err", err)
	}
}

// unbindPorts takes vif off every port of the node that carries it, in
// tx; found says whether one did.
func (s *Server) unbindPorts(tx store.Tx, nodeUUID, vif string) (found bool, err error) {
	for _, p := range s.st.Ports(func(p *store.Port) bool { return p.NodeUUID == nodeUUID }) {
		if p.InternalInfo[vifKey] != vif {
			continue
		}
		pp, err := tx.Port(p.UUID)
		if err != nil {
			return found, err
		}
		delete(pp.InternalInfo, vifKey)
		if err := tx.PutPort(pp); err != nil {
			return found, err
		}
		found = true
	}
	return found, nil
}

// freePort picks the port a VIF binds to as Ironic does: among the
// node's ports (only the one named, when portUUID is set) that carry no
// VIF, the PXE-enabled first, then in the ports' order. A port already
// carrying this VIF is a conflict; no free port a bad request. With a VIF
// network (vn set), a port it cannot use (no local_link_connection) is
// skipped, a port must be on one of the VIF's physical networks (or on
// none, or the VIF's network has none), and a port on one of them is
// preferred.
func (s *Server) freePort(nodeUUID, vif, portUUID string, vn driver.VIFNetwork, physnets []string) (*store.Port, error) {
	var free []*store.Port
	matches := func(p *store.Port) bool {
		return p.PhysicalNetwork != nil && slices.Contains(physnets, *p.PhysicalNetwork)
	}
	for _, p := range s.st.Ports(func(p *store.Port) bool { return p.NodeUUID == nodeUUID }) {
		if portUUID != "" && p.UUID != portUUID {
			continue
		}
		if vn != nil && !vn.UsablePort(netPort(p)) {
			continue
		}
		cur, _ := p.InternalInfo[vifKey].(string)
		if cur == vif {
			return nil, conflict("Unable to attach VIF because VIF %s is already attached to Ironic Port %s", vif, p.UUID)
		}
		if cur != "" {
			continue
		}
		if vn != nil && len(physnets) > 0 && p.PhysicalNetwork != nil && !matches(p) {
			continue
		}
		free = append(free, p)
	}
	if len(free) == 0 {
		return nil, badRequest("Unable to attach VIF %s, not enough free physical ports.", vif)
	}
	sort.SliceStable(free, func(i, j int) bool {
		if mi, mj := matches(free[i]), matches(free[j]); mi != mj {
			return mi
		}
		return free[i].PXEEnabled && !free[j].PXEEnabled
	})
	return free[0], nil
}

func (s *Server) detachVIF(c echo.Context, n *store.Node) error {
	id := c.Param("vif")
	if !s.bindsVIFs(n) {
		return c.NoContent(http.StatusNoContent) // noop: nothing attached
	}
	err := s.st.Update(c.Request().Context(), func(tx store.Tx) error {
		n, err := tx.Node(n.UUID)
		if err != nil {
			return err
		}
		found, err := s.unbindPorts(tx, n.UUID, id)
		if err != nil {
			return err
		}
		if !found {
			return badRequest("Unable to detach VIF %s from node %s because it is not attached to it.", id, n.UUID)
		}
		if i := slices.Index(n.VIFs, id); i >= 0 {
			n.VIFs = slices.Delete(n.VIFs, i, i+1)
			return tx.PutNode(n)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if vn, ok := s.vifNetwork(n); ok {
		// As Ironic: the service's port is unbound when the node is
		// active, being torn down, or available.
		unbind := n.ProvisionState == "active" || n.ProvisionState == "deleting" || n.ProvisionState == "available"
		if err := vn.VIFDetached(c.Request().Context(), vifDriverNode(n), id, unbind); err != nil {
			return err
		}
	}
	return c.NoContent(http.StatusNoContent)
}
