package feed

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/conductor/store/etcdtest"
	"github.com/ferric-metal/ferric/test/harness"
)

// TestStreamResumeAfterEtcdCompaction: conductors on etcd compact its
// history older than --etcd-compact-retention. A client resumes on a
// conductor started after its last event (the feed reads etcd's
// history) as long as that event is within the retention; from an id
// compacted away it gets the 410 that tells it to list again, at once,
// not after the stream opened.
func TestStreamResumeAfterEtcdCompaction(t *testing.T) {
	srv := etcdtest.Start(t)
	const retention = 3 * time.Second
	start := func(name string) client {
		cfg := service.Config{Hostname: name, EtcdEndpoints: []string{srv.Endpoint}, EtcdPrefix: "/compact",
			HeartbeatInterval: 200 * time.Millisecond, InspectorListen: "", Log: harness.Logger("conductor", name),
			EtcdCompactRetention: retention, EtcdCompactInterval: 250 * time.Millisecond}
		return client{t, harness.Start(t, cfg).URL}
	}
	a := start("compact-a")
	a.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "kept"}, 201)
	old := mustOpen(t, a.base, "?types=node", "")
	oldID := old.LastID()
	old.Close()
	a.do("PATCH", "/v1/nodes/kept", []map[string]any{{"op": "add", "path": "/extra/k", "value": "old"}}, 200)

	// The conductors' heartbeats write all along: after the retention, the
	// old id is compacted away.
	time.Sleep(retention + time.Second)
	recent := mustOpen(t, a.base, "?types=node", "")
	recentID := recent.LastID()
	recent.Close()
	a.do("PATCH", "/v1/nodes/kept", []map[string]any{{"op": "add", "path": "/extra/k", "value": "recent"}}, 200)

	// A conductor started now holds no change before its start in memory.
	b := start("compact-b")
	s := mustOpen(t, b.base, "?types=node", recentID)
	ev := s.nextOf(t, "node", 10*time.Second)
	if f, _ := ev.Data["fields"].(map[string]any); f == nil || f["extra"].(map[string]any)["k"] != "recent" {
		t.Fatalf("resumed from %s on a new conductor: %v, want the update to extra.k=recent", recentID, ev.Data)
	}

	var code int
	var body []byte
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, c, raw, err := open(context.Background(), b.base, "?types=node", oldID)
		if err != nil {
			t.Fatal(err)
		}
		if st != nil {
			st.Close()
		}
		code, body = c, raw
		if code != 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code != 410 || !strings.Contains(string(body), "list the resources again") {
		t.Fatalf("resume from the compacted id %s: %d %s, want 410 telling to list again", oldID, code, body)
	}
	t.Logf("resume from %s (compacted): %d %s", oldID, code, body)
}
