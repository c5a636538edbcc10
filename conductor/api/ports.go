package api

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/internal/python"
	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/store"
)

var portFields []field[*store.Port]

func init() {
	pf := func(name string, min Version, get func(echo.Context, *store.Port) any) {
		portFields = append(portFields, field[*store.Port]{name, min, get})
	}
	pf("uuid", 1, func(_ echo.Context, p *store.Port) any { return p.UUID })
	pf("address", 1, func(_ echo.Context, p *store.Port) any { return p.Address })
	pf("node_uuid", 1, func(_ echo.Context, p *store.Port) any { return p.NodeUUID })
	pf("extra", 1, func(_ echo.Context, p *store.Port) any { return objOrEmpty(p.Extra) })
	pf("internal_info", 18, func(_ echo.Context, p *store.Port) any { return objOrEmpty(p.InternalInfo) })
	pf("local_link_connection", 19, showLocalLink)
	pf("pxe_enabled", 19, func(_ echo.Context, p *store.Port) any { return p.PXEEnabled })
	pf("portgroup_uuid", 24, func(_ echo.Context, p *store.Port) any { return strPtr(p.PortgroupUUID) })
	pf("physical_network", 34, func(_ echo.Context, p *store.Port) any { return strPtr(p.PhysicalNetwork) })
	pf("is_smartnic", 53, func(_ echo.Context, p *store.Port) any { return p.IsSmartNIC })
	pf("name", 88, func(_ echo.Context, p *store.Port) any { return strPtr(p.Name) })
	pf("description", 97, func(_ echo.Context, p *store.Port) any { return strPtr(p.Description) })
	pf("vendor", 100, func(_ echo.Context, p *store.Port) any { return strPtr(p.Vendor) })
	pf("category", 101, func(_ echo.Context, p *store.Port) any { return strPtr(p.Category) })
	pf("created_at", 1, func(_ echo.Context, p *store.Port) any { return ironicTime(p.CreatedAt) })
	pf("updated_at", 1, func(_ echo.Context, p *store.Port) any { return timePtr(p.UpdatedAt) })
	pf("links", 1, func(c echo.Context, p *store.Port) any { return links(c, "ports", p.UUID) })
	portFieldsSorted = sortedFields(portFields)
}

// portFieldsSorted is portFields in name order, for the list encoder.
var portFieldsSorted []field[*store.Port]

var portSortKeys = map[string]func(a, b *store.Port) int{
	"id":          func(a, b *store.Port) int { return cmpInt(a.ID, b.ID) },
	"uuid":        func(a, b *store.Port) int { return strings.Compare(a.UUID, b.UUID) },
	"address":     func(a, b *store.Port) int { return strings.Compare(a.Address, b.Address) },
	"node_uuid":   func(a, b *store.Port) int { return strings.Compare(a.NodeUUID, b.NodeUUID) },
	"created_at":  func(a, b *store.Port) int { return a.CreatedAt.Compare(b.CreatedAt) },
	"updated_at":  func(a, b *store.Port) int { return cmpTime(a.UpdatedAt, b.UpdatedAt) },
	"pxe_enabled": func(a, b *store.Port) int { return cmpBool(a.PXEEnabled, b.PXEEnabled) },
}

// portPatchable is in Ironic's order (alphabetical, as its message lists them).
var portPatchable = []string{"address", "category", "description", "extra", "is_smartnic", "local_link_connection",
	"name", "node_uuid", "physical_network", "portgroup_uuid", "pxe_enabled", "vendor"}

// portStrings are the port's free-text fields (1.97, 1.100, 1.101) and
// the lengths Ironic's schema allows.
var portStrings = []struct {
	name string
	max  int
	at   func(*store.Port) **string
}{
	{"description", 255, func(p *store.Port) **string { return &p.Description }},
	{"vendor", 32, func(p *store.Port) **string { return &p.Vendor }},
	{"category", 80, func(p *store.Port) **string { return &p.Category }},
}

// ovnVTEPFields are the local_link_connection keys of OVN VTEP switches,
// accepted only from 1.90 to 1.104 (1.105 removed them).
var ovnVTEPFields = []string{"vtep-logical-switch", "vtep-physical-switch"}

func ovnVTEPAllowed(v Version) bool { return v >= 90 && v < 105 }

// showLocalLink shows local_link_connection; one naming OVN VTEP switches
// shows as {} at versions that do not know them, as Ironic's.
func showLocalLink(c echo.Context, p *store.Port) any {
	if !ovnVTEPAllowed(ver(c)) && slices.ContainsFunc(ovnVTEPFields, func(k string) bool { _, ok := p.LocalLinkConnection[k]; return ok }) {
		return map[string]any{}
	}
	return objOrEmpty(p.LocalLinkConnection)
}

// checkPortVersion refuses, with a 406, a create body naming OVN VTEP
// switches outside 1.90-1.104 (the newer fields are refused by
// createPort's field loop). As Ironic's, PATCH checks neither.
func checkPortVersion(doc map[string]any, v Version) *Error {
	if llc, _ := doc["local_link_connection"].(map[string]any); llc != nil && !ovnVTEPAllowed(v) {
		if _, ok := llc["vtep-logical-switch"]; ok {
			return notAcceptable("Field local_link_connection/vtep-logical-switch is not supported by version %s.", v)
		}
	}
	return nil
}

func (s *Server) portRoutes(g *echo.Group) {
	g.GET("/ports", s.listPorts(false, ""))
	g.GET("/ports/", s.listPorts(false, ""))
	g.GET("/ports/detail", s.listPorts(true, ""))
	g.POST("/ports", s.createPort)
	g.POST("/ports/", s.createPort)
	g.GET("/ports/:port", s.getPort)
	g.PATCH("/ports/:port", s.patchPort)
	g.DELETE("/ports/:port", s.deletePort)
}

func (s *Server) nodePorts(detail bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		n, err := s.findNode(c, c.Param("node"))
		if err != nil {
			return err
		}
		return s.listPorts(detail, n.UUID)(c)
	}
}

func (s *Server) findPort(c echo.Context, ident string) (*store.Port, error) {
	if !store.IsUUID(ident) {
		if ver(c) >= 88 {
			if p := s.st.Ports(func(p *store.Port) bool { return deref(p.Name) == ident }); len(p) == 1 {
				return p[0], nil
			}
		}
		return nil, badRequest("Expected UUID for port_uuid: %s", ident)
	}
	p, err := s.st.Port(strings.ToLower(ident))
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("Port %s could not be found.", ident)
	}
	return p, err
}

func (s *Server) getPort(c echo.Context) error {
	p, err := s.findPort(c, c.Param("port"))
	if err != nil {
		return err
	}
	want, ferr := fieldSet(portFields, ver(c), c.QueryParam("fields"))
	if ferr != nil {
		return ferr
	}
	return c.JSON(http.StatusOK, render(c, portFields, p, ver(c), want))
}

func (s *Server) listPorts(detail bool, nodeUUID string) echo.HandlerFunc {
	return func(c echo.Context) error {
		v := ver(c)
		want, ferr := portListWant(c, detail, v)
		if ferr != nil {
			return ferr
		}
		filter, ferr := s.portFilter(c, nodeUUID, v)
		if ferr != nil {
			return ferr
		}
		if filter, ferr = scopeByNode(s, c, "port", filter, func(p *store.Port) string { return p.NodeUUID }); ferr != nil {
			return ferr
		}
		page, perr := parsePaging(c, portSortKeys, nil, nil)
		if perr != nil {
			return perr
		}
		items, next, perr := paginate(c, s.st.Ports(filter), page, portSortKeys, func(p *store.Port) string { return p.UUID },
			func(id string) (*store.Port, error) { return s.st.Port(id) })
		if perr != nil {
			return perr
		}
		return writeCollection(c, "ports", portFieldsSorted, items, v, want, next)
	}
}

// portListWant is which fields a port listing shows: uuid and address,
// every field on /detail or with ?detail=True (1.43), or ?fields.
func portListWant(c echo.Context, detail bool, v Version) (map[string]bool, *Error) {
	q := c.QueryParams()
	if q.Has("detail") {
		if v < 43 {
			return nil, notAcceptable("The detail parameter is not supported by version %s.", v)
		}
		d, ok := ironichttp.ParseBool(q.Get("detail"))
		if !ok {
			return nil, badRequest("Invalid value for detail: %s", q.Get("detail"))
		}
		detail = detail || d
	}
	want := map[string]bool{"uuid": true, "address": true, "links": true}
	if detail {
		want = nil
	}
	if q.Has("fields") {
		return fieldSet(portFields, v, q.Get("fields"))
	}
	return want, nil
}

// portFilter is the filter of a port listing: the node of the route, and
// the node, address, port group and shard parameters.
func (s *Server) portFilter(c echo.Context, nodeUUID string, v Version) (func(*store.Port) bool, *Error) {
	q := c.QueryParams()
	var preds []func(*store.Port) bool
	if nodeUUID != "" {
		preds = append(preds, func(p *store.Port) bool { return p.NodeUUID == nodeUUID })
	}
	for _, k := range []string{"node", "node_uuid"} {
		if val := q.Get(k); val != "" {
			check := ironichttp.ArgUUIDOrName
			if k == "node_uuid" {
				check = ironichttp.ArgUUID
			}
			if e := check(k, val); e != nil {
				return nil, e
			}
			n, err := s.st.Node(val)
			if err != nil {
				return nil, notFound("Node %s could not be found.", val)
			}
			u := n.UUID
			preds = append(preds, func(p *store.Port) bool { return p.NodeUUID == u })
		}
	}
	if val := q.Get("address"); val != "" {
		mac, e := ironichttp.ArgMAC("address", val)
		if e != nil {
			return nil, e
		}
		preds = append(preds, func(p *store.Port) bool { return p.Address == mac })
	}
	if val := q.Get("portgroup"); val != "" {
		if v < 24 {
			return nil, notAcceptable("The portgroup parameter is not supported by version %s.", v)
		}
		pg, err := s.st.Portgroup(val)
		if err != nil {
			return nil, notFound("Portgroup %s could not be found.", val)
		}
		u := pg.UUID
		preds = append(preds, func(p *store.Port) bool { return deref(p.PortgroupUUID) == u })
	}
	if val := q.Get("description_contains"); val != "" {
		preds = append(preds, func(p *store.Port) bool { return strings.Contains(deref(p.Description), val) })
	}
	if val := q.Get("conductor_groups"); val != "" {
		// 1.99 documents it; Ironic takes it at every version.
		if nodeUUID != "" || q.Get("node") != "" || q.Get("node_uuid") != "" || q.Get("portgroup") != "" || q.Get("address") != "" {
			return nil, badRequest("Filtering by conductor_groups cannot be combined with node_ident, portgroup_ident, or node address filters.")
		}
		preds = append(preds, inConductorGroups(s, val, func(p *store.Port) string { return p.NodeUUID }))
	}
	if val := q.Get("shard"); val != "" {
		shards := splitList(val)
		preds = append(preds, func(p *store.Port) bool {
			n, err := s.st.Node(p.NodeUUID)
			return err == nil && slices.Contains(shards, deref(n.Shard))
		})
	}
	return func(p *store.Port) bool {
		for _, pr := range preds {
			if !pr(p) {
				return false
			}
		}
		return true
	}, nil
}

// portFromDoc validates a port document (create body or patched doc) as
// Ironic's PORT_VALIDATOR does, under the schema name given ("port" for a
// create, "patch" for an update), coercing what it coerces.
func (s *Server) portFromDoc(p *store.Port, doc map[string]any, v Version, name string) *Error {
	if e := portSchema.Validate(name, doc); e != nil {
		return e
	}
	mac, e := ironichttp.ArgMAC("address", doc["address"])
	if e != nil {
		return e
	}
	if e := ironichttp.ArgUUID("node_uuid", doc["node_uuid"]); e != nil {
		return e
	}
	smart, e := ironichttp.ArgBool("is_smartnic", doc["is_smartnic"])
	if e != nil {
		return e
	}
	llc, _ := doc["local_link_connection"].(map[string]any)
	if llc != nil {
		if e := localLinkSchema.Validate("local_link_connection", llc); e != nil {
			return e
		}
		if sw, ok := llc["switch_id"]; ok {
			n, e := ironichttp.SwitchID(sw)
			if e != nil {
				return e
			}
			llc["switch_id"] = n
		}
	}
	if e := ironichttp.ArgUUID("portgroup_uuid", doc["portgroup_uuid"]); e != nil {
		return e
	}
	pxe, e := ironichttp.ArgBool("pxe_enabled", doc["pxe_enabled"])
	if e != nil {
		return e
	}
	if e := ironichttp.ArgUUID("uuid", doc["uuid"]); e != nil {
		return e
	}
	for _, f := range []string{"pxe_enabled", "is_smartnic"} {
		if v, ok := doc[f]; ok && v == nil {
			// Ironic's object refuses it with a 500; a 400 here.
			return badRequest("Field `%s' cannot be None", f)
		}
	}
	p.Address = mac
	nu, _ := doc["node_uuid"].(string)
	n, err := s.st.Node(nu)
	if err != nil {
		return badRequest("Node %s could not be found.", nu)
	}
	p.NodeUUID = n.UUID
	p.Extra, _ = doc["extra"].(map[string]any)
	p.LocalLinkConnection = llc
	p.PXEEnabled = pxe == nil || *pxe
	p.IsSmartNIC = smart != nil && *smart
	p.PhysicalNetwork = optString(doc["physical_network"])
	p.Name = optString(doc["name"])
	for _, f := range portStrings {
		*f.at(p) = optString(doc[f.name])
	}
	p.PortgroupUUID = nil
	if pg := optString(doc["portgroup_uuid"]); pg != nil {
		g, err := s.st.Portgroup(*pg)
		if err != nil {
			return badRequest("Portgroup %s could not be found.", *pg)
		}
		if g.NodeUUID != p.NodeUUID {
			return badRequest("Port can not be added to a portgroup belonging to a different node.")
		}
		p.PortgroupUUID = &g.UUID
	}
	return nil
}

// patchedParent checks a patched reference to a parent object as Ironic
// does before validating the patched document: it looks the parent up by
// the value, so a node_uuid that is no UUID answers "Expected a UUID or
// int", a port group by any name "Portgroup X could not be found.".
func patchedParent(doc map[string]any, field, kind string) *Error {
	v, ok := doc[field].(string)
	if !ok {
		return nil
	}
	if kind == "Node" && !store.IsUUID(v) {
		return badRequest("Expected a UUID or int but received %s.", python.Cut(v))
	}
	if kind == "Portgroup" && !store.IsUUID(v) {
		return badRequest("Portgroup %s could not be found.", python.Cut(v))
	}
	return nil
}

func optString(v any) *string {
	if s, ok := v.(string); ok {
		return &s
	}
	return nil
}

func portDoc(p *store.Port) map[string]any {
	return map[string]any{"address": p.Address, "node_uuid": p.NodeUUID, "extra": cloneAny(objOrEmpty(p.Extra)),
		"local_link_connection": cloneAny(objOrEmpty(p.LocalLinkConnection)), "pxe_enabled": p.PXEEnabled,
		"physical_network": strPtr(p.PhysicalNetwork), "portgroup_uuid": strPtr(p.PortgroupUUID),
		"is_smartnic": p.IsSmartNIC, "name": strPtr(p.Name), "description": strPtr(p.Description),
		"vendor": strPtr(p.Vendor), "category": strPtr(p.Category)}
}

func portWriteError(err error) error {
	var de *store.DuplicateError
	if errors.As(err, &de) {
		if de.Field == "address" {
			return conflict("A port with MAC address %s already exists.", de.Value)
		}
		return conflict("A port with %s %s already exists.", de.Field, de.Value)
	}
	return err
}

func (s *Server) createPort(c echo.Context) error {
	v := ver(c)
	body, _, err := readJSONObject(c, "port")
	if err != nil {
		return err
	}
	if e := portSchema.Validate("port", body); e != nil {
		return e
	}
	for k, val := range body {
		for _, f := range portFields {
			if f.name == k && f.min > v && val != nil {
				return notAcceptable("Field %s is not supported by version %s.", k, v)
			}
		}
	}
	if e := checkPortVersion(body, v); e != nil {
		return e
	}
	p := &store.Port{UUID: uuid.NewString(), InternalInfo: store.Object{}}
	if e := s.portFromDoc(p, body, v, "port"); e != nil {
		return e
	}
	if u, ok := body["uuid"].(string); ok {
		p.UUID = store.CanonicalUUID(u)
	}
	if err := s.st.Update(c.Request().Context(), func(tx store.Tx) error { return tx.PutPort(p) }); err != nil {
		return portWriteError(err)
	}
	c.Response().Header().Set("Location", baseURL(c)+"/v1/ports/"+p.UUID)
	out := render(c, portFields, p, v, nil)
	out["created_at"] = ironichttp.Time(p.CreatedAt)
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) patchPort(c echo.Context) error {
	v := ver(c)
	p0, err := s.findPort(c, c.Param("port"))
	if err != nil {
		return err
	}
	ops, err := readPatch(c, portPatchable)
	if err != nil {
		return err
	}
	var out *store.Port
	err = s.st.Update(c.Request().Context(), func(tx store.Tx) error {
		p, err := tx.Port(p0.UUID)
		if err != nil {
			return err
		}
		doc := portDoc(p)
		if e := applyPatch(doc, ops); e != nil {
			return e
		}
		if e := patchedParent(doc, "node_uuid", "Node"); e != nil {
			return e
		}
		if e := patchedParent(doc, "portgroup_uuid", "Portgroup"); e != nil {
			return e
		}
		if e := s.portFromDoc(p, doc, v, "patch"); e != nil {
			return e
		}
		out = p
		return tx.PutPort(p)
	})
	if err != nil {
		return portWriteError(err)
	}
	return c.JSON(http.StatusOK, render(c, portFields, out, v, nil))
}

func (s *Server) deletePort(c echo.Context) error {
	p, err := s.findPort(c, c.Param("port"))
	if err != nil {
		return err
	}
	if err := s.st.Update(c.Request().Context(), func(tx store.Tx) error { return tx.DeletePort(p.UUID) }); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// inConductorGroups matches a port or port group whose node is in one of
// the comma-separated conductor groups (API 1.99).
func inConductorGroups[T any](s *Server, list string, nodeOf func(T) string) func(T) bool {
	groups := splitList(strings.ToLower(list))
	return func(x T) bool {
		n, err := s.st.Node(nodeOf(x))
		return err == nil && slices.Contains(groups, n.ConductorGroup)
	}
}
