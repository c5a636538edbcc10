package multiconductor

import (
	"sort"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/store/etcdtest"
)

// TestReadAfterWriteAcrossConductors: a write acknowledged by one
// conductor is seen by a read through another right after, every time,
// and through a conductor restarted a moment ago (each conductor's cache
// follows etcd through a watch, which lags; the API waits for it to
// reach the last commit before it answers).
func TestReadAfterWriteAcrossConductors(t *testing.T) {
	srv := etcdtest.Start(t)
	a := startConductor(t, "rw-a", "", srv.Endpoint)
	b := startConductor(t, "rw-b", "", srv.Endpoint)
	if code, body := a.call(t, "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "rw"}); code != 201 {
		t.Fatalf("create: %d %v", code, body)
	}
	var lat []time.Duration
	round := func(i int, w, r *conductor) {
		t.Helper()
		code, body := w.call(t, "PATCH", "/v1/nodes/rw", []map[string]any{{"op": "add", "path": "/extra/i", "value": i}})
		if code != 200 {
			t.Fatalf("round %d: PATCH: %d %v", i, code, body)
		}
		start := time.Now()
		code, body = r.call(t, "GET", "/v1/nodes/rw", nil)
		lat = append(lat, time.Since(start))
		extra, _ := body["extra"].(map[string]any)
		if code != 200 || extra["i"] != float64(i) {
			t.Fatalf("round %d: GET through the other conductor right after the PATCH: %d, extra %v", i, code, extra)
		}
		// A listing sees it too.
		code, list := r.call(t, "GET", "/v1/nodes?fields=uuid,extra&name=rw", nil)
		nodes, _ := list["nodes"].([]any)
		if code != 200 || len(nodes) != 1 || nodes[0].(map[string]any)["extra"].(map[string]any)["i"] != float64(i) {
			t.Fatalf("round %d: listing through the other conductor: %d %v", i, code, list)
		}
	}
	for i := 1; i <= 100; i++ {
		if i%2 == 0 {
			round(i, a, b)
		} else {
			round(i, b, a)
		}
	}
	// b dies; writes go on through a; a new b answers them at once.
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	for i := 101; i <= 110; i++ {
		round(i, a, a)
	}
	for k := range 3 {
		b = startConductor(t, "rw-b", "", srv.Endpoint)
		for i := 200 + 20*k; i < 220+20*k; i++ {
			round(i, a, b)
		}
		if err := b.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("%d reads after a write through the other conductor, all current; GET p50 %v, p99 %v",
		len(lat), lat[len(lat)/2], lat[len(lat)*99/100])

	// What a read costs with nothing to wait for: the etcd read of the
	// last commit's revision (the conductors' heartbeats still write).
	for _, path := range []string{"/v1/nodes/rw", "/v1/nodes?detail=True"} {
		var q []time.Duration
		for range 300 {
			start := time.Now()
			if code, body := a.call(t, "GET", path, nil); code != 200 {
				t.Fatalf("GET %s: %d %v", path, code, body)
			}
			q = append(q, time.Since(start))
		}
		sort.Slice(q, func(i, j int) bool { return q[i] < q[j] })
		t.Logf("GET %s, 300 in a row: p50 %v, p90 %v", path, q[len(q)/2], q[len(q)*9/10])
	}
}
