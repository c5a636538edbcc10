// Package python renders values the way Python does, for the messages
// the conductor words as Ironic (a Python service) does.
package python

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxRepr bounds what Repr returns (past the 255 characters of most of
// Ironic's limits, so a value one too long is quoted whole): error messages quote a short
// prefix of the request, never a whole (possibly huge) value.
const MaxRepr = 512

// Repr renders a decoded JSON value the way Python's repr would, as
// Ironic's messages show request values (keys of JSON patch operations
// in op, path, value order). A rendering longer than MaxRepr bytes is cut
// there and ends with "..."; the value is walked only as far as needed.
func Repr(v any) string {
	var b strings.Builder
	if !reprTo(&b, v, MaxRepr) {
		return cut(b.String(), MaxRepr) + "..."
	}
	return b.String()
}

// Cut is s as Ironic's "%s" messages quote a request's string: cut to
// MaxRepr bytes, marked with "..." when cut.
func Cut(s string) string {
	if len(s) <= MaxRepr {
		return s
	}
	return cut(s, MaxRepr) + "..."
}

// reprEscaper escapes what Python's repr of a str escapes.
var reprEscaper = strings.NewReplacer("\\", "\\\\", "'", "\\'", "\n", "\\n", "\r", "\\r", "\t", "\\t")

// cut returns the longest prefix of s of at most n bytes that ends on a
// rune boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// reprTo appends v's repr to b; it stops and returns false once b holds
// more than max bytes.
func reprTo(b *strings.Builder, v any, max int) bool {
	switch x := v.(type) {
	case nil:
		b.WriteString("None")
	case bool:
		if x {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case string:
		b.WriteByte('\'')
		b.WriteString(reprEscaper.Replace(cut(x, max+1)))
		if len(x) > max {
			return false
		}
		b.WriteByte('\'')
	case float64:
		b.WriteString(strconv.FormatFloat(x, 'f', -1, 64))
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			if b.Len() > max || !reprTo(b, e, max) {
				return false
			}
		}
		b.WriteByte(']')
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
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			if b.Len() > max || !reprTo(b, k, max) {
				return false
			}
			b.WriteString(": ")
			if !reprTo(b, x[k], max) {
				return false
			}
		}
		b.WriteByte('}')
	default:
		b.WriteString(cut(fmt.Sprint(x), max+1))
	}
	return b.Len() <= max
}
