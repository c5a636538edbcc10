package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// next reads n changes from cur within a bound.
func next(t *testing.T, cur *Cursor, n int) []*Change {
	t.Helper()
	var out []*Change
	done := closedAfter(10 * time.Second)
	for len(out) < n {
		cs, _, err := cur.Next(done, nil, n-len(out))
		if err != nil {
			t.Fatalf("Next after %d changes: %v", len(out), err)
		}
		if cs == nil {
			t.Fatalf("got %d changes, want %d", len(out), n)
		}
		out = append(out, cs...)
	}
	return out
}

func TestFeed(t *testing.T) { forEachBackend(t, testFeed) }

func testFeed(t *testing.T, open opener) {
	ctx := context.Background()
	s, reopen := open(t)
	feed := s.(Feed)
	cur, err := feed.Watch(nil)
	if err != nil {
		t.Fatal(err)
	}
	const nu = "11111111-1111-1111-1111-111111111111"
	const pu = "22222222-2222-2222-2222-222222222222"
	steps := []func(Tx) error{
		func(tx Tx) error {
			return tx.PutNode(&Node{UUID: nu, Name: strp("n1"), Driver: "fake-hardware", ProvisionState: "enroll"})
		},
		func(tx Tx) error {
			n, err := tx.Node(nu)
			if err != nil {
				return err
			}
			n.ProvisionState = "manageable"
			if err := tx.PutNode(n); err != nil {
				return err
			}
			return tx.PutPort(&Port{UUID: pu, Address: "52:54:00:00:00:01", NodeUUID: nu})
		},
		func(tx Tx) error { return tx.DeletePort(pu) },
		func(tx Tx) error { return tx.DeleteNode(nu) },
		// Records outside the feed's tables make no change.
		func(tx Tx) error { return tx.PutRecord("leases", &Record{Key: "x", Data: []byte(`{}`)}) },
	}
	for i, fn := range steps {
		if err := s.Update(ctx, fn); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	got := next(t, cur, 5)
	type row struct{ table, op string }
	var rows []row
	for i, c := range got {
		rows = append(rows, row{c.Table, c.Op})
		if i > 0 && !got[i-1].Pos.Less(c.Pos) {
			t.Errorf("positions not increasing: %s then %s", got[i-1].Pos, c.Pos)
		}
		if c.Revision == 0 {
			t.Errorf("change %d has no record revision", i)
		}
	}
	want := []row{{tNodes, OpCreate}, {tNodes, OpUpdate}, {tPorts, OpCreate}, {tPorts, OpDelete}, {tNodes, OpDelete}}
	// The node update and the port create share a transaction; on etcd
	// their order in the commit is the key order, not the call order.
	if !slices.Equal(rows, want) && !slices.Equal(rows, []row{want[0], want[2], want[1], want[3], want[4]}) {
		t.Fatalf("changes = %v, want %v", rows, want)
	}
	var upd *Change
	for _, c := range got {
		if c.Op == OpUpdate {
			upd = c
		}
	}
	if f := upd.Fields(); !slices.Contains(f, "provision_state") || slices.Contains(f, "driver") {
		t.Errorf("update fields = %v, want provision_state and not driver", f)
	}
	if string(upd.Old["provision_state"]) != `"enroll"` {
		t.Errorf("old provision_state = %s, want \"enroll\"", upd.Old["provision_state"])
	}
	if before := revisionOf(upd.Before()); before >= upd.Revision || before == 0 {
		t.Errorf("revision before the update %d, after %d", before, upd.Revision)
	}
	// Nothing more: the record write made no change.
	if cs, _, err := cur.Next(closedAfter(300*time.Millisecond), nil, 10); err != nil || len(cs) != 0 {
		t.Fatalf("Next after the last change = %d changes, %v; want none", len(cs), err)
	}

	// A restarted conductor resumes after the first change: the four
	// others, at the same positions, none repeated.
	s.Close()
	s2, err := reopen()
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	from := got[0].Pos
	cur2, err := s2.(Feed).Watch(&from)
	if err != nil {
		t.Fatalf("Watch(%s) after restart: %v", from, err)
	}
	again := next(t, cur2, 4)
	for i, c := range again {
		if c.Pos != got[i+1].Pos || c.Op != got[i+1].Op || c.Key != got[i+1].Key {
			t.Errorf("after restart change %d = %s %s %s, want %s %s %s", i, c.Pos, c.Op, c.Key, got[i+1].Pos, got[i+1].Op, got[i+1].Key)
		}
	}
	if cs, _, err := cur2.Next(closedAfter(300*time.Millisecond), nil, 10); err != nil || len(cs) != 0 {
		t.Fatalf("Next after replay = %d changes, %v; want none", len(cs), err)
	}
	// A position past the head is refused (another store's).
	future := Position{Rev: got[4].Pos.Rev + 1000}
	if _, err := s2.(Feed).Watch(&future); !errors.Is(err, ErrTooOld) {
		t.Errorf("Watch(%s) = %v, want ErrTooOld", future, err)
	}
}

func closedAfter(d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	time.AfterFunc(d, func() { close(ch) })
	return ch
}

// TestFeedBounds: the feed keeps FeedLogSize changes; a position before
// them, or a cursor that falls behind them, gets ErrTooOld.
func TestFeedBounds(t *testing.T) {
	h := newHub(Position{})
	cur, _ := h.Watch(nil)
	var cs []*Change
	for i := 1; i <= FeedLogSize+5; i++ {
		cs = append(cs, &Change{Pos: Position{Rev: int64(i)}, Table: tNodes, Op: OpUpdate})
	}
	h.publish(cs)
	if _, _, err := cur.Next(nil, nil, 10); !errors.Is(err, ErrTooOld) {
		t.Errorf("lagging cursor Next = %v, want ErrTooOld", err)
	}
	if _, err := h.Watch(&Position{Rev: 3}); !errors.Is(err, ErrTooOld) {
		t.Errorf("Watch(3) = %v, want ErrTooOld", err)
	}
	c2, err := h.Watch(&Position{Rev: 5})
	if err != nil {
		t.Fatalf("Watch(5) = %v", err)
	}
	got, rest, err := c2.Next(nil, nil, 10)
	if err != nil || len(got) != 10 || got[0].Pos.Rev != 6 || rest != FeedLogSize-10 {
		t.Fatalf("Next = %d changes from %v, %d waiting, %v; want 10 from 6, %d", len(got), got[0].Pos, rest, err, FeedLogSize-10)
	}
	h.reset(Position{Rev: 100000})
	if _, _, err := c2.Next(nil, nil, 10); !errors.Is(err, ErrTooOld) {
		t.Errorf("Next after reset = %v, want ErrTooOld", err)
	}
}

func TestParsePosition(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Position
		ok   bool
	}{
		{"12", Position{12, 0}, true},
		{"12.3", Position{12, 3}, true},
		{" 7 ", Position{7, 0}, true},
		{"", Position{}, false},
		{"x", Position{}, false},
		{"-1", Position{}, false},
		{"1.-2", Position{}, false},
	} {
		got, err := ParsePosition(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("ParsePosition(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if tc.ok {
			if back, _ := ParsePosition(got.String()); back != got {
				t.Errorf("ParsePosition(%q.String()) = %v", got, back)
			}
		}
	}
}
