// Package rules holds inspection rules: their JSON form (Ironic's built-in
// inspection rules of API 1.96 and, converted on parse, ironic-inspector's
// legacy rules), their validation, their evaluation against a node's
// inventory, plugin data and fields, and the Store the conductor keeps them in.
//
// Evaluation is pure: Apply works on copies and returns the changes (a JSON
// Patch for the node, traits to add and remove, the new plugin data, log
// lines) for the conductor to persist.
package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Errors. Match them with errors.Is.
var (
	// ErrInvalidRule: the rule body does not validate (400).
	ErrInvalidRule = errors.New("invalid inspection rule")
	// ErrEvaluation: a condition or action could not be evaluated (for
	// example ordering a string against a number, or a bad subnet).
	ErrEvaluation = errors.New("inspection rule evaluation failed")
	// ErrFailed: a "fail" action fired; inspection must fail with its message.
	ErrFailed = errors.New("inspection failed by rule")
	// ErrNotFound: no rule with that UUID.
	ErrNotFound = errors.New("inspection rule not found")
	// ErrExists: a rule with that UUID already exists.
	ErrExists = errors.New("inspection rule already exists")
)

// PhaseMain is the only inspection phase rules run in.
const PhaseMain = "main"

// MaxPriority is the highest priority a user-defined rule may have.
const MaxPriority = 9999

// Rule is one inspection rule.
type Rule struct {
	UUID        string      `json:"uuid,omitempty"`
	Description string      `json:"description,omitempty"`
	Priority    int         `json:"priority"`
	Sensitive   bool        `json:"sensitive"`
	Phase       string      `json:"phase"`
	Scope       string      `json:"scope,omitempty"`
	Conditions  []Condition `json:"conditions"`
	Actions     []Action    `json:"actions"`
	// CreatedAt and UpdatedAt are kept by the Store (not part of the
	// rule body; the API renders them).
	CreatedAt time.Time  `json:"-"`
	UpdatedAt *time.Time `json:"-"`
}

// Condition is one test; a rule's actions run when all its conditions hold.
// Op may start with "!" to invert it. Args are formatted with the
// {inventory[...]}, {plugin_data[...]}, {node.field} and {item} syntax.
// Loop repeats the check for each item (available as {item}), combined by
// Multiple: any (default), all, first or last; it is a list, an object, or
// a "{reference}" to one (for example "{inventory[disks]}").
//
// Field is set by rules converted from ironic-inspector's format
// ("data://inventory.cpu.count", "node://properties.cpus"): the field's
// value(s) become the left-hand operand and Multiple combines them.
type Condition struct {
	Op       string         `json:"op"`
	Args     map[string]any `json:"args,omitempty"`
	Loop     any            `json:"loop,omitempty"`
	Multiple string         `json:"multiple,omitempty"`
	Field    string         `json:"field,omitempty"`
}

// Action is one change. Loop repeats it for each item.
type Action struct {
	Op   string         `json:"op"`
	Args map[string]any `json:"args,omitempty"`
	Loop any            `json:"loop,omitempty"`
}

type argSpec struct {
	required []string
	optional []string
}

var operators = map[string]argSpec{
	"eq":       {required: []string{"values"}, optional: []string{"force_strings"}},
	"ne":       {required: []string{"values"}, optional: []string{"force_strings"}},
	"lt":       {required: []string{"values"}, optional: []string{"force_strings"}},
	"gt":       {required: []string{"values"}, optional: []string{"force_strings"}},
	"le":       {required: []string{"values"}, optional: []string{"force_strings"}},
	"ge":       {required: []string{"values"}, optional: []string{"force_strings"}},
	"is-empty": {required: []string{"value"}},
	"in-net":   {required: []string{"address", "subnet"}},
	"matches":  {required: []string{"value", "regex"}},
	"contains": {required: []string{"value", "regex"}},
	"one-of":   {required: []string{"value"}, optional: []string{"values"}},
	"is-none":  {required: []string{"value"}},
	"is-true":  {required: []string{"value"}},
	"is-false": {required: []string{"value"}},
}

var actions = map[string]argSpec{
	"fail":               {required: []string{"msg"}},
	"log":                {required: []string{"msg"}, optional: []string{"level"}},
	"set-attribute":      {required: []string{"path", "value"}},
	"extend-attribute":   {required: []string{"path", "value"}, optional: []string{"unique"}},
	"del-attribute":      {required: []string{"path"}},
	"set-capability":     {required: []string{"name"}, optional: []string{"value"}},
	"unset-capability":   {required: []string{"name"}},
	"add-trait":          {required: []string{"name"}},
	"remove-trait":       {required: []string{"name"}},
	"set-plugin-data":    {required: []string{"path", "value"}},
	"extend-plugin-data": {required: []string{"path", "value"}, optional: []string{"unique"}},
	"unset-plugin-data":  {required: []string{"path"}},
}

var logLevels = map[string]bool{"debug": true, "info": true, "warning": true, "error": true, "critical": true}

// Operators returns the names of the condition operators.
func Operators() []string { return sortedKeys(operators) }

// Actions returns the names of the actions.
func Actions() []string { return sortedKeys(actions) }

// parseOp splits an optional leading "!" from an operator.
func parseOp(op string) (string, bool, error) {
	op = strings.TrimSpace(op)
	if strings.Count(op, "!") > 1 {
		return "", false, fmt.Errorf("operator %q: only one leading ! may invert an operator", op)
	}
	inv := strings.HasPrefix(op, "!")
	return strings.TrimSpace(strings.TrimPrefix(op, "!")), inv, nil
}

// Parse decodes and validates a rule body. It accepts Ironic's format and
// ironic-inspector's (conditions with "field", actions with "action"),
// converting the latter.
func Parse(b []byte) (Rule, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return Rule{}, fmt.Errorf("rules: %w: body is not a JSON object: %w", ErrInvalidRule, err)
	}
	var r Rule
	if isLegacy(probe) {
		lr, err := parseLegacy(b)
		if err != nil {
			return Rule{}, err
		}
		r = lr
	} else {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			return Rule{}, fmt.Errorf("rules: %w: %w", ErrInvalidRule, err)
		}
	}
	if r.Phase == "" {
		r.Phase = PhaseMain
	}
	if err := Validate(r); err != nil {
		return Rule{}, err
	}
	return r, nil
}

// Validate checks a rule: known operators and actions with exactly their
// arguments, valid multiple values, regular expressions that compile, a
// priority in 0..9999 and the main phase.
func Validate(r Rule) error {
	var errs []string
	if r.Phase != "" && r.Phase != PhaseMain {
		errs = append(errs, fmt.Sprintf("invalid phase %q, the only valid phase is %q", r.Phase, PhaseMain))
	}
	if r.Priority < 0 || r.Priority > MaxPriority {
		errs = append(errs, fmt.Sprintf("priority %d must be between 0 and %d", r.Priority, MaxPriority))
	}
	if len(r.Actions) == 0 {
		errs = append(errs, "at least one action is required")
	}
	for i, c := range r.Conditions {
		op, _, err := parseOp(c.Op)
		if err != nil {
			errs = append(errs, fmt.Sprintf("conditions[%d]: %v", i, err))
			continue
		}
		spec, ok := operators[op]
		if !ok {
			errs = append(errs, fmt.Sprintf("conditions[%d]: unsupported operator %q; supported: %s", i, op, strings.Join(Operators(), ", ")))
			continue
		}
		if c.Field != "" {
			if _, _, err := splitField(c.Field); err != nil {
				errs = append(errs, fmt.Sprintf("conditions[%d]: %v", i, err))
			}
		} else if msg := checkArgs(spec, c.Args); msg != "" {
			errs = append(errs, fmt.Sprintf("conditions[%d] (%s): %s", i, op, msg))
		}
		switch c.Multiple {
		case "", "any", "all", "first", "last":
		default:
			errs = append(errs, fmt.Sprintf("conditions[%d]: multiple must be any, all, first or last, not %q", i, c.Multiple))
		}
		if !validLoop(c.Loop) {
			errs = append(errs, fmt.Sprintf("conditions[%d]: loop must be a list, an object or a {reference}", i))
		}
		if re, ok := c.Args["regex"].(string); ok && (op == "matches" || op == "contains") {
			if _, err := regexp.Compile(re); err != nil {
				errs = append(errs, fmt.Sprintf("conditions[%d]: invalid regular expression: %v", i, err))
			}
		}
		if v, ok := c.Args["values"]; ok && c.Field == "" && op != "one-of" {
			if _, isList := v.([]any); !isList {
				errs = append(errs, fmt.Sprintf("conditions[%d] (%s): values must be a list", i, op))
			}
		}
	}
	for i, a := range r.Actions {
		spec, ok := actions[a.Op]
		if !ok {
			errs = append(errs, fmt.Sprintf("actions[%d]: unsupported action %q; supported: %s", i, a.Op, strings.Join(Actions(), ", ")))
			continue
		}
		if msg := checkArgs(spec, a.Args); msg != "" {
			errs = append(errs, fmt.Sprintf("actions[%d] (%s): %s", i, a.Op, msg))
		}
		if !validLoop(a.Loop) {
			errs = append(errs, fmt.Sprintf("actions[%d]: loop must be a list, an object or a {reference}", i))
		}
		if lvl, ok := a.Args["level"].(string); ok && !logLevels[strings.ToLower(lvl)] {
			errs = append(errs, fmt.Sprintf("actions[%d]: invalid log level %q", i, lvl))
		}
		for _, k := range []string{"path", "name"} {
			if v, ok := a.Args[k]; ok {
				if s, isStr := v.(string); !isStr || strings.Trim(s, "/.") == "" {
					errs = append(errs, fmt.Sprintf("actions[%d] (%s): %s must be a non-empty string", i, a.Op, k))
				}
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("rules: %w: %s", ErrInvalidRule, strings.Join(errs, "; "))
	}
	return nil
}

func validLoop(l any) bool {
	switch x := l.(type) {
	case nil, []any, map[string]any:
		return true
	case string:
		return strings.HasPrefix(x, "{") && strings.HasSuffix(x, "}")
	}
	return false
}

func checkArgs(spec argSpec, args map[string]any) string {
	var missing, unexpected []string
	for _, k := range spec.required {
		if _, ok := args[k]; !ok {
			missing = append(missing, k)
		}
	}
	for _, k := range sortedKeys(args) {
		if !contains(spec.required, k) && !contains(spec.optional, k) {
			unexpected = append(unexpected, k)
		}
	}
	var msg []string
	if len(missing) > 0 {
		msg = append(msg, "missing required argument(s): "+strings.Join(missing, ", "))
	}
	if len(unexpected) > 0 {
		msg = append(msg, "unexpected argument(s): "+strings.Join(unexpected, ", "))
	}
	return strings.Join(msg, "; ")
}
