package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/auth"
	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/policy"
	"github.com/ferric-metal/ferric/conductor/store"
)

// Access rules (Ironic's policy). A request that carries a Keystone
// identity (--auth keystone) is checked against the policy rules as
// Ironic's API checks them; under noauth and http_basic there is no
// identity and every authenticated caller may do everything, as before.
//
// One middleware (access) checks every /v1 route before its handler from
// the table below: the route's rule, and for a route of one object (a
// node, port, port group, allocation, volume connector or target) first
// whether the caller may see the object at all, answering Ironic's 404
// when not (a project's caller never learns that another project's node
// exists) and its 403 when it may see it but not do this. Listings are
// filtered to the caller's project in their handlers (scopeNodes and the
// like).

// accessKind is what a route acts on.
type accessKind uint8

const (
	// onNothing: the rule alone (no target).
	onNothing accessKind = iota
	// inHandler: the handler checks (listings, filtered by project).
	inHandler
	onNode
	onPort
	onPortgroup
	onAllocation
	onConnector
	onTarget
	nodeCreate
	patchOfNode
	nodeDelete
	portCreate
	portgroupCreate
	allocationCreate
	volumeCreate
	// nodeAllocation: the node's allocation (GET/DELETE
	// /nodes/:node/allocation).
	nodeAllocation
)

type accessRule struct {
	rule string
	kind accessKind
}

// accessRules maps "METHOD route" to its rule. Routes missing here fall
// back to ferric:default:get (GET) and ferric:default:write.
var accessRules = map[string]accessRule{
	"GET /v1/events/stream": {"", inHandler},
	"POST /v1/events":       {"baremetal:events:post", onNothing},
	"GET /v1/shards":        {"baremetal:shards:get", onNothing},

	"GET /v1/nodes":                                        {"", inHandler},
	"GET /v1/nodes/":                                       {"", inHandler},
	"GET /v1/nodes/detail":                                 {"", inHandler},
	"POST /v1/nodes":                                       {"baremetal:node:create", nodeCreate},
	"POST /v1/nodes/":                                      {"baremetal:node:create", nodeCreate},
	"DELETE /v1/nodes":                                     {"", inHandler}, // Ironic's 400: no node named
	"GET /v1/nodes/:node":                                  {"baremetal:node:get", onNode},
	"PATCH /v1/nodes/:node":                                {"baremetal:node:update", patchOfNode},
	"DELETE /v1/nodes/:node":                               {"baremetal:node:delete", nodeDelete},
	"GET /v1/nodes/:node/allocation":                       {"baremetal:allocation:get", nodeAllocation},
	"DELETE /v1/nodes/:node/allocation":                    {"baremetal:allocation:delete", nodeAllocation},
	"GET /v1/nodes/:node/bios":                             {"baremetal:node:bios:get", onNode},
	"GET /v1/nodes/:node/bios/:setting":                    {"baremetal:node:bios:get", onNode},
	"GET /v1/nodes/:node/children":                         {"baremetal:node:get", onNode},
	"GET /v1/nodes/:node/firmware":                         {"baremetal:node:firmware:get", onNode},
	"GET /v1/nodes/:node/history":                          {"baremetal:node:history:get", onNode},
	"GET /v1/nodes/:node/history/:event":                   {"baremetal:node:history:get", onNode},
	"GET /v1/nodes/:node/inventory":                        {"baremetal:node:inventory:get", onNode},
	"PUT /v1/nodes/:node/maintenance":                      {"baremetal:node:set_maintenance", onNode},
	"DELETE /v1/nodes/:node/maintenance":                   {"baremetal:node:clear_maintenance", onNode},
	"GET /v1/nodes/:node/management/boot_device":           {"baremetal:node:get_boot_device", onNode},
	"PUT /v1/nodes/:node/management/boot_device":           {"baremetal:node:set_boot_device", onNode},
	"GET /v1/nodes/:node/management/boot_device/supported": {"baremetal:node:get_boot_device", onNode},
	"GET /v1/nodes/:node/management/indicators":            {"baremetal:node:get_indicator_state", onNode},
	"GET /v1/nodes/:node/management/indicators/:indicator": {"baremetal:node:get_indicator_state", onNode},
	"PUT /v1/nodes/:node/management/indicators/:indicator": {"baremetal:node:set_indicator_state", onNode},
	"PUT /v1/nodes/:node/management/inject_nmi":            {"baremetal:node:inject_nmi", onNode},
	"GET /v1/nodes/:node/portgroups":                       {"baremetal:portgroup:list", onNode},
	"GET /v1/nodes/:node/portgroups/detail":                {"baremetal:portgroup:list", onNode},
	"GET /v1/nodes/:node/ports":                            {"baremetal:port:list", onNode},
	"GET /v1/nodes/:node/ports/detail":                     {"baremetal:port:list", onNode},
	"GET /v1/nodes/:node/ramdisk_logs":                     {"baremetal:node:ramdisk_logs:get", onNode},
	"GET /v1/nodes/:node/ramdisk_logs/:name":               {"baremetal:node:ramdisk_logs:get", onNode},
	"GET /v1/nodes/:node/states":                           {"baremetal:node:get_states", onNode},
	"PUT /v1/nodes/:node/states/boot_mode":                 {"baremetal:node:set_boot_mode", onNode},
	"GET /v1/nodes/:node/states/console":                   {"baremetal:node:get_console", onNode},
	"PUT /v1/nodes/:node/states/console":                   {"baremetal:node:set_console_state", onNode},
	"PUT /v1/nodes/:node/states/power":                     {"baremetal:node:set_power_state", onNode},
	"PUT /v1/nodes/:node/states/provision":                 {"baremetal:node:set_provision_state", onNode},
	"PUT /v1/nodes/:node/states/raid":                      {"baremetal:node:set_raid_state", onNode},
	"PUT /v1/nodes/:node/states/secure_boot":               {"baremetal:node:set_secure_boot", onNode},
	"GET /v1/nodes/:node/traits":                           {"baremetal:node:traits:list", onNode},
	"PUT /v1/nodes/:node/traits":                           {"baremetal:node:traits:set", onNode},
	"DELETE /v1/nodes/:node/traits":                        {"baremetal:node:traits:delete", onNode},
	"PUT /v1/nodes/:node/traits/:trait":                    {"baremetal:node:traits:set", onNode},
	"DELETE /v1/nodes/:node/traits/:trait":                 {"baremetal:node:traits:delete", onNode},
	"GET /v1/nodes/:node/validate":                         {"baremetal:node:validate", onNode},
	"GET /v1/nodes/:node/vendor_passthru/methods":          {"baremetal:node:vendor_passthru", onNode},
	"GET /v1/nodes/:node/vifs":                             {"baremetal:node:vif:list", onNode},
	"POST /v1/nodes/:node/vifs":                            {"baremetal:node:vif:attach", onNode},
	"DELETE /v1/nodes/:node/vifs/:vif":                     {"baremetal:node:vif:detach", onNode},
	"GET /v1/nodes/:node/vmedia":                           {"baremetal:node:vmedia:get", onNode},
	"POST /v1/nodes/:node/vmedia":                          {"baremetal:node:vmedia:attach", onNode},
	"DELETE /v1/nodes/:node/vmedia":                        {"baremetal:node:vmedia:detach", onNode},
	"GET /v1/nodes/:node/volume":                           {"baremetal:volume:get", onNode},
	"GET /v1/nodes/:node/volume/connectors":                {"baremetal:volume:get", onNode},
	"POST /v1/nodes/:node/volume/connectors":               {"baremetal:volume:create", onNode},
	"GET /v1/nodes/:node/volume/targets":                   {"baremetal:volume:get", onNode},
	"POST /v1/nodes/:node/volume/targets":                  {"baremetal:volume:create", onNode},

	"GET /v1/ports":                       {"", inHandler},
	"GET /v1/ports/":                      {"", inHandler},
	"GET /v1/ports/detail":                {"", inHandler},
	"POST /v1/ports":                      {"baremetal:port:create", portCreate},
	"POST /v1/ports/":                     {"baremetal:port:create", portCreate},
	"GET /v1/ports/:port":                 {"baremetal:port:get", onPort},
	"PATCH /v1/ports/:port":               {"baremetal:port:update", onPort},
	"DELETE /v1/ports/:port":              {"baremetal:port:delete", onPort},
	"GET /v1/portgroups":                  {"", inHandler},
	"GET /v1/portgroups/":                 {"", inHandler},
	"GET /v1/portgroups/detail":           {"", inHandler},
	"POST /v1/portgroups":                 {"baremetal:portgroup:create", portgroupCreate},
	"GET /v1/portgroups/:pg":              {"baremetal:portgroup:get", onPortgroup},
	"PATCH /v1/portgroups/:pg":            {"baremetal:portgroup:update", onPortgroup},
	"DELETE /v1/portgroups/:pg":           {"baremetal:portgroup:delete", onPortgroup},
	"GET /v1/portgroups/:pg/ports":        {"baremetal:port:list", onPortgroup},
	"GET /v1/portgroups/:pg/ports/detail": {"baremetal:port:list", onPortgroup},

	"GET /v1/allocations":        {"", inHandler},
	"GET /v1/allocations/":       {"", inHandler},
	"POST /v1/allocations":       {"baremetal:allocation:create", allocationCreate},
	"POST /v1/allocations/":      {"baremetal:allocation:create", allocationCreate},
	"GET /v1/allocations/:id":    {"baremetal:allocation:get", onAllocation},
	"PATCH /v1/allocations/:id":  {"baremetal:allocation:update", onAllocation},
	"DELETE /v1/allocations/:id": {"baremetal:allocation:delete", onAllocation},

	"GET /v1/volume":                   {"baremetal:volume:get", onNothing},
	"GET /v1/volume/":                  {"baremetal:volume:get", onNothing},
	"GET /v1/volume/connectors":        {"", inHandler},
	"GET /v1/volume/connectors/":       {"", inHandler},
	"POST /v1/volume/connectors":       {"baremetal:volume:create", volumeCreate},
	"POST /v1/volume/connectors/":      {"baremetal:volume:create", volumeCreate},
	"GET /v1/volume/connectors/:id":    {"baremetal:volume:get", onConnector},
	"PATCH /v1/volume/connectors/:id":  {"baremetal:volume:update", onConnector},
	"DELETE /v1/volume/connectors/:id": {"baremetal:volume:delete", onConnector},
	"GET /v1/volume/targets":           {"", inHandler},
	"GET /v1/volume/targets/":          {"", inHandler},
	"POST /v1/volume/targets":          {"baremetal:volume:create", volumeCreate},
	"POST /v1/volume/targets/":         {"baremetal:volume:create", volumeCreate},
	"GET /v1/volume/targets/:id":       {"baremetal:volume:get", onTarget},
	"PATCH /v1/volume/targets/:id":     {"baremetal:volume:update", onTarget},
	"DELETE /v1/volume/targets/:id":    {"baremetal:volume:delete", onTarget},

	"GET /v1/chassis":                  {"baremetal:chassis:get", onNothing},
	"GET /v1/chassis/":                 {"baremetal:chassis:get", onNothing},
	"GET /v1/chassis/detail":           {"baremetal:chassis:get", onNothing},
	"POST /v1/chassis":                 {"baremetal:chassis:create", onNothing},
	"GET /v1/chassis/:ch":              {"baremetal:chassis:get", onNothing},
	"PATCH /v1/chassis/:ch":            {"baremetal:chassis:update", onNothing},
	"DELETE /v1/chassis/:ch":           {"baremetal:chassis:delete", onNothing},
	"GET /v1/chassis/:ch/nodes":        {"baremetal:chassis:get", onNothing},
	"GET /v1/chassis/:ch/nodes/detail": {"baremetal:chassis:get", onNothing},

	"GET /v1/conductors":       {"baremetal:conductor:get", onNothing},
	"GET /v1/conductors/":      {"baremetal:conductor:get", onNothing},
	"GET /v1/conductors/:host": {"baremetal:conductor:get", onNothing},

	"GET /v1/drivers":                                    {"baremetal:driver:get", onNothing},
	"GET /v1/drivers/":                                   {"baremetal:driver:get", onNothing},
	"GET /v1/drivers/:name":                              {"baremetal:driver:get", onNothing},
	"GET /v1/drivers/:name/properties":                   {"baremetal:driver:get_properties", onNothing},
	"GET /v1/drivers/:name/raid/logical_disk_properties": {"baremetal:driver:get_raid_logical_disk_properties", onNothing},
	"GET /v1/drivers/:name/vendor_passthru/methods":      {"baremetal:driver:vendor_passthru", onNothing},

	"GET /v1/deploy_templates":              {"baremetal:deploy_template:get", onNothing},
	"GET /v1/deploy_templates/":             {"baremetal:deploy_template:get", onNothing},
	"GET /v1/deploy_templates/:template":    {"baremetal:deploy_template:get", onNothing},
	"POST /v1/deploy_templates":             {"baremetal:deploy_template:create", onNothing},
	"PATCH /v1/deploy_templates/:template":  {"baremetal:deploy_template:update", onNothing},
	"DELETE /v1/deploy_templates/:template": {"baremetal:deploy_template:delete", onNothing},
	"GET /v1/runbooks":                      {"baremetal:runbook:get", onNothing},
	"GET /v1/runbooks/":                     {"baremetal:runbook:get", onNothing},
	"GET /v1/runbooks/:runbook":             {"baremetal:runbook:get", onNothing},
	"POST /v1/runbooks":                     {"baremetal:runbook:create", onNothing},
	"PATCH /v1/runbooks/:runbook":           {"baremetal:runbook:update", onNothing},
	"DELETE /v1/runbooks/:runbook":          {"baremetal:runbook:delete", onNothing},
	"GET /v1/inspection_rules":              {"baremetal:inspection_rule:get", onNothing},
	"GET /v1/inspection_rules/:rule":        {"baremetal:inspection_rule:get", onNothing},
	"POST /v1/inspection_rules":             {"baremetal:inspection_rule:create", onNothing},
	"PATCH /v1/inspection_rules/:rule":      {"baremetal:inspection_rule:update", onNothing},
	"DELETE /v1/inspection_rules":           {"baremetal:inspection_rule:delete", onNothing},
	"DELETE /v1/inspection_rules/:rule":     {"baremetal:inspection_rule:delete", onNothing},
}

// accessRuleFor is the route's entry: vendor passthru of any method, then
// the table, then the fallback.
func accessRuleFor(method, path string) (accessRule, bool) {
	switch path {
	case "/v1/nodes/:node/vendor_passthru":
		return accessRule{"baremetal:node:vendor_passthru", onNode}, true
	case "/v1/drivers/:name/vendor_passthru":
		return accessRule{"baremetal:driver:vendor_passthru", onNothing}, true
	case "/v1/*", "/*", "":
		return accessRule{}, false // no route: its 404
	}
	if r, ok := accessRules[method+" "+path]; ok {
		return r, true
	}
	if method == http.MethodGet || method == http.MethodHead {
		return accessRule{"ferric:default:get", onNothing}, true
	}
	return accessRule{"ferric:default:write", onNothing}, true
}

// callerCreds are the policy credentials of the request's Keystone
// identity; nil without one (noauth, http_basic, public routes).
func callerCreds(c echo.Context) *policy.Creds {
	id := auth.IdentityFrom(c.Request().Context())
	if id == nil {
		return nil
	}
	return &policy.Creds{UserID: id.UserID, UserDomainID: id.UserDomainID, ProjectID: id.ProjectID,
		ProjectName: id.Project, ProjectDomainID: id.ProjectDomainID, DomainID: id.DomainID,
		System: id.System, Roles: id.Roles}
}

// forbidden is Ironic's 403 for a rule the caller does not pass.
func forbidden(rule string) *Error {
	return errf(http.StatusForbidden, "Access was denied to the following resource: %s", rule)
}

// can reports whether the caller passes rule on target (always under
// noauth and http_basic).
func (s *Server) can(c echo.Context, rule string, t policy.Target) bool {
	cr := callerCreds(c)
	return cr == nil || s.policy.Check(rule, cr, t)
}

// authorize is can as Ironic's 403.
func (s *Server) authorize(c echo.Context, rule string, t policy.Target) error {
	if !s.can(c, rule, t) {
		return forbidden(rule)
	}
	return nil
}

func nodeTarget(n *store.Node) policy.Target {
	if n == nil {
		return policy.NodeTarget(nil, nil)
	}
	return policy.NodeTarget(n.Owner, n.Lessee)
}

// access is the middleware of the /v1 routes.
func (s *Server) access(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		cr := callerCreds(c)
		if cr == nil {
			return next(c)
		}
		s.setRedactor(c, cr)
		a, ok := accessRuleFor(c.Request().Method, c.Path())
		if !ok || a.kind == inHandler {
			return next(c)
		}
		if err := s.checkAccess(c, cr, a); err != nil {
			return err
		}
		return next(c)
	}
}

func (s *Server) checkAccess(c echo.Context, cr *policy.Creds, a accessRule) error {
	switch a.kind {
	case onNothing:
		return s.authorize(c, a.rule, nil)
	case onNode, nodeDelete, patchOfNode, nodeAllocation:
		ident := c.Param("node")
		n, err := s.st.Node(ident)
		if err != nil {
			return nil // the handler answers its 400 or 404
		}
		if !s.can(c, "baremetal:node:get", nodeTarget(n)) {
			return notFound("Node %s could not be found.", ident)
		}
		switch a.kind {
		case nodeDelete:
			if s.can(c, a.rule, nodeTarget(n)) {
				return nil
			}
			// Ironic's [api]project_admin_can_manage_own_nodes (default on).
			return s.authorize(c, "baremetal:node:delete:self_owned_node", nodeTarget(n))
		case patchOfNode:
			return s.checkNodePatch(c, cr, n)
		case nodeAllocation:
			if n.AllocationUUID == nil {
				return nil
			}
			al, err := s.st.Allocation(*n.AllocationUUID)
			if err != nil {
				return nil
			}
			return s.authorize(c, a.rule, policy.AllocationTarget(al.Owner))
		}
		return s.authorize(c, a.rule, nodeTarget(n))
	case onPort:
		p, err := s.findPort(c, c.Param("port"))
		if err != nil {
			return nil
		}
		return s.checkViaNode(c, a.rule, p.NodeUUID, notFound("Port %s could not be found.", c.Param("port")))
	case onPortgroup:
		pg, err := s.st.Portgroup(c.Param("pg"))
		if err != nil {
			return nil
		}
		return s.checkViaNode(c, a.rule, pg.NodeUUID, notFound("Portgroup %s could not be found.", c.Param("pg")))
	case onConnector:
		v, err := s.st.VolumeConnector(c.Param("id"))
		if err != nil {
			return nil
		}
		return s.checkViaNode(c, a.rule, v.NodeUUID, notFound("Volume connector %s could not be found.", c.Param("id")))
	case onTarget:
		v, err := s.st.VolumeTarget(c.Param("id"))
		if err != nil {
			return nil
		}
		return s.checkViaNode(c, a.rule, v.NodeUUID, notFound("Volume target %s could not be found.", c.Param("id")))
	case onAllocation:
		al, err := s.st.Allocation(c.Param("id"))
		if err != nil {
			return nil
		}
		if !s.can(c, "baremetal:allocation:get", policy.AllocationTarget(al.Owner)) {
			return notFound("Allocation %s could not be found.", c.Param("id"))
		}
		return s.authorize(c, a.rule, policy.AllocationTarget(al.Owner))
	case portCreate, portgroupCreate, volumeCreate:
		return s.checkCreateOnNode(c, a.rule)
	case nodeCreate:
		return s.checkNodeCreate(c, cr)
	case allocationCreate:
		return s.checkAllocationCreate(c, cr)
	}
	return nil
}

// checkViaNode checks rule on a record of a node (port, port group,
// volume connector or target): hidden (hide) unless the caller may see
// the node, then the rule.
func (s *Server) checkViaNode(c echo.Context, rule, nodeUUID string, hide *Error) error {
	n, err := s.st.Node(nodeUUID)
	if err != nil {
		n = nil
	}
	t := nodeTarget(n)
	if !s.can(c, "baremetal:node:get", t) {
		return hide
	}
	return s.authorize(c, rule, t)
}

// peekBody reads the request body as JSON (nil when it is not an object)
// and puts it back for the handler.
func peekBody(c echo.Context) map[string]any {
	r := c.Request()
	if r.Body == nil {
		return nil
	}
	raw, err := restoreBody(r)
	if err != nil {
		return nil
	}
	// Numbers stay as written when the body is given back changed.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]any
	if dec.Decode(&doc) != nil || dec.More() {
		return nil
	}
	return doc
}

// restoreBody reads the request body and puts it back for the handler,
// with the same error at its end when it could not be read whole (a body
// past the route's bound stays a 413).
func restoreBody(r *http.Request) ([]byte, error) {
	if r.Body == nil {
		return nil, io.EOF
	}
	raw, err := io.ReadAll(r.Body)
	rest := io.Reader(bytes.NewReader(raw))
	if err != nil {
		rest = io.MultiReader(rest, errReader{err})
	}
	r.Body = io.NopCloser(rest)
	return raw, err
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// replaceBody gives the handler doc as the request body.
func replaceBody(c echo.Context, doc map[string]any) {
	raw, _ := json.Marshal(doc)
	r := c.Request()
	r.Body = io.NopCloser(bytes.NewReader(raw))
	r.ContentLength = int64(len(raw))
}

// checkCreateOnNode is a port's, port group's or volume record's create:
// the rule on the node named in the body; a node the caller cannot see
// counts as no node (Ironic's 403 for a project, then the handler's 400).
func (s *Server) checkCreateOnNode(c echo.Context, rule string) error {
	doc := peekBody(c)
	ident, _ := doc["node_uuid"].(string)
	if ident == "" {
		ident, _ = doc["node"].(string)
	}
	var n *store.Node
	if ident != "" {
		if x, err := s.st.Node(ident); err == nil && s.can(c, "baremetal:node:get", nodeTarget(x)) {
			n = x
		}
	}
	return s.authorize(c, rule, nodeTarget(n))
}

// checkNodeCreate: system admins create any node; a project's admin (with
// baremetal:node:create:self_owned_node) creates nodes its project owns.
func (s *Server) checkNodeCreate(c echo.Context, cr *policy.Creds) error {
	owned := s.can(c, "baremetal:node:create:self_owned_node", nil)
	if !owned {
		return s.authorize(c, "baremetal:node:create", nil)
	}
	if cr.System {
		return nil
	}
	doc := peekBody(c)
	if doc == nil {
		return nil // the handler's 400
	}
	if o, _ := doc["owner"].(string); o != "" && o != cr.ProjectID {
		return badRequest("Cannot create a node as a project scoped admin with an owner other than your own project.")
	}
	if cr.ProjectID != "" {
		doc["owner"] = cr.ProjectID
		replaceBody(c, doc)
	}
	return nil
}

// checkAllocationCreate is Ironic's allocation create with the new
// defaults: a project's member creates allocations its project owns, on
// nodes its project owns or leases.
func (s *Server) checkAllocationCreate(c echo.Context, cr *policy.Creds) error {
	doc := peekBody(c)
	if doc == nil {
		return s.authorize(c, "baremetal:allocation:create", nil)
	}
	owner, _ := doc["owner"].(string)
	restricted := s.can(c, "baremetal:allocation:create_restricted", nil)
	if !s.can(c, "baremetal:allocation:create", nil) {
		if cr.ProjectID == "" || (owner != "" && owner != cr.ProjectID) {
			return forbidden("baremetal:allocation:create")
		}
		if !restricted {
			return forbidden("baremetal:allocation:create_restricted")
		}
		doc["owner"] = cr.ProjectID
		owner = cr.ProjectID
	}
	if !cr.System {
		if owner != "" {
			if !restricted && owner != cr.ProjectID {
				return errf(http.StatusForbidden, "Cannot create allocation with an owner Project ID value %s not matching the requestor Project ID %s. Policy baremetal:allocation:create_restricted is required for this capability.", owner, cr.ProjectID)
			}
		} else if cr.ProjectID != "" {
			doc["owner"] = cr.ProjectID
		}
	}
	if ident, _ := doc["node"].(string); ident != "" {
		if n, err := s.st.Node(ident); err == nil && !s.can(c, "baremetal:node:get", nodeTarget(n)) {
			return badRequest("Node %s could not be found.", ident)
		}
	}
	if list, ok := doc["candidate_nodes"].([]any); ok && !restricted {
		for _, x := range list {
			ident, _ := x.(string)
			n, err := s.st.Node(ident)
			if err != nil {
				continue // the handler's own answer
			}
			if deref(n.Owner) != cr.ProjectID && deref(n.Lessee) != cr.ProjectID {
				return badRequest("Node %s could not be found.", ident)
			}
		}
	}
	replaceBody(c, doc)
	return nil
}

// nodePatchRule is the rule of one patched path, as Ironic tells them
// apart ("" for the generic baremetal:node:update).
func nodePatchRule(path string, value json.RawMessage) string {
	has := func(p string) bool { return strings.HasPrefix(path, p) }
	switch {
	case has("/instance_info"):
		return "baremetal:node:update_instance_info"
	case has("/extra"):
		return "baremetal:node:update_extra"
	case has("/automated_clean") && isFalse(value):
		return "baremetal:node:disable_cleaning"
	case has("/driver_info"):
		return "baremetal:node:update:driver_info"
	case has("/properties"):
		return "baremetal:node:update:properties"
	case has("/chassis_uuid"):
		return "baremetal:node:update:chassis_uuid"
	case has("/instance_uuid"):
		return "baremetal:node:update:instance_uuid"
	case has("/lessee"):
		return "baremetal:node:update:lessee"
	case has("/owner"):
		return "baremetal:node:update:owner"
	case has("/driver"):
		return "baremetal:node:update:driver_interfaces"
	case isInterfacePath(path):
		return "baremetal:node:update:driver_interfaces"
	case has("/network_data"):
		return "baremetal:node:update:network_data"
	case has("/conductor_group"):
		return "baremetal:node:update:conductor_group"
	case has("/name"):
		return "baremetal:node:update:name"
	case has("/retired"):
		return "baremetal:node:update:retired"
	case has("/shard"):
		return "baremetal:node:update:shard"
	}
	return ""
}

// isFalse: the value is false in oslo's words (Ironic's
// bool_from_string(value, default=None) is False).
func isFalse(raw json.RawMessage) bool {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	switch x := v.(type) {
	case bool:
		return !x
	case string:
		b, ok := ironichttp.ParseBool(x)
		return ok && !b
	}
	return false
}

// isInterfacePath: /<interface>_interface for one of the driver
// interfaces.
func isInterfacePath(path string) bool {
	p := strings.TrimLeft(path, "/")
	i := strings.LastIndex(p, "_")
	if i < 0 || p[i+1:] != "interface" {
		return false
	}
	switch p[:i] {
	case "bios", "boot", "console", "deploy", "firmware", "inspect", "management", "network",
		"power", "raid", "rescue", "storage", "vendor":
		return true
	}
	return false
}

// checkNodePatch checks each patched field's rule (the generic
// baremetal:node:update for fields without their own, or for an empty
// patch), and keeps a provisioned node's owner for system admins.
func (s *Server) checkNodePatch(c echo.Context, cr *policy.Creds, n *store.Node) error {
	raw, err := restoreBody(c.Request())
	if err != nil {
		return nil
	}
	var ops []struct {
		Path  string          `json:"path"`
		Value json.RawMessage `json:"value"`
	}
	_ = json.Unmarshal(raw, &ops)
	var rules []string
	generic, owner := false, false
	for _, op := range ops {
		rule := nodePatchRule(op.Path, op.Value)
		if rule == "" {
			generic = true
			continue
		}
		owner = owner || rule == "baremetal:node:update:owner"
		rules = append(rules, rule)
	}
	if generic || len(rules) == 0 {
		rules = append(rules, "baremetal:node:update")
	}
	t := nodeTarget(n)
	for _, rule := range rules {
		if err := s.authorize(c, rule, t); err != nil {
			return err
		}
	}
	if owner && n.ProvisionState == "active" && !s.can(c, "baremetal:node:update_owner_provisioned", t) {
		return conflict("Cannot update owner of node \"%s\" while it is in state \"active\".", n.UUID)
	}
	return nil
}

// listProject is Ironic's check of a listing of kind (node, port,
// portgroup): "" when the caller may list everything
// (baremetal:<kind>:list_all), else the project the listing is filtered
// to (baremetal:<kind>:list), or the 403. asked is the project the query
// names, if any.
func (s *Server) listProject(c echo.Context, kind, asked string) (string, *Error) {
	cr := callerCreds(c)
	if cr == nil || s.policy.Check("baremetal:"+kind+":list_all", cr, nil) {
		return "", nil
	}
	if cr.ProjectID == "" || (asked != "" && asked != cr.ProjectID) {
		return "", forbidden("baremetal:" + kind + ":list_all")
	}
	if !s.can(c, "baremetal:"+kind+":list", nil) {
		return "", forbidden("baremetal:" + kind + ":list")
	}
	return cr.ProjectID, nil
}

// inProject: the node is owned or leased by the project.
func inProject(n *store.Node, project string) bool {
	return n != nil && (deref(n.Owner) == project || deref(n.Lessee) == project)
}

// scopeNodes narrows a node listing's filter to the caller's project.
func (s *Server) scopeNodes(c echo.Context, filter func(*store.Node) bool) (func(*store.Node) bool, *Error) {
	project, err := s.listProject(c, "node", c.QueryParam("project"))
	if err != nil || project == "" {
		return filter, err
	}
	return func(n *store.Node) bool {
		return inProject(n, project) && (filter == nil || filter(n))
	}, nil
}

// projectScoped: the caller's listings are filtered to its project.
func (s *Server) projectScoped(c echo.Context) bool {
	cr := callerCreds(c)
	return cr != nil && !s.policy.Check("baremetal:node:list_all", cr, nil)
}

// scopeByNode narrows a listing of records of nodes (ports, port groups)
// to those of the caller's project's nodes.
func scopeByNode[T any](s *Server, c echo.Context, kind string, filter func(T) bool, nodeOf func(T) string) (func(T) bool, *Error) {
	project, err := s.listProject(c, kind, "")
	if err != nil || project == "" {
		return filter, err
	}
	return func(x T) bool {
		n, err := s.st.Node(nodeOf(x))
		return err == nil && inProject(n, project) && (filter == nil || filter(x))
	}, nil
}

// scopeAllocations is the owner a project's caller's allocation listing
// is limited to ("" for all), as Ironic: without
// baremetal:allocation:list_all, a project sees its own allocations.
func (s *Server) scopeAllocations(c echo.Context, owner string) (string, *Error) {
	cr := callerCreds(c)
	if cr == nil || cr.System || s.policy.Check("baremetal:allocation:list_all", cr, nil) {
		return owner, nil
	}
	if !s.can(c, "baremetal:allocation:list", nil) {
		return "", forbidden("baremetal:allocation:list")
	}
	return cr.ProjectID, nil
}

// Fields of a node Ironic masks for callers below
// baremetal:node:get:filter_threshold (system readers pass it) who do
// not pass the field's own rule: a lessee sees its node without the
// conductor's bookkeeping, last error, lock holder and BMC details.
var nodeFieldGuards = map[string]struct {
	rule     string
	redacted any
}{
	"last_error":           {"baremetal:node:get:last_error", "** Value Redacted - Requires baremetal:node:get:last_error permission. **"},
	"reservation":          {"baremetal:node:get:reservation", "** Redacted - requires baremetal:node:get:reservation permission. **"},
	"driver_internal_info": {"baremetal:node:get:driver_internal_info", map[string]any{"content": "** Redacted - Requires baremetal:node:get:driver_internal_info permission. **"}},
	"driver_info":          {"baremetal:node:get:driver_info", map[string]any{"content": "** Redacted - requires baremetal:node:get:driver_info permission. **"}},
}

// redactKey holds, in a request's echo context, the *fieldRedactor of a
// caller whose node documents are masked.
const redactKey = "ferric.redact"

type fieldRedactor struct {
	pol *policy.Enforcer
	cr  *policy.Creds
}

// guardField wraps a node field's rendering with its guard, if it has one.
func guardField(name string, show func(echo.Context, *store.Node) any) func(echo.Context, *store.Node) any {
	g, ok := nodeFieldGuards[name]
	if !ok {
		return show
	}
	return func(c echo.Context, n *store.Node) any {
		if r, _ := c.Get(redactKey).(*fieldRedactor); r != nil {
			t := nodeTarget(n)
			if !r.pol.Check("baremetal:node:get:filter_threshold", r.cr, t) && !r.pol.Check(g.rule, r.cr, t) {
				return g.redacted
			}
		}
		return show(c, n)
	}
}

// setRedactor marks the request's node documents for masking when the
// caller is below the threshold. The change feed takes the mark off the
// request and masks its shared renderings per client (stream.go).
func (s *Server) setRedactor(c echo.Context, cr *policy.Creds) {
	if s.policy.Check("baremetal:node:get:filter_threshold", cr, nil) {
		return
	}
	c.Set(redactKey, &fieldRedactor{pol: s.policy, cr: cr})
}

// nodeGuardNames are the guarded fields in a fixed order: bit i of a
// redaction mask stands for nodeGuardNames[i].
var nodeGuardNames = func() []string {
	out := make([]string, 0, len(nodeFieldGuards))
	for name := range nodeFieldGuards {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}()

// mask is which of n's guarded fields the caller sees redacted, as a bit
// set over nodeGuardNames (0: none).
func (r *fieldRedactor) mask(n *store.Node) uint8 {
	if r == nil {
		return 0
	}
	t := nodeTarget(n)
	if r.pol.Check("baremetal:node:get:filter_threshold", r.cr, t) {
		return 0
	}
	var m uint8
	for i, name := range nodeGuardNames {
		if !r.pol.Check(nodeFieldGuards[name].rule, r.cr, t) {
			m |= 1 << i
		}
	}
	return m
}

// nodeCache is the listing's cache of rendered nodes: none for a masked
// caller (the cache holds unmasked documents).
func (s *Server) nodeCache(c echo.Context) *itemCache {
	if c.Get(redactKey) != nil {
		return nil
	}
	return &s.nodeJSON
}

// volumeScope is which nodes' volume connectors and targets a listing
// shows: all with baremetal:volume:list_all, else (baremetal:volume:list)
// those of the caller's project's nodes.
func (s *Server) volumeScope(c echo.Context) (func(nodeUUID string) bool, *Error) {
	all := func(string) bool { return true }
	project, err := s.listProject(c, "volume", "")
	if err != nil || project == "" {
		return all, err
	}
	return func(nodeUUID string) bool {
		n, err := s.st.Node(nodeUUID)
		return err == nil && inProject(n, project)
	}, nil
}
