package rules

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Context is what a rule looks at. Node is the node as its API JSON
// (properties, driver_info, extra, ...); Inventory and PluginData are the
// inspection data. Data is ironic-inspector's view (inventory plus plugin
// data at the top level) and is built by Apply when nil.
type Context struct {
	Node       map[string]any
	Inventory  map[string]any
	PluginData map[string]any
	Data       map[string]any
	Traits     []string
}

func (c *Context) roots(item any, hasItem bool) map[string]any {
	m := map[string]any{
		"node":        c.Node,
		"inventory":   c.Inventory,
		"plugin_data": c.PluginData,
		"data":        c.Data,
	}
	if hasItem {
		m["item"] = item
	}
	return m
}

// errMissing reports a reference to a field that does not exist.
type errMissing struct{ ref string }

func (e errMissing) Error() string { return fmt.Sprintf("no field %q", e.ref) }

// interpolate formats every string in v (recursively through lists and
// maps). A string that is exactly one {reference} becomes the referenced
// value with its JSON type, so numbers stay numbers; other strings are
// formatted as text. A reference that cannot be resolved leaves the string
// as it was, except that nilOnMissing makes it nil (is-empty's semantics).
func interpolate(v any, roots map[string]any, nilOnMissing bool) any {
	switch x := v.(type) {
	case string:
		out, err := format(x, roots)
		if err != nil {
			if nilOnMissing {
				return nil
			}
			return x
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = interpolate(e, roots, nilOnMissing)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			kk := k
			if s, err := format(k, roots); err == nil {
				kk = text(s)
			}
			out[kk] = interpolate(e, roots, nilOnMissing)
		}
		return out
	}
	return v
}

// format expands {ref} fields in s; {{ and }} are literal braces.
func format(s string, roots map[string]any) (any, error) {
	if !strings.ContainsAny(s, "{}") {
		return s, nil
	}
	if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") && strings.Count(s, "{") == 1 && strings.Count(s, "}") == 1 {
		return resolve(s[1:len(s)-1], roots)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			b.WriteByte('{')
			i++
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			b.WriteByte('}')
			i++
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unbalanced { in %q", s)
			}
			v, err := resolve(s[i+1:i+end], roots)
			if err != nil {
				return nil, err
			}
			b.WriteString(text(v))
			i += end
		case c == '}':
			return nil, fmt.Errorf("unbalanced } in %q", s)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// resolve looks up a reference such as inventory[cpu][count], node.driver or
// item[path].
func resolve(ref string, roots map[string]any) (any, error) {
	name, rest := ref, ""
	if i := strings.IndexAny(ref, ".["); i >= 0 {
		name, rest = ref[:i], ref[i:]
	}
	cur, ok := roots[name]
	if !ok || name == "" {
		return nil, errMissing{ref}
	}
	for rest != "" {
		var key string
		switch rest[0] {
		case '.':
			rest = rest[1:]
			i := strings.IndexAny(rest, ".[")
			if i < 0 {
				i = len(rest)
			}
			key, rest = rest[:i], rest[i:]
		case '[':
			i := strings.IndexByte(rest, ']')
			if i < 0 {
				return nil, errMissing{ref}
			}
			key, rest = rest[1:i], rest[i+1:]
		default:
			return nil, errMissing{ref}
		}
		next, ok := index(cur, key)
		if !ok {
			return nil, errMissing{ref}
		}
		cur = next
	}
	return cur, nil
}

func index(v any, key string) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		e, ok := x[key]
		return e, ok
	case []any:
		n, err := strconv.Atoi(key)
		if err != nil || n < 0 || n >= len(x) {
			return nil, false
		}
		return x[n], true
	}
	return nil, false
}

// text renders a value as Python's str() would for the common JSON types.
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return x
	case bool:
		if x {
			return "True"
		}
		return "False"
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// lookupField resolves an ironic-inspector field path ("inventory.cpu.count",
// "inventory.interfaces[*].mac_address") and returns every value it names.
func lookupField(root any, path string) []any {
	cur := []any{root}
	for _, seg := range strings.Split(path, ".") {
		name, idx := seg, ""
		if i := strings.IndexByte(seg, '['); i >= 0 && strings.HasSuffix(seg, "]") {
			name, idx = seg[:i], seg[i+1:len(seg)-1]
		}
		var next []any
		for _, v := range cur {
			if name != "" {
				e, ok := index(v, name)
				if !ok {
					continue
				}
				v = e
			}
			switch {
			case idx == "":
				next = append(next, v)
			case idx == "*":
				if l, ok := v.([]any); ok {
					next = append(next, l...)
				}
			default:
				if e, ok := index(v, idx); ok {
					next = append(next, e)
				}
			}
		}
		cur = next
	}
	return cur
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// deepCopy copies JSON-shaped values.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}
