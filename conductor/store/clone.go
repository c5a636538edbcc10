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

// members reads the top-level members of a JSON object as json.Marshal
// writes it (no white space) one at a time, without decoding them.
type members struct {
	raw  []byte
	i    int // where the next member starts (0: before the object)
	bad  bool
	done bool
}

// next returns the next member; ok is false at the end of the object, or
// at anything else than such an object (then bad is set).
func (m *members) next() (key, val []byte, ok bool) {
	raw := m.raw
	if m.bad || m.done {
		return nil, nil, false
	}
	if m.i == 0 {
		if len(raw) < 2 || raw[0] != '{' || raw[len(raw)-1] != '}' {
			m.bad = true
			return nil, nil, false
		}
		if raw[1] == '}' {
			m.bad, m.done = len(raw) != 2, true
			return nil, nil, false
		}
		m.i = 1
	}
	i := m.i
	// key
	if raw[i] != '"' {
		m.bad = true
		return nil, nil, false
	}
	end := skipString(raw, i)
	if end < 0 || end >= len(raw) || raw[end] != ':' {
		m.bad = true
		return nil, nil, false
	}
	key = raw[i:end]
	i = end + 1
	// value: up to the ',' or '}' at depth 0
	start, depth := i, 0
	for i < len(raw) {
		c := raw[i]
		if c == '"' {
			if i = skipString(raw, i); i < 0 {
				m.bad = true
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
		m.bad = true
		return nil, nil, false
	}
	val = raw[start:i]
	if raw[i] == '}' {
		m.bad, m.done = i != len(raw)-1, true
		if m.bad {
			return nil, nil, false
		}
	}
	m.i = i + 1
	return key, val, true
}

// topFields splits the JSON object raw, as json.Marshal writes it (no
// white space), into its top-level members, without decoding them; ok is
// false for anything else.
func topFields(raw []byte) (keys [][]byte, vals [][]byte, ok bool) {
	m := members{raw: raw}
	for {
		k, v, more := m.next()
		if !more {
			return keys, vals, !m.bad
		}
		keys, vals = append(keys, k), append(vals, v)
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
	// The same fields in the same order (the same struct written twice):
	// read in step, nothing kept but the changed fields.
	out := map[string]json.RawMessage{}
	for a, b := (members{raw: old}), (members{raw: new}); ; {
		ka, va, okA := a.next()
		kb, vb, okB := b.next()
		if !okA || !okB {
			if okA == okB && !a.bad && !b.bad {
				return out, true
			}
			break
		}
		if !bytes.Equal(ka, kb) {
			break
		}
		if !bytes.Equal(va, vb) {
			s, ok := key(ka)
			if !ok {
				return nil, false
			}
			out[s] = json.RawMessage(bytes.Clone(va))
		}
	}
	ok1, ov, okA := topFields(old)
	nk, nv, okB := topFields(new)
	if !okA || !okB {
		return nil, false
	}
	clear(out)
	newByKey := make(map[string][]byte, len(nk))
	for i, k := range nk {
		s, ok := key(k)
		if !ok {
			return nil, false
		}
		newByKey[s] = nv[i]
	}
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
