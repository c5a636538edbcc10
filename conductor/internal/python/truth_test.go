package python

import "testing"

func TestTruthy(t *testing.T) {
	for _, c := range []struct {
		v    any
		want bool
	}{
		{nil, false}, {false, false}, {true, true}, {0.0, false}, {1.5, true},
		{"", false}, {"x", true}, {[]any{}, false}, {[]any{nil}, true},
		{map[string]any{}, false}, {map[string]any{"a": nil}, true},
	} {
		if got := Truthy(c.v); got != c.want {
			t.Errorf("Truthy(%#v) = %v, want %v", c.v, got, c.want)
		}
	}
}
