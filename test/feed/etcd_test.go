package feed

import (
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/conductor/store/etcdtest"
	"github.com/ferric-metal/ferric/test/harness"
)

// TestStreamTwoConductorsEtcd: two conductors share one etcd; a change
// made through one reaches a watcher of the other, and positions are the
// cluster's, so a watcher resumes on either conductor with the id it got
// from the other.
func TestStreamTwoConductorsEtcd(t *testing.T) {
	srv := etcdtest.Start(t)
	start := func(name string) client {
		cfg := service.Config{Hostname: name, EtcdEndpoints: []string{srv.Endpoint}, EtcdPrefix: "/feed",
			HeartbeatInterval: time.Second, InspectorListen: "", Log: harness.Logger("conductor", name)}
		return client{t, harness.Start(t, cfg).URL}
	}
	a, b := start("feed-a"), start("feed-b")

	onB := mustOpen(t, b.base, "?types=node", "")
	n := a.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "shared"}, 201)
	ev := onB.nextOf(t, "node", 10*time.Second)
	if ev.Data["uuid"] != n["uuid"] || ev.Data["op"] != "create" {
		t.Fatalf("watcher on b: %v, want the create made on a", ev.Data)
	}
	firstID := ev.ID
	a.do("PATCH", "/v1/nodes/shared", []map[string]any{{"op": "add", "path": "/extra/k", "value": "v1"}}, 200)
	a.do("PATCH", "/v1/nodes/shared", []map[string]any{{"op": "add", "path": "/extra/k", "value": "v2"}}, 200)
	ev1 := onB.nextOf(t, "node", 10*time.Second)
	ev2 := onB.nextOf(t, "node", 10*time.Second)
	if ev1.Data["fields"].(map[string]any)["extra"].(map[string]any)["k"] != "v1" ||
		ev2.Data["fields"].(map[string]any)["extra"].(map[string]any)["k"] != "v2" {
		t.Fatalf("watcher on b: %v then %v", ev1.Data, ev2.Data)
	}

	// Resume on a with b's id: the same two updates, same ids.
	onA := mustOpen(t, a.base, "?types=node", firstID)
	for _, want := range []event{ev1, ev2} {
		got := onA.nextOf(t, "node", 10*time.Second)
		if got.ID != want.ID || got.Data["revision"] != want.Data["revision"] {
			t.Errorf("resumed on a: id %s revision %v, want id %s revision %v", got.ID, got.Data["revision"], want.ID, want.Data["revision"])
		}
	}
	// A conductor started after the changes (its feed starts at its load)
	// still resumes from an older id, out of etcd's history.
	c := start("feed-c")
	onC := mustOpen(t, c.base, "?types=node", firstID)
	for _, want := range []event{ev1, ev2} {
		got := onC.nextOf(t, "node", 10*time.Second)
		if got.ID != want.ID {
			t.Errorf("resumed on a new conductor: id %s, want %s", got.ID, want.ID)
		}
	}
	// Its conductor events carry the heartbeats of the others.
	all := mustOpen(t, c.base, "?types=conductor", "")
	if ev := all.nextOf(t, "conductor", 10*time.Second); ev.Data["hostname"] == nil {
		t.Errorf("conductor event %v", ev.Data)
	}
}
