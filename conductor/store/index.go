package store

import (
	"slices"
	"sort"
	"strings"
)

// Listings of 100,000 nodes are walked a page at a time (marker and
// limit), most often in id order and often filtered by one field
// (provision_state, resource_class, ...). The cache keeps, besides its id
// order, one id-ordered list per value of each indexed field, so that a
// page is found by a binary search and costs what it returns, not the
// size of the table.

// NodeIndexes are the node fields NodesAfter can select on, with the value
// each node is listed under (nil pointers as "", conductor_group lower
// case, as the API compares them).
var NodeIndexes = map[string]func(*Node) string{
	"provision_state": func(n *Node) string { return n.ProvisionState },
	"resource_class":  func(n *Node) string { return deref(n.ResourceClass) },
	"conductor_group": func(n *Node) string { return strings.ToLower(n.ConductorGroup) },
	"owner":           func(n *Node) string { return deref(n.Owner) },
	"lessee":          func(n *Node) string { return deref(n.Lessee) },
	"driver":          func(n *Node) string { return n.Driver },
	"chassis_uuid":    func(n *Node) string { return deref(n.ChassisUUID) },
	"shard":           func(n *Node) string { return deref(n.Shard) },
	"fault":           func(n *Node) string { return deref(n.Fault) },
	"parent_node":     func(n *Node) string { return deref(n.ParentNode) },
}

// secIndex lists a table's records by the value of one field, each list
// in id order.
type secIndex[P entity] struct {
	of func(P) string
	by map[string][]P
}

// idSearch is the position of the first record of s (in id order) whose
// id is at least id.
func idSearch[P entity](s []P, id int64) int {
	return sort.Search(len(s), func(i int) bool { return idOf(s[i]) >= id })
}

// put inserts v into the id-ordered s, or replaces the record of the same
// key and id in place.
func putOrdered[P entity](s []P, v P) []P {
	i := idSearch(s, idOf(v))
	if i < len(s) && idOf(s[i]) == idOf(v) && s[i].key() == v.key() {
		s[i] = v
		return s
	}
	return slices.Insert(s, i, v)
}

// delOrdered removes old (by id and key) from the id-ordered s.
func delOrdered[P entity](s []P, old P) []P {
	i := idSearch(s, idOf(old))
	if i < len(s) && s[i].key() == old.key() {
		s = slices.Delete(s, i, i+1)
	}
	return s
}

// update moves a record from old's list to v's (either may be absent,
// the zero P). Called with the cache's lock held.
func (x *secIndex[P]) update(old P, hadOld bool, v P, hasNew bool) {
	var ov, nv string
	if hadOld {
		ov = x.of(old)
	}
	if hasNew {
		nv = x.of(v)
	}
	if hadOld && (!hasNew || ov != nv || idOf(old) != idOf(v)) {
		if l := delOrdered(x.by[ov], old); len(l) == 0 {
			delete(x.by, ov)
		} else {
			x.by[ov] = l
		}
	}
	if hasNew {
		x.by[nv] = putOrdered(x.by[nv], v)
	}
}

// index adds a secondary index on a field (before any record is applied).
func (c *cache[P]) index(field string, of func(P) string) {
	if c.sec == nil {
		c.sec = map[string]*secIndex[P]{}
	}
	c.sec[field] = &secIndex[P]{of: of, by: map[string][]P{}}
}

// after returns up to max records whose id is above afterID, in id order:
// all of them when field is "", else those whose indexed field is val.
// ok is false when field is not indexed.
func (c *cache[P]) after(field, val string, afterID int64, max int) (out []P, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	list := c.order
	if field != "" {
		x := c.sec[field]
		if x == nil {
			return nil, false
		}
		list = x.by[val]
	}
	i := idSearch(list, afterID+1)
	return slices.Clone(list[i:min(len(list), i+max)]), true
}

// NodesAfter returns up to max committed nodes whose id is above afterID
// (0: from the first), in id order: every node when field is "", else the
// nodes whose field (one of NodeIndexes) has the value val. ok is false
// when field is not indexed. A listing calls it again after the last id it
// got until it has a page. The nodes are shared and read-only.
func (s *kvStore) NodesAfter(field, val string, afterID int64, max int) (nodes []*Node, ok bool) {
	return s.nodes.after(field, val, afterID, max)
}
