package api

import (
	"encoding/json"
	"slices"

	"fmt"
	"github.com/labstack/echo/v4"
	"regexp"
	"strconv"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/python"
)

// patchOp is one JSON Patch operation (RFC 6902), restricted as Ironic
// restricts it: only add, replace and remove.
type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value,omitempty"`
	raw   map[string]any
}

var segmentRE = regexp.MustCompile(`^[\w-]+$`)

// parsePatch decodes and validates a patch document.
func parsePatch(body []byte) ([]patchOp, *Error) {
	var raw any
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, &Error{Code: 400, Msg: "Invalid JSON in request body: " + err.Error()}
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, badRequest("Schema error for patch: %s is not of type 'array'", python.Repr(raw))
	}
	ops := make([]patchOp, 0, len(list))
	for _, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, badRequest("Schema error for patch: %s is not of type 'object'", python.Repr(item))
		}
		op, _ := m["op"].(string)
		path, _ := m["path"].(string)
		switch op {
		case "add", "replace", "remove":
		default:
			return nil, badRequest("Schema error for patch: %s is not one of ['add', 'replace', 'remove']", python.Repr(m["op"]))
		}
		if _, ok := m["path"].(string); !ok {
			return nil, badRequest("Schema error for patch: 'path' is a required property")
		}
		if op != "remove" {
			if _, ok := m["value"]; !ok {
				return nil, badRequest("Schema error for patch: 'value' is a required property")
			}
		}
		if !strings.HasPrefix(path, "/") || path == "/" {
			return nil, badRequest("Schema error for patch: %s does not match '^(/[\\\\w-]+)+$'", python.Repr(path))
		}
		for _, seg := range strings.Split(path[1:], "/") {
			if !segmentRE.MatchString(seg) {
				return nil, badRequest("Schema error for patch: %s does not match '^(/[\\\\w-]+)+$'", python.Repr(path))
			}
		}
		p := patchOp{Op: op, Path: path, raw: m}
		if v, ok := m["value"]; ok {
			p.Value, _ = json.Marshal(v)
		}
		ops = append(ops, p)
	}
	return ops, nil
}

// readPatch reads a PATCH body and checks that every op touches one of
// the patchable top-level fields.
func readPatch(c echo.Context, patchable []string) ([]patchOp, error) {
	body, err := readBody(c)
	if err != nil {
		return nil, err
	}
	ops, perr := parsePatch(body)
	if perr != nil {
		return nil, perr
	}
	for _, op := range ops {
		if !slices.Contains(patchable, op.root()) {
			return nil, badRequest("Cannot patch %s. Only the following can be updated: %s", op.Path, strings.Join(patchable, ", "))
		}
	}
	return ops, nil
}

// root is the top-level field a patch op touches.
func (p patchOp) root() string {
	r, _, _ := strings.Cut(p.Path[1:], "/")
	return r
}

// applyPatch applies ops in order to doc (a JSON object decoded into
// maps), returning Ironic's "Couldn't apply patch" error on failure.
func applyPatch(doc map[string]any, ops []patchOp) *Error {
	for _, op := range ops {
		if err := applyOne(doc, op); err != nil {
			return badRequest("Couldn't apply patch '%s'. Reason: %s", python.Repr(op.raw), err)
		}
	}
	return nil
}

func applyOne(doc map[string]any, op patchOp) error {
	segs := strings.Split(op.Path[1:], "/")
	var value any
	if op.Op != "remove" {
		if err := json.Unmarshal(op.Value, &value); err != nil {
			return err
		}
	}
	var parent any = doc
	for _, s := range segs[:len(segs)-1] {
		switch p := parent.(type) {
		case map[string]any:
			next, ok := p[s]
			if !ok || next == nil {
				return fmt.Errorf("can't resolve path %s: member '%s' not found", op.Path, s)
			}
			parent = next
		case []any:
			i, err := strconv.Atoi(s)
			if err != nil || i < 0 || i >= len(p) {
				return fmt.Errorf("can't resolve path %s: index '%s' out of range", op.Path, s)
			}
			parent = p[i]
		default:
			return fmt.Errorf("can't resolve path %s: '%s' is not a container", op.Path, s)
		}
	}
	last := segs[len(segs)-1]
	switch p := parent.(type) {
	case map[string]any:
		_, exists := p[last]
		switch op.Op {
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
		}
		return nil
	case []any:
		// Arrays are replaced in their parent; find the parent's handle.
		return patchArray(doc, segs, op, value)
	default:
		return fmt.Errorf("can't resolve path %s", op.Path)
	}
}

func patchArray(doc map[string]any, segs []string, op patchOp, value any) error {
	// Walk to the container holding the array so it can be replaced.
	var holder any = doc
	for _, s := range segs[:len(segs)-2] {
		switch h := holder.(type) {
		case map[string]any:
			holder = h[s]
		case []any:
			i, _ := strconv.Atoi(s)
			holder = h[i]
		}
	}
	key := segs[len(segs)-2]
	var arr []any
	switch h := holder.(type) {
	case map[string]any:
		arr, _ = h[key].([]any)
	case []any:
		i, _ := strconv.Atoi(key)
		arr, _ = h[i].([]any)
	}
	last := segs[len(segs)-1]
	idx := len(arr)
	if last != "-" {
		i, err := strconv.Atoi(last)
		if err != nil || i < 0 || i > len(arr) || (op.Op != "add" && i == len(arr)) {
			return fmt.Errorf("index '%s' out of range", last)
		}
		idx = i
	} else if op.Op != "add" {
		return fmt.Errorf("index '-' out of range")
	}
	switch op.Op {
	case "add":
		arr = append(arr[:idx], append([]any{value}, arr[idx:]...)...)
	case "replace":
		arr[idx] = value
	case "remove":
		arr = append(arr[:idx], arr[idx+1:]...)
	}
	switch h := holder.(type) {
	case map[string]any:
		h[key] = arr
	case []any:
		i, _ := strconv.Atoi(key)
		h[i] = arr
	}
	return nil
}
