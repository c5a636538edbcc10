// Package feed tests the change feed (GET /v1/events/stream) against real
// conductors: events and their filters, resume with Last-Event-ID across
// a restart, a slow reader cut off, many watchers, and two conductors on
// one etcd.
package feed

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/harness"
)

// client calls the API of a conductor.
type client struct {
	t    testing.TB
	base string
}

func (c client) call(method, path string, body any) (int, map[string]any) {
	c.t.Helper()
	code, _, raw := harness.API{Base: c.base, Header: map[string]string{"X-OpenStack-Ironic-API-Version": "1.110"}}.Call(c.t, method, path, body)
	return code, harness.Object(raw)
}

func (c client) do(method, path string, body any, want int) map[string]any {
	c.t.Helper()
	code, out := c.call(method, path, body)
	if code != want {
		c.t.Fatalf("%s %s = %d %v, want %d", method, path, code, out, want)
	}
	return out
}

// waitState polls until the node is in state.
func (c client) waitState(node, state string) {
	c.t.Helper()
	for end := time.Now().Add(20 * time.Second); ; {
		_, n := c.call("GET", "/v1/nodes/"+node, nil)
		if n["provision_state"] == state {
			return
		}
		if time.Now().After(end) {
			c.t.Fatalf("node %s: provision_state %v, want %s", node, n["provision_state"], state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startBolt(t *testing.T, mut func(*service.Config)) (*harness.Conductor, client) {
	cfg := service.Config{Hostname: "feed-" + strings.ToLower(t.Name()), InspectorListen: "", Log: harness.Logger()}
	if mut != nil {
		mut(&cfg)
	}
	c := harness.Start(t, cfg)
	return c, client{t, c.URL}
}

// TestStreamEvents: create, update and delete make events carrying the
// record's revision and the fields that changed; filters by node,
// provision state, type and fields; an unknown or too old position is a
// 410 in Ironic's error format.
func TestStreamEvents(t *testing.T) {
	ctx := context.Background()
	_, c := startBolt(t, nil)

	all := mustOpen(t, c.base, "", "")
	if all.LastID() == "" {
		t.Fatal("ready event without id")
	}
	manageable := mustOpen(t, c.base, "?provision_state=manageable&types=node", "")
	onlyName := mustOpen(t, c.base, "?fields=name", "")

	n := c.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "feed-1",
		"driver_info": map[string]any{"ipmi_password": "s3cret"}}, 201)
	uuid := n["uuid"].(string)
	other := c.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "feed-2"}, 201)
	byNode := mustOpen(t, c.base, "?node=feed-1", "")

	created := all.nextOf(t, "node", 5*time.Second)
	if created.Data["op"] != "create" || created.Data["uuid"] != uuid || created.Data["name"] != "feed-1" {
		t.Fatalf("first event = %v, want the create of feed-1", created.Data)
	}
	fields := created.Data["fields"].(map[string]any)
	if fields["provision_state"] != "enroll" || fields["driver"] != "fake-hardware" {
		t.Errorf("create fields = %v", fields)
	}
	if di := fields["driver_info"].(map[string]any); di["ipmi_password"] != "******" {
		t.Errorf("driver_info in the feed = %v, want the password masked", di)
	}
	rev1 := created.Data["revision"].(float64)
	if rev1 <= 0 {
		t.Errorf("revision %v", rev1)
	}
	if ev := all.nextOf(t, "node", 5*time.Second); ev.Data["uuid"] != other["uuid"] {
		t.Fatalf("second event = %v, want feed-2's create", ev.Data)
	}

	c.do("PATCH", "/v1/nodes/feed-1", []map[string]any{{"op": "add", "path": "/extra/rack", "value": "r1"}}, 200)
	upd := all.nextOf(t, "node", 5*time.Second)
	if upd.Data["op"] != "update" || upd.Data["revision"].(float64) <= rev1 {
		t.Fatalf("patch event = %v", upd.Data)
	}
	changed := toStrings(upd.Data["changed"])
	if !slices.Contains(changed, "extra") || slices.Contains(changed, "driver") || slices.Contains(changed, "provision_state") {
		t.Errorf("patch changed = %v, want extra (not driver, provision_state)", changed)
	}
	if ex := upd.Data["fields"].(map[string]any)["extra"].(map[string]any); ex["rack"] != "r1" {
		t.Errorf("patch fields = %v", upd.Data["fields"])
	}

	c.do("PUT", "/v1/nodes/feed-1/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState("feed-1", "manageable")
	var states []any
	for !slices.Contains(states, "manageable") {
		ev := all.nextOf(t, "node", 5*time.Second)
		if s, ok := ev.Data["fields"].(map[string]any)["provision_state"]; ok {
			states = append(states, s)
		}
	}
	if states[0] != "verifying" {
		t.Errorf("provision states seen = %v, want verifying then manageable", states)
	}

	// A port and its delete reach the node's watcher.
	p := c.do("POST", "/v1/ports", map[string]any{"node_uuid": uuid, "address": "52:54:00:12:34:56"}, 201)
	c.do("DELETE", "/v1/ports/"+p["uuid"].(string), nil, 204)
	// Another node's change does not.
	c.do("PATCH", "/v1/nodes/feed-2", []map[string]any{{"op": "add", "path": "/extra/x", "value": "y"}}, 200)
	c.do("PATCH", "/v1/nodes/feed-1", []map[string]any{{"op": "add", "path": "/name", "value": "feed-1b"}}, 200)

	var seen []string
	for {
		ev, ok := byNode.next(5 * time.Second)
		if !ok {
			t.Fatalf("node=feed-1 stream: events %v, then nothing", seen)
		}
		if ev.Data["uuid"] == other["uuid"] {
			t.Fatalf("node=feed-1 stream got feed-2's event %v", ev.Data)
		}
		seen = append(seen, fmt.Sprint(ev.Type, "/", ev.Data["op"]))
		if ev.Type == "node" && ev.Data["name"] == "feed-1b" {
			break
		}
	}
	for _, want := range []string{"port/create", "port/delete"} {
		if !slices.Contains(seen, want) {
			t.Errorf("node=feed-1 stream: %v, want %s", seen, want)
		}
	}

	// provision_state=manageable: feed-1's move to verifying (it left
	// enroll, not matching either side: not seen), to manageable (seen),
	// and later changes while manageable; never feed-2 (enroll).
	ev := manageable.nextOf(t, "node", 5*time.Second)
	if ev.Data["uuid"] != uuid || ev.Data["fields"].(map[string]any)["provision_state"] != "manageable" {
		t.Fatalf("provision_state=manageable stream: first event %v", ev.Data)
	}
	for {
		ev, ok := manageable.next(2 * time.Second)
		if !ok {
			break
		}
		if ev.Data["uuid"] != uuid {
			t.Fatalf("provision_state=manageable stream got %v", ev.Data)
		}
	}

	// fields=name: only the rename among the updates, and only the name.
	var renames int
	for {
		ev, ok := onlyName.next(2 * time.Second)
		if !ok {
			break
		}
		if ev.Data["op"] == "update" {
			if f := ev.Data["fields"].(map[string]any); len(f) != 1 || f["name"] != "feed-1b" {
				t.Errorf("fields=name update = %v", ev.Data)
			}
			renames++
		}
	}
	if renames != 1 {
		t.Errorf("fields=name: %d updates, want 1 (the rename)", renames)
	}

	// Positions the feed does not hold: a 410 in Ironic's format.
	for _, id := range []string{"999999999", "5000000000.3"} {
		_, code, body, _ := open(ctx, c.base, "", id)
		if code != http.StatusGone || !strings.Contains(string(body), "list the resources again") || !strings.Contains(string(body), "error_message") {
			t.Errorf("Last-Event-ID %s: %d %s, want 410 with Ironic's error", id, code, body)
		}
	}
	if _, code, body, _ := open(ctx, c.base, "", "not-a-position"); code != http.StatusBadRequest {
		t.Errorf("bad Last-Event-ID: %d %s, want 400", code, body)
	}
	if _, code, body, _ := open(ctx, c.base, "?types=chassis", ""); code != http.StatusBadRequest {
		t.Errorf("types=chassis: %d %s, want 400", code, body)
	}
	if _, code, body, _ := open(ctx, c.base, "?node=nope", ""); code != http.StatusNotFound {
		t.Errorf("node=nope: %d %s, want 404", code, body)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
