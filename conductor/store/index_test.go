package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"
)

type nodesAfterer interface {
	NodesAfter(field, val string, afterID int64, max int) ([]*Node, bool)
}

// walkAfter lists the nodes NodesAfter gives, chunk by chunk.
func walkAfter(t *testing.T, s Store, field, val string, chunk int) []string {
	t.Helper()
	pg, ok := s.(nodesAfterer)
	if !ok {
		t.Fatalf("%T has no NodesAfter", s)
	}
	var out []string
	var after int64
	for {
		ns, ok := pg.NodesAfter(field, val, after, chunk)
		if !ok {
			t.Fatalf("%s not indexed", field)
		}
		for _, n := range ns {
			if n.ID <= after {
				t.Fatalf("%s=%q: id %d after %d", field, val, n.ID, after)
			}
			after = n.ID
			out = append(out, n.UUID)
		}
		if len(ns) < chunk {
			return out
		}
	}
}

// TestNodesAfterIndexes: the id order and every index give, chunk by
// chunk, exactly the nodes a scan of all of them finds, in id order,
// after creates, updates that move nodes between values, deletes, and a
// reload of the store.
func TestNodesAfterIndexes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener) {
		s, reopen := open(t)
		ctx := context.Background()
		states := []string{"enroll", "manageable", "available", "active"}
		groups := []string{"", "Rack1", "rack2"}
		var ids []string
		for i := range 120 {
			rc := fmt.Sprintf("rc%d", i%3)
			owner := fmt.Sprintf("p%d", i%5)
			n := &Node{UUID: uuid.NewString(), Driver: "fake-hardware", ProvisionState: states[i%4],
				ResourceClass: &rc, ConductorGroup: groups[i%3]}
			if i%2 == 0 {
				n.Owner = &owner
			}
			if err := s.Update(ctx, func(tx Tx) error { return tx.PutNode(n) }); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, n.UUID)
		}
		for i, id := range ids {
			err := s.Update(ctx, func(tx Tx) error {
				switch i % 7 {
				case 0:
					return tx.DeleteNode(id)
				case 1, 2:
					n, err := tx.Node(id)
					if err != nil {
						return err
					}
					n.ProvisionState = states[(i+1)%4]
					n.ConductorGroup = "RACK2"
					n.Owner = nil
					return tx.PutNode(n)
				case 3:
					n, err := tx.Node(id)
					if err != nil {
						return err
					}
					n.Extra = Object{"touched": true} // indexed fields unchanged
					return tx.PutNode(n)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		check := func(t *testing.T, s Store) {
			all := s.Nodes(nil)
			want := func(f func(*Node) bool) []string {
				var out []string
				for _, n := range all {
					if f == nil || f(n) {
						out = append(out, n.UUID)
					}
				}
				return out
			}
			for _, chunk := range []int{1, 7, 1000} {
				if got, w := walkAfter(t, s, "", "", chunk), want(nil); !slices.Equal(got, w) {
					t.Fatalf("all, chunk %d: %d nodes, want %d", chunk, len(got), len(w))
				}
				for field, of := range NodeIndexes {
					vals := map[string]bool{"": true, "none": true}
					for _, n := range all {
						vals[of(n)] = true
					}
					for val := range vals {
						got := walkAfter(t, s, field, val, chunk)
						w := want(func(n *Node) bool { return of(n) == val })
						if !slices.Equal(got, w) {
							t.Fatalf("%s=%q chunk %d: %v, want %v", field, val, chunk, got, w)
						}
					}
				}
			}
			if _, ok := s.(nodesAfterer).NodesAfter("name", "x", 0, 10); ok {
				t.Fatal("name is not an index")
			}
		}
		check(t, s)
		s.Close()
		s2, err := reopen()
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		check(t, s2)
	})
}

// TestQuickRevision reads the revision as a full decode does.
func TestQuickRevision(t *testing.T) {
	for _, raw := range []string{`{"id":12,"revision":345,"uuid":"x"}`, `{"id":1,"revision":7}`, `{"revision":9,"id":1}`,
		`{"id":1,"revision":-3}`, `{"id":1,"revision":1e3}`, `{"id":1, "revision":5}`, `{"id":1,"revision":99999999999999999999}`, `{}`} {
		if got, want := quickRevision([]byte(raw)), revisionOf([]byte(raw)); got != want {
			t.Errorf("%s: %d, want %d", raw, got, want)
		}
	}
	b, _ := json.Marshal(&Node{ID: 3, Revision: 41, UUID: "u"})
	if got := quickRevision(b); got != 41 {
		t.Errorf("%s: %d", b, got)
	}
}
