package store

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

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
