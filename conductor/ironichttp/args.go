package ironichttp

import (
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/ferric-metal/ferric/conductor/internal/python"
)

// The argument rules of Ironic's API (ironic.common.args and the JSON
// schemas of its controllers), with its coercions and its messages. Every
// API of the conductor checks its input with these, so a value gets the
// same answer wherever it is sent.

// bad is a 400 with Ironic's message.
func bad(format string, a ...any) *Error { return Errorf(http.StatusBadRequest, format, a...) }

// str renders v as Python's str() does in Ironic's "%s" messages.
func str(v any) string {
	if s, ok := v.(string); ok {
		return python.Cut(s)
	}
	return python.Repr(v)
}

// boolWords are oslo's strict boolean words, sorted as its message lists them.
const boolWords = "'0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"

// ArgBool is args.boolean: a JSON boolean, or one of oslo's boolean words
// (any case, spaces trimmed); nil stays nil.
func ArgBool(name string, v any) (*bool, *Error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case bool:
		return &x, nil
	case string:
		if b, ok := ParseBool(x); ok {
			return &b, nil
		}
	}
	return nil, bad("Invalid %s: Unrecognized value '%s', acceptable values are: %s", name, str(v), boolWords)
}

// IsUUIDLike is oslo's uuidutils.is_uuid_like: 32 hex digits, with or
// without dashes, braces or a urn:uuid: prefix, any case.
func IsUUIDLike(s string) bool {
	if _, err := uuid.Parse(s); err != nil {
		return false
	}
	return true
}

// ArgUUID is args.uuid: a UUID-like string; nil stays nil.
func ArgUUID(name string, v any) *Error {
	if v == nil {
		return nil
	}
	if s, ok := v.(string); ok && IsUUIDLike(s) {
		return nil
	}
	return bad("Expected UUID for %s: %s", name, str(v))
}

var logicalNameRE = regexp.MustCompile(`^[A-Za-z0-9\-._~]+$`)

// IsLogicalName is Ironic's is_valid_logical_name: RFC 3986 unreserved
// characters, at most 255 of them.
func IsLogicalName(s string) bool {
	return len(s) <= 255 && logicalNameRE.MatchString(s)
}

// IsNodeName is a logical name that is not UUID-like (nodes, port groups).
func IsNodeName(s string) bool { return IsLogicalName(s) && !IsUUIDLike(s) }

var datapathRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

// SwitchID normalizes a local_link_connection switch_id as Ironic does: a
// MAC address or a 16-digit OpenFlow datapath ID, in lower case.
func SwitchID(v any) (string, *Error) {
	if s, ok := v.(string); ok {
		l := strings.ToLower(s)
		if strictMACRE.MatchString(l) || datapathRE.MatchString(l) {
			return l, nil
		}
	}
	return "", bad("Expected a MAC address or OpenFlow datapath ID but received %s.", str(v))
}

// ArgUUIDOrName is args.uuid_or_name.
func ArgUUIDOrName(name string, v any) *Error {
	if v == nil {
		return nil
	}
	if s, ok := v.(string); ok && (IsLogicalName(s) || IsUUIDLike(s)) {
		return nil
	}
	return bad("Expected UUID or name for %s: %s", name, str(v))
}

// ArgString is args.string.
func ArgString(name string, v any) *Error {
	if _, ok := v.(string); ok || v == nil {
		return nil
	}
	return bad("Expected string for %s: %s", name, str(v))
}

var strictMACRE = regexp.MustCompile(`^([0-9a-f]{2}:){5}[0-9a-f]{2}$`)

// ArgMAC is args.mac_address: six colon-separated pairs of hex digits (any
// case), returned in lower case; nil stays "".
func ArgMAC(name string, v any) (string, *Error) {
	if v == nil {
		return "", nil
	}
	if s, ok := v.(string); ok {
		if l := strings.ToLower(s); strictMACRE.MatchString(l) {
			return l, nil
		}
	}
	return "", bad("Expected valid MAC address for %s: %s", name, str(v))
}

// ArgInt is args.integer: a JSON integer or a string Python's int() reads.
func ArgInt(name string, v any) (*int64, *Error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<62 {
			i := int64(x)
			return &i, nil
		}
		i := int64(x) // Python's int() truncates a float
		return &i, nil
	case bool:
		var i int64
		if x {
			i = 1
		}
		return &i, nil
	case string:
		if i, ok := PyInt(x); ok {
			return &i, nil
		}
	}
	return nil, bad("Expected an integer for %s: %s", name, str(v))
}

var pyIntRE = regexp.MustCompile(`^[+-]?[0-9](_?[0-9])*$`)

// PyInt reads s as Python's int(s) does: spaces around, a sign, decimal
// digits with single underscores between them.
func PyInt(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if !pyIntRE.MatchString(s) {
		return 0, false
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
	return i, err == nil
}

// IntLiteralMsg is Python's message for int(s) of a string it cannot
// read, which ironic-inspector quotes.
func IntLiteralMsg(s string) string {
	return "invalid literal for int() with base 10: " + python.Repr(s)
}

// PyTypeName is the name of the Python class json.loads makes of v, which
// messages such as "expected a JSON object, got list" quote.
func PyTypeName(v any) string {
	names := map[string]string{"null": "NoneType", "boolean": "bool", "string": "str", "integer": "int",
		"number": "float", "array": "list", "object": "dict"}
	if n, ok := names[jsonType(v)]; ok {
		return n
	}
	return jsonType(v)
}

// ArgLimit is Ironic's limit of a listing (args.integer, then
// api_utils.validate_limit): an integer above 0, at most max.
func ArgLimit(raw string, max int) (int, *Error) {
	i, e := ArgInt("limit", raw)
	if e != nil {
		return 0, e
	}
	if *i <= 0 {
		return 0, bad("Limit must be positive")
	}
	return int(min(*i, int64(max))), nil
}

// Schema is the subset of JSON Schema (draft 4) Ironic's API schemas use.
// Validate answers with the message python-jsonschema would pick
// (its best_match) and Ironic's "Schema error for NAME: " prefix.
type Schema struct {
	Type      []string // "string", "boolean", "null", "object", "array", "integer"
	MinLength int
	MaxLength int // 0: none
	Pattern   string
	Enum      []any
	Minimum   *float64
	Maximum   *float64
	AnyOf     []*Schema
	// OneOf: exactly one alternative holds (the alternatives Ironic's
	// schemas give are exclusive, so "valid under each of" never arises).
	OneOf      []*Schema
	Items      *Schema
	MinItems   int
	Properties []Prop
	Required   []string
	// NoAdditional is additionalProperties: false.
	NoAdditional bool
	// AdditionalProperties is the schema of properties not in Properties
	// (additionalProperties: {...}), checked in name order.
	AdditionalProperties *Schema
	// Func is a check of the caller's (a keyword of its own, e.g. an enum
	// kept as a rule): it returns the message of a failure, "" if v passes.
	Func func(v any) string
	// AdditionalFirst: additionalProperties is written before required
	// in Ironic's schema (so its error wins between the two).
	AdditionalFirst bool

	re *regexp.Regexp
}

// Prop is one property of an object schema, in the schema's order.
type Prop struct {
	Name   string
	Schema *Schema
}

// T is a Schema of these types.
func T(types ...string) *Schema { return &Schema{Type: types} }

// Max sets MaxLength.
func (s *Schema) Max(n int) *Schema { s.MaxLength = n; return s }

// Prop returns the schema of property name, or nil.
func (s *Schema) Prop(name string) *Schema {
	for _, p := range s.Properties {
		if p.Name == name {
			return p.Schema
		}
	}
	return nil
}

// Names are the properties' names.
func (s *Schema) Names() []string {
	out := make([]string, len(s.Properties))
	for i, p := range s.Properties {
		out[i] = p.Name
	}
	return out
}

type schemaErr struct {
	depth   int
	weak    bool
	typeOK  bool
	msg     string
	context []schemaErr
}

func better(a, b schemaErr) bool { // a more relevant than b
	if a.depth != b.depth {
		return a.depth < b.depth
	}
	if a.weak != b.weak {
		return !a.weak
	}
	return !a.typeOK && b.typeOK
}

func bestOf(errs []schemaErr) schemaErr {
	best := errs[0]
	for _, e := range errs[1:] {
		if better(e, best) {
			best = e
		}
	}
	return best
}

// Validate checks v against s; the error reads "Schema error for NAME:
// MESSAGE[. Possible root cause: CAUSE]" as Ironic's.
func (s *Schema) Validate(name string, v any) *Error {
	errs := s.check(v, 0)
	if len(errs) == 0 {
		return nil
	}
	msg := "Schema error for " + name + ": " + bestMatch(errs).msg
	var cause string
	for cur := bestMatch(errs); len(cur.context) > 0; {
		cur = bestOf(cur.context)
		cause = cur.msg
	}
	if cause != "" {
		msg += ". Possible root cause: " + cause
	}
	return bad("%s", msg)
}

// Check checks v against s as jsonschema.validate does and returns the
// message of the error it raises ("" if v passes): the message alone,
// without Validate's prefix and root cause (Ironic's validate_network_data
// words it so).
func (s *Schema) Check(v any) string {
	errs := s.check(v, 0)
	if len(errs) == 0 {
		return ""
	}
	return bestMatch(errs).msg
}

// bestMatch is jsonschema's best_match: the most relevant error, then,
// while it has a context whose two least relevant errors differ, the
// least relevant of those (the deepest, weakest one).
func bestMatch(errs []schemaErr) schemaErr {
	best := bestOf(errs)
	for len(best.context) > 0 {
		if len(best.context) == 1 {
			best = best.context[0]
			continue
		}
		lo, second := leastTwo(best.context)
		if !better(lo, second) && !better(second, lo) {
			break
		}
		best = lo
	}
	return best
}

// leastTwo returns the two least relevant errors (heapq.nsmallest(2)).
func leastTwo(errs []schemaErr) (schemaErr, schemaErr) {
	lo := 0
	for i := range errs {
		if better(errs[lo], errs[i]) {
			lo = i
		}
	}
	second := -1
	for i := range errs {
		if i == lo {
			continue
		}
		if second < 0 || better(errs[second], errs[i]) {
			second = i
		}
	}
	return errs[lo], errs[second]
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if x == math.Trunc(x) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func hasType(types []string, v any) bool {
	t := jsonType(v)
	for _, want := range types {
		if want == t || (want == "number" && t == "integer") {
			return true
		}
	}
	return false
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = python.Repr(x)
	}
	return strings.Join(q, ", ")
}

func (s *Schema) check(v any, depth int) []schemaErr {
	var errs []schemaErr
	add := func(format string, a ...any) {
		errs = append(errs, schemaErr{depth: depth, typeOK: len(s.Type) > 0 && hasType(s.Type, v), msg: fmt.Sprintf(format, a...)})
	}
	if len(s.Type) > 0 && !hasType(s.Type, v) {
		add("%s is not of type %s", python.Repr(v), quoteList(s.Type))
	}
	if len(s.Enum) > 0 {
		found := false
		for _, e := range s.Enum {
			if e == v {
				found = true
			}
		}
		if !found {
			add("%s is not one of %s", python.Repr(v), python.Repr(s.Enum))
		}
	}
	if x, ok := v.(string); ok {
		n := utf8.RuneCountInString(x)
		if s.MinLength > 0 && n < s.MinLength {
			add("%s is too short", python.Repr(v))
		}
		if s.MaxLength > 0 && n > s.MaxLength {
			add("%s is too long", python.Repr(v))
		}
		if s.Pattern != "" {
			if s.re == nil {
				s.re = regexp.MustCompile(s.Pattern)
			}
			if !s.re.MatchString(x) {
				add("%s does not match %s", python.Repr(v), python.Repr(s.Pattern))
			}
		}
	}
	if s.Func != nil {
		if msg := s.Func(v); msg != "" {
			add("%s", msg)
		}
	}
	if x, ok := v.(float64); ok && s.Minimum != nil && x < *s.Minimum {
		add("%s is less than the minimum of %s", python.Repr(v), python.Repr(*s.Minimum))
	}
	if x, ok := v.(float64); ok && s.Maximum != nil && x > *s.Maximum {
		add("%s is greater than the maximum of %s", python.Repr(v), python.Repr(*s.Maximum))
	}
	for _, alts := range [][]*Schema{s.AnyOf, s.OneOf} {
		if len(alts) == 0 {
			continue
		}
		var ctx []schemaErr
		ok := false
		for _, sub := range alts {
			e := sub.check(v, depth)
			if len(e) == 0 {
				ok = true
				break
			}
			ctx = append(ctx, e...)
		}
		if !ok {
			errs = append(errs, schemaErr{depth: depth, weak: true, msg: python.Repr(v) + " is not valid under any of the given schemas", context: ctx})
		}
	}
	if x, ok := v.([]any); ok {
		if s.Items != nil {
			for _, e := range x {
				errs = append(errs, s.Items.check(e, depth+1)...)
			}
		}
		if s.MinItems > 0 && len(x) < s.MinItems {
			add("%s is too short", python.Repr(v))
		}
	}
	if x, ok := v.(map[string]any); ok {
		for _, p := range s.Properties {
			if pv, ok := x[p.Name]; ok {
				errs = append(errs, p.Schema.check(pv, depth+1)...)
			}
		}
		var req, extra []schemaErr
		for _, r := range s.Required {
			if _, ok := x[r]; !ok {
				req = append(req, schemaErr{depth: depth, typeOK: true, msg: python.Repr(r) + " is a required property"})
			}
		}
		if s.NoAdditional {
			var unexpected []string
			for k := range x {
				if s.Prop(k) == nil {
					unexpected = append(unexpected, k)
				}
			}
			if len(unexpected) > 0 {
				sortStrings(unexpected)
				verb := "was"
				if len(unexpected) > 1 {
					verb = "were"
				}
				extra = append(extra, schemaErr{depth: depth, typeOK: true,
					msg: fmt.Sprintf("Additional properties are not allowed (%s %s unexpected)", quoteList(unexpected), verb)})
			}
		}
		if s.AdditionalProperties != nil {
			var keys []string
			for k := range x {
				if s.Prop(k) == nil {
					keys = append(keys, k)
				}
			}
			sortStrings(keys)
			for _, k := range keys {
				extra = append(extra, s.AdditionalProperties.check(x[k], depth+1)...)
			}
		}
		if s.AdditionalFirst {
			errs = append(append(errs, extra...), req...)
		} else {
			errs = append(append(errs, req...), extra...)
		}
	}
	return errs
}

func sortStrings(xs []string) {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j] < xs[j-1]; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
}

// Truthy is Python's truth of a JSON value, for the checks Ironic and
// ironic-inspector write as "if body.get(key)".
func Truthy(v any) bool { return python.Truthy(v) }

// Repr is Python's repr() of a JSON value, as the messages quote it.
func Repr(v any) string { return python.Repr(v) }
