package python

import (
	"strings"
	"testing"
)

func TestRepr(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{nil, "None"},
		{true, "True"},
		{false, "False"},
		{"it's", `'it\'s'`},
		{float64(3), "3"},
		{1.5, "1.5"},
		{[]any{"a", nil, 2.0}, "['a', None, 2]"},
		{map[string]any{"value": 1.0, "path": "/x", "op": "add", "b": true, "a": []any{}}, "{'op': 'add', 'path': '/x', 'value': 1, 'a': [], 'b': True}"},
	}
	for _, tc := range tests {
		if got := Repr(tc.in); got != tc.want {
			t.Errorf("Repr(%#v) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestReprBounded(t *testing.T) {
	long := make([]any, 100000)
	for i := range long {
		long[i] = 0.0
	}
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"short", map[string]any{"op": "add", "path": "/a", "value": []any{1.0, "x"}}, "{'op': 'add', 'path': '/a', 'value': [1, 'x']}"},
		{"string", strings.Repeat("é", 300), "'" + strings.Repeat("é", 255) + "..."},
		{"list", long, "[" + strings.Repeat("0, ", 170) + "0..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Repr(tc.v)
			if got != tc.want {
				t.Errorf("Repr = %q, want %q", got, tc.want)
			}
			if len(got) > MaxRepr+3 {
				t.Errorf("Repr is %d bytes, want at most %d", len(got), MaxRepr+3)
			}
		})
	}
}
