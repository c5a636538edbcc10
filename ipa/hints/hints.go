// Package hints parses Ironic root device hints (a node's
// instance_info.root_device or properties.root_device, and the entries of
// properties.skip_block_devices) and picks the disk an image is written to.
// The agent uses it at deploy time and the inspector during inspection, so
// both choose the same disk.
//
// A hint maps a disk attribute (size, model, vendor, serial, wwn,
// wwn_with_extension, wwn_vendor_extension, name, rotational, hctl,
// by_path, tran) to an expression; a disk matches when it satisfies every
// hint. String expressions may start with an operator: s== (default), s!=,
// s<, s<=, s>, s>=, <in> (substring), <all-in> (every word a substring), or
// a list "<or> a <or> b"; serial and the other string hints also accept a
// JSON list meaning "any of these". Size expressions are in GiB: == (the
// default), !=, <, <=, >, >=, the legacy = (meaning >=), "<or> a <or> b" or
// "<range-in> (a b)" / "[a b]" (brackets inclusive, parentheses
// exclusive); disk sizes compare as fractional GiB, as in Ironic. Strings
// are lower-cased and URL-quoted on both sides before comparing (an
// expression that is already URL-quoted is unquoted first); a name without
// /dev/ gets it. A disk without the attribute never matches a hint on it.
// Without hints the smallest disk of at least MinDefaultSize wins.
package hints

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ferric-metal/ferric/ipa/protocol"
)

// GiB is 2^30 bytes.
const GiB = 1 << 30

// MinDefaultSize is the smallest disk picked when no hints are given (4 GiB).
const MinDefaultSize = 4 * GiB

// Errors. Match them with errors.Is.
var (
	// ErrInvalidHints: the hints do not parse.
	ErrInvalidHints = errors.New("invalid root device hints")
	// ErrNoDevice: no disk satisfies the hints (or none is big enough).
	ErrNoDevice = errors.New("no suitable root device")
)

type kind int

const (
	kindString kind = iota
	kindSize
	kindBool
)

var hintKinds = map[string]kind{
	"size": kindSize, "model": kindString, "wwn": kindString, "serial": kindString,
	"vendor": kindString, "wwn_with_extension": kindString, "wwn_vendor_extension": kindString,
	"name": kindString, "rotational": kindBool, "hctl": kindString, "by_path": kindString,
	"tran": kindString,
}

// Names returns the hint names in sorted order.
func Names() []string {
	out := make([]string, 0, len(hintKinds))
	for k := range hintKinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Hint is one parsed hint.
type Hint struct {
	Name string
	// Op is the operator ("s==", "==", "<or>", "<range-in>", ...); "" for
	// rotational.
	Op string
	// Values are the normalised operands: one, several for <or> and
	// <all-in>, and for <range-in> the opening bracket, the two bounds and
	// the closing bracket.
	Values []string
	// Bool is the value of a rotational hint.
	Bool bool
}

// Hints is a parsed set of hints, sorted by name.
type Hints []Hint

var stringOps = []string{"<or>", "<all-in>", "<in>", "s==", "s!=", "s<=", "s>=", "s<", "s>"}
var numberOps = []string{"<or>", "<range-in>", "==", "!=", "<=", ">=", "<", ">", "="}

// Parse validates raw hints (as stored in properties.root_device) and
// returns them parsed. An empty or nil map gives nil Hints.
func Parse(raw map[string]any) (Hints, error) {
	var out Hints
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, name := range keys {
		k, ok := hintKinds[name]
		if !ok {
			return nil, fmt.Errorf("hints: %w: unknown hint %q; valid hints are %s", ErrInvalidHints, name, strings.Join(Names(), ", "))
		}
		h, err := parseHint(name, k, raw[name])
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

// ParseSkip parses properties.skip_block_devices: a list of hint objects,
// each naming disks that are never chosen. nil gives nil.
func ParseSkip(v any) ([]Hints, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("hints: %w: skip_block_devices must be a list of objects", ErrInvalidHints)
	}
	var out []Hints
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("hints: %w: skip_block_devices entries must be objects", ErrInvalidHints)
		}
		h, err := Parse(m)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

func parseHint(name string, k kind, v any) (Hint, error) {
	h := Hint{Name: name}
	switch k {
	case kindBool:
		b, ok := protocol.ParseBool(v)
		if !ok {
			return h, fmt.Errorf("hints: %w: hint %q is not a Boolean value: %v", ErrInvalidHints, name, v)
		}
		h.Bool = b
		return h, nil
	case kindString:
		var vals []string
		switch x := v.(type) {
		case string:
			op, vs, err := split(name, x, stringOps)
			if err != nil {
				return h, err
			}
			h.Op, vals = op, vs
		case []any:
			// A list means "any of these" (serial, wwn).
			for _, e := range x {
				s, ok := e.(string)
				if !ok || strings.TrimSpace(s) == "" {
					return h, fmt.Errorf("hints: %w: hint %q list holds %v, not a string", ErrInvalidHints, name, e)
				}
				vals = append(vals, strings.ToLower(strings.TrimSpace(s)))
			}
			if len(vals) == 0 {
				return h, fmt.Errorf("hints: %w: hint %q is an empty list", ErrInvalidHints, name)
			}
			h.Op = "<or>"
		default:
			return h, fmt.Errorf("hints: %w: hint %q is not a string value: %v", ErrInvalidHints, name, v)
		}
		if h.Op == "" {
			h.Op = "s=="
		}
		for i := range vals {
			if name == "name" && h.Op != "<in>" && h.Op != "<all-in>" && !strings.HasPrefix(vals[i], "/") {
				vals[i] = "/dev/" + vals[i]
			}
			vals[i] = quote(unquote(vals[i]))
		}
		h.Values = vals
		return h, nil
	default:
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case float64:
			if x != math.Trunc(x) {
				return h, fmt.Errorf("hints: %w: hint %q is not an integer value: %v", ErrInvalidHints, name, v)
			}
			s = strconv.FormatFloat(x, 'f', -1, 64)
		case int:
			s = strconv.Itoa(x)
		case int64:
			s = strconv.FormatInt(x, 10)
		default:
			return h, fmt.Errorf("hints: %w: hint %q is not an integer value: %v", ErrInvalidHints, name, v)
		}
		op, vals, err := split(name, s, numberOps)
		if err != nil {
			return h, err
		}
		if op == "" {
			op = "=="
		}
		if op == "<range-in>" {
			r, err := parseRange(name, vals[0])
			if err != nil {
				return h, err
			}
			h.Op, h.Values = op, r
			return h, nil
		}
		for _, val := range vals {
			n, err := strconv.Atoi(val)
			if err != nil {
				return h, fmt.Errorf("hints: %w: hint %q is not an integer value: %q", ErrInvalidHints, name, s)
			}
			if n <= 0 {
				return h, fmt.Errorf("hints: %w: hint %q should be a positive integer: %q", ErrInvalidHints, name, s)
			}
		}
		h.Op, h.Values = op, vals
		return h, nil
	}
}

// parseRange reads "(a b)", "[a b]", "(a b]" or "[a b)".
func parseRange(name, s string) ([]string, error) {
	if len(s) < 2 || !strings.ContainsRune("([", rune(s[0])) || !strings.ContainsRune(")]", rune(s[len(s)-1])) {
		return nil, fmt.Errorf("hints: %w: hint %q: want <range-in> (a b) or [a b], got %q", ErrInvalidHints, name, s)
	}
	f := strings.Fields(s[1 : len(s)-1])
	if len(f) != 2 {
		return nil, fmt.Errorf("hints: %w: hint %q: <range-in> wants two bounds, got %q", ErrInvalidHints, name, s)
	}
	for _, b := range f {
		if _, err := strconv.ParseFloat(b, 64); err != nil {
			return nil, fmt.Errorf("hints: %w: hint %q: range bound %q is not a number", ErrInvalidHints, name, b)
		}
	}
	return []string{s[:1], f[0], f[1], s[len(s)-1:]}, nil
}

// split lower-cases and trims an expression and separates its leading
// operator from its operand(s).
func split(name, expr string, ops []string) (string, []string, error) {
	e := strings.ToLower(strings.TrimSpace(expr))
	if e == "" {
		return "", nil, fmt.Errorf("hints: %w: hint %q expression is empty", ErrInvalidHints, name)
	}
	for _, op := range ops {
		rest, ok := strings.CutPrefix(e, op)
		if !ok {
			continue
		}
		if op == "<or>" {
			var vals []string
			for _, p := range strings.Split(rest, "<or>") {
				if p = strings.TrimSpace(p); p != "" {
					vals = append(vals, p)
				}
			}
			if len(vals) == 0 {
				return "", nil, fmt.Errorf("hints: %w: hint %q: %q has no values", ErrInvalidHints, name, expr)
			}
			return op, vals, nil
		}
		// An operator must be followed by white space and a value.
		if rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
			continue
		}
		rest = strings.TrimSpace(rest)
		if rest == "" {
			return "", nil, fmt.Errorf("hints: %w: hint %q: %q has no value", ErrInvalidHints, name, expr)
		}
		if op == "<all-in>" {
			return op, strings.Fields(rest), nil
		}
		return op, []string{rest}, nil
	}
	if strings.Contains(e, "<or>") {
		return "", nil, fmt.Errorf("hints: %w: hint %q: <or> must start the expression: %q", ErrInvalidHints, name, expr)
	}
	return "", []string{e}, nil
}

// unquote undoes URL quoting ("intel%20ssd"), leaving s as it is when it
// is not valid quoting.
func unquote(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// quote URL-quotes s as Python's urllib.parse.quote does (safe: letters,
// digits, "_.-~/").
func quote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_.-~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// Match reports whether disk satisfies every hint.
func (hs Hints) Match(d protocol.Disk) bool {
	for _, h := range hs {
		if !h.match(d) {
			return false
		}
	}
	return true
}

func (h Hint) match(d protocol.Disk) bool {
	switch h.Name {
	case "rotational":
		return d.Rotational == h.Bool
	case "size":
		return matchNumber(float64(d.Size)/GiB, h.Op, h.Values)
	}
	v := strings.ToLower(strings.TrimSpace(stringAttr(d, h.Name)))
	if v == "" {
		// A disk without the attribute never matches a hint on it.
		return false
	}
	return matchString(quote(v), h.Op, h.Values)
}

func stringAttr(d protocol.Disk, name string) string {
	switch name {
	case "model":
		return d.Model
	case "name":
		return d.Name
	case "wwn":
		return protocol.Str(d.WWN)
	case "serial":
		return protocol.Str(d.Serial)
	case "vendor":
		return protocol.Str(d.Vendor)
	case "wwn_with_extension":
		return protocol.Str(d.WWNWithExtension)
	case "wwn_vendor_extension":
		return protocol.Str(d.WWNVendorExtension)
	case "hctl":
		return protocol.Str(d.HCTL)
	case "by_path":
		return protocol.Str(d.ByPath)
	case "tran":
		return protocol.Str(d.Tran)
	}
	return ""
}

func matchString(v, op string, vals []string) bool {
	switch op {
	case "s==":
		return v == vals[0]
	case "s!=":
		return v != vals[0]
	case "s<":
		return v < vals[0]
	case "s<=":
		return v <= vals[0]
	case "s>":
		return v > vals[0]
	case "s>=":
		return v >= vals[0]
	case "<in>":
		return strings.Contains(v, vals[0])
	case "<all-in>":
		for _, a := range vals {
			if !strings.Contains(v, a) {
				return false
			}
		}
		return true
	case "<or>":
		return slices.Contains(vals, v)
	}
	return false
}

func matchNumber(v float64, op string, vals []string) bool {
	num := func(s string) float64 { n, _ := strconv.ParseFloat(s, 64); return n }
	switch op {
	case "<or>":
		for _, s := range vals {
			if v == num(s) {
				return true
			}
		}
		return false
	case "<range-in>":
		lo, hi := num(vals[1]), num(vals[2])
		okLo := v > lo || (vals[0] == "[" && v == lo)
		okHi := v < hi || (vals[3] == "]" && v == hi)
		return okLo && okHi
	}
	n := num(vals[0])
	switch op {
	case "==":
		return v == n
	case "!=":
		return v != n
	case "<":
		return v < n
	case "<=":
		return v <= n
	case ">":
		return v > n
	case ">=", "=":
		return v >= n
	}
	return false
}

// Select returns the root disk: after dropping disks matched by any of the
// skip hints (properties.skip_block_devices), with hints the first disk (in
// inventory order) that satisfies them; without hints the smallest disk of
// at least minSize bytes, ties broken by name.
func Select(disks []protocol.Disk, hints Hints, skip []Hints, minSize int64) (protocol.Disk, error) {
	var cand []protocol.Disk
	for _, d := range disks {
		if !slices.ContainsFunc(skip, func(s Hints) bool { return s.Match(d) }) {
			cand = append(cand, d)
		}
	}
	if len(hints) > 0 {
		for _, d := range cand {
			if hints.Match(d) {
				return d, nil
			}
		}
		return protocol.Disk{}, fmt.Errorf("hints: %w: none of %d disk(s) matches the root device hints %s", ErrNoDevice, len(cand), hints)
	}
	var best *protocol.Disk
	for i := range cand {
		d := &cand[i]
		if d.Size < minSize {
			continue
		}
		if best == nil || d.Size < best.Size || (d.Size == best.Size && d.Name < best.Name) {
			best = d
		}
	}
	if best == nil {
		return protocol.Disk{}, fmt.Errorf("hints: %w: none of %d disk(s) is at least %s", ErrNoDevice, len(cand), sizeString(minSize))
	}
	return *best, nil
}

func sizeString(n int64) string {
	if n%GiB == 0 {
		return fmt.Sprintf("%d GiB", n/GiB)
	}
	return fmt.Sprintf("%d bytes", n)
}

// String renders the hints as name=op value pairs, for messages.
func (hs Hints) String() string {
	parts := make([]string, 0, len(hs))
	for _, h := range hs {
		switch {
		case h.Name == "rotational":
			parts = append(parts, fmt.Sprintf("rotational=%t", h.Bool))
		case h.Op == "<or>":
			parts = append(parts, fmt.Sprintf("%s=<or> %s", h.Name, strings.Join(h.Values, " <or> ")))
		case h.Op == "<range-in>":
			parts = append(parts, fmt.Sprintf("%s=<range-in> %s%s %s%s", h.Name, h.Values[0], h.Values[1], h.Values[2], h.Values[3]))
		default:
			parts = append(parts, fmt.Sprintf("%s=%s %s", h.Name, h.Op, strings.Join(h.Values, " ")))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
