package python

import "testing"

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
