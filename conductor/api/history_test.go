package api

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/store"
)

func TestNodeHistory(t *testing.T) {
	e := newTestEnv(t, nil)
	// A real failure: verifying an IPMI node without a BMC address.
	id := e.createNode(map[string]any{"name": "hist", "driver": "ipmi"}).str("uuid")
	e.must(200, e.do("GET", "/v1/nodes/hist/history", nil), "empty history")
	e.provision("hist", "manage", "")
	n := e.waitNode("hist", "verify failure", func(n map[string]any) bool { return n["last_error"] != nil })
	r := e.must(200, e.do("GET", "/v1/nodes/hist/history", nil), "history")
	list, _ := r.j["history"].([]any)
	if len(list) != 1 {
		t.Fatalf("history %s", r.raw)
	}
	ev := list[0].(map[string]any)
	if ev["severity"] != "ERROR" || ev["event"] != n["last_error"] || ev["uuid"] == "" || ev["created_at"] == nil {
		t.Errorf("event %v, last_error %v", ev, n["last_error"])
	}
	if _, ok := ev["event_type"]; ok {
		t.Errorf("list without detail shows event_type: %v", ev)
	}
	evID := ev["uuid"].(string)
	self := ev["links"].([]any)[0].(map[string]any)
	if self["rel"] != "self" || self["href"] != e.url+"/v1/nodes/"+id+"/history/"+evID {
		t.Errorf("links %v", ev["links"])
	}
	one := e.must(200, e.do("GET", "/v1/nodes/hist/history/"+evID, nil), "one event")
	if one.j["event_type"] != "verify" || one.j["conductor"] != "test-conductor" || one.j["event"] != n["last_error"] {
		t.Errorf("event detail %s", one.raw)
	}
	if _, ok := one.j["user"]; !ok {
		t.Errorf("event detail lacks user: %s", one.raw)
	}
	d := e.must(200, e.do("GET", "/v1/nodes/"+id+"/history?detail=true", nil), "detail list")
	if dl := d.j["history"].([]any); len(dl) != 1 || dl[0].(map[string]any)["event_type"] != "verify" {
		t.Errorf("detail list %s", d.raw)
	}
	e.must(400, e.do("GET", "/v1/nodes/hist/history?detail=maybe", nil), "bad detail")
	e.must(404, e.do("GET", "/v1/nodes/hist/history/0b7d0a4c-3b0a-4d43-9a49-2f1a5b0b7e11", nil), "missing event")
	e.must(404, e.do("GET", "/v1/nodes/missing/history", nil), "missing node")
	e.must(404, e.do("GET", "/v1/nodes/hist/history", nil, hdrLegacyVersion, "1.77"), "below 1.78")

	// More failures, then pages: the second manage fails the same way
	// again (last_error was cleared when the request started).
	e.provision("hist", "manage", "")
	e.waitNode("hist", "second failure", func(map[string]any) bool {
		r := e.do("GET", "/v1/nodes/hist/history", nil)
		l, _ := r.j["history"].([]any)
		return len(l) == 2
	})
	p1 := e.must(200, e.do("GET", "/v1/nodes/hist/history?limit=1", nil), "page 1")
	next, _ := p1.j["next"].(string)
	if l := p1.j["history"].([]any); len(l) != 1 || l[0].(map[string]any)["uuid"] != evID || !strings.Contains(next, "marker="+evID) {
		t.Fatalf("page 1: %s", p1.raw)
	}
	p2 := e.must(200, e.do("GET", strings.TrimPrefix(next, e.url), nil), "page 2")
	if l := p2.j["history"].([]any); len(l) != 1 || l[0].(map[string]any)["uuid"] == evID {
		t.Errorf("page 2: %s", p2.raw)
	}
	desc := e.must(200, e.do("GET", "/v1/nodes/hist/history?sort_dir=desc", nil), "newest first")
	if l := desc.j["history"].([]any); len(l) != 2 || l[1].(map[string]any)["uuid"] != evID {
		t.Errorf("sort_dir=desc: %s", desc.raw)
	}
	e.must(400, e.do("GET", "/v1/nodes/hist/history?sort_key=nope", nil), "bad sort key")
	e.must(400, e.do("GET", "/v1/nodes/hist/history?marker=0b7d0a4c-3b0a-4d43-9a49-2f1a5b0b7e11", nil), "bad marker")

	// Gone with the node.
	e.must(204, e.do("DELETE", "/v1/nodes/hist", nil), "delete node")
	if h, err := e.st.NodeHistory(id); err != nil || len(h) != 0 {
		t.Errorf("history after node delete: %d events, %v", len(h), err)
	}
}

func TestHistoryEventSummary(t *testing.T) {
	c := echo.New().NewContext(httptest.NewRequest("GET", "/v1/nodes/n/history", nil), httptest.NewRecorder())
	tests := []struct {
		event, want string
	}{
		{"short", "short"},
		{strings.Repeat("é", 255), strings.Repeat("é", 255)},
		{strings.Repeat("é", 256), strings.Repeat("é", 251) + "..."},
	}
	for _, tc := range tests {
		ev := &store.HistoryEvent{UUID: "u", Event: tc.event, EventType: "deploying"}
		if got := historyEntry(c, "n", ev, false)["event"]; got != tc.want {
			t.Errorf("summary of %d characters = %d characters", len([]rune(tc.event)), len([]rune(fmt.Sprint(got))))
		}
		if got := historyEntry(c, "n", ev, true)["event"]; got != tc.event {
			t.Errorf("detail cut the event")
		}
	}
}
