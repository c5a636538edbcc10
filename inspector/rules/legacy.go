package rules

import (
	"encoding/json"
	"fmt"
	"strings"
)

// ironic-inspector's rule format.
type legacyRule struct {
	UUID        string            `json:"uuid"`
	Description string            `json:"description"`
	Scope       string            `json:"scope"`
	Conditions  []legacyCondition `json:"conditions"`
	Actions     []map[string]any  `json:"actions"`
}

type legacyCondition struct {
	Op       string `json:"op"`
	Field    string `json:"field"`
	Value    any    `json:"value"`
	Multiple string `json:"multiple"`
	Invert   bool   `json:"invert"`
}

// isLegacy reports whether a rule body is in ironic-inspector's format: an
// action with an "action" key, or a condition with a "field".
func isLegacy(top map[string]json.RawMessage) bool {
	var conds []map[string]json.RawMessage
	_ = json.Unmarshal(top["conditions"], &conds)
	for _, c := range conds {
		if _, ok := c["field"]; ok {
			return true
		}
	}
	var acts []map[string]json.RawMessage
	_ = json.Unmarshal(top["actions"], &acts)
	for _, a := range acts {
		if _, ok := a["action"]; ok {
			return true
		}
	}
	return false
}

// legacy argument names that differ from Ironic's.
var legacyArgNames = map[string]map[string]string{
	"fail": {"message": "msg"},
}

func parseLegacy(b []byte) (Rule, error) {
	var lr legacyRule
	if err := json.Unmarshal(b, &lr); err != nil {
		return Rule{}, fmt.Errorf("rules: %w: %w", ErrInvalidRule, err)
	}
	r := Rule{UUID: lr.UUID, Description: lr.Description, Scope: lr.Scope, Phase: PhaseMain}
	for i, c := range lr.Conditions {
		if c.Field == "" {
			return Rule{}, fmt.Errorf("rules: %w: conditions[%d]: field is required", ErrInvalidRule, i)
		}
		op := c.Op
		if c.Invert {
			op = "!" + op
		}
		nc := Condition{Op: op, Field: c.Field, Multiple: c.Multiple}
		if c.Value != nil {
			nc.Args = map[string]any{"value": c.Value}
		}
		r.Conditions = append(r.Conditions, nc)
	}
	for i, a := range lr.Actions {
		name, ok := a["action"].(string)
		if !ok {
			return Rule{}, fmt.Errorf("rules: %w: actions[%d]: action must be a string", ErrInvalidRule, i)
		}
		args := map[string]any{}
		for k, v := range a {
			if k == "action" {
				continue
			}
			if n, ok := legacyArgNames[name][k]; ok {
				k = n
			}
			args[k] = v
		}
		r.Actions = append(r.Actions, Action{Op: name, Args: args})
	}
	return r, nil
}

// splitField splits "data://inventory.cpu.count" into its scheme and path.
func splitField(f string) (scheme, path string, err error) {
	scheme, path, ok := strings.Cut(f, "://")
	if !ok {
		// ironic-inspector treats a bare path as data://.
		return "data", f, nil
	}
	if scheme != "data" && scheme != "node" {
		return "", "", fmt.Errorf("field %q: scheme must be data:// or node://", f)
	}
	if path == "" {
		return "", "", fmt.Errorf("field %q: empty path", f)
	}
	return scheme, path, nil
}
