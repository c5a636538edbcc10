package api

import (
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/internal/python"
	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/store"
)

// nodeQuery collects the filters of a node listing.
type nodeQuery struct {
	q     url.Values
	v     Version
	mgr   Manager
	preds []func(*store.Node) bool
	// includeChildren: ?include_children=True (1.83) lists child nodes
	// too, whatever parent_node says, as Ironic does.
	includeChildren bool
}

// nodeListFilter is one filter parameter of a node listing: the version
// that introduced it and the test a value makes (or Ironic's 400).
type nodeListFilter struct {
	name  string
	min   Version
	match func(name, val string, mgr Manager) (func(*store.Node) bool, *Error)
}

// nodeListFilters are the filters, checked in this order.
var nodeListFilters = []nodeListFilter{
	{"chassis_uuid", 1, equal(func(n *store.Node) string { return deref(n.ChassisUUID) })},
	{"instance_uuid", 1, equal(func(n *store.Node) string { return deref(n.InstanceUUID) })},
	{"driver", 16, equal(func(n *store.Node) string { return n.Driver })},
	{"resource_class", 21, equal(func(n *store.Node) string { return deref(n.ResourceClass) })},
	{"fault", 42, equal(func(n *store.Node) string { return deref(n.Fault) })},
	{"conductor_group", 46, equal(func(n *store.Node) string { return strings.ToLower(n.ConductorGroup) })},
	{"owner", 50, equal(func(n *store.Node) string { return deref(n.Owner) })},
	{"lessee", 65, equal(func(n *store.Node) string { return deref(n.Lessee) })},
	{"shard", 82, equal(func(n *store.Node) string { return deref(n.Shard) })},
	{"parent_node", 83, equal(func(n *store.Node) string { return deref(n.ParentNode) })},
	{"instance_name", 104, equal(func(n *store.Node) string { return deref(n.InstanceName) })},
	{"provision_state", 9, matchProvisionState},
	{"associated", 1, is(func(n *store.Node) bool { return n.InstanceUUID != nil })},
	{"maintenance", 1, is(func(n *store.Node) bool { return n.Maintenance })},
	{"retired", 61, is(func(n *store.Node) bool { return n.Retired })},
	{"sharded", 82, is(func(n *store.Node) bool { return n.Shard != nil })},
	{"description_contains", 51, matchDescription},
	{"project", 50, matchProject},
	{"conductor", 49, matchConductor},
}

// nodeFilter builds a filter from list query parameters (nil: every
// node).
func (s *Server) nodeFilter(c echo.Context, v Version) (func(*store.Node) bool, *Error) {
	nq := &nodeQuery{q: c.QueryParams(), v: v, mgr: s.mgr}
	if err := nq.children(); err != nil {
		return nil, err
	}
	if nq.q.Has("conductor_group") {
		nq.q.Set("conductor_group", strings.ToLower(nq.q.Get("conductor_group")))
	}
	for _, f := range nodeListFilters {
		if f.name == "parent_node" && nq.includeChildren {
			continue
		}
		val, ok, err := nq.param(f.name, f.min)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		pred, err := f.match(f.name, val, nq.mgr)
		if err != nil {
			return nil, err
		}
		nq.preds = append(nq.preds, pred)
	}
	return s.scopeNodes(c, nq.filter()) // the caller's project only (access.go)
}

// param is a filter's value when the query has it; a 406 below its
// version.
func (nq *nodeQuery) param(name string, min Version) (string, bool, *Error) {
	if !nq.q.Has(name) {
		return "", false, nil
	}
	if nq.v < min && name == "instance_name" {
		return "", false, notAcceptable("instance_name is not acceptable in this API version")
	}
	if nq.v < min {
		return "", false, notAcceptable("The %s parameter is not supported by version %s.", name, nq.v)
	}
	return nq.q.Get(name), true, nil
}

// children hides child nodes (1.83) unless include_children is set or
// parent_node names their parent.
func (nq *nodeQuery) children() *Error {
	if val, ok, err := nq.param("include_children", 83); err != nil {
		return err
	} else if ok {
		if nq.includeChildren, err = boolFilter("include_children", val); err != nil {
			return err
		}
	}
	_, ok, err := nq.param("parent_node", 83)
	if err != nil {
		return err
	}
	if !ok && !nq.includeChildren {
		nq.preds = append(nq.preds, func(n *store.Node) bool { return n.ParentNode == nil })
	}
	return nil
}

// filter is the conjunction of the filters (nil for none).
func (nq *nodeQuery) filter() func(*store.Node) bool {
	if len(nq.preds) == 0 {
		return nil
	}
	preds := nq.preds
	return func(n *store.Node) bool {
		for _, p := range preds {
			if !p(n) {
				return false
			}
		}
		return true
	}
}

// boolFilter is a filter's boolean value (oslo's words).
func boolFilter(name, val string) (bool, *Error) {
	b, e := ironichttp.ArgBool(name, val)
	if e != nil {
		return false, e
	}
	return *b, nil
}

// equal matches the nodes whose string is the value.
func equal(get func(*store.Node) string) func(string, string, Manager) (func(*store.Node) bool, *Error) {
	return func(_, val string, _ Manager) (func(*store.Node) bool, *Error) {
		return func(n *store.Node) bool { return get(n) == val }, nil
	}
}

// is matches the nodes whose flag is the boolean value.
func is(get func(*store.Node) bool) func(string, string, Manager) (func(*store.Node) bool, *Error) {
	return func(name, val string, _ Manager) (func(*store.Node) bool, *Error) {
		want, err := boolFilter(name, val)
		if err != nil {
			return nil, err
		}
		return func(n *store.Node) bool { return get(n) == want }, nil
	}
}

func matchProvisionState(_, val string, _ Manager) (func(*store.Node) bool, *Error) {
	if !knownState(val) {
		return nil, badRequest("Provision state \"%s\" is not valid", python.Cut(val))
	}
	return func(n *store.Node) bool { return n.ProvisionState == val }, nil
}

func matchDescription(_, val string, _ Manager) (func(*store.Node) bool, *Error) {
	return func(n *store.Node) bool { return strings.Contains(deref(n.Description), val) }, nil
}

func matchProject(_, val string, _ Manager) (func(*store.Node) bool, *Error) {
	return func(n *store.Node) bool { return deref(n.Owner) == val || deref(n.Lessee) == val }, nil
}

func matchConductor(_, val string, mgr Manager) (func(*store.Node) bool, *Error) {
	return func(n *store.Node) bool { return mgr.Owner(n) == val }, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (s *Server) listNodes(detail bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		detail := detail // per request: ?detail= must not leak into later requests
		v := ver(c)
		q := c.QueryParams()
		if q.Has("detail") {
			if v < 43 {
				return notAcceptable("The detail parameter is not supported by version %s.", v)
			}
			if detail {
				return badRequest("Can not specify ?detail=True on the /detail resource.")
			}
			d, e := ironichttp.ArgBool("detail", q.Get("detail"))
			if e != nil {
				return e
			}
			detail = *d
		}
		var want map[string]bool
		if q.Has("fields") {
			if detail {
				return badRequest("Can not specify ?detail=True and fields in the same request.")
			}
			w, ferr := fieldSet(nodeFields, v, q.Get("fields"))
			if ferr != nil {
				return ferr
			}
			want = w
		} else if !detail {
			want = nodeListDefault
		}
		filter, ferr := s.nodeFilter(c, v)
		if ferr != nil {
			return ferr
		}
		page, perr := parsePaging(c, nodeSortKeys, nil, func(f string) bool {
			m, ok := nodeFieldMin(f)
			return ok && m <= v
		})
		if perr != nil {
			return perr
		}
		items, next, perr := s.nodePage(c, filter, page)
		if perr != nil {
			return perr
		}
		if q.Has("instance_uuid") {
			next = ""
		}
		return writeCachedCollection(c, "nodes", nodeFieldsSorted, items, v, want, next, s.nodeCache(c),
			func(n *store.Node) (string, int64) { return n.UUID, n.Revision })
	}
}

func collection(key string, items []map[string]any, next string) map[string]any {
	doc := map[string]any{key: items}
	if next != "" {
		doc["next"] = next
		doc[key+"_links"] = []map[string]string{{"href": next, "rel": "next"}}
	}
	return doc
}
