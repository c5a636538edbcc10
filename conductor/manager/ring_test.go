package manager

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/store"
)

func putConductor(t *testing.T, st store.Store, host, group string, beat time.Time) {
	t.Helper()
	err := st.Update(context.Background(), func(tx store.Tx) error {
		c, err := tx.Conductor(host)
		if err != nil {
			c = &store.Conductor{Hostname: host}
		}
		c.ConductorGroup, c.HeartbeatAt = group, beat
		return tx.PutConductor(c)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The ring spreads nodes over the live conductors of their group, moves
// only a dead conductor's share when it goes, and leaves a group without
// live conductors unserved.
func TestRingOwnership(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	putConductor(t, st, "c1", "", now)
	putConductor(t, st, "c2", "", now)
	putConductor(t, st, "c3", "", now)
	putConductor(t, st, "r1", "Rack1", now)
	putConductor(t, st, "old", "", now.Add(-2*DefaultHeartbeatTimeout))
	m := New(Config{Store: st, Hostname: "c1"})

	const nodes = 3000
	owners := map[string]string{}
	share := map[string]int{}
	r := m.buildRing()
	for i := range nodes {
		u := fmt.Sprintf("00000000-0000-0000-0000-%012d", i)
		o := r.owner("", u)
		owners[u] = o
		share[o]++
		if g := r.owner("rack1", u); g != "r1" {
			t.Fatalf("node of group rack1 owned by %q, want r1 (groups are case-insensitive)", g)
		}
		if g := r.owner("rack2", u); g != "" {
			t.Fatalf("node of group rack2 owned by %q, want none", g)
		}
	}
	if share["old"] != 0 || share["r1"] != 0 {
		t.Fatalf("shares %v: a dead conductor or another group's got nodes", share)
	}
	for _, c := range []string{"c1", "c2", "c3"} {
		if share[c] < nodes/5 || share[c] > nodes/2 {
			t.Fatalf("shares %v: %s has %d of %d nodes", share, c, share[c], nodes)
		}
	}

	// c3 dies: only its nodes move.
	putConductor(t, st, "c3", "", now.Add(-2*DefaultHeartbeatTimeout))
	r = m.buildRing()
	for u, was := range owners {
		got := r.owner("", u)
		if was != "c3" && got != was {
			t.Fatalf("node %s moved from live %s to %s", u, was, got)
		}
		if got == "c3" {
			t.Fatalf("node %s still owned by dead c3", u)
		}
	}
}

// A restarted conductor leaves the nodes a live conductor holds alone and
// takes over those of a dead one it owns.
func TestRecoverSparesLiveConductors(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	putConductor(t, st, "live", "", time.Now())
	putConductor(t, st, "dead", "", time.Now().Add(-time.Hour))
	m := New(Config{Store: st, Hostname: "me"})
	r := m.buildRing()
	// A node the ring gives to this conductor, for the dead holder.
	var mine string
	for i := 0; mine == ""; i++ {
		if u := fmt.Sprintf("10000000-0000-0000-0000-%012d", i); r.owner("", u) == "me" {
			mine = u
		}
	}
	held := map[string]string{"20000000-0000-0000-0000-000000000001": "live", mine: "dead"}
	for u, holder := range held {
		n := fakeNode(u)
		n.ProvisionState = "deploying"
		n.Reservation = &holder
		if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.Node("20000000-0000-0000-0000-000000000001"); n.ProvisionState != "deploying" || deref(n.Reservation) != "live" {
		t.Fatalf("node held by a live conductor: %s, lock %v; want untouched", n.ProvisionState, n.Reservation)
	}
	if n, _ := st.Node(mine); n.ProvisionState != "deploy failed" || n.Reservation != nil {
		t.Fatalf("node held by a dead conductor: %s, lock %v; want deploy failed and released", n.ProvisionState, n.Reservation)
	}
}
