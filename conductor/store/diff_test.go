package store

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestTopMembers: the members topMembers splits are those encoding/json
// decodes, and what it does not take (not compact, malformed) it refuses.
func TestTopMembers(t *testing.T) {
	name := "n1"
	node, _ := json.Marshal(&Node{UUID: "0d1b3c7e-55b2-4a4f-a7a5-6d2c7f3a1e10", Name: &name, Driver: "ipmi",
		Extra:      map[string]any{"a": []any{1.0, "x,}]\"", map[string]any{"b": nil}}, "q\"uote": "\\"},
		Properties: map[string]any{"cpus": 4.0}})
	for _, tc := range []struct {
		raw  string
		want bool
	}{
		{string(node), true},
		{`{}`, true},
		{`{"a":1}`, true},
		{`{"a":"x\"}","b":[{"c":[]},2],"d":{"e":{"f":"]"}},"g":null,"h":true}`, true},
		{`{"a":1,"b":-2.5e3}`, true},
		{`{"a": 1}`, false},
		{`{"a":}`, false},
		{`{"a":1,}`, false},
		{`{"a\"b":1}`, false},
		{`{"a":"unterminated}`, false},
		{`[1]`, false},
		{``, false},
	} {
		got, ok := topMembers([]byte(tc.raw))
		if ok != tc.want {
			t.Errorf("topMembers(%s) ok = %v, want %v", tc.raw, ok, tc.want)
			continue
		}
		if !ok {
			continue
		}
		var want map[string]json.RawMessage
		if err := json.Unmarshal([]byte(tc.raw), &want); err != nil {
			t.Fatalf("%s: %v", tc.raw, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("topMembers(%s) differs from encoding/json (-want +got):\n%s", tc.raw, diff)
		}
	}
}

// TestDiffFields: the previous value of every changed field, nil for a
// field the old record lacked, also when a record is not compact (decoded
// then).
func TestDiffFields(t *testing.T) {
	for _, tc := range []struct {
		old, new string
		want     map[string]json.RawMessage
	}{
		{`{"a":1,"b":{"c":[1,2]},"d":"x"}`, `{"a":1,"b":{"c":[1,3]},"e":true}`,
			map[string]json.RawMessage{"b": json.RawMessage(`{"c":[1,2]}`), "d": json.RawMessage(`"x"`), "e": nil}},
		{`{"a": 1, "b": {"c": [1, 2]}, "d": "x"}`, `{"a":1,"b":{"c":[1,3]},"e":true}`,
			map[string]json.RawMessage{"b": json.RawMessage(`{"c": [1, 2]}`), "d": json.RawMessage(`"x"`), "e": nil}},
		{`{"a":1}`, `{"a":1}`, map[string]json.RawMessage{}},
	} {
		got := diffFields([]byte(tc.old), []byte(tc.new))
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("diffFields(%s, %s) (-want +got):\n%s", tc.old, tc.new, diff)
		}
	}
}
