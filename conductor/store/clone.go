package store

import (
	"bytes"
	"encoding/json"
	"reflect"
)

// deepCopy returns a copy of the record p shares nothing mutable with:
// maps, slices and pointers are copied all the way down. It stands in for
// decoding the stored JSON again when the cache holds the stored revision
// (the cached record was decoded from those very bytes, so the copy has
// the same values and types: float64 numbers, map[string]any objects).
func deepCopy[P any](p P) P {
	v := reflect.ValueOf(p)
	return cloneValue(v).Interface().(P)
}

func cloneValue(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(cloneValue(v.Elem()))
		return out
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		it := v.MapRange()
		for it.Next() {
			out.SetMapIndex(it.Key(), cloneValue(it.Value()))
		}
		return out
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(cloneValue(v.Index(i)))
		}
		return out
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		e := v.Elem()
		switch e.Kind() {
		case reflect.Map, reflect.Slice, reflect.Pointer, reflect.Struct, reflect.Interface, reflect.Array:
			out := reflect.New(v.Type()).Elem()
			out.Set(cloneValue(e))
			return out
		}
		return v // an immutable scalar (string, float64, bool)
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			if !t.Field(i).IsExported() {
				// time.Time and the like: values whose insides are not
				// changed in place, copied whole.
				return v
			}
		}
		out := reflect.New(t).Elem()
		out.Set(v)
		for i := range t.NumField() {
			switch t.Field(i).Type.Kind() {
			case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface, reflect.Struct, reflect.Array:
				out.Field(i).Set(cloneValue(v.Field(i)))
			}
		}
		return out
	case reflect.Array:
		out := reflect.New(v.Type()).Elem()
		for i := range v.Len() {
			out.Index(i).Set(cloneValue(v.Index(i)))
		}
		return out
	}
	return v
}

// topFields splits the JSON object raw, as json.Marshal writes it (no
// white space), into its top-level members, without decoding them; ok is
// false for anything else.
func topFields(raw []byte) (keys [][]byte, vals [][]byte, ok bool) {
	if len(raw) < 2 || raw[0] != '{' || raw[len(raw)-1] != '}' {
		return nil, nil, false
	}
	i := 1
	if raw[i] == '}' {
		return nil, nil, i == len(raw)-1
	}
	for {
		// key
		if raw[i] != '"' {
			return nil, nil, false
		}
		end := skipString(raw, i)
		if end < 0 || end >= len(raw) || raw[end] != ':' {
			return nil, nil, false
		}
		key := raw[i:end]
		i = end + 1
		// value: up to the ',' or '}' at depth 0
		start, depth := i, 0
		for i < len(raw) {
			c := raw[i]
			if c == '"' {
				if i = skipString(raw, i); i < 0 {
					return nil, nil, false
				}
				continue
			}
			if c == '{' || c == '[' {
				depth++
			} else if c == '}' || c == ']' {
				if depth == 0 {
					break
				}
				depth--
			} else if c == ',' && depth == 0 {
				break
			}
			i++
		}
		if i >= len(raw) || i == start {
			return nil, nil, false
		}
		keys, vals = append(keys, key), append(vals, raw[start:i])
		if raw[i] == '}' {
			return keys, vals, i == len(raw)-1
		}
		i++ // ','
	}
}

// skipString returns the index just past the JSON string starting at i
// (-1 when it does not end).
func skipString(raw []byte, i int) int {
	for j := i + 1; j < len(raw); j++ {
		switch raw[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// diffTop is diffFields over two records json.Marshal wrote, read without
// decoding; ok is false when either is not such an object.
func diffTop(old, new []byte) (map[string]json.RawMessage, bool) {
	ok1, ov, okA := topFields(old)
	nk, nv, okB := topFields(new)
	if !okA || !okB {
		return nil, false
	}
	key := func(k []byte) (string, bool) {
		var s string
		if bytes.IndexByte(k, '\\') < 0 {
			return string(k[1 : len(k)-1]), true
		}
		if json.Unmarshal(k, &s) != nil {
			return "", false
		}
		return s, true
	}
	if len(ok1) == len(nk) {
		// The same fields in the same order (the same struct written
		// twice): compared in step, no map of the fields.
		out := map[string]json.RawMessage{}
		same := true
		for i := range ok1 {
			if !bytes.Equal(ok1[i], nk[i]) {
				same = false
				break
			}
			if !bytes.Equal(ov[i], nv[i]) {
				s, ok := key(ok1[i])
				if !ok {
					return nil, false
				}
				out[s] = json.RawMessage(bytes.Clone(ov[i]))
			}
		}
		if same {
			return out, true
		}
	}
	newByKey := make(map[string][]byte, len(nk))
	for i, k := range nk {
		s, ok := key(k)
		if !ok {
			return nil, false
		}
		newByKey[s] = nv[i]
	}
	out := map[string]json.RawMessage{}
	seen := 0
	for i, k := range ok1 {
		s, ok := key(k)
		if !ok {
			return nil, false
		}
		w, in := newByKey[s]
		if in {
			seen++
		}
		if !in || !bytes.Equal(ov[i], w) {
			out[s] = json.RawMessage(bytes.Clone(ov[i]))
		}
	}
	if seen != len(newByKey) {
		oldKeys := make(map[string]bool, len(ok1))
		for _, k := range ok1 {
			s, _ := key(k)
			oldKeys[s] = true
		}
		for s := range newByKey {
			if !oldKeys[s] {
				out[s] = nil
			}
		}
	}
	return out, true
}
