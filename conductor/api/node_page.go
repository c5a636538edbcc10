package api

import (
	"errors"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/store"
)

// nodePager is a store that finds a page of nodes in id order without
// going through all of them (store.kvStore): after an id, optionally
// among the nodes whose indexed field has a value.
type nodePager interface {
	NodesAfter(field, val string, afterID int64, max int) ([]*store.Node, bool)
}

// nodePageIndexes are the filters a listing walks an index for, most
// selective first; the first one in the query is used. The filter itself
// still tests every node the index gives.
var nodePageIndexes = []string{"provision_state", "owner", "lessee", "chassis_uuid", "shard",
	"resource_class", "conductor_group", "fault", "driver"}

// nodeMarker finds the marker node (Ironic looks it up as a node: 404).
func (s *Server) nodeMarker(ident string) (*store.Node, error) {
	n, err := s.st.Node(ident)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("Node %s could not be found.", ident)
	}
	return n, err
}

// nodePage returns the page of nodes a listing asks for (filter: nil or
// the test every listed node passes; any per-record predicate, such as a
// project's visibility, can be folded into it) and the next link. Pages
// in id order, the default, are read from the store's id order (or an
// index of one filter's field) after the marker, so a page costs what it
// lists whatever the fleet's size; other orders sort the filtered nodes.
func (s *Server) nodePage(c echo.Context, filter func(*store.Node) bool, p paging) ([]*store.Node, string, *Error) {
	pg, ok := s.st.(nodePager)
	if !ok || p.sortKey != "id" || p.desc {
		return paginate(c, s.st.Nodes(filter), p, nodeSortKeys, func(n *store.Node) string { return n.UUID }, s.nodeMarker)
	}
	field, val := "", ""
	q := c.QueryParams()
	for _, f := range nodePageIndexes {
		if q.Has(f) {
			field, val = f, q.Get(f)
			if f == "conductor_group" {
				val = strings.ToLower(val)
			}
			break
		}
	}
	var after int64
	if p.marker != "" {
		m, err := s.nodeMarker(p.marker)
		var ae *Error
		if errors.As(err, &ae) {
			return nil, "", ae
		}
		if err != nil {
			return nil, "", badRequest("Marker %s could not be found.", p.marker)
		}
		after = m.ID
	}
	chunk := max(p.limit, 256)
	items := make([]*store.Node, 0, p.limit)
	for len(items) < p.limit {
		nodes, ok := pg.NodesAfter(field, val, after, chunk)
		if !ok { // not indexed after all: walk every node
			field, val = "", ""
			continue
		}
		for _, n := range nodes {
			if filter == nil || filter(n) {
				items = append(items, n)
				if len(items) == p.limit {
					break
				}
			}
		}
		if len(nodes) < chunk {
			break
		}
		after = nodes[len(nodes)-1].ID
	}
	next := ""
	if len(items) == p.limit && len(items) > 0 {
		next = nextLink(c, p, items[len(items)-1].UUID)
	}
	return items, next, nil
}
