package api

import (
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/store"
)

func (s *Server) listVIFs(c echo.Context, n *store.Node) error {
	out := []map[string]string{}
	for _, v := range n.VIFs {
		out = append(out, map[string]string{"id": v})
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
	err = s.st.Update(c.Request().Context(), func(tx store.Tx) error {
		n, err := tx.Node(n.UUID)
		if err != nil {
			return err
		}
		if slices.Contains(n.VIFs, id) {
			return conflict("Unable to set VIF %s, it is already attached to node %s.", id, n.UUID)
		}
		chosen := s.freePort(n.UUID, portUUID)
		if chosen == nil {
			return badRequest("Unable to attach VIF %s, not enough free physical ports.", id)
		}
		p, err := tx.Port(chosen.UUID)
		if err != nil {
			return err
		}
		if p.InternalInfo == nil {
			p.InternalInfo = store.Object{}
		}
		p.InternalInfo["tenant_vif_port_id"] = id
		if err := tx.PutPort(p); err != nil {
			return err
		}
		n.VIFs = append(n.VIFs, id)
		return tx.PutNode(n)
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// freePort is the first of the node's ports (or the one named, when
// portUUID is set) that no VIF uses; nil for none.
func (s *Server) freePort(nodeUUID, portUUID string) *store.Port {
	for _, p := range s.st.Ports(func(p *store.Port) bool { return p.NodeUUID == nodeUUID }) {
		if portUUID != "" && p.UUID != portUUID {
			continue
		}
		if _, used := p.InternalInfo["tenant_vif_port_id"]; !used {
			return p
		}
	}
	return nil
}

func (s *Server) detachVIF(c echo.Context, n *store.Node) error {
	id := c.Param("vif")
	err := s.st.Update(c.Request().Context(), func(tx store.Tx) error {
		n, err := tx.Node(n.UUID)
		if err != nil {
			return err
		}
		i := slices.Index(n.VIFs, id)
		if i < 0 {
			return badRequest("Unable to detach VIF %s from node %s because it is not attached to it.", id, n.UUID)
		}
		n.VIFs = slices.Delete(n.VIFs, i, i+1)
		for _, p := range s.st.Ports(func(p *store.Port) bool { return p.NodeUUID == n.UUID }) {
			if p.InternalInfo["tenant_vif_port_id"] == id {
				pp, err := tx.Port(p.UUID)
				if err != nil {
					return err
				}
				delete(pp.InternalInfo, "tenant_vif_port_id")
				if err := tx.PutPort(pp); err != nil {
					return err
				}
			}
		}
		return tx.PutNode(n)
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
