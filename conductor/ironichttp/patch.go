package ironichttp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/python"
)

// PatchOp is one JSON Patch operation (RFC 6902). The API restricts ops as
// Ironic does (add, replace, remove); rule actions may also test.
type PatchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value,omitempty"`
	raw   map[string]any
}

// Raw is the op as the client sent it (decoded JSON), for messages that
// quote it.
func (p PatchOp) Raw() map[string]any { return p.raw }

// Root is the top-level field the op touches.
func (p PatchOp) Root() string {
	r, _, _ := strings.Cut(strings.TrimPrefix(p.Path, "/"), "/")
	return r
}

func badRequest(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, format, args...)
}

// ParsePatch decodes and validates a patch document with the messages of
// Ironic's patch schema.
func ParsePatch(body []byte) ([]PatchOp, *Error) {
	var raw any
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, &Error{Code: http.StatusBadRequest, Msg: "Invalid JSON in request body: " + err.Error()}
	}
	if e := PatchSchema.Validate("patch", raw); e != nil {
		return nil, e
	}
	list := raw.([]any)
	ops := make([]PatchOp, 0, len(list))
	for _, item := range list {
		m := item.(map[string]any)
		op, path := m["op"].(string), m["path"].(string)
		p := PatchOp{Op: op, Path: path, raw: m}
		if v, ok := m["value"]; ok {
			p.Value, _ = json.Marshal(v)
		}
		ops = append(ops, p)
	}
	return ops, nil
}

// PatchSchema is Ironic's schema of a PATCH body (ironic.common.args.patch).
var PatchSchema = &Schema{Type: []string{"array"}, Items: &Schema{
	Type: []string{"object"},
	Properties: []Prop{
		{"path", &Schema{Type: []string{"string"}, Pattern: `^(/[\w-]+)+$`}},
		{"op", &Schema{Type: []string{"string"}, Enum: []any{"add", "replace", "remove"}}},
		{"value", &Schema{}},
	},
	NoAdditional: true,
	Required:     []string{"op", "path"},
}}

// ApplyPatch applies parsed ops in order to doc (a JSON object decoded
// into maps), returning Ironic's "Couldn't apply patch" error on failure.
func ApplyPatch(doc map[string]any, ops []PatchOp) *Error {
	for _, op := range ops {
		var value any
		if op.Op != "remove" {
			if op.Value == nil {
				return badRequest("Couldn't apply patch '%s'. Reason: The operation does not contain a 'value' member", python.Repr(op.raw))
			}
			if err := json.Unmarshal(op.Value, &value); err != nil {
				return badRequest("Couldn't apply patch '%s'. Reason: %s", python.Repr(op.raw), err)
			}
		}
		if err := apply(doc, strings.Split(op.Path[1:], "/"), op.Op, op.Path, value, false); err != nil {
			return badRequest("Couldn't apply patch '%s'. Reason: %s", python.Repr(op.raw), err)
		}
	}
	return nil
}

// ErrInvalidPatch: an operation is malformed or its path does not resolve.
var ErrInvalidPatch = errors.New("invalid JSON patch")

// Op is one operation with a decoded value, as inspection rules write
// them.
type Op struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// SplitPointer turns a JSON pointer ("/a/b~1c") into its unescaped
// tokens. A path without a leading slash is taken from the root.
func SplitPointer(path string) []string {
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

// Apply applies ops in order to doc, as rule actions change nodes: add
// creates missing intermediate objects (Ironic's patches add into nested
// dictionaries such as properties/capabilities freely), test compares,
// and pointers may be escaped. doc is changed in place.
func Apply(doc map[string]any, ops []Op) (map[string]any, error) {
	for i, op := range ops {
		parts := SplitPointer(op.Path)
		if len(parts) == 0 {
			return nil, fmt.Errorf("jsonpatch: %w: operation %d: path %q must name a field", ErrInvalidPatch, i, op.Path)
		}
		if err := apply(doc, parts, op.Op, op.Path, op.Value, true); err != nil {
			return nil, fmt.Errorf("jsonpatch: %w: operation %d (%s %s): %v", ErrInvalidPatch, i, op.Op, op.Path, err)
		}
	}
	return doc, nil
}

// apply runs one op with python-jsonpatch's messages. Lists are replaced
// in their holder, so an append is visible through the document.
func apply(doc map[string]any, segs []string, op, path string, value any, create bool) error {
	switch op {
	case "add", "replace", "remove", "test":
	default:
		return fmt.Errorf("unsupported op %q (add, remove, replace, test)", op)
	}
	var parent any = doc
	var setParent func(any)
	for _, s := range segs[:len(segs)-1] {
		switch p := parent.(type) {
		case map[string]any:
			next, ok := p[s]
			if !ok || next == nil {
				if !create || op != "add" {
					return fmt.Errorf("can't resolve path %s: member '%s' not found", path, s)
				}
				next = map[string]any{}
				p[s] = next
			}
			m, k := p, s
			setParent = func(v any) { m[k] = v }
			parent = next
		case []any:
			i, err := strconv.Atoi(s)
			if err != nil || i < 0 || i >= len(p) {
				return fmt.Errorf("can't resolve path %s: index '%s' out of range", path, s)
			}
			l, j := p, i
			setParent = func(v any) { l[j] = v }
			parent = p[i]
		default:
			return fmt.Errorf("can't resolve path %s: '%s' is not a container", path, s)
		}
	}
	last := segs[len(segs)-1]
	switch p := parent.(type) {
	case map[string]any:
		old, exists := p[last]
		switch op {
		case "add":
			p[last] = value
		case "replace":
			if !exists {
				return fmt.Errorf("can't replace a non-existent object '%s'", last)
			}
			p[last] = value
		case "remove":
			if !exists {
				return fmt.Errorf("can't remove a non-existent object '%s'", last)
			}
			delete(p, last)
		case "test":
			if !exists || !reflect.DeepEqual(old, value) {
				return fmt.Errorf("value at %s is not equal to the tested value", path)
			}
		}
		return nil
	case []any:
		idx := len(p)
		if last != "-" {
			i, err := strconv.Atoi(last)
			if err != nil || i < 0 || i > len(p) || (op != "add" && i == len(p)) {
				return fmt.Errorf("index '%s' out of range", last)
			}
			idx = i
		} else if op != "add" {
			return fmt.Errorf("index '-' out of range")
		}
		var nl []any
		switch op {
		case "add":
			nl = append(append(append(make([]any, 0, len(p)+1), p[:idx]...), value), p[idx:]...)
		case "replace":
			nl = append([]any{}, p...)
			nl[idx] = value
		case "remove":
			nl = append(append([]any{}, p[:idx]...), p[idx+1:]...)
		case "test":
			if !reflect.DeepEqual(p[idx], value) {
				return fmt.Errorf("value at %s is not equal to the tested value", path)
			}
			return nil
		}
		setParent(nl)
		return nil
	default:
		return fmt.Errorf("can't resolve path %s", path)
	}
}
