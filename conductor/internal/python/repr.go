// Package python renders values the way Python does, for the messages
// the conductor words as Ironic (a Python service) does.
package python

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Repr renders a decoded JSON value the way Python's repr would, as
// Ironic's messages show request values (keys of JSON patch operations
// in op, path, value order).
func Repr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return "'" + strings.ReplaceAll(x, "'", "\\'") + "'"
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = Repr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		order := map[string]int{"op": 0, "path": 1, "value": 2}
		sort.Slice(keys, func(i, j int) bool {
			oi, iok := order[keys[i]]
			oj, jok := order[keys[j]]
			if iok && jok {
				return oi < oj
			}
			if iok != jok {
				return iok
			}
			return keys[i] < keys[j]
		})
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = Repr(k) + ": " + Repr(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	default:
		return fmt.Sprint(x)
	}
}
