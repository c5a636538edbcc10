package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
)

// A PATCH of a node that a task holds (its reservation, here or on another
// conductor) waits briefly for the lock, then answers Ironic's NodeLocked
// 409 and changes nothing; once the lock is released the same PATCH
// applies.
func TestPatchLockedNode(t *testing.T) {
	e := newTestEnv(t, nil)
	r := e.must(201, e.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "locked"}), "create")
	uuid, _ := r.j["uuid"].(string)
	setLock := func(holder *string) {
		t.Helper()
		if err := e.st.Update(context.Background(), func(tx store.Tx) error {
			n, err := tx.Node(uuid)
			if err != nil {
				return err
			}
			n.Reservation = holder
			return tx.PutNode(n)
		}); err != nil {
			t.Fatal(err)
		}
	}
	other := "other-conductor"
	setLock(&other)
	patch := []map[string]any{{"op": "add", "path": "/extra/k", "value": "v"}}
	start := time.Now()
	r = e.must(409, e.do("PATCH", "/v1/nodes/locked", patch), "patch while locked")
	if want := "Node " + uuid + " is locked by host other-conductor, please retry after the current operation is completed."; r.fault() != want {
		t.Fatalf("fault %q, want %q", r.fault(), want)
	}
	if waited := time.Since(start); waited < manager.LockRetries*manager.LockRetryWait {
		t.Fatalf("answered after %s, before retrying the lock", waited)
	}
	if n, _ := e.st.Node(uuid); len(n.Extra) != 0 {
		t.Fatalf("refused patch changed extra: %v", n.Extra)
	}
	// Released while the PATCH waits: it goes through.
	setLock(&other)
	go func() { time.Sleep(manager.LockRetryWait / 2); setLock(nil) }()
	r = e.must(200, e.do("PATCH", "/v1/nodes/locked", patch), "patch after release")
	if extra, _ := r.j["extra"].(map[string]any); extra["k"] != "v" || !strings.EqualFold(r.j["name"].(string), "locked") {
		t.Fatalf("patched node %v", r.j)
	}
}
