package feed

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestStreamSnapshot: ?snapshot=true opens with every node the stream's
// filters let through, as rows sorted by name with the columns asked for
// (uuid always) and each node's revision; an event after it carries a
// higher revision; a resume gets no snapshot; bad arguments are 400s in
// Ironic's format.
func TestStreamSnapshot(t *testing.T) {
	_, c := startBolt(t, nil)
	uuids := map[string]string{}
	for _, n := range []struct{ name, owner string }{{"snap-c", "x"}, {"snap-a", "x"}, {"snap-b", "y"}} {
		uuids[n.name] = c.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": n.name, "owner": n.owner}, 201)["uuid"].(string)
	}

	s := mustOpen(t, c.base, "?types=node&snapshot=true&snapshot_fields=name,owner", "")
	snap := s.nextOf(t, "snapshot", 5*time.Second)
	if snap.Data["position"] != s.LastID() {
		t.Errorf("snapshot position %v, want the ready id %s", snap.Data["position"], s.LastID())
	}
	cols := toStrings(snap.Data["columns"])
	if !slices.Equal(cols, []string{"name", "owner", "uuid", "revision"}) {
		t.Fatalf("columns %v, want name, owner, uuid, revision", cols)
	}
	rows := snap.Data["nodes"].([]any)
	var names []string
	revs := map[string]float64{}
	for _, r := range rows {
		row := r.([]any)
		names = append(names, row[0].(string))
		if uuids[row[0].(string)] != row[2] {
			t.Errorf("row %v: uuid, want %s", row, uuids[row[0].(string)])
		}
		revs[row[0].(string)] = row[3].(float64)
	}
	if !slices.Equal(names, []string{"snap-a", "snap-b", "snap-c"}) {
		t.Errorf("snapshot rows %v, want every node sorted by name", names)
	}
	c.do("PATCH", "/v1/nodes/snap-a", []map[string]any{{"op": "add", "path": "/extra/k", "value": "v"}}, 200)
	ev := s.nextOf(t, "node", 5*time.Second)
	if ev.Data["name"] != "snap-a" || ev.Data["revision"].(float64) <= revs["snap-a"] {
		t.Errorf("event after the snapshot: %v, want snap-a above revision %v", ev.Data, revs["snap-a"])
	}

	// The node listing's filters apply; without snapshot_fields, every field.
	owned := mustOpen(t, c.base, "?types=node&snapshot=true&owner=x", "")
	snap = owned.nextOf(t, "snapshot", 5*time.Second)
	cols = toStrings(snap.Data["columns"])
	if !slices.Contains(cols, "driver_info") || !slices.Contains(cols, "provision_state") || slices.Contains(cols, "links") {
		t.Errorf("columns without snapshot_fields: %v, want every field but links", cols)
	}
	if n := len(snap.Data["nodes"].([]any)); n != 2 {
		t.Errorf("owner=x snapshot: %d nodes, want 2", n)
	}

	// A resume has its records: no snapshot, the change it missed.
	r := mustOpen(t, c.base, "?types=node&snapshot=true", s.LastID())
	c.do("PATCH", "/v1/nodes/snap-b", []map[string]any{{"op": "add", "path": "/extra/k", "value": "v"}}, 200)
	if ev := r.nextOf(t, "node", 5*time.Second); ev.Data["name"] != "snap-b" {
		t.Errorf("after a resume: %v, want snap-b's change (no snapshot)", ev.Data)
	}

	for q, want := range map[string]string{
		"?snapshot=maybe":                       "snapshot",
		"?snapshot=true&snapshot_fields=nosuch": "nosuch",
	} {
		_, code, body, _ := open(context.Background(), c.base, q, "")
		if code != http.StatusBadRequest || !strings.Contains(string(body), want) || !strings.Contains(string(body), "error_message") {
			t.Errorf("%s: %d %s, want 400 naming %q", q, code, body, want)
		}
	}
}
