package api

import (
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/store"
)

// nodeFilter builds a filter from list query parameters.
func (s *Server) nodeFilter(c echo.Context, v Version) (func(*store.Node) bool, *Error) {
	q := c.QueryParams()
	var preds []func(*store.Node) bool
	gate := func(name string, min Version) (string, bool, *Error) {
		if !q.Has(name) {
			return "", false, nil
		}
		if v < min {
			return "", false, notAcceptable("The %s parameter is not supported by version %s.", name, v)
		}
		return q.Get(name), true, nil
	}
	boolParam := func(name, val string) (bool, *Error) {
		b, ok := ironichttp.ParseBool(val)
		if !ok {
			return false, badRequest("Invalid value for %s: %q is not a boolean", name, val)
		}
		return b, nil
	}
	strEq := func(name string, min Version, get func(*store.Node) string) *Error {
		val, ok, err := gate(name, min)
		if err != nil || !ok {
			return err
		}
		preds = append(preds, func(n *store.Node) bool { return get(n) == val })
		return nil
	}
	checks := []struct {
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
	// Child nodes (1.83) are listed only with include_children=True (which
	// then lists every node, whatever parent_node says, as Ironic does) or
	// when parent_node names their parent.
	includeChildren := false
	if val, ok, err := gate("include_children", 83); err != nil {
		return nil, err
	} else if ok {
		if includeChildren, err = boolParam("include_children", val); err != nil {
			return nil, err
		}
	}
	if _, ok, err := gate("parent_node", 83); err != nil {
		return nil, err
	} else if !ok && !includeChildren {
		preds = append(preds, func(n *store.Node) bool { return n.ParentNode == nil })
	}
	for _, ch := range checks {
		if ch.name == "parent_node" && includeChildren {
			continue
		}
		if ch.name == "conductor_group" && q.Has("conductor_group") {
			q.Set("conductor_group", strings.ToLower(q.Get("conductor_group")))
		}
		if err := strEq(ch.name, ch.min, ch.get); err != nil {
			return nil, err
		}
	}
	if val, ok, err := gate("provision_state", 9); err != nil {
		return nil, err
	} else if ok {
		if !knownState(val) {
			return nil, badRequest("Invalid value for provision_state: %s", val)
		}
		preds = append(preds, func(n *store.Node) bool { return n.ProvisionState == val })
	}
	for _, bp := range []struct {
		name string
		min  Version
		get  func(*store.Node) bool
	}{
		{"associated", 1, func(n *store.Node) bool { return n.InstanceUUID != nil }},
		{"maintenance", 1, func(n *store.Node) bool { return n.Maintenance }},
		{"retired", 61, func(n *store.Node) bool { return n.Retired }},
		{"sharded", 82, func(n *store.Node) bool { return n.Shard != nil }},
	} {
		val, ok, err := gate(bp.name, bp.min)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		want, berr := boolParam(bp.name, val)
		if berr != nil {
			return nil, berr
		}
		get := bp.get
		preds = append(preds, func(n *store.Node) bool { return get(n) == want })
	}
	if val, ok, err := gate("description_contains", 51); err != nil {
		return nil, err
	} else if ok {
		preds = append(preds, func(n *store.Node) bool { return strings.Contains(deref(n.Description), val) })
	}
	if val, ok, err := gate("project", 50); err != nil {
		return nil, err
	} else if ok {
		preds = append(preds, func(n *store.Node) bool { return deref(n.Owner) == val || deref(n.Lessee) == val })
	}
	if val, ok, err := gate("conductor", 49); err != nil {
		return nil, err
	} else if ok {
		preds = append(preds, func(n *store.Node) bool { return s.mgr.Owner(n) == val })
	}
	if len(preds) == 0 {
		return nil, nil
	}
	return func(n *store.Node) bool {
		for _, p := range preds {
			if !p(n) {
				return false
			}
		}
		return true
	}, nil
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
