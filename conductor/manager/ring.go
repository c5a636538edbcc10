package manager

import (
	"context"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/conductor/store"
)

// Several conductors share one store (etcd): each registers itself and
// heartbeats (register), and a node's periodic work (power sync, wait
// timeouts, taking over its locks and transient states when the
// conductor that held it died) belongs to one live conductor of the
// node's conductor_group, picked by a consistent hash ring as Ironic's
// hash ring does: when a conductor joins or leaves, only the nodes of
// its share move. Work a user asks for through the API runs on the
// conductor that received the request, under the node's reservation in
// the shared store.

// DefaultHeartbeatTimeout is how long a conductor counts as alive after
// its last heartbeat (Ironic's [conductor]heartbeat_timeout).
const DefaultHeartbeatTimeout = 60 * time.Second

// ringReplicas is the number of points each conductor has on the ring.
const ringReplicas = 64

// ring maps nodes to live conductors, by conductor group.
type ring struct {
	groups map[string][]ringPoint // conductor group -> sorted points
}

type ringPoint struct {
	hash uint64
	host string
}

func ringHash(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	// fnv's low bits spread poorly over similar keys: mix them.
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	return x
}

// alive reports whether a conductor's heartbeat is recent.
func (m *Manager) alive(c *store.Conductor, now time.Time) bool {
	return c.Hostname == m.host || now.Sub(c.HeartbeatAt) < m.cfg.HeartbeatTimeout
}

// ring returns the hash ring of the conductors alive now (rebuilt at most
// once a second: listings ask it for every node).
func (m *Manager) ring() *ring {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ringCache == nil || time.Since(m.ringAt) > time.Second {
		m.ringCache, m.ringAt = m.buildRing(), time.Now()
	}
	return m.ringCache
}

func (m *Manager) buildRing() *ring {
	r := &ring{groups: map[string][]ringPoint{}}
	now := time.Now()
	self := false
	add := func(host, group string) {
		g := strings.ToLower(group)
		for i := range ringReplicas {
			r.groups[g] = append(r.groups[g], ringPoint{ringHash(host + "#" + strconv.Itoa(i)), host})
		}
	}
	for _, c := range m.st.Conductors() {
		if c.Hostname == m.host {
			self = true
			add(m.host, m.cfg.ConductorGroup)
			continue
		}
		if m.alive(c, now) {
			add(c.Hostname, c.ConductorGroup)
		}
	}
	if !self { // not registered yet: this conductor is alive all the same
		add(m.host, m.cfg.ConductorGroup)
	}
	for g := range r.groups {
		slices.SortFunc(r.groups[g], func(a, b ringPoint) int {
			switch {
			case a.hash < b.hash:
				return -1
			case a.hash > b.hash:
				return 1
			}
			return strings.Compare(a.host, b.host)
		})
	}
	return r
}

// owner returns the conductor of node uuid in group ("" when no live
// conductor serves the group).
func (r *ring) owner(group, uuid string) string {
	pts := r.groups[strings.ToLower(group)]
	if len(pts) == 0 {
		return ""
	}
	h := ringHash(uuid)
	i, _ := slices.BinarySearchFunc(pts, h, func(p ringPoint, h uint64) int {
		switch {
		case p.hash < h:
			return -1
		case p.hash > h:
			return 1
		}
		return 0
	})
	if i == len(pts) {
		i = 0
	}
	return pts[i].host
}

// Owner returns the conductor that runs the node's periodic work (the
// node's "conductor" in the API), "" when no live conductor serves its
// conductor group.
func (m *Manager) Owner(n *store.Node) string { return m.ring().owner(n.ConductorGroup, n.UUID) }

// orphanCheck returns a function naming the holder of a node's
// reservation when that conductor is not alive any more ("" otherwise),
// as the conductors' heartbeats stand now. A lock held under this
// conductor's own name is not orphaned while it runs: its tasks hold it.
func (m *Manager) orphanCheck() func(*store.Node) string {
	now := time.Now()
	conductors := map[string]*store.Conductor{}
	for _, c := range m.st.Conductors() {
		conductors[c.Hostname] = c
	}
	return func(n *store.Node) string {
		holder := deref(n.Reservation)
		if holder == "" || holder == m.host {
			return ""
		}
		if c, ok := conductors[holder]; ok && m.alive(c, now) {
			return ""
		}
		return holder
	}
}

// takeOver recovers the nodes this conductor owns whose reservation is
// held by a dead conductor: the lock is released and a node caught in a
// transient state moves to its failed state, as after a restart.
func (m *Manager) takeOver(ctx context.Context) {
	orphaned, r := m.orphanCheck(), m.ring()
	for _, n := range m.st.Nodes(func(n *store.Node) bool {
		return orphaned(n) != "" && r.owner(n.ConductorGroup, n.UUID) == m.host
	}) {
		dead := deref(n.Reservation)
		err := m.recoverNode(ctx, n.UUID, func(n *store.Node) bool { return deref(n.Reservation) == dead },
			"Conductor %[1]s took over node %[2]s from conductor %[4]s, which stopped heartbeating while the node was in state %[3]q; the operation was aborted.")
		if err != nil {
			m.log.Error("manager: take over node", "node", n.UUID, "from", dead, "err", err)
			continue
		}
		m.log.Warn("manager: took over node from a dead conductor", "node", n.UUID, "from", dead)
	}
}

// SetAPIURL records where the other conductors reach this one's API (in
// its heartbeat); call it before Run.
func (m *Manager) SetAPIURL(u string) {
	m.mu.Lock()
	m.apiURL = u
	m.mu.Unlock()
}

// OwnerURL returns the API URL of the node's conductor when that is another
// live conductor, "" when the node is served here (this conductor owns it,
// no live conductor does, or the owner did not say where it listens).
func (m *Manager) OwnerURL(n *store.Node) string {
	o := m.Owner(n)
	if o == "" || o == m.host {
		return ""
	}
	c, err := m.st.Conductor(o)
	if err != nil {
		return ""
	}
	return c.APIURL
}

// Serves reports whether a live conductor of the conductor group offers
// the hardware type drv (Ironic answers NoValidHost when none does).
func (m *Manager) Serves(group, drv string) bool {
	group = strings.ToLower(group)
	if strings.ToLower(m.cfg.ConductorGroup) == group {
		return true // this conductor; the caller checked drv exists here
	}
	now := time.Now()
	for _, c := range m.st.Conductors() {
		if c.Hostname != m.host && strings.ToLower(c.ConductorGroup) == group && m.alive(c, now) && slices.Contains(c.Drivers, drv) {
			return true
		}
	}
	return false
}
