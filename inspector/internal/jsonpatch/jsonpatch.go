// Package jsonpatch applies RFC 6902 JSON Patch operations (add, remove,
// replace, test) to decoded JSON documents (map[string]any / []any), as
// inspection rules change nodes and the rules API patches rules.
package jsonpatch

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// ErrInvalid: an operation is malformed or its path does not resolve.
var ErrInvalid = errors.New("invalid JSON patch")

// Op is one operation.
type Op struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// Split turns a JSON pointer ("/a/b~1c") into its unescaped tokens. A path
// without a leading slash is accepted as relative to the root.
func Split(path string) []string {
	p := strings.TrimPrefix(path, "/")
	if p == "" {
		return nil
	}
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	return parts
}

// Apply applies ops in order to doc (which must be an object) and returns
// it. doc is changed in place.
func Apply(doc map[string]any, ops []Op) (map[string]any, error) {
	for i, op := range ops {
		parts := Split(op.Path)
		if len(parts) == 0 {
			return nil, fmt.Errorf("jsonpatch: %w: operation %d: path %q must name a field", ErrInvalid, i, op.Path)
		}
		var err error
		switch op.Op {
		case "add":
			err = put(doc, parts, op.Value, true)
		case "replace":
			err = put(doc, parts, op.Value, false)
		case "remove":
			err = remove(doc, parts)
		case "test":
			var got any
			got, err = Get(doc, parts)
			if err == nil && !reflect.DeepEqual(got, op.Value) {
				err = fmt.Errorf("value at %s differs", op.Path)
			}
		default:
			err = fmt.Errorf("unsupported op %q (add, remove, replace, test)", op.Op)
		}
		if err != nil {
			return nil, fmt.Errorf("jsonpatch: %w: operation %d (%s %s): %v", ErrInvalid, i, op.Op, op.Path, err)
		}
	}
	return doc, nil
}

// Get returns the value at parts.
func Get(doc any, parts []string) (any, error) {
	cur := doc
	for _, p := range parts {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[p]
			if !ok {
				return nil, fmt.Errorf("no field %q", p)
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("no index %q", p)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("%q is not inside an object or a list", p)
		}
	}
	return cur, nil
}

// parent returns the container holding the last token, creating missing
// intermediate objects when create is set (Ironic's patches add into
// nested dictionaries such as properties/capabilities freely).
func parent(doc map[string]any, parts []string, create bool) (any, error) {
	var cur any = doc
	for _, p := range parts[:len(parts)-1] {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[p]
			if !ok || v == nil {
				if !create {
					return nil, fmt.Errorf("no field %q", p)
				}
				v = map[string]any{}
				c[p] = v
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("no index %q", p)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("%q is not inside an object or a list", p)
		}
	}
	return cur, nil
}

func put(doc map[string]any, parts []string, v any, add bool) error {
	par, err := parent(doc, parts, add)
	if err != nil {
		return err
	}
	last := parts[len(parts)-1]
	switch c := par.(type) {
	case map[string]any:
		if _, ok := c[last]; !ok && !add {
			return fmt.Errorf("no field %q to replace", last)
		}
		c[last] = v
		return nil
	case []any:
		// Lists are replaced through their parent so appends are visible.
		i := len(c)
		if last != "-" {
			i, err = strconv.Atoi(last)
			if err != nil || i < 0 || i > len(c) || (!add && i == len(c)) {
				return fmt.Errorf("no index %q", last)
			}
		} else if !add {
			return fmt.Errorf("cannot replace %q", last)
		}
		var nl []any
		if add {
			nl = append(append(append([]any{}, c[:i]...), v), c[i:]...)
		} else {
			nl = append([]any{}, c...)
			nl[i] = v
		}
		return setParent(doc, parts[:len(parts)-1], nl)
	}
	return fmt.Errorf("%q is not inside an object or a list", last)
}

func remove(doc map[string]any, parts []string) error {
	par, err := parent(doc, parts, false)
	if err != nil {
		return err
	}
	last := parts[len(parts)-1]
	switch c := par.(type) {
	case map[string]any:
		if _, ok := c[last]; !ok {
			return fmt.Errorf("no field %q to remove", last)
		}
		delete(c, last)
		return nil
	case []any:
		i, err := strconv.Atoi(last)
		if err != nil || i < 0 || i >= len(c) {
			return fmt.Errorf("no index %q", last)
		}
		nl := append(append([]any{}, c[:i]...), c[i+1:]...)
		return setParent(doc, parts[:len(parts)-1], nl)
	}
	return fmt.Errorf("%q is not inside an object or a list", last)
}

func setParent(doc map[string]any, parts []string, v any) error {
	if len(parts) == 0 {
		return errors.New("the document root is not a list")
	}
	return put(doc, parts, v, false)
}
