package api

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"
)

// TestAppendJSONMatchesEncodingJSON: the hand encoder produces JSON that
// decodes to the same value encoding/json's output does.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	tests := []any{
		nil, "plain", "quote\" back\\slash <tag> & \n\t\x01 \u2028 é 日本", "bad utf8 \xff\xfe", true, false,
		42, int64(-7), 3.25, 1e20, float64(16384), math.MaxInt32,
		[]string{"a", "b"}, []string{},
		[]map[string]string{{"href": "http://x/v1/nodes/u", "rel": "self"}},
		map[string]any{"z": 1.0, "a": []any{"x", 2.0, nil, map[string]any{"k": false}}, "m": map[string]any{}},
		json.RawMessage(`{"inventory":{"cpu":{"count":2}}}`),
		time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC),
		struct {
			A int `json:"a"`
		}{5},
	}
	for _, v := range tests {
		got := appendJSON(nil, v)
		if !json.Valid(got) {
			t.Fatalf("appendJSON(%#v) = %s, not valid JSON", v, got)
		}
		var a, b any
		json.Unmarshal(got, &a)
		want, _ := json.Marshal(v)
		if tm, ok := v.(time.Time); ok {
			want, _ = json.Marshal(ironicTime(tm))
		}
		json.Unmarshal(want, &b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("appendJSON(%#v) = %s, encoding/json gives %s", v, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "\"\\", "\x00\x1f", "<>&", "\xff", "日本", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("appendString(%q) = %s: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Fatalf("appendString(%q) decodes to %q, encoding/json round-trips to %q", s, back, wantBack)
		}
	})
}

// TestListingCacheFollowsChanges: a cached rendering is never served after
// the node changed, nor across versions or field sets.
func TestListingCacheFollowsChanges(t *testing.T) {
	e := newTestEnv(t, nil)
	id := e.createNode(map[string]any{"name": "cached"}).str("uuid")
	list := func(path string, hdr ...string) map[string]any {
		r := e.must(200, e.do("GET", path, nil, hdr...), "list")
		nodes := r.j["nodes"].([]any)
		if len(nodes) != 1 {
			t.Fatalf("%s: %d nodes", path, len(nodes))
		}
		return nodes[0].(map[string]any)
	}
	if n := list("/v1/nodes/detail"); n["extra"].(map[string]any)["k"] != nil {
		t.Fatal("unexpected extra")
	}
	e.must(200, e.do("PATCH", "/v1/nodes/"+id, []map[string]any{{"op": "add", "path": "/extra/k", "value": "v2"}}), "patch")
	if n := list("/v1/nodes/detail"); n["extra"].(map[string]any)["k"] != "v2" {
		t.Fatalf("listing after PATCH shows stale extra: %v", n["extra"])
	}
	if n := list("/v1/nodes/detail", "X-OpenStack-Ironic-API-Version", "1.1"); n["name"] != nil {
		t.Fatalf("1.1 listing shows name %v (rendering of another version reused)", n["name"])
	}
	if n := list("/v1/nodes?fields=uuid,extra"); len(n) != 3 {
		t.Fatalf("fields listing has keys %v, want uuid, extra, links", n)
	}
}
