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

var allocationFields = []field[*store.Allocation]{
	{"uuid", 1, func(_ echo.Context, a *store.Allocation) any { return a.UUID }},
	{"name", 1, func(_ echo.Context, a *store.Allocation) any { return strPtr(a.Name) }},
	{"node_uuid", 1, func(_ echo.Context, a *store.Allocation) any { return strPtr(a.NodeUUID) }},
	{"state", 1, func(_ echo.Context, a *store.Allocation) any { return a.State }},
	{"last_error", 1, func(_ echo.Context, a *store.Allocation) any { return strPtr(a.LastError) }},
	{"resource_class", 1, func(_ echo.Context, a *store.Allocation) any { return strPtr(a.ResourceClass) }},
	{"traits", 1, func(_ echo.Context, a *store.Allocation) any { return orEmpty(a.Traits) }},
	{"candidate_nodes", 1, func(_ echo.Context, a *store.Allocation) any { return orEmpty(a.CandidateNodes) }},
	{"extra", 1, func(_ echo.Context, a *store.Allocation) any { return objOrEmpty(a.Extra) }},
	{"owner", 60, func(_ echo.Context, a *store.Allocation) any { return strPtr(a.Owner) }},
	{"created_at", 1, func(_ echo.Context, a *store.Allocation) any { return ironicTime(a.CreatedAt) }},
	{"updated_at", 1, func(_ echo.Context, a *store.Allocation) any { return timePtr(a.UpdatedAt) }},
	{"links", 1, func(c echo.Context, a *store.Allocation) any { return links(c, "allocations", a.UUID) }},
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

var allocationSortKeys = map[string]func(a, b *store.Allocation) int{
	"id":         func(a, b *store.Allocation) int { return cmpInt(a.ID, b.ID) },
	"uuid":       func(a, b *store.Allocation) int { return strings.Compare(a.UUID, b.UUID) },
	"name":       func(a, b *store.Allocation) int { return strings.Compare(deref(a.Name), deref(b.Name)) },
	"state":      func(a, b *store.Allocation) int { return strings.Compare(a.State, b.State) },
	"created_at": func(a, b *store.Allocation) int { return a.CreatedAt.Compare(b.CreatedAt) },
}

func (s *Server) allocationRoutes(g *echo.Group) {
	ag := g.Group("", s.minVer(52, false))
	ag.GET("/allocations", s.listAllocations)
	ag.GET("/allocations/", s.listAllocations)
	ag.POST("/allocations", s.createAllocation)
	ag.POST("/allocations/", s.createAllocation)
	ag.GET("/allocations/:id", s.getAllocation)
	ag.PATCH("/allocations/:id", s.patchAllocation, allocationUpdateVersion)
	ag.DELETE("/allocations/:id", s.deleteAllocation)
}

func (s *Server) findAllocation(ident string) (*store.Allocation, error) {
	if e := ironichttp.ArgUUIDOrName("allocation_ident", ident); e != nil {
		return nil, e
	}
	a, err := s.st.Allocation(ident)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("Allocation %s could not be found.", ident)
	}
	return a, err
}

func (s *Server) listAllocations(c echo.Context) error {
	v := ver(c)
	q := c.QueryParams()
	var want map[string]bool
	if q.Has("fields") {
		w, ferr := fieldSet(allocationFields, v, q.Get("fields"))
		if ferr != nil {
			return ferr
		}
		want = w
	}
	nodeUUID := ""
	if val := q.Get("node"); val != "" {
		n, err := s.findNode(c, val)
		if err != nil {
			return err
		}
		nodeUUID = n.UUID
	}
	rc, state, owner := q.Get("resource_class"), q.Get("state"), q.Get("owner")
	owner, serr := s.scopeAllocations(c, owner) // a project's own only (access.go)
	if serr != nil {
		return serr
	}
	page, perr := parsePaging(c, allocationSortKeys, nil, nil)
	if perr != nil {
		return perr
	}
	all := s.st.Allocations(func(a *store.Allocation) bool {
		return (nodeUUID == "" || deref(a.NodeUUID) == nodeUUID) && (rc == "" || deref(a.ResourceClass) == rc) &&
			(state == "" || a.State == state) && (owner == "" || deref(a.Owner) == owner)
	})
	items, next, perr := paginate(c, all, page, allocationSortKeys, func(a *store.Allocation) string { return a.UUID },
		func(id string) (*store.Allocation, error) { return s.st.Allocation(id) })
	if perr != nil {
		return perr
	}
	out := make([]map[string]any, len(items))
	for i, a := range items {
		out[i] = render(c, allocationFields, a, v, want)
	}
	return c.JSON(http.StatusOK, collection("allocations", out, next))
}

func (s *Server) getAllocation(c echo.Context) error {
	a, err := s.findAllocation(c.Param("id"))
	if err != nil {
		return err
	}
	want, ferr := fieldSet(allocationFields, ver(c), c.QueryParam("fields"))
	if ferr != nil {
		return ferr
	}
	return c.JSON(http.StatusOK, render(c, allocationFields, a, ver(c), want))
}

func stringList(v any, what string) ([]string, *Error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, badRequest("Schema error for allocation: %s is not of type 'array'", python.Repr(v))
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return nil, badRequest("Schema error for allocation: %s is not of type 'string'", python.Repr(x))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

func (s *Server) createAllocation(c echo.Context) error {
	v := ver(c)
	body, _, err := readJSONObject(c, "allocation")
	if err != nil {
		return err
	}
	a, err := s.newAllocation(c, body, v)
	if err != nil {
		return err
	}
	err = s.st.Update(c.Request().Context(), func(tx store.Tx) error { return tx.PutAllocation(a) })
	if err != nil {
		var de *store.DuplicateError
		if errors.As(err, &de) {
			return conflict("An allocation with name %s already exists.", de.Value)
		}
		return err
	}
	c.Response().Header().Set("Location", baseURL(c)+"/v1/allocations/"+a.UUID)
	out := render(c, allocationFields, a, v, nil)
	s.mgr.StartAllocation(a.UUID)
	return c.JSON(http.StatusCreated, out)
}

// newAllocation is the allocation a create body describes: a resource
// class to match, or a node to backfill (1.58).
func (s *Server) newAllocation(c echo.Context, body map[string]any, v Version) (*store.Allocation, error) {
	a := &store.Allocation{UUID: uuid.NewString(), State: "allocating", Extra: store.Object{}, Traits: []string{}, CandidateNodes: []string{}}
	if e := allocationSchema.Validate("allocation", body); e != nil {
		return nil, e
	}
	if e := ironichttp.ArgUUID("uuid", body["uuid"]); e != nil {
		return nil, e
	}
	if name, ok := body["name"].(string); ok && name != "" && !ironichttp.IsLogicalName(name) {
		return nil, badRequest("Cannot create allocation with invalid name '%s'", python.Cut(name))
	}
	var backfill string
	for k, val := range body {
		if k == "node" {
			if v < 58 {
				return nil, notAcceptable("Field node is not supported by version %s.", v)
			}
			backfill, _ = val.(string)
			continue
		}
		if err := s.setAllocationField(a, k, val, v); err != nil {
			return nil, err
		}
	}
	if a.ResourceClass == nil && backfill == "" {
		return nil, badRequest("The resource_class field is mandatory when not backfilling")
	}
	if backfill == "" {
		return a, nil
	}
	if !ironichttp.IsLogicalName(backfill) && !store.IsUUID(backfill) {
		return nil, badRequest("Expected a logical name or UUID but received %s.", python.Cut(backfill))
	}
	n, err := s.findNode(c, backfill)
	if err != nil {
		return nil, badRequest("Node %s could not be found.", backfill)
	}
	if len(a.CandidateNodes) > 0 && !slices.Contains(a.CandidateNodes, n.UUID) {
		return nil, badRequest("Cannot create allocation with candidate nodes %v when backfilling node %s", a.CandidateNodes, n.UUID)
	}
	nodeUUID := n.UUID
	a.NodeUUID = &nodeUUID
	return a, nil
}

// setAllocationField checks and sets one field of a create body.
func (s *Server) setAllocationField(a *store.Allocation, k string, val any, v Version) error {
	switch k {
	case "uuid":
		if u, ok := val.(string); ok {
			a.UUID = store.CanonicalUUID(u)
		}
	case "name":
		a.Name = optString(val)
	case "resource_class":
		a.ResourceClass = optString(val)
	case "traits":
		t, err := allocationTraits(val)
		if err != nil {
			return err
		}
		a.Traits = t
	case "candidate_nodes":
		cn, err := s.candidateNodes(val)
		if err != nil {
			return err
		}
		a.CandidateNodes = cn
	case "extra":
		m, ok := val.(map[string]any)
		if !ok {
			return badRequest("Schema error for allocation: %s is not of type 'object'", python.Repr(val))
		}
		a.Extra = m
	case "owner":
		if v < 60 {
			return notAcceptable("Field owner is not supported by version %s.", v)
		}
		a.Owner = optString(val)
	default:
		return badRequest("Schema error for allocation: Additional properties are not allowed ('%s' was unexpected)", k)
	}
	return nil
}

// allocationTraits are the valid traits of a list.
func allocationTraits(val any) ([]string, error) {
	t, e := stringList(val, "traits")
	if e != nil {
		return nil, e
	}
	for _, tr := range t {
		if e := validTrait(tr); e != nil {
			return nil, e
		}
	}
	return orEmpty(t), nil
}

// candidateNodes are the UUIDs of the nodes a list names (by name or
// UUID), which must exist.
func (s *Server) candidateNodes(val any) ([]string, error) {
	cn, e := stringList(val, "candidate_nodes")
	if e != nil {
		return nil, e
	}
	var missing []string
	for i, ident := range cn {
		n, err := s.st.Node(ident)
		if err != nil {
			missing = append(missing, python.Cut(ident))
			continue
		}
		cn[i] = n.UUID
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, badRequest("Nodes cannot be found: %s", strings.Join(missing, ", "))
	}
	return orEmpty(cn), nil
}

func (s *Server) patchAllocation(c echo.Context) error {
	a0, err := s.findAllocation(c.Param("id"))
	if err != nil {
		return err
	}
	patchable := []string{"name", "extra"} // Ironic's order
	if ver(c) >= 60 {
		patchable = append(patchable, "owner")
	}
	ops, err := readPatch(c, patchable)
	if err != nil {
		return err
	}
	var out *store.Allocation
	err = s.st.Update(c.Request().Context(), func(tx store.Tx) error {
		a, err := tx.Allocation(a0.UUID)
		if err != nil {
			return err
		}
		doc := map[string]any{"name": strPtr(a.Name), "extra": cloneAny(objOrEmpty(a.Extra)), "owner": strPtr(a.Owner)}
		if e := applyPatch(doc, ops); e != nil {
			return e
		}
		a.Name = optString(doc["name"])
		if a.Name != nil && *a.Name != "" && !ironichttp.IsLogicalName(*a.Name) {
			return badRequest("Cannot update allocation with invalid name '%s'", python.Cut(*a.Name))
		}
		a.Extra, _ = doc["extra"].(map[string]any)
		a.Owner = optString(doc["owner"])
		out = a
		return tx.PutAllocation(a)
	})
	if err != nil {
		var de *store.DuplicateError
		if errors.As(err, &de) {
			return conflict("An allocation with name %s already exists.", de.Value)
		}
		return err
	}
	return c.JSON(http.StatusOK, render(c, allocationFields, out, ver(c), nil))
}

// removeAllocation deletes an allocation and frees its node.
func (s *Server) removeAllocation(c echo.Context, a *store.Allocation) error {
	err := s.st.Update(c.Request().Context(), func(tx store.Tx) error {
		if a.NodeUUID != nil {
			n, err := tx.Node(*a.NodeUUID)
			if err == nil && deref(n.AllocationUUID) == a.UUID {
				if n.ProvisionState == "active" || (n.TargetProvisionState != nil && !updateAllowed[n.ProvisionState]) {
					return conflict("Cannot remove allocation %s of node %s in provision state %s.", a.UUID, n.UUID, n.ProvisionState)
				}
				n.AllocationUUID = nil
				n.InstanceUUID = nil
				if err := tx.PutNode(n); err != nil {
					return err
				}
			}
		}
		return tx.DeleteAllocation(a.UUID)
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) deleteAllocation(c echo.Context) error {
	a, err := s.findAllocation(c.Param("id"))
	if err != nil {
		return err
	}
	return s.removeAllocation(c, a)
}

func (s *Server) nodeAllocation(c echo.Context, n *store.Node) error {
	if n.AllocationUUID == nil {
		return notFound("Allocation for node %s could not be found.", n.UUID)
	}
	a, err := s.findAllocation(*n.AllocationUUID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, render(c, allocationFields, a, ver(c), nil))
}

func (s *Server) deleteNodeAllocation(c echo.Context, n *store.Node) error {
	if n.AllocationUUID == nil {
		return notFound("Allocation for node %s could not be found.", n.UUID)
	}
	a, err := s.findAllocation(*n.AllocationUUID)
	if err != nil {
		return err
	}
	return s.removeAllocation(c, a)
}

// allocationUpdateVersion refuses PATCH below 1.57 as Ironic does: 405
// Method Not Allowed (the allocation itself exists from 1.52).
func allocationUpdateVersion(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if ver(c) < 57 {
			return &Error{Code: http.StatusMethodNotAllowed, Plain: true,
				Msg: "The API version does not allow updating allocations"}
		}
		return next(c)
	}
}
