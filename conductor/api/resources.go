package api

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/internal/python"
	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/raid"
	"github.com/ferric-metal/ferric/conductor/store"
)

// ---- portgroups (1.23) ----

var portgroupFields = []field[*store.Portgroup]{
	{"uuid", 1, func(_ echo.Context, p *store.Portgroup) any { return p.UUID }},
	{"name", 1, func(_ echo.Context, p *store.Portgroup) any { return strPtr(p.Name) }},
	{"address", 1, func(_ echo.Context, p *store.Portgroup) any { return strPtr(p.Address) }},
	{"node_uuid", 1, func(_ echo.Context, p *store.Portgroup) any { return p.NodeUUID }},
	{"extra", 1, func(_ echo.Context, p *store.Portgroup) any { return objOrEmpty(p.Extra) }},
	{"internal_info", 1, func(_ echo.Context, p *store.Portgroup) any { return objOrEmpty(p.InternalInfo) }},
	{"standalone_ports_supported", 1, func(_ echo.Context, p *store.Portgroup) any { return p.StandalonePortsSupported }},
	{"mode", 26, func(_ echo.Context, p *store.Portgroup) any { return strPtr(p.Mode) }},
	{"properties", 26, func(_ echo.Context, p *store.Portgroup) any { return objOrEmpty(p.Properties) }},
	{"physical_network", 102, func(_ echo.Context, p *store.Portgroup) any { return strPtr(p.PhysicalNetwork) }},
	{"category", 103, func(_ echo.Context, p *store.Portgroup) any { return strPtr(p.Category) }},
	{"created_at", 1, func(_ echo.Context, p *store.Portgroup) any { return ironicTime(p.CreatedAt) }},
	{"updated_at", 1, func(_ echo.Context, p *store.Portgroup) any { return timePtr(p.UpdatedAt) }},
	{"links", 1, func(c echo.Context, p *store.Portgroup) any { return links(c, "portgroups", p.UUID) }},
	{"ports", 1, func(c echo.Context, p *store.Portgroup) any {
		b := baseURL(c)
		return []map[string]string{{"href": b + "/v1/portgroups/" + p.UUID + "/ports", "rel": "self"},
			{"href": b + "/portgroups/" + p.UUID + "/ports", "rel": "bookmark"}}
	}},
}

var portgroupSortKeys = map[string]func(a, b *store.Portgroup) int{
	"id":   func(a, b *store.Portgroup) int { return cmpInt(a.ID, b.ID) },
	"uuid": func(a, b *store.Portgroup) int { return strings.Compare(a.UUID, b.UUID) },
	"name": func(a, b *store.Portgroup) int { return strings.Compare(deref(a.Name), deref(b.Name)) },
	"address": func(a, b *store.Portgroup) int {
		return strings.Compare(deref(a.Address), deref(b.Address))
	},
	"created_at": func(a, b *store.Portgroup) int { return a.CreatedAt.Compare(b.CreatedAt) },
}

var portgroupPatchable = []string{"address", "category", "extra", "mode", "name", "node_uuid",
	"physical_network", "properties", "standalone_ports_supported"} // Ironic's order

func (s *Server) portgroupRoutes(g *echo.Group) {
	pg := g.Group("", s.minVer(23, false))
	pg.GET("/portgroups", s.listPortgroups(false, ""))
	pg.GET("/portgroups/", s.listPortgroups(false, ""))
	pg.GET("/portgroups/detail", s.listPortgroups(true, ""))
	pg.POST("/portgroups", s.createPortgroup)
	pg.GET("/portgroups/:pg", s.getPortgroup)
	pg.PATCH("/portgroups/:pg", s.patchPortgroup)
	pg.DELETE("/portgroups/:pg", s.deletePortgroup)
	pg.GET("/portgroups/:pg/ports", s.portgroupPorts(false), s.minVer(24, false))
	pg.GET("/portgroups/:pg/ports/detail", s.portgroupPorts(true), s.minVer(24, false))
}

func (s *Server) findPortgroup(ident string) (*store.Portgroup, error) {
	p, err := s.st.Portgroup(ident)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("Portgroup %s could not be found.", ident)
	}
	return p, err
}

func (s *Server) nodePortgroups(detail bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		n, err := s.findNode(c, c.Param("node"))
		if err != nil {
			return err
		}
		return s.listPortgroups(detail, n.UUID)(c)
	}
}

func (s *Server) portgroupPorts(detail bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		pg, err := s.findPortgroup(c.Param("pg"))
		if err != nil {
			return err
		}
		want := map[string]bool{"uuid": true, "address": true, "links": true}
		if detail {
			want = nil
		}
		ports := s.st.Ports(func(p *store.Port) bool { return deref(p.PortgroupUUID) == pg.UUID })
		out := make([]map[string]any, len(ports))
		for i, p := range ports {
			out[i] = render(c, portFields, p, ver(c), want)
		}
		return c.JSON(http.StatusOK, collection("ports", out, ""))
	}
}

func (s *Server) listPortgroups(detail bool, nodeUUID string) echo.HandlerFunc {
	return func(c echo.Context) error {
		detail, nodeUUID := detail, nodeUUID // per request
		v := ver(c)
		q := c.QueryParams()
		if d, _ := ironichttp.ParseBool(q.Get("detail")); d {
			detail = true
		}
		want := map[string]bool{"uuid": true, "address": true, "name": true, "links": true}
		if detail {
			want = nil
		}
		if q.Has("fields") {
			w, ferr := fieldSet(portgroupFields, v, q.Get("fields"))
			if ferr != nil {
				return ferr
			}
			want = w
		}
		if val := q.Get("node"); val != "" {
			n, err := s.findNode(c, val)
			if err != nil {
				return err
			}
			nodeUUID = n.UUID
		}
		addr, _ := ironichttp.NormalizeMAC(q.Get("address"))
		match, ferr := portgroupFilter(s, v, nodeUUID, addr, q.Get("shard"), q.Get("conductor_groups"))
		if ferr != nil {
			return ferr
		}
		if match, ferr = scopeByNode(s, c, "portgroup", match, func(p *store.Portgroup) string { return p.NodeUUID }); ferr != nil {
			return ferr
		}
		page, perr := parsePaging(c, portgroupSortKeys, nil, nil)
		if perr != nil {
			return perr
		}
		pgs := s.st.Portgroups(match)
		items, next, perr := paginate(c, pgs, page, portgroupSortKeys, func(p *store.Portgroup) string { return p.UUID },
			func(id string) (*store.Portgroup, error) { return s.st.Portgroup(id) })
		if perr != nil {
			return perr
		}
		out := make([]map[string]any, len(items))
		for i, p := range items {
			out[i] = render(c, portgroupFields, p, v, want)
		}
		return c.JSON(http.StatusOK, collection("portgroups", out, next))
	}
}

// portgroupFilter matches the port groups of a listing: of the node, with
// the address, of nodes in the shards (1.106) or in the conductor groups
// (1.99); Ironic takes one of these at a time.
func portgroupFilter(s *Server, v Version, nodeUUID, addr, shard, groups string) (func(*store.Portgroup) bool, *Error) {
	if shard != "" && v < 106 {
		return nil, notAcceptable("Request not acceptable. The minimal required API version should be 1.106")
	}
	given := 0
	for _, f := range []string{nodeUUID, addr, shard, groups} {
		if f != "" {
			given++
		}
	}
	if given > 1 {
		return nil, badRequest("Filtering by node, address, or shard simultaneously is not supported.")
	}
	switch {
	case nodeUUID != "":
		return func(p *store.Portgroup) bool { return p.NodeUUID == nodeUUID }, nil
	case addr != "":
		return func(p *store.Portgroup) bool { return deref(p.Address) == addr }, nil
	case shard != "":
		shards := splitList(shard)
		return func(p *store.Portgroup) bool {
			n, err := s.st.Node(p.NodeUUID)
			return err == nil && slices.Contains(shards, deref(n.Shard))
		}, nil
	case groups != "":
		return inConductorGroups(s, groups, func(p *store.Portgroup) string { return p.NodeUUID }), nil
	}
	return func(*store.Portgroup) bool { return true }, nil
}

func (s *Server) getPortgroup(c echo.Context) error {
	p, err := s.findPortgroup(c.Param("pg"))
	if err != nil {
		return err
	}
	want, ferr := fieldSet(portgroupFields, ver(c), c.QueryParam("fields"))
	if ferr != nil {
		return ferr
	}
	return c.JSON(http.StatusOK, render(c, portgroupFields, p, ver(c), want))
}

// portgroupFromDoc validates a port group document as Ironic's
// PORTGROUP_VALIDATOR (name "portgroup" for a create, "patch" for an
// update) and sets p from it.
func (s *Server) portgroupFromDoc(p *store.Portgroup, doc map[string]any, name string, badName func(string) *Error) *Error {
	if e := portgroupSchema.Validate(name, doc); e != nil {
		return e
	}
	mac, e := ironichttp.ArgMAC("address", doc["address"])
	if e != nil {
		return e
	}
	if e := ironichttp.ArgUUID("node_uuid", doc["node_uuid"]); e != nil {
		return e
	}
	sps, e := ironichttp.ArgBool("standalone_ports_supported", doc["standalone_ports_supported"])
	if e != nil {
		return e
	}
	if e := ironichttp.ArgUUID("uuid", doc["uuid"]); e != nil {
		return e
	}
	if n, ok := doc["name"].(string); ok && !ironichttp.IsNodeName(n) {
		return badName(n)
	}
	nu, _ := doc["node_uuid"].(string)
	n, err := s.st.Node(nu)
	if err != nil {
		return badRequest("Node %s could not be found.", nu)
	}
	p.NodeUUID = n.UUID
	p.Name = optString(doc["name"])
	p.Address = nil
	if mac != "" {
		p.Address = &mac
	}
	p.Extra, _ = doc["extra"].(map[string]any)
	p.Properties, _ = doc["properties"].(map[string]any)
	p.Mode = optString(doc["mode"])
	p.PhysicalNetwork = optString(doc["physical_network"])
	p.Category = optString(doc["category"])
	for _, f := range []struct {
		name string
		max  int
	}{{"physical_network", 64}, {"category", 80}} {
		if val := optString(doc[f.name]); val != nil && utf8.RuneCountInString(*val) > f.max {
			return badRequest("Schema error for portgroup: %s is too long", python.Repr(*val))
		}
	}
	p.StandalonePortsSupported = sps == nil || *sps
	return nil
}

func portgroupWriteError(err error) error {
	var de *store.DuplicateError
	if errors.As(err, &de) {
		if de.Field == "address" {
			return conflict("A portgroup with MAC address %s already exists.", de.Value)
		}
		return conflict("A portgroup with name %s already exists.", de.Value)
	}
	return err
}

func (s *Server) createPortgroup(c echo.Context) error {
	body, _, err := readJSONObject(c, "portgroup")
	if err != nil {
		return err
	}
	p := &store.Portgroup{UUID: uuid.NewString(), InternalInfo: store.Object{}}
	badName := func(n string) *Error {
		return badRequest("Cannot create portgroup with invalid name '%s'", python.Cut(n))
	}
	if e := s.portgroupFromDoc(p, body, "portgroup", badName); e != nil {
		return e
	}
	if u, ok := body["uuid"].(string); ok {
		p.UUID = store.CanonicalUUID(u)
	}
	if err := s.st.Update(c.Request().Context(), func(tx store.Tx) error { return tx.PutPortgroup(p) }); err != nil {
		return portgroupWriteError(err)
	}
	c.Response().Header().Set("Location", baseURL(c)+"/v1/portgroups/"+p.UUID)
	return c.JSON(http.StatusCreated, render(c, portgroupFields, p, ver(c), nil))
}

func (s *Server) patchPortgroup(c echo.Context) error {
	p0, err := s.findPortgroup(c.Param("pg"))
	if err != nil {
		return err
	}
	ops, err := readPatch(c, portgroupPatchable)
	if err != nil {
		return err
	}
	var out *store.Portgroup
	err = s.st.Update(c.Request().Context(), func(tx store.Tx) error {
		p, err := tx.Portgroup(p0.UUID)
		if err != nil {
			return err
		}
		doc := map[string]any{"name": strPtr(p.Name), "address": strPtr(p.Address), "node_uuid": p.NodeUUID,
			"extra": cloneAny(objOrEmpty(p.Extra)), "mode": strPtr(p.Mode), "properties": cloneAny(objOrEmpty(p.Properties)),
			"standalone_ports_supported": p.StandalonePortsSupported, "physical_network": strPtr(p.PhysicalNetwork),
			"category": strPtr(p.Category)}
		if e := applyPatch(doc, ops); e != nil {
			return e
		}
		if name, ok := doc["name"].(string); ok && !ironichttp.IsNodeName(name) {
			return badRequest("Portgroup %s: Cannot change name to invalid name '%s'", c.Param("pg"), python.Cut(name))
		}
		if e := patchedParent(doc, "node_uuid", "Node"); e != nil {
			return e
		}
		badName := func(n string) *Error {
			return badRequest("Portgroup %s: Cannot change name to invalid name '%s'", c.Param("pg"), python.Cut(n))
		}
		if e := s.portgroupFromDoc(p, doc, "patch", badName); e != nil {
			return e
		}
		out = p
		return tx.PutPortgroup(p)
	})
	if err != nil {
		return portgroupWriteError(err)
	}
	return c.JSON(http.StatusOK, render(c, portgroupFields, out, ver(c), nil))
}

func (s *Server) deletePortgroup(c echo.Context) error {
	p, err := s.findPortgroup(c.Param("pg"))
	if err != nil {
		return err
	}
	if len(s.st.Ports(func(pt *store.Port) bool { return deref(pt.PortgroupUUID) == p.UUID })) > 0 {
		return badRequest("Portgroup %s still has ports. Portgroup cannot be removed until its ports are removed or unassigned.", p.UUID)
	}
	if err := s.st.Update(c.Request().Context(), func(tx store.Tx) error { return tx.DeletePortgroup(p.UUID) }); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// ---- chassis ----

var chassisFields = []field[*store.Chassis]{
	{"uuid", 1, func(_ echo.Context, x *store.Chassis) any { return x.UUID }},
	{"description", 1, func(_ echo.Context, x *store.Chassis) any { return strPtr(x.Description) }},
	{"extra", 1, func(_ echo.Context, x *store.Chassis) any { return objOrEmpty(x.Extra) }},
	{"created_at", 1, func(_ echo.Context, x *store.Chassis) any { return ironicTime(x.CreatedAt) }},
	{"updated_at", 1, func(_ echo.Context, x *store.Chassis) any { return timePtr(x.UpdatedAt) }},
	{"links", 1, func(c echo.Context, x *store.Chassis) any { return links(c, "chassis", x.UUID) }},
	{"nodes", 1, func(c echo.Context, x *store.Chassis) any {
		b := baseURL(c)
		return []map[string]string{{"href": b + "/v1/chassis/" + x.UUID + "/nodes", "rel": "self"},
			{"href": b + "/chassis/" + x.UUID + "/nodes", "rel": "bookmark"}}
	}},
}

var chassisSortKeys = map[string]func(a, b *store.Chassis) int{
	"id":   func(a, b *store.Chassis) int { return cmpInt(a.ID, b.ID) },
	"uuid": func(a, b *store.Chassis) int { return strings.Compare(a.UUID, b.UUID) },
}

func (s *Server) chassisRoutes(g *echo.Group) {
	g.GET("/chassis", s.listChassis(false))
	g.GET("/chassis/", s.listChassis(false))
	g.GET("/chassis/detail", s.listChassis(true))
	g.POST("/chassis", s.createChassis)
	g.GET("/chassis/:ch", s.getChassis)
	g.PATCH("/chassis/:ch", s.patchChassis)
	g.DELETE("/chassis/:ch", s.deleteChassis)
	g.GET("/chassis/:ch/nodes", s.chassisNodes(false))
	g.GET("/chassis/:ch/nodes/detail", s.chassisNodes(true))
}

func (s *Server) findChassis(ident string) (*store.Chassis, error) {
	if e := ironichttp.ArgUUID("chassis_uuid", ident); e != nil {
		return nil, e
	}
	ch, err := s.st.Chassis(ident)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("Chassis %s could not be found.", ident)
	}
	return ch, err
}

func (s *Server) listChassis(detail bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		want := map[string]bool{"uuid": true, "description": true, "links": true}
		if detail {
			want = nil
		}
		page, perr := parsePaging(c, chassisSortKeys, nil, nil)
		if perr != nil {
			return perr
		}
		items, next, perr := paginate(c, s.st.ChassisList(nil), page, chassisSortKeys, func(x *store.Chassis) string { return x.UUID },
			func(id string) (*store.Chassis, error) { return s.st.Chassis(id) })
		if perr != nil {
			return perr
		}
		out := make([]map[string]any, len(items))
		for i, x := range items {
			out[i] = render(c, chassisFields, x, ver(c), want)
		}
		return c.JSON(http.StatusOK, collection("chassis", out, next))
	}
}

func (s *Server) getChassis(c echo.Context) error {
	ch, err := s.findChassis(c.Param("ch"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, render(c, chassisFields, ch, ver(c), nil))
}

func (s *Server) createChassis(c echo.Context) error {
	body, _, err := readJSONObject(c, "chassis")
	if err != nil {
		return err
	}
	ch := &store.Chassis{UUID: uuid.NewString(), Extra: store.Object{}}
	if e := chassisSchema.Validate("chassis", body); e != nil {
		return e
	}
	if e := ironichttp.ArgUUID("uuid", body["uuid"]); e != nil {
		return e
	}
	if u, ok := body["uuid"].(string); ok {
		ch.UUID = store.CanonicalUUID(u)
	}
	ch.Description = optString(body["description"])
	if m, ok := body["extra"].(map[string]any); ok {
		ch.Extra = m
	}
	if err := s.st.Update(c.Request().Context(), func(tx store.Tx) error { return tx.PutChassis(ch) }); err != nil {
		return err
	}
	c.Response().Header().Set("Location", baseURL(c)+"/v1/chassis/"+ch.UUID)
	return c.JSON(http.StatusCreated, render(c, chassisFields, ch, ver(c), nil))
}

func (s *Server) patchChassis(c echo.Context) error {
	ch0, err := s.findChassis(c.Param("ch"))
	if err != nil {
		return err
	}
	ops, err := readPatch(c, []string{"uuid", "extra", "description"}) // Ironic's list
	if err != nil {
		return err
	}
	var out *store.Chassis
	err = s.st.Update(c.Request().Context(), func(tx store.Tx) error {
		ch, err := tx.Chassis(ch0.UUID)
		if err != nil {
			return err
		}
		doc := map[string]any{"uuid": ch.UUID, "description": strPtr(ch.Description), "extra": cloneAny(objOrEmpty(ch.Extra))}
		if e := applyPatch(doc, ops); e != nil {
			return e
		}
		if doc["uuid"] != ch.UUID {
			return badRequest("Cannot overwrite UUID for an existing Chassis.")
		}
		if e := chassisSchema.Validate("patch", doc); e != nil {
			return e
		}
		ch.Description = optString(doc["description"])
		ch.Extra, _ = doc["extra"].(map[string]any)
		out = ch
		return tx.PutChassis(ch)
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, render(c, chassisFields, out, ver(c), nil))
}

func (s *Server) deleteChassis(c echo.Context) error {
	ch, err := s.findChassis(c.Param("ch"))
	if err != nil {
		return err
	}
	if len(s.st.Nodes(func(n *store.Node) bool { return deref(n.ChassisUUID) == ch.UUID })) > 0 {
		return badRequest("Chassis %s contains nodes.", ch.UUID)
	}
	if err := s.st.Update(c.Request().Context(), func(tx store.Tx) error { return tx.DeleteChassis(ch.UUID) }); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// chassisNodes lists a chassis' nodes (all their fields on /detail, as
// Ironic's nodes sub-controller of a chassis).
func (s *Server) chassisNodes(detail bool) echo.HandlerFunc {
	want := nodeListDefault
	if detail {
		want = nil
	}
	return func(c echo.Context) error {
		ch, err := s.findChassis(c.Param("ch"))
		if err != nil {
			return err
		}
		nodes := s.st.Nodes(func(n *store.Node) bool { return deref(n.ChassisUUID) == ch.UUID })
		out := make([]map[string]any, len(nodes))
		for i, n := range nodes {
			out[i] = render(c, nodeFields, n, ver(c), want)
		}
		return c.JSON(http.StatusOK, collection("nodes", out, ""))
	}
}

// ---- drivers ----

func (s *Server) driverRoutes(g *echo.Group) {
	g.GET("/drivers", s.listDrivers)
	g.GET("/drivers/", s.listDrivers)
	g.GET("/drivers/:name", s.getDriver)
	g.GET("/drivers/:name/properties", s.driverProperties)
	g.GET("/drivers/:name/raid/logical_disk_properties", s.driverRAIDProperties, s.minVer(12, true))
	g.GET("/drivers/:name/vendor_passthru/methods", s.driverVendorMethods)
	g.Any("/drivers/:name/vendor_passthru", s.driverVendorPassthru)
}

func (s *Server) driverDoc(c echo.Context, h *driver.HardwareType, detail bool) map[string]any {
	b := baseURL(c)
	doc := map[string]any{
		"name": h.Name, "hosts": s.driverHosts(h.Name), "type": "dynamic",
		"links": links(c, "drivers", h.Name),
		"properties": []map[string]string{{"href": b + "/v1/drivers/" + h.Name + "/properties", "rel": "self"},
			{"href": b + "/drivers/" + h.Name + "/properties", "rel": "bookmark"}},
	}
	if detail && ver(c) >= 30 {
		for _, kind := range driver.InterfaceKinds {
			if kind == "firmware" && ver(c) < 86 {
				continue
			}
			doc["default_"+kind+"_interface"] = h.Interfaces[kind].Default
			doc["enabled_"+kind+"_interfaces"] = h.Interfaces[kind].Enabled
		}
	}
	return doc
}

func (s *Server) listDrivers(c echo.Context) error {
	q := c.QueryParams()
	switch q.Get("type") {
	case "", "dynamic":
	case "classic":
		return c.JSON(http.StatusOK, map[string]any{"drivers": []any{}})
	default:
		return badRequest("Invalid driver type %s, valid values are classic, dynamic", q.Get("type"))
	}
	detail := false
	if q.Has("detail") {
		d, ok := ironichttp.ParseBool(q.Get("detail"))
		if !ok {
			return badRequest("Invalid value for detail: %s", q.Get("detail"))
		}
		detail = d
	}
	out := []map[string]any{}
	for _, h := range s.mgr.Drivers().Types() {
		out = append(out, s.driverDoc(c, h, detail))
	}
	return c.JSON(http.StatusOK, map[string]any{"drivers": out})
}

func (s *Server) getDriver(c echo.Context) error {
	h := s.mgr.Drivers().Lookup(c.Param("name"))
	if h == nil {
		return notFound("Could not find the following driver(s) or hardware type(s): %s.", c.Param("name"))
	}
	return c.JSON(http.StatusOK, s.driverDoc(c, h, true))
}

func (s *Server) driverProperties(c echo.Context) error {
	h := s.mgr.Drivers().Lookup(c.Param("name"))
	if h == nil {
		return notFound("Could not find the following driver(s) or hardware type(s): %s.", c.Param("name"))
	}
	return c.JSON(http.StatusOK, h.Properties)
}

func (s *Server) driverRAIDProperties(c echo.Context) error {
	h := s.mgr.Drivers().Lookup(c.Param("name"))
	if h == nil {
		return notFound("Could not find the following driver(s) or hardware type(s): %s.", c.Param("name"))
	}
	return c.JSON(http.StatusOK, raid.Properties)
}

// driverHosts lists the live conductors that offer a hardware type.
func (s *Server) driverHosts(name string) []string {
	hosts := []string{s.mgr.Hostname()}
	for _, c := range s.st.Conductors() {
		if c.Hostname != s.mgr.Hostname() && time.Since(c.HeartbeatAt) < ConductorAliveAfter && slices.Contains(c.Drivers, name) {
			hosts = append(hosts, c.Hostname)
		}
	}
	slices.Sort(hosts)
	return hosts
}

// ---- conductors (1.49) ----

// ConductorAliveAfter is how long a conductor counts as alive after its
// last heartbeat.
const ConductorAliveAfter = 60 * time.Second

func (s *Server) conductorRoutes(g *echo.Group) {
	cg := g.Group("", s.minVer(49, false))
	cg.GET("/conductors", s.listConductors)
	cg.GET("/conductors/", s.listConductors)
	cg.GET("/conductors/:host", s.getConductor)
}

func (s *Server) conductorDoc(c echo.Context, x *store.Conductor, detail bool) map[string]any {
	doc := map[string]any{"hostname": x.Hostname, "conductor_group": x.ConductorGroup,
		"alive": time.Since(x.HeartbeatAt) < ConductorAliveAfter, "links": links(c, "conductors", x.Hostname)}
	if detail {
		doc["created_at"] = ironicTime(x.CreatedAt)
		doc["updated_at"] = timePtr(x.UpdatedAt)
		doc["drivers"] = x.Drivers
	}
	return doc
}

func (s *Server) listConductors(c echo.Context) error {
	detail, _ := ironichttp.ParseBool(c.QueryParam("detail"))
	out := []map[string]any{}
	for _, x := range s.st.Conductors() {
		out = append(out, s.conductorDoc(c, x, detail))
	}
	return c.JSON(http.StatusOK, map[string]any{"conductors": out})
}

func (s *Server) getConductor(c echo.Context) error {
	x, err := s.st.Conductor(c.Param("host"))
	if err != nil {
		return notFound("Conductor %s could not be found.", c.Param("host"))
	}
	return c.JSON(http.StatusOK, s.conductorDoc(c, x, true))
}
