package api

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// sseClient reads one caller's change feed event by event.
type sseClient struct {
	t      *testing.T
	events chan [2]string // event name, data
	ctx    context.Context
}

func (e *testEnv) openStream(t *testing.T, ctx context.Context, caller, query string) *sseClient {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/v1/events/stream"+query, nil)
	req.Header.Set(hdrCaller, caller)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != 200 {
		t.Fatalf("stream as %s: %s", caller, res.Status)
	}
	cl := &sseClient{t: t, events: make(chan [2]string, 100), ctx: ctx}
	go func() {
		defer close(cl.events)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var name string
		for sc.Scan() {
			l := sc.Text()
			switch {
			case strings.HasPrefix(l, "event: "):
				name = strings.TrimPrefix(l, "event: ")
			case strings.HasPrefix(l, "data: "):
				cl.events <- [2]string{name, strings.TrimPrefix(l, "data: ")}
			}
		}
	}()
	return cl
}

// next is the data of the next event named name whose data holds with.
func (cl *sseClient) next(name, with string) map[string]any {
	cl.t.Helper()
	for {
		select {
		case ev, ok := <-cl.events:
			if !ok {
				cl.t.Fatalf("stream ended before a %s event with %s", name, with)
			}
			if ev[0] != name || !strings.Contains(ev[1], with) {
				continue
			}
			var doc map[string]any
			if err := json.Unmarshal([]byte(ev[1]), &doc); err != nil {
				cl.t.Fatalf("%s event: %v: %s", name, err, ev[1])
			}
			return doc
		case <-cl.ctx.Done():
			cl.t.Fatalf("no %s event with %s", name, with)
		}
	}
}

// TestAccessEventStreamMasked: the change feed and its snapshot show a
// caller below Ironic's filter threshold a node's guarded fields (last
// error, lock holder, BMC and internal details) exactly as its GET of the
// node does: redacted for the lessee, real for a system reader and the
// owner's reader. The feed still renders each change once for everyone.
func TestAccessEventStreamMasked(t *testing.T) {
	e := newAccessEnv(t, nil)
	f := e.accessFixture()
	e.must(200, e.do("PATCH", "/v1/nodes/"+f.n1, []map[string]any{{"op": "add", "path": "/driver_info/ipmi_address", "value": "192.0.2.9"}}), "driver_info")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	guarded := []string{"driver_info", "driver_internal_info", "last_error", "reservation"}
	cases := []struct {
		caller string
		masked bool
	}{{"system-reader", false}, {"owner-reader", false}, {"lessee-reader", true}, {"lessee-member", true}}
	streams := map[string]*sseClient{}
	for _, tc := range cases {
		streams[tc.caller] = e.openStream(t, ctx, tc.caller, "?snapshot=true")
		// A second client with a fields= filter: its own shared rendering.
		streams[tc.caller+" fields"] = e.openStream(t, ctx, tc.caller, "?fields=driver_info,extra")
	}
	// getDoc is the node as the caller's GET shows it (at the stream's
	// version, the latest).
	getDoc := func(caller, uuid string) map[string]any {
		return e.must(200, e.do("GET", "/v1/nodes/"+uuid, nil, hdrCaller, caller, hdrLegacyVersion, "latest"), caller+" get").j
	}
	for _, tc := range cases {
		cl := streams[tc.caller]
		cl.next("ready", "position")
		snap := cl.next("snapshot", f.n1)
		cols, _ := snap["columns"].([]any)
		var row []any
		for _, r := range snap["nodes"].([]any) {
			if r := r.([]any); r[slices.Index(cols, any("uuid"))] == f.n1 {
				row = r
			}
		}
		if row == nil {
			t.Fatalf("%s: n1 not in the snapshot", tc.caller)
		}
		got := getDoc(tc.caller, f.n1)
		for _, name := range guarded {
			i := slices.Index(cols, any(name))
			if i < 0 {
				t.Fatalf("%s: no %s column in %v", tc.caller, name, cols)
			}
			if !reflect.DeepEqual(row[i], got[name]) {
				t.Errorf("%s snapshot: %s = %v, GET shows %v", tc.caller, name, row[i], got[name])
			}
		}
		di, _ := row[slices.Index(cols, any("driver_info"))].(map[string]any)
		if tc.masked != (di["ipmi_address"] == nil) {
			t.Errorf("%s snapshot: driver_info %v (masked: %v)", tc.caller, di, tc.masked)
		}
		streams[tc.caller+" fields"].next("ready", "position")
	}
	// A node created while the streams are open, then a change of its
	// BMC address and extra.
	n3 := e.createNode(map[string]any{"name": "n3", "owner": projOwner, "lessee": projLessee,
		"driver_info": map[string]any{"ipmi_address": "192.0.2.33"}}).str("uuid")
	e.must(200, e.do("PATCH", "/v1/nodes/"+n3, []map[string]any{
		{"op": "add", "path": "/driver_info/ipmi_address", "value": "192.0.2.34"},
		{"op": "add", "path": "/extra/seen", "value": "yes"}}), "patch n3")
	for _, tc := range cases {
		cl := streams[tc.caller]
		created := cl.next("node", `"op":"create"`)
		if created["uuid"] != n3 {
			t.Fatalf("%s: first create is %v, want n3", tc.caller, created["uuid"])
		}
		fields := created["fields"].(map[string]any)
		// Compare with a GET of the node as it was created: the guarded
		// fields' redactions do not change with the value.
		for _, name := range guarded {
			if tc.masked {
				want := nodeFieldGuards[name].redacted
				w, _ := json.Marshal(want)
				g, _ := json.Marshal(fields[name])
				if string(w) != string(g) {
					t.Errorf("%s create event: %s = %s, want %s", tc.caller, name, g, w)
				}
			}
		}
		di, _ := fields["driver_info"].(map[string]any)
		if tc.masked != (di["ipmi_address"] == nil) || (!tc.masked && di["ipmi_address"] != "192.0.2.33") {
			t.Errorf("%s create event: driver_info %v (masked: %v)", tc.caller, di, tc.masked)
		}
		updated := cl.next("node", `"op":"update"`)
		changed := updated["changed"].([]any)
		fields = updated["fields"].(map[string]any)
		di, _ = fields["driver_info"].(map[string]any)
		got := getDoc(tc.caller, n3)
		if tc.masked {
			// The redaction did not change: the update names extra only.
			if slices.Contains(changed, any("driver_info")) || fields["driver_info"] != nil || !slices.Contains(changed, any("extra")) {
				t.Errorf("%s update event: changed %v, fields %v", tc.caller, changed, fields)
			}
			if !strings.Contains(string(mustJSON(got["driver_info"])), "Redacted") {
				t.Errorf("%s GET n3: driver_info %v, want the redaction", tc.caller, got["driver_info"])
			}
		} else if !reflect.DeepEqual(fields["driver_info"], got["driver_info"]) || di["ipmi_address"] != "192.0.2.34" {
			t.Errorf("%s update event: driver_info %v, GET shows %v", tc.caller, fields["driver_info"], got["driver_info"])
		}
		// The fields= client: the same, limited to driver_info and extra.
		fc := streams[tc.caller+" fields"]
		fcr := fc.next("node", `"op":"create"`)
		ff := fcr["fields"].(map[string]any)
		if _, ok := ff["name"]; ok {
			t.Errorf("%s fields= create: %v shows name", tc.caller, ff)
		}
		di, _ = ff["driver_info"].(map[string]any)
		if tc.masked != (di["ipmi_address"] == nil) {
			t.Errorf("%s fields= create: driver_info %v (masked: %v)", tc.caller, di, tc.masked)
		}
		fu := fc.next("node", `"op":"update"`)
		fchanged := fu["changed"].([]any)
		if tc.masked == slices.Contains(fchanged, any("driver_info")) || !slices.Contains(fchanged, any("extra")) {
			t.Errorf("%s fields= update: changed %v (masked: %v)", tc.caller, fchanged, tc.masked)
		}
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
