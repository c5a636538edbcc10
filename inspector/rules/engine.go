package rules

import (
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// PatchOp is one RFC 6902 operation on the node's API JSON.
type PatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// LogEntry is a line a "log" action asked for.
type LogEntry struct {
	Rule  string
	Level string
	Msg   string
}

// Changes is what applying rules asks the conductor to do.
type Changes struct {
	// Patch changes node fields, in order ("add" and "remove" only).
	Patch []PatchOp
	// AddTraits and RemoveTraits change the node's traits.
	AddTraits    []string
	RemoveTraits []string
	// PluginData is the plugin data after set/extend/unset-plugin-data.
	PluginData map[string]any
	Logs       []LogEntry
	// Applied lists the rules (UUID, or description when there is none)
	// whose conditions held, in the order they ran.
	Applied []string
}

// Apply runs rules by descending priority (stable for equal priorities)
// against c and returns the accumulated changes. The error wraps ErrFailed
// when a "fail" action fired and ErrEvaluation when a condition or action
// could not be evaluated; the changes made before are returned with it.
func Apply(rs []Rule, c Context) (Changes, error) {
	st := &state{
		node:   asMap(deepCopy(c.Node)),
		plugin: asMap(deepCopy(c.PluginData)),
		traits: slices.Clone(c.Traits),
		origT:  slices.Clone(c.Traits),
	}
	st.ctx = Context{Node: st.node, Inventory: c.Inventory, PluginData: st.plugin, Data: c.Data}
	if st.ctx.Data == nil {
		st.ctx.Data = map[string]any{"inventory": c.Inventory}
		for k, v := range c.PluginData {
			st.ctx.Data[k] = v
		}
	}
	ordered := slices.Clone(rs)
	sort.SliceStable(ordered, func(i, j int) bool { return ordered[i].Priority > ordered[j].Priority })
	var err error
	for _, r := range ordered {
		name := r.UUID
		if name == "" {
			name = r.Description
		}
		var ok bool
		ok, err = st.check(r)
		if err != nil {
			err = fmt.Errorf("rules: rule %s: %w", name, err)
			break
		}
		if !ok {
			continue
		}
		st.ch.Applied = append(st.ch.Applied, name)
		if err = st.act(r, name); err != nil {
			err = fmt.Errorf("rules: rule %s: %w", name, err)
			break
		}
	}
	st.ch.PluginData = st.plugin
	for _, t := range st.traits {
		if !slices.Contains(st.origT, t) {
			st.ch.AddTraits = append(st.ch.AddTraits, t)
		}
	}
	for _, t := range st.origT {
		if !slices.Contains(st.traits, t) {
			st.ch.RemoveTraits = append(st.ch.RemoveTraits, t)
		}
	}
	return st.ch, err
}

type state struct {
	ctx           Context
	node, plugin  map[string]any
	traits, origT []string
	ch            Changes
}

func asMap(v any) map[string]any {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	return map[string]any{}
}

// loopItems returns the items of a loop and whether there is one. A loop
// given as a "{reference}" string is resolved first (so a rule may loop over
// "{inventory[disks]}").
func (st *state) loopItems(l any) ([]any, bool) {
	if s, ok := l.(string); ok {
		l = interpolate(s, st.ctx.roots(nil, false), false)
	}
	switch x := l.(type) {
	case []any:
		return x, true
	case map[string]any:
		return []any{x}, true
	}
	return nil, false
}

func (st *state) check(r Rule) (bool, error) {
	for i, c := range r.Conditions {
		ok, err := st.checkCondition(c)
		if err != nil {
			return false, fmt.Errorf("conditions[%d]: %w", i, err)
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

func combine(results []bool, multiple string) bool {
	switch multiple {
	case "all":
		for _, r := range results {
			if !r {
				return false
			}
		}
		return len(results) > 0
	case "first":
		return len(results) > 0 && results[0]
	case "last":
		return len(results) > 0 && results[len(results)-1]
	}
	return slices.Contains(results, true)
}

func (st *state) checkCondition(c Condition) (bool, error) {
	op, inverted, err := parseOp(c.Op)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrEvaluation, err)
	}
	if c.Field != "" {
		return st.checkLegacy(c, op, inverted)
	}
	items, looping := st.loopItems(c.Loop)
	if !looping {
		ok, err := st.evalOp(op, c.Args, nil, false)
		return ok != inverted, err
	}
	var results []bool
	for _, it := range items {
		ok, err := st.evalOp(op, c.Args, it, true)
		if err != nil {
			return false, err
		}
		results = append(results, ok != inverted)
	}
	return combine(results, c.Multiple), nil
}

func (st *state) checkLegacy(c Condition, op string, inverted bool) (bool, error) {
	scheme, path, err := splitField(c.Field)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrEvaluation, err)
	}
	root := any(st.ctx.Data)
	if scheme == "node" {
		root = st.node
	}
	vals := lookupField(root, path)
	roots := st.ctx.roots(nil, false)
	want := interpolate(c.Args["value"], roots, false)
	if len(vals) == 0 {
		vals = []any{nil}
	}
	var results []bool
	for _, v := range vals {
		var args map[string]any
		switch op {
		case "is-empty", "is-none", "is-true", "is-false":
			args = map[string]any{"value": v}
		case "in-net":
			args = map[string]any{"address": v, "subnet": want}
		case "matches", "contains":
			args = map[string]any{"value": v, "regex": want}
		case "one-of":
			args = map[string]any{"value": v, "values": want}
		default:
			args = map[string]any{"values": []any{v, want}}
		}
		ok, err := evalArgs(op, args)
		if err != nil {
			return false, err
		}
		results = append(results, ok)
	}
	multiple := c.Multiple
	if multiple == "" {
		multiple = "any"
	}
	return combine(results, multiple) != inverted, nil
}

func (st *state) evalOp(op string, args map[string]any, item any, hasItem bool) (bool, error) {
	roots := st.ctx.roots(item, hasItem)
	formatted := interpolate(args, roots, op == "is-empty").(map[string]any)
	if hasItem {
		formatted = interpolate(formatted, roots, op == "is-empty").(map[string]any)
	}
	if hasItem && (op == "eq" || op == "ne" || op == "lt" || op == "gt" || op == "le" || op == "ge") {
		formatted["force_strings"] = true
	}
	return evalArgs(op, formatted)
}

func evalArgs(op string, a map[string]any) (bool, error) {
	switch op {
	case "eq", "ne", "lt", "gt", "le", "ge":
		vals, ok := a["values"].([]any)
		if !ok {
			return false, fmt.Errorf("%w: %s: values must be a list, got %T", ErrEvaluation, op, a["values"])
		}
		if force, _ := a["force_strings"].(bool); force {
			for i := range vals {
				vals[i] = text(vals[i])
			}
		}
		for i := 0; i+1 < len(vals); i++ {
			ok, err := compare(op, vals[i], vals[i+1])
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case "is-empty":
		switch v := a["value"].(type) {
		case nil:
			return true, nil
		case string:
			return v == "" || v == "None" || v == "[]" || v == "{}", nil
		case []any:
			return len(v) == 0, nil
		case map[string]any:
			return len(v) == 0, nil
		}
		return false, nil
	case "is-none":
		return a["value"] == nil, nil
	case "is-true":
		switch v := a["value"].(type) {
		case bool:
			return v, nil
		case float64:
			return v != 0, nil
		case string:
			l := strings.ToLower(v)
			return l == "yes" || l == "true", nil
		}
		return false, nil
	case "is-false":
		switch v := a["value"].(type) {
		case bool:
			return !v, nil
		case float64:
			return v == 0, nil
		case string:
			l := strings.ToLower(v)
			return l == "no" || l == "false", nil
		case nil:
			return true, nil
		}
		return false, nil
	case "one-of":
		vals, _ := a["values"].([]any)
		for _, v := range vals {
			if equal(a["value"], v) {
				return true, nil
			}
		}
		return false, nil
	case "in-net":
		subnet, err := netip.ParsePrefix(text(a["subnet"]))
		if err != nil {
			return false, fmt.Errorf("%w: in-net: invalid subnet: %w", ErrEvaluation, err)
		}
		addr, err := netip.ParseAddr(text(a["address"]))
		if err != nil {
			return false, fmt.Errorf("%w: in-net: invalid address: %w", ErrEvaluation, err)
		}
		return subnet.Contains(addr), nil
	case "matches", "contains":
		re := text(a["regex"])
		if op == "matches" {
			// Anchored at both ends, as Python's re.match with a trailing $.
			re = `^(?:` + re + `)$`
		}
		rx, err := regexp.Compile(re)
		if err != nil {
			return false, fmt.Errorf("%w: %s: invalid regular expression: %w", ErrEvaluation, op, err)
		}
		return rx.MatchString(text(a["value"])), nil
	}
	return false, fmt.Errorf("%w: unsupported operator %q", ErrEvaluation, op)
}

// number returns v as a float when it is a number or a numeric string.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	}
	return 0, false
}

func equal(a, b any) bool {
	_, as := a.(string)
	_, bs := b.(string)
	if as && bs {
		return a == b
	}
	if x, ok := number(a); ok {
		if y, ok := number(b); ok {
			return x == y
		}
	}
	return reflect.DeepEqual(a, b)
}

// compare applies op to a and b. Numbers (and a number against a numeric
// string, as a formatted {reference} often is) compare numerically, strings
// lexically; ordering other mixes is an error, as in Ironic.
func compare(op string, a, b any) (bool, error) {
	switch op {
	case "eq":
		return equal(a, b), nil
	case "ne":
		return !equal(a, b), nil
	}
	var c int
	as, aIsStr := a.(string)
	bs, bIsStr := b.(string)
	x, xok := number(a)
	y, yok := number(b)
	switch {
	case aIsStr && bIsStr && !(xok && yok):
		c = strings.Compare(as, bs)
	case xok && yok:
		switch {
		case x < y:
			c = -1
		case x > y:
			c = 1
		}
	default:
		return false, fmt.Errorf("%w: %s: cannot order %s and %s", ErrEvaluation, op, text(a), text(b))
	}
	switch op {
	case "lt":
		return c < 0, nil
	case "gt":
		return c > 0, nil
	case "le":
		return c <= 0, nil
	default:
		return c >= 0, nil
	}
}

func (st *state) act(r Rule, name string) error {
	for i, a := range r.Actions {
		items, looping := st.loopItems(a.Loop)
		if !looping {
			items = []any{nil}
		}
		for _, it := range items {
			roots := st.ctx.roots(it, looping)
			args := interpolate(a.Args, roots, false).(map[string]any)
			if looping {
				// Loop items may themselves hold references.
				args = interpolate(args, roots, false).(map[string]any)
			}
			if err := st.do(a.Op, args, name); err != nil {
				return fmt.Errorf("actions[%d] (%s): %w", i, a.Op, err)
			}
		}
	}
	return nil
}

// pathParts splits "driver_info/ipmi_address", "/properties/x" or
// "properties.x".
func pathParts(p string) []string {
	if strings.Contains(p, "/") {
		return strings.Split(strings.Trim(p, "/"), "/")
	}
	return strings.Split(p, ".")
}

func pointer(parts []string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteByte('/')
		p = strings.ReplaceAll(p, "~", "~0")
		b.WriteString(strings.ReplaceAll(p, "/", "~1"))
	}
	return b.String()
}

// set stores v at parts in m, creating objects on the way, and returns the
// RFC 6902 "add" that does the same to the original: at the first segment
// that did not exist, with the subtree built below it.
func set(m map[string]any, parts []string, v any) (PatchOp, error) {
	cur := m
	for i, p := range parts[:len(parts)-1] {
		next, ok := cur[p]
		if !ok {
			sub := map[string]any{}
			var build = sub
			for _, q := range parts[i+1 : len(parts)-1] {
				n := map[string]any{}
				build[q] = n
				build = n
			}
			build[parts[len(parts)-1]] = v
			cur[p] = sub
			return PatchOp{Op: "add", Path: pointer(parts[:i+1]), Value: deepCopy(sub)}, nil
		}
		nm, ok := next.(map[string]any)
		if !ok {
			return PatchOp{}, fmt.Errorf("%w: %s is not an object", ErrEvaluation, pointer(parts[:i+1]))
		}
		cur = nm
	}
	cur[parts[len(parts)-1]] = v
	return PatchOp{Op: "add", Path: pointer(parts), Value: deepCopy(v)}, nil
}

func get(m map[string]any, parts []string) (any, bool) {
	var cur any = m
	for _, p := range parts {
		next, ok := index(cur, p)
		if !ok {
			return nil, false
		}
		cur = next
	}
	return cur, true
}

func del(m map[string]any, parts []string) bool {
	parent, ok := get(m, parts[:len(parts)-1])
	if !ok {
		return false
	}
	pm, ok := parent.(map[string]any)
	if !ok {
		return false
	}
	if _, ok := pm[parts[len(parts)-1]]; !ok {
		return false
	}
	delete(pm, parts[len(parts)-1])
	return true
}

func extend(m map[string]any, parts []string, v any, unique bool) (any, error) {
	cur, ok := get(m, parts)
	var list []any
	if ok && cur != nil {
		l, isList := cur.([]any)
		if !isList {
			return nil, fmt.Errorf("%w: cannot extend non-list attribute %s", ErrEvaluation, pointer(parts))
		}
		list = slices.Clone(l)
	}
	if !unique || !slices.ContainsFunc(list, func(e any) bool { return reflect.DeepEqual(e, v) }) {
		list = append(list, v)
	}
	return list, nil
}

func (st *state) do(op string, a map[string]any, rule string) error {
	switch op {
	case "fail":
		return fmt.Errorf("%w: %s", ErrFailed, text(a["msg"]))
	case "log":
		lvl, _ := a["level"].(string)
		if lvl == "" {
			lvl = "info"
		}
		st.ch.Logs = append(st.ch.Logs, LogEntry{Rule: rule, Level: strings.ToLower(lvl), Msg: text(a["msg"])})
	case "set-attribute":
		p, err := st.set(st.node, text(a["path"]), a["value"])
		if err != nil {
			return err
		}
		st.ch.Patch = append(st.ch.Patch, p)
	case "extend-attribute":
		parts := pathParts(text(a["path"]))
		unique, _ := a["unique"].(bool)
		list, err := extend(st.node, parts, a["value"], unique)
		if err != nil {
			return err
		}
		p, err := set(st.node, parts, list)
		if err != nil {
			return err
		}
		st.ch.Patch = append(st.ch.Patch, p)
	case "del-attribute":
		parts := pathParts(text(a["path"]))
		if !del(st.node, parts) {
			return fmt.Errorf("%w: no attribute %s to delete", ErrEvaluation, pointer(parts))
		}
		st.ch.Patch = append(st.ch.Patch, PatchOp{Op: "remove", Path: pointer(parts)})
	case "set-capability", "unset-capability":
		props, _ := st.node["properties"].(map[string]any)
		if props == nil {
			props = map[string]any{}
			st.node["properties"] = props
		}
		caps := ParseCapabilities(props["capabilities"])
		name := text(a["name"])
		if op == "set-capability" {
			caps[name] = text(a["value"])
			if a["value"] == nil {
				caps[name] = ""
			}
		} else {
			delete(caps, name)
		}
		s := FormatCapabilities(caps)
		props["capabilities"] = s
		st.ch.Patch = append(st.ch.Patch, PatchOp{Op: "add", Path: "/properties/capabilities", Value: s})
	case "add-trait":
		if t := text(a["name"]); !slices.Contains(st.traits, t) {
			st.traits = append(st.traits, t)
		}
	case "remove-trait":
		t := text(a["name"])
		st.traits = slices.DeleteFunc(st.traits, func(e string) bool { return e == t })
	case "set-plugin-data":
		if _, err := st.set(st.plugin, text(a["path"]), a["value"]); err != nil {
			return err
		}
	case "extend-plugin-data":
		parts := pathParts(text(a["path"]))
		unique, _ := a["unique"].(bool)
		list, err := extend(st.plugin, parts, a["value"], unique)
		if err != nil {
			return err
		}
		if _, err := set(st.plugin, parts, list); err != nil {
			return err
		}
	case "unset-plugin-data":
		del(st.plugin, pathParts(text(a["path"])))
	default:
		return fmt.Errorf("%w: unsupported action %q", ErrEvaluation, op)
	}
	return nil
}

func (st *state) set(m map[string]any, path string, v any) (PatchOp, error) {
	parts := pathParts(path)
	if slices.Contains(parts, "") {
		return PatchOp{}, fmt.Errorf("%w: invalid path %q", ErrEvaluation, path)
	}
	return set(m, parts, v)
}

// ParseCapabilities reads properties.capabilities, either Ironic's
// "k1:v1,k2:v2" string or an object.
func ParseCapabilities(v any) map[string]string {
	out := map[string]string{}
	switch x := v.(type) {
	case string:
		for _, kv := range strings.Split(x, ",") {
			if kv = strings.TrimSpace(kv); kv == "" {
				continue
			}
			k, val, _ := strings.Cut(kv, ":")
			out[k] = val
		}
	case map[string]any:
		for k, val := range x {
			out[k] = text(val)
		}
	}
	return out
}

// FormatCapabilities writes capabilities as "k1:v1,k2:v2", keys sorted.
func FormatCapabilities(caps map[string]string) string {
	keys := sortedKeys(caps)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + caps[k]
	}
	return strings.Join(parts, ",")
}
