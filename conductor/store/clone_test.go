package store

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// A node copied from the cache is what decoding its stored JSON gives,
// and shares nothing a writer could change with the cached one.
func TestDeepCopyNode(t *testing.T) {
	now := time.Now().UTC()
	name, rc := "n1", "gold"
	on := true
	n := &Node{ID: 3, Revision: 7, UUID: "11111111-1111-1111-1111-111111111111", Name: &name, ResourceClass: &rc,
		SecureBoot: &on, ProvisionUpdatedAt: &now, Traits: []string{"CUSTOM_A"},
		DriverInfo:         Object{"ipmi_address": "10.0.0.1", "nested": map[string]any{"a": []any{1.0, "x", map[string]any{"b": true}}}},
		DriverInternalInfo: Object{"agent_url": "http://10.0.0.9:9999", "clean_steps": []any{map[string]any{"step": "erase"}}}}
	raw, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	var decoded Node
	if err := json.Unmarshal(raw, &decoded); err != nil {
		t.Fatal(err)
	}
	cp := deepCopy(&decoded)
	if !reflect.DeepEqual(cp, &decoded) {
		t.Fatalf("copy differs:\n%#v\n%#v", cp, &decoded)
	}
	cp.DriverInfo["nested"].(map[string]any)["a"].([]any)[2].(map[string]any)["b"] = false
	cp.DriverInternalInfo["agent_url"] = "changed"
	*cp.Name = "changed"
	cp.Traits[0] = "changed"
	if decoded.DriverInfo["nested"].(map[string]any)["a"].([]any)[2].(map[string]any)["b"] != true ||
		decoded.DriverInternalInfo["agent_url"] != "http://10.0.0.9:9999" || *decoded.Name != "n1" || decoded.Traits[0] != "CUSTOM_A" {
		t.Fatalf("the copy shares state with the original: %#v", decoded)
	}
}

// The feed's diff of two records, read without decoding, is the decoded
// diff: changed, removed and added top-level fields, escapes in keys and
// values, nested objects and arrays, strings holding brackets.
func TestDiffTop(t *testing.T) {
	for _, tc := range []struct{ old, new string }{
		{`{"a":1,"b":"x"}`, `{"a":1,"b":"y"}`},
		{`{"a":1,"b":{"c":[1,2,{"d":"}"}]}}`, `{"a":1,"b":{"c":[1,2,{"d":"]"}]}}`},
		{`{"a":"q\"}","b":2}`, `{"a":"q\"}","c":3}`},
		{`{"k\u00e9":1,"z":null}`, `{"k\u00e9":2,"z":null}`},
		{`{}`, `{"a":[]}`},
		{`{"a":1,"b":2}`, `{"a":1,"c":2}`},
		{`{"a":1,"b":2}`, `{"b":2,"a":1}`},
		{`{"a":1,"b":2}`, `{"a":1,"b":2}`},
		{`{"a":{}}`, `{}`},
		{`{"a":"\\","b":[["x"]]}`, `{"a":"\\\\","b":[["x"]]}`},
	} {
		want := diffMaps([]byte(tc.old), []byte(tc.new))
		got, ok := diffTop([]byte(tc.old), []byte(tc.new))
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("diffTop(%s, %s) = %v %v, want %v", tc.old, tc.new, got, ok, want)
		}
	}
	for _, bad := range []string{``, `[]`, `{"a":1`, `{"a"}`, `{"a":}`, `{"a":"x}`} {
		if _, _, ok := topFields([]byte(bad)); ok {
			t.Errorf("topFields(%q) accepted", bad)
		}
	}
}

// diffMaps is the decoding diff diffTop replaces.
func diffMaps(old, new []byte) map[string]json.RawMessage {
	var a, b map[string]json.RawMessage
	if json.Unmarshal(old, &a) != nil || json.Unmarshal(new, &b) != nil {
		return nil
	}
	out := map[string]json.RawMessage{}
	for k, v := range a {
		if w, ok := b[k]; !ok || string(v) != string(w) {
			out[k] = v
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out[k] = nil
		}
	}
	return out
}

// Read-modify-write of a node in a transaction works on a private copy
// (from the cache): a write that fails leaves the cache as it was, and
// one that commits is what is stored, after a reopen too.
func TestNodeReadModifyWrite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	const id = "22222222-2222-2222-2222-222222222222"
	if err := s.Update(ctx, func(tx Tx) error {
		return tx.PutNode(&Node{UUID: id, Driver: "fake-hardware", DriverInternalInfo: Object{"agent_secret_token": "t"}})
	}); err != nil {
		t.Fatal(err)
	}
	boom := errUnchangedForTest
	if err := s.Update(ctx, func(tx Tx) error {
		n, err := tx.Node(id)
		if err != nil {
			return err
		}
		n.DriverInternalInfo["agent_url"] = "http://lost"
		return boom
	}); err != boom {
		t.Fatal(err)
	}
	if c, _ := s.Node(id); c.DriverInternalInfo["agent_url"] != nil {
		t.Fatalf("a failed write changed the cache: %v", c.DriverInternalInfo)
	}
	for i := range 3 {
		if err := s.Update(ctx, func(tx Tx) error {
			n, err := tx.Node(id)
			if err != nil {
				return err
			}
			n.DriverInternalInfo["agent_last_heartbeat"] = float64(i)
			return tx.PutNode(n)
		}); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := s.Node(id)
	if c.DriverInternalInfo["agent_last_heartbeat"] != 2.0 || c.DriverInternalInfo["agent_secret_token"] != "t" {
		t.Fatalf("cache after writes: %v", c.DriverInternalInfo)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, _ = s.Node(id)
	if c.DriverInternalInfo["agent_last_heartbeat"] != 2.0 || c.Revision == 0 {
		t.Fatalf("stored after reopen: %+v", c)
	}
}

var errUnchangedForTest = &DuplicateError{Table: "test"}

// A change as the bolt log keeps it reads back as json.Marshal's would.
func TestEncodeChange(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 123, time.UTC)
	for _, c := range []*Change{
		{Pos: Position{Rev: 9}, Table: "nodes", Key: "k", Op: OpUpdate, Revision: 4, Value: json.RawMessage(`{"a":1,"b":"x\"y"}`),
			Old: map[string]json.RawMessage{"b": json.RawMessage(`"z"`), "c\"d": nil, "e": json.RawMessage(`{"f":[1]}`)}, Time: now},
		{Pos: Position{Rev: 10, Sub: 2}, Table: "ports", Key: "p", Op: OpCreate, Revision: 5, Value: json.RawMessage(`{}`), Time: now},
		{Table: "nodes", Key: "d", Op: OpDelete, Time: now},
	} {
		got, err := encodeChange(c)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var a, b map[string]any
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		if err := json.Unmarshal(want, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("encodeChange = %s\nwant %s", got, want)
		}
	}
}

// skipString finds a string's end past escaped quotes and runs of
// backslashes, as the byte-at-a-time reading of the JSON grammar does.
func TestSkipString(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want int
	}{
		{`"abc"`, 5},
		{`"a\"b"x`, 6},
		{`"a\\"b"`, 5},
		{`"a\\\"b"`, 8},
		{`"\\\\"`, 6},
		{`""`, 2},
		{`"abc`, -1},
		{`"ab\"`, -1},
		{`"\u0022"`, 8},
	} {
		if got := skipString([]byte(tc.raw), 0); got != tc.want {
			t.Errorf("skipString(%s) = %d, want %d", tc.raw, got, tc.want)
		}
	}
}

// BenchmarkHeartbeatDiff is the feed's diff of a heartbeat's write: the
// node before and after, split without decoding.
func BenchmarkHeartbeatDiff(b *testing.B) {
	n := heartbeatNode()
	old, _ := json.Marshal(n)
	n.Revision++
	n.DriverInternalInfo["agent_last_heartbeat"] = time.Now().UTC().Format(time.RFC3339Nano)
	now := time.Now().UTC()
	n.UpdatedAt = &now
	cur, _ := json.Marshal(n)
	b.ReportAllocs()
	for b.Loop() {
		if d := diffFields(old, cur); len(d) != 3 {
			b.Fatalf("diff %v", d)
		}
	}
}

// topFields takes only objects as json.Marshal writes them.
func TestTopFieldsBad(t *testing.T) {
	for _, raw := range []string{``, `{`, `[]`, `{"a":1`, `{"a":1}x`, `{"a"}`, `{"a":}`, `{a:1}`, `{"a":1,}`, `{} `, `{"a":"x}`, `{"a":1}}`} {
		if _, _, ok := topFields([]byte(raw)); ok {
			t.Errorf("topFields(%q) ok", raw)
		}
		if _, ok := diffTop([]byte(raw), []byte(`{"a":1}`)); ok {
			t.Errorf("diffTop(%q, ...) ok", raw)
		}
		if _, ok := diffTop([]byte(`{"a":1}`), []byte(raw)); ok {
			t.Errorf("diffTop(..., %q) ok", raw)
		}
	}
	for _, raw := range []string{`{}`, `{"a":1}`, `{"a":{"b":[1,"}"]},"c":null}`} {
		if _, _, ok := topFields([]byte(raw)); !ok {
			t.Errorf("topFields(%q) not ok", raw)
		}
	}
}
