package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/internal/python"
	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/store"
)

var nodeListDefault = map[string]bool{"uuid": true, "name": true, "instance_uuid": true, "power_state": true,
	"provision_state": true, "maintenance": true, "links": true}

var deleteAllowed = []string{"manageable", "enroll", "adopt failed", "available"}

func (s *Server) nodeRoutes(g *echo.Group) {
	g.GET("/nodes", s.listNodes(false))
	g.GET("/nodes/", s.listNodes(false))
	g.GET("/nodes/detail", s.listNodes(true))
	g.POST("/nodes", s.createNode)
	g.POST("/nodes/", s.createNode)
	g.DELETE("/nodes", func(c echo.Context) error { return badRequest("Missing mandatory parameter: node_ident") })
	g.PATCH("/nodes/:node", s.patchNode)
	g.GET("/nodes/:node/ports", s.nodePorts(false))
	g.GET("/nodes/:node/ports/detail", s.nodePorts(true))
	g.GET("/nodes/:node/portgroups", s.nodePortgroups(false), s.minVer(24, false))
	g.GET("/nodes/:node/portgroups/detail", s.nodePortgroups(true), s.minVer(24, false))
	for _, r := range s.nodeSubRoutes() {
		r.register(s, g)
	}
}

// nodeRoute is a path of one node (under /nodes/:node) and the handlers
// of its methods, each given the node.
type nodeRoute struct {
	path string
	// min hides the route below a version: a 404, or with
	// notAcceptableBelow a 406 (0: every version).
	min     Version
	opts    nodeRouteOpts
	methods nodeMethods
}

// nodeMethods are the handlers of a node route by method (Any: every
// method).
type nodeMethods struct{ GET, PUT, POST, DELETE, Any nodeHandler }

type nodeRouteOpts uint8

const (
	// atOwner: the node's conductor serves the route (forwarded there).
	atOwner nodeRouteOpts = 1 << iota
	// notAcceptableBelow: below min the route is a 406, not a 404.
	notAcceptableBelow
)

// nodeSubRoutes are the routes of one node.
func (s *Server) nodeSubRoutes() []nodeRoute {
	return []nodeRoute{
		{"", 0, 0, nodeMethods{GET: s.getNode, DELETE: s.deleteNode}},
		{"/states", 0, 0, nodeMethods{GET: s.nodeStates}},
		{"/states/provision", 0, atOwner, nodeMethods{PUT: s.provision}},
		{"/states/power", 0, atOwner, nodeMethods{PUT: s.power}},
		{"/states/raid", 12, notAcceptableBelow | atOwner, nodeMethods{PUT: s.setRAID}},
		{"/states/boot_mode", 76, atOwner, nodeMethods{PUT: s.setBootMode}},
		{"/states/secure_boot", 76, atOwner, nodeMethods{PUT: s.setSecureBoot}},
		{"/maintenance", 0, 0, nodeMethods{PUT: s.setMaintenance(true), DELETE: s.setMaintenance(false)}},
		{"/validate", 0, atOwner, nodeMethods{GET: s.validate}},
		{"/management/boot_device", 0, atOwner, nodeMethods{GET: s.getBootDevice, PUT: s.setBootDevice}},
		{"/management/boot_device/supported", 0, atOwner, nodeMethods{GET: s.supportedBootDevices}},
		{"/management/inject_nmi", 29, atOwner, nodeMethods{PUT: s.injectNMI}},
		{"/vmedia", 89, atOwner, nodeMethods{POST: s.attachVMedia, DELETE: s.detachVMedia}},
		{"/vmedia", 93, atOwner, nodeMethods{GET: s.getVMedia}},
		{"/traits", 37, 0, nodeMethods{GET: s.getTraits, PUT: s.setTraits, DELETE: s.deleteTraits}},
		{"/traits/:trait", 37, 0, nodeMethods{PUT: s.addTrait, DELETE: s.deleteTrait}},
		{"/vifs", 28, 0, nodeMethods{GET: s.listVIFs, POST: s.attachVIF}},
		{"/vifs/:vif", 28, 0, nodeMethods{DELETE: s.detachVIF}},
		{"/inventory", 81, 0, nodeMethods{GET: s.inventory}},
		{"/history", 78, 0, nodeMethods{GET: s.nodeHistory}},
		{"/children", 83, 0, nodeMethods{GET: s.nodeChildren}},
		{"/states/console", 0, atOwner, nodeMethods{GET: s.getConsole, PUT: s.setConsole}},
		{"/vendor_passthru/methods", 0, 0, nodeMethods{GET: s.vendorMethods}},
		{"/vendor_passthru", 0, atOwner, nodeMethods{Any: s.vendorPassthru}},
		{"/firmware", 86, 0, nodeMethods{GET: s.listFirmware}},
		{"/bios", 40, 0, nodeMethods{GET: s.listBIOS}},
		{"/bios/:setting", 40, 0, nodeMethods{GET: s.getBIOS}},
		{"/history/:event", 78, 0, nodeMethods{GET: s.nodeHistoryEvent}},
		{"/allocation", 52, 0, nodeMethods{GET: s.nodeAllocation, DELETE: s.deleteNodeAllocation}},
	}
}

func (r nodeRoute) register(s *Server, g *echo.Group) {
	var mw []echo.MiddlewareFunc
	if r.min > 0 {
		mw = append(mw, s.minVer(r.min, r.opts&notAcceptableBelow != 0))
	}
	if r.opts&atOwner != 0 {
		mw = append(mw, s.toOwner)
	}
	path := "/nodes/:node" + r.path
	for _, m := range []struct {
		method string
		h      nodeHandler
	}{{http.MethodGet, r.methods.GET}, {http.MethodPut, r.methods.PUT}, {http.MethodPost, r.methods.POST}, {http.MethodDelete, r.methods.DELETE}} {
		if m.h != nil {
			g.Add(m.method, path, s.withNode(m.h), mw...)
		}
	}
	if r.methods.Any != nil {
		g.Any(path, s.withNode(r.methods.Any), mw...)
	}
}

// noValidHost is Ironic's answer when no conductor can take a node.
func noValidHost(drv, group string) *Error {
	return badRequest("No valid host was found. Reason: No conductor service registered which supports driver %s for conductor group \"%s\".", drv, group)
}

// nodeHandler serves a route of one node, given the node the route names.
type nodeHandler func(c echo.Context, n *store.Node) error

// withNode finds the node of the route's :node (a 404 when there is none)
// before h runs, so that no handler has to.
func (s *Server) withNode(h nodeHandler) echo.HandlerFunc {
	return func(c echo.Context) error {
		n, err := s.findNode(c, c.Param("node"))
		if err != nil {
			return err
		}
		return h(c, n)
	}
}

// findNode resolves a node ident (uuid if UUID-like, else name).
func (s *Server) findNode(c echo.Context, ident string) (*store.Node, error) {
	if e := ironichttp.ArgUUIDOrName("node", ident); e != nil {
		// Ironic answers its routing's shape here.
		e.Plain = true
		return nil, e
	}
	n, err := s.st.Node(ident)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("Node %s could not be found.", ident)
	}
	return n, err
}

func (s *Server) getNode(c echo.Context, n *store.Node) error {
	want, ferr := fieldSet(nodeFields, ver(c), c.QueryParam("fields"))
	if ferr != nil {
		return ferr
	}
	return c.JSON(http.StatusOK, render(c, nodeFields, n, ver(c), want))
}

// readJSONObject reads a request body that must be a JSON object.
func readJSONObject(c echo.Context, kind string) (map[string]any, []byte, error) {
	body, err := readBody(c)
	if err != nil {
		return nil, nil, err
	}
	m, err := jsonObject(body, kind)
	if err != nil {
		return nil, nil, err
	}
	return m, body, nil
}

// jsonObject decodes body, a JSON object (Ironic's errors for anything
// else).
func jsonObject(body []byte, kind string) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		var any_ any
		if json.Unmarshal(body, &any_) == nil {
			return nil, badRequest("Schema error for %s: %s is not of type 'object'", kind, python.Repr(any_))
		}
		return nil, &Error{Code: http.StatusBadRequest, Msg: "Invalid JSON in request body: " + err.Error()}
	}
	return m, nil
}

var (
	nameOldRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`)
	nameRE    = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,255}$`)
	reserved  = map[string]bool{"detail": true, "validate": true, "states": true, "maintenance": true,
		"management": true, "vendor_passthru": true}
)

func validNodeName(v Version, name string) *Error {
	if !acceptableNodeName(v, name) {
		return badRequest("Expected a logical name but received %s.", name)
	}
	return nil
}

// acceptableNodeName is Ironic's _check_names_acceptable: not a reserved
// word, a host name before 1.10, then a logical name, never UUID-like.
func acceptableNodeName(v Version, name string) bool {
	if store.IsUUID(name) || reserved[name] {
		return false
	}
	return !(v < 10 && !nameOldRE.MatchString(strings.ToLower(name)) || v >= 10 && !nameRE.MatchString(name))
}

func (s *Server) createNode(c echo.Context) error {
	v := ver(c)
	body, _, err := readJSONObject(c, "node")
	if err != nil {
		return err
	}
	n, err := s.newNode(body, v)
	if err != nil {
		return err
	}
	err = s.st.Update(c.Request().Context(), func(tx store.Tx) error {
		if err := checkChassis(tx, n); err != nil {
			return err
		}
		if err := resolveParent(tx, n, n.Owner); err != nil {
			return err
		}
		return tx.PutNode(n)
	})
	if err != nil {
		return s.nodeWriteError(err, n)
	}
	c.Response().Header().Set("Location", baseURL(c)+"/v1/nodes/"+n.UUID)
	out := render(c, nodeFields, n, v, nil)
	out["created_at"] = ironichttp.Time(n.CreatedAt)
	return c.JSON(http.StatusCreated, out)
}

// checkNodeBody validates a create body as Ironic's node_validator and
// refuses fields newer than the version.
func checkNodeBody(body map[string]any, v Version) *Error {
	if e := validateNode("node", body); e != nil {
		return e
	}
	for k, val := range body {
		if min, ok := nodeFieldMin(k); ok && min > v && val != nil {
			return notAcceptable("Field %s is not supported by version %s.", k, v)
		}
	}
	return nil
}

// newNode is the node a create body describes, in enroll (available
// before 1.11); a live conductor of its group must offer its driver.
func (s *Server) newNode(body map[string]any, v Version) (*store.Node, error) {
	if err := checkNodeBody(body, v); err != nil {
		return nil, err
	}
	if name, ok := body["name"].(string); ok && !acceptableNodeName(v, name) {
		return nil, badRequest("Cannot create node with invalid name '%s'", python.Cut(name))
	}
	drv, _ := body["driver"].(string)
	n := &store.Node{UUID: uuid.NewString(), Driver: drv, DriverInfo: store.Object{}, DriverInternalInfo: store.Object{},
		Properties: store.Object{}, Extra: store.Object{}, InstanceInfo: store.Object{}, NetworkData: store.Object{},
		Traits: []string{}, Interfaces: map[string]string{}}
	if u, ok := body["uuid"].(string); ok {
		n.UUID = store.CanonicalUUID(u)
	}
	group := ""
	if g, ok := body["conductor_group"].(string); ok {
		group = strings.ToLower(g)
	}
	ht := s.mgr.Drivers().Lookup(drv)
	if ht == nil || !s.mgr.Serves(group, drv) {
		return nil, noValidHost(drv, group)
	}
	if err := applyNodeFields(n, body, v, ht); err != nil {
		return nil, err
	}
	n.ProvisionState = "available"
	if v >= 11 {
		n.ProvisionState = "enroll"
	}
	return n, nil
}

func (s *Server) nodeWriteError(err error, n *store.Node) error {
	var de *store.DuplicateError
	if errors.As(err, &de) {
		switch de.Field {
		case "name":
			return conflict("A node with name %s already exists.", de.Value)
		case "instance_uuid":
			return conflict("Instance %s is already associated with a node, it cannot be associated with this other node %s", de.Value, n.UUID)
		}
		if de.Table == "nodes" && de.Field == "" {
			return conflict("A node with UUID %s already exists.", n.UUID)
		}
	}
	return err
}

// nodeChildren lists the UUIDs of the nodes whose parent is the node (1.83).
func (s *Server) nodeChildren(c echo.Context, n *store.Node) error {
	children := []string{}
	// A project's caller sees its project's children only (access.go).
	of, err := s.scopeNodes(c, func(x *store.Node) bool { return deref(x.ParentNode) == n.UUID })
	if err != nil {
		return err
	}
	for _, ch := range s.st.Nodes(of) {
		children = append(children, ch.UUID)
	}
	return c.JSON(http.StatusOK, map[string]any{
		"children": children,
		"links":    map[string]string{"href": baseURL(c) + "/v1/nodes?parent_node=" + n.UUID, "rel": "children"},
	})
}

func (s *Server) deleteNode(c echo.Context, n *store.Node) error {
	err := s.st.Update(c.Request().Context(), func(tx store.Tx) error {
		n, err := tx.Node(n.UUID)
		if err != nil {
			return notFound("Node %s could not be found.", c.Param("node"))
		}
		if err := undeletable(n); err != nil {
			return err
		}
		if err := s.deleteNodeParts(tx, n); err != nil {
			return err
		}
		return tx.DeleteNode(n.UUID)
	})
	if err != nil {
		return err
	}
	s.mgr.NodeDeleted(c.Request().Context(), n.UUID)
	return c.NoContent(http.StatusNoContent)
}

// undeletable refuses to delete a protected or locked node, or, out of
// maintenance, one with an instance or in a state that forbids it.
func undeletable(n *store.Node) error {
	if n.Protected {
		return errf(http.StatusForbidden, "Node %s is protected and cannot be undeployed, rebuilt or deleted", n.UUID)
	}
	if n.Reservation != nil {
		return conflict("Node %s is locked by host %s, please retry after the current operation is completed.", n.UUID, *n.Reservation)
	}
	if n.Maintenance {
		return nil
	}
	if n.InstanceUUID != nil {
		return conflict("Node %s is associated with instance %s.", n.UUID, *n.InstanceUUID)
	}
	if !slices.Contains(deleteAllowed, n.ProvisionState) {
		return conflict("Can not delete node \"%s\" while it is in provision state \"%s\". Valid provision states to perform deletion are: \"('manageable', 'enroll', 'adopt failed', 'available')\", or set the node into maintenance mode", n.UUID, n.ProvisionState)
	}
	return nil
}

// deleteNodeParts deletes what belongs to a node: its ports, volume
// connectors and targets, port groups and allocation.
func (s *Server) deleteNodeParts(tx store.Tx, n *store.Node) error {
	type part struct {
		ids []string
		del func(string) error
	}
	parts := []part{
		{uuidsOf(s.st.Ports(func(p *store.Port) bool { return p.NodeUUID == n.UUID }),
			func(p *store.Port) string { return p.UUID }), tx.DeletePort},
		{uuidsOf(s.st.VolumeConnectors(func(v *store.VolumeConnector) bool { return v.NodeUUID == n.UUID }),
			func(v *store.VolumeConnector) string { return v.UUID }), tx.DeleteVolumeConnector},
		{uuidsOf(s.st.VolumeTargets(func(v *store.VolumeTarget) bool { return v.NodeUUID == n.UUID }),
			func(v *store.VolumeTarget) string { return v.UUID }), tx.DeleteVolumeTarget},
		{uuidsOf(s.st.Portgroups(func(p *store.Portgroup) bool { return p.NodeUUID == n.UUID }),
			func(p *store.Portgroup) string { return p.UUID }), tx.DeletePortgroup},
	}
	if n.AllocationUUID != nil {
		parts = append(parts, part{[]string{*n.AllocationUUID}, tx.DeleteAllocation})
	}
	for _, p := range parts {
		for _, id := range p.ids {
			if err := p.del(id); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
	}
	return nil
}

func uuidsOf[T any](xs []T, id func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = id(x)
	}
	return out
}

// updateNode runs a read-modify-write on a node in one transaction
// (metadata updates take no lock; the store re-runs a transaction that
// loses a race).
func (s *Server) updateNode(c echo.Context, uuid string, fn func(*store.Node) error) error {
	return s.st.Update(c.Request().Context(), func(tx store.Tx) error {
		n, err := tx.Node(uuid)
		if err != nil {
			return notFound("Node %s could not be found.", uuid)
		}
		if err := fn(n); err != nil {
			return err
		}
		return tx.PutNode(n)
	})
}

func (s *Server) inventory(c echo.Context, n *store.Node) error {
	if len(n.Inventory) == 0 {
		return notFound("Inventory not found for node %s.", n.UUID)
	}
	plugin := json.RawMessage("{}")
	if len(n.PluginData) > 0 {
		plugin = n.PluginData
	}
	return c.JSON(http.StatusOK, map[string]any{"inventory": n.Inventory, "plugin_data": plugin})
}
