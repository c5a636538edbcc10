package api

import (
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/store"
)

// nodeQuery collects the filters of a node listing.
type nodeQuery struct {
	q     url.Values
	v     Version
	preds []func(*store.Node) bool
	// includeChildren: ?include_children=True (1.83) lists child nodes
	// too, whatever parent_node says, as Ironic does.
	includeChildren bool
}

// nodeStrFilters are the filters on a string field: equal values.
var nodeStrFilters = []struct {
	name string
	min  Version
	get  func(*store.Node) string
}{
	{"chassis_uuid", 1, func(n *store.Node) string { return deref(n.ChassisUUID) }},
	{"instance_uuid", 1, func(n *store.Node) string { return deref(n.InstanceUUID) }},
	{"driver", 16, func(n *store.Node) string { return n.Driver }},
	{"resource_class", 21, func(n *store.Node) string { return deref(n.ResourceClass) }},
	{"fault", 42, func(n *store.Node) string { return deref(n.Fault) }},
	{"conductor_group", 46, func(n *store.Node) string { return strings.ToLower(n.ConductorGroup) }},
	{"owner", 50, func(n *store.Node) string { return deref(n.Owner) }},
	{"lessee", 65, func(n *store.Node) string { return deref(n.Lessee) }},
	{"shard", 82, func(n *store.Node) string { return deref(n.Shard) }},
	{"parent_node", 83, func(n *store.Node) string { return deref(n.ParentNode) }},
}

// nodeBoolFilters are the boolean filters.
var nodeBoolFilters = []struct {
	name string
	min  Version
	get  func(*store.Node) bool
}{
	{"associated", 1, func(n *store.Node) bool { return n.InstanceUUID != nil }},
	{"maintenance", 1, func(n *store.Node) bool { return n.Maintenance }},
	{"retired", 61, func(n *store.Node) bool { return n.Retired }},
	{"sharded", 82, func(n *store.Node) bool { return n.Shard != nil }},
}

// nodeFilter builds a filter from list query parameters (nil: every
// node).
func (s *Server) nodeFilter(c echo.Context, v Version) (func(*store.Node) bool, *Error) {
	nq := &nodeQuery{q: c.QueryParams(), v: v}
	steps := []func() *Error{nq.children, nq.equal, nq.provisionState, nq.bools,
		func() *Error { return nq.others(s.mgr) }}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return nq.filter(), nil
}

// param is a filter's value when the query has it; a 406 below its
// version.
func (nq *nodeQuery) param(name string, min Version) (string, bool, *Error) {
	if !nq.q.Has(name) {
		return "", false, nil
	}
	if nq.v < min {
		return "", false, notAcceptable("The %s parameter is not supported by version %s.", name, nq.v)
	}
	return nq.q.Get(name), true, nil
}

// boolParam is a filter's boolean value (oslo's words).
func (nq *nodeQuery) boolParam(name string, min Version) (b, ok bool, err *Error) {
	val, ok, err := nq.param(name, min)
	if err != nil || !ok {
		return false, ok, err
	}
	b, ok = ironichttp.ParseBool(val)
	if !ok {
		return false, false, badRequest("Invalid value for %s: %q is not a boolean", name, val)
	}
	return b, true, nil
}

func (nq *nodeQuery) add(p func(*store.Node) bool) { nq.preds = append(nq.preds, p) }

// children hides child nodes (1.83) unless include_children is set or
// parent_node names their parent.
func (nq *nodeQuery) children() *Error {
	inc, _, err := nq.boolParam("include_children", 83)
	if err != nil {
		return err
	}
	nq.includeChildren = inc
	_, ok, err := nq.param("parent_node", 83)
	if err != nil {
		return err
	}
	if !ok && !inc {
		nq.add(func(n *store.Node) bool { return n.ParentNode == nil })
	}
	return nil
}

func (nq *nodeQuery) equal() *Error {
	if nq.q.Has("conductor_group") {
		nq.q.Set("conductor_group", strings.ToLower(nq.q.Get("conductor_group")))
	}
	for _, f := range nodeStrFilters {
		if f.name == "parent_node" && nq.includeChildren {
			continue
		}
		val, ok, err := nq.param(f.name, f.min)
		if err != nil {
			return err
		}
		if ok {
			get := f.get
			nq.add(func(n *store.Node) bool { return get(n) == val })
		}
	}
	return nil
}

func (nq *nodeQuery) provisionState() *Error {
	val, ok, err := nq.param("provision_state", 9)
	if err != nil || !ok {
		return err
	}
	if !knownState(val) {
		return badRequest("Invalid value for provision_state: %s", val)
	}
	nq.add(func(n *store.Node) bool { return n.ProvisionState == val })
	return nil
}

func (nq *nodeQuery) bools() *Error {
	for _, f := range nodeBoolFilters {
		want, ok, err := nq.boolParam(f.name, f.min)
		if err != nil {
			return err
		}
		if ok {
			get := f.get
			nq.add(func(n *store.Node) bool { return get(n) == want })
		}
	}
	return nil
}

// others are the filters that match otherwise: a text in the
// description, a project as owner or lessee, the conductor.
func (nq *nodeQuery) others(mgr Manager) *Error {
	others := []struct {
		name string
		min  Version
		pred func(val string) func(*store.Node) bool
	}{
		{"description_contains", 51, func(val string) func(*store.Node) bool {
			return func(n *store.Node) bool { return strings.Contains(deref(n.Description), val) }
		}},
		{"project", 50, func(val string) func(*store.Node) bool {
			return func(n *store.Node) bool { return deref(n.Owner) == val || deref(n.Lessee) == val }
		}},
		{"conductor", 49, func(val string) func(*store.Node) bool {
			return func(n *store.Node) bool { return mgr.Owner(n) == val }
		}},
	}
	for _, o := range others {
		val, ok, err := nq.param(o.name, o.min)
		if err != nil {
			return err
		}
		if ok {
			nq.add(o.pred(val))
		}
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

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// sortable node keys and how to compare them.
var nodeSortKeys = map[string]func(a, b *store.Node) int{
	"id":              func(a, b *store.Node) int { return cmpInt(a.ID, b.ID) },
	"uuid":            func(a, b *store.Node) int { return strings.Compare(a.UUID, b.UUID) },
	"name":            func(a, b *store.Node) int { return strings.Compare(deref(a.Name), deref(b.Name)) },
	"created_at":      func(a, b *store.Node) int { return a.CreatedAt.Compare(b.CreatedAt) },
	"updated_at":      func(a, b *store.Node) int { return cmpTime(a.UpdatedAt, b.UpdatedAt) },
	"provision_state": func(a, b *store.Node) int { return strings.Compare(a.ProvisionState, b.ProvisionState) },
	"power_state":     func(a, b *store.Node) int { return strings.Compare(deref(a.PowerState), deref(b.PowerState)) },
	"driver":          func(a, b *store.Node) int { return strings.Compare(a.Driver, b.Driver) },
	"instance_uuid":   func(a, b *store.Node) int { return strings.Compare(deref(a.InstanceUUID), deref(b.InstanceUUID)) },
	"maintenance":     func(a, b *store.Node) int { return cmpBool(a.Maintenance, b.Maintenance) },
	"resource_class":  func(a, b *store.Node) int { return strings.Compare(deref(a.ResourceClass), deref(b.ResourceClass)) },
	"conductor_group": func(a, b *store.Node) int { return strings.Compare(a.ConductorGroup, b.ConductorGroup) },
	"owner":           func(a, b *store.Node) int { return strings.Compare(deref(a.Owner), deref(b.Owner)) },
	"lessee":          func(a, b *store.Node) int { return strings.Compare(deref(a.Lessee), deref(b.Lessee)) },
	"chassis_uuid":    func(a, b *store.Node) int { return strings.Compare(deref(a.ChassisUUID), deref(b.ChassisUUID)) },
	"provision_updated_at": func(a, b *store.Node) int {
		return cmpTime(a.ProvisionUpdatedAt, b.ProvisionUpdatedAt)
	},
}

var unsortableNode = map[string]bool{"properties": true, "driver_info": true, "extra": true, "instance_info": true,
	"driver_internal_info": true, "clean_step": true, "deploy_step": true, "raid_config": true,
	"target_raid_config": true, "traits": true, "network_data": true, "service_step": true}

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
			d, ok := ironichttp.ParseBool(q.Get("detail"))
			if !ok {
				return badRequest("Invalid value for detail: %s", q.Get("detail"))
			}
			detail = d
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
		page, perr := parsePaging(c, nodeSortKeys, unsortableNode, func(f string) bool {
			m, ok := nodeFieldMin(f)
			return ok && m <= v
		})
		if perr != nil {
			return perr
		}
		nodes := s.st.Nodes(filter)
		items, next, perr := paginate(c, nodes, page, nodeSortKeys, func(n *store.Node) string { return n.UUID }, func(ident string) (*store.Node, error) {
			return s.st.Node(ident)
		})
		if perr != nil {
			return perr
		}
		if q.Has("instance_uuid") {
			next = ""
		}
		return writeCachedCollection(c, "nodes", nodeFieldsSorted, items, v, want, next, &s.nodeJSON,
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
