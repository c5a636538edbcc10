// Package rootdevice parses Ironic root device hints (a node's
// properties.root_device) and picks the disk an image is written to, as
// ironic-python-agent and Ironic's inspection do.
//
// A hint is a map from a disk attribute (size, model, vendor, serial, wwn,
// wwn_with_extension, wwn_vendor_extension, name, hctl, by_path, rotational)
// to an expression. String expressions may start with an operator (s==, s!=,
// s<, s<=, s>, s>=, <in>, or a list "<or> a <or> b"); size expressions (GiB)
// with a numeric one (==, !=, <, <=, >, >=, or the legacy "=" meaning >=).
// Without an operator strings compare with s== and sizes with ==. Strings are
// lower-cased and URL-quoted on both sides before comparing. A disk matches
// when it satisfies every hint.
package rootdevice

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ferric-metal/ferric/inspector/inventory"
)

// GiB is 2^30 bytes.
const GiB = 1 << 30

// MinSize is the smallest disk chosen when there are no hints (4 GiB).
const MinSize = 4 * GiB

// Errors. Match them with errors.Is.
var (
	// ErrInvalidHints: the hints do not parse.
	ErrInvalidHints = errors.New("invalid root device hints")
	// ErrNoMatch: no disk satisfies the hints (or none is big enough).
	ErrNoMatch = errors.New("no disk matches")
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
	// Op is the operator ("s==", "==", "<or>", ...); "" for rotational.
	Op string
	// Values are the normalised operands (one, or several for <or>).
	Values []string
	// Bool is the value of a rotational hint.
	Bool bool
}

// Hints is a parsed set of hints, sorted by name.
type Hints []Hint

var stringOps = []string{"<or>", "<in>", "s==", "s!=", "s<=", "s>=", "s<", "s>"}
var numberOps = []string{"<or>", "==", "!=", "<=", ">=", "<", ">", "="}

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
			return nil, fmt.Errorf("rootdevice: %w: unknown hint %q; valid hints are %s", ErrInvalidHints, name, strings.Join(Names(), ", "))
		}
		h, err := parseHint(name, k, raw[name])
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
		b, ok := parseBool(v)
		if !ok {
			return h, fmt.Errorf("rootdevice: %w: hint %q is not a Boolean value: %v", ErrInvalidHints, name, v)
		}
		h.Bool = b
		return h, nil
	case kindString:
		s, ok := v.(string)
		if !ok {
			return h, fmt.Errorf("rootdevice: %w: hint %q is not a string value: %v", ErrInvalidHints, name, v)
		}
		op, vals, err := split(name, s, stringOps)
		if err != nil {
			return h, err
		}
		if op == "" {
			op = "s=="
		}
		for i := range vals {
			vals[i] = quote(vals[i])
		}
		h.Op, h.Values = op, vals
		return h, nil
	default:
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case float64:
			if x != math.Trunc(x) {
				return h, fmt.Errorf("rootdevice: %w: hint %q is not an integer value: %v", ErrInvalidHints, name, v)
			}
			s = strconv.FormatFloat(x, 'f', -1, 64)
		case int:
			s = strconv.Itoa(x)
		case int64:
			s = strconv.FormatInt(x, 10)
		default:
			return h, fmt.Errorf("rootdevice: %w: hint %q is not an integer value: %v", ErrInvalidHints, name, v)
		}
		op, vals, err := split(name, s, numberOps)
		if err != nil {
			return h, err
		}
		if op == "" {
			op = "=="
		}
		for _, val := range vals {
			n, err := strconv.Atoi(val)
			if err != nil {
				return h, fmt.Errorf("rootdevice: %w: hint %q is not an integer value: %q", ErrInvalidHints, name, s)
			}
			if n <= 0 {
				return h, fmt.Errorf("rootdevice: %w: hint %q should be a positive integer: %q", ErrInvalidHints, name, s)
			}
		}
		h.Op, h.Values = op, vals
		return h, nil
	}
}

// split lower-cases and trims an expression and separates its leading
// operator from its operand(s).
func split(name, expr string, ops []string) (string, []string, error) {
	e := strings.ToLower(strings.TrimSpace(expr))
	if e == "" {
		return "", nil, fmt.Errorf("rootdevice: %w: hint %q expression is empty", ErrInvalidHints, name)
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
				return "", nil, fmt.Errorf("rootdevice: %w: hint %q: %q has no values", ErrInvalidHints, name, expr)
			}
			return op, vals, nil
		}
		// An operator must be followed by white space and a value.
		if rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
			continue
		}
		rest = strings.TrimSpace(rest)
		if rest == "" {
			return "", nil, fmt.Errorf("rootdevice: %w: hint %q: %q has no value", ErrInvalidHints, name, expr)
		}
		return op, []string{rest}, nil
	}
	if strings.Contains(e, "<or>") {
		return "", nil, fmt.Errorf("rootdevice: %w: hint %q: <or> must start the expression: %q", ErrInvalidHints, name, expr)
	}
	return "", []string{e}, nil
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

func parseBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case float64:
		if x == 0 || x == 1 {
			return x == 1, true
		}
	case int:
		if x == 0 || x == 1 {
			return x == 1, true
		}
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "1", "t", "true", "on", "y", "yes":
			return true, true
		case "0", "f", "false", "off", "n", "no":
			return false, true
		}
	}
	return false, false
}

// Match reports whether disk satisfies every hint.
func (hs Hints) Match(d inventory.Disk) bool {
	for _, h := range hs {
		if !h.match(d) {
			return false
		}
	}
	return true
}

func (h Hint) match(d inventory.Disk) bool {
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

func stringAttr(d inventory.Disk, name string) string {
	switch name {
	case "model":
		return d.Model
	case "wwn":
		return d.WWN
	case "serial":
		return d.Serial
	case "vendor":
		return d.Vendor
	case "wwn_with_extension":
		return d.WWNWithExtension
	case "wwn_vendor_extension":
		return d.WWNVendorExtension
	case "name":
		return d.Name
	case "hctl":
		return d.HCTL
	case "by_path":
		return d.ByPath
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
	case "<or>":
		return slices.Contains(vals, v)
	}
	return false
}

func matchNumber(v float64, op string, vals []string) bool {
	if op == "<or>" {
		for _, s := range vals {
			n, _ := strconv.ParseFloat(s, 64)
			if v == n {
				return true
			}
		}
		return false
	}
	n, _ := strconv.ParseFloat(vals[0], 64)
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

// Select returns the root disk: with hints, the first disk (in inventory
// order) that satisfies them, after dropping disks matched by any of the
// skip hints (properties.skip_block_devices); without hints, the smallest
// disk of at least MinSize, ties broken by name.
func Select(disks []inventory.Disk, hints Hints, skip []Hints) (inventory.Disk, error) {
	var cand []inventory.Disk
	for _, d := range disks {
		skipped := false
		for _, s := range skip {
			if s.Match(d) {
				skipped = true
				break
			}
		}
		if !skipped {
			cand = append(cand, d)
		}
	}
	if len(hints) > 0 {
		for _, d := range cand {
			if hints.Match(d) {
				return d, nil
			}
		}
		return inventory.Disk{}, fmt.Errorf("rootdevice: %w the root device hints %s among %d disk(s)", ErrNoMatch, hints, len(cand))
	}
	var best *inventory.Disk
	for i := range cand {
		d := &cand[i]
		if d.Size < MinSize {
			continue
		}
		if best == nil || d.Size < best.Size || (d.Size == best.Size && d.Name < best.Name) {
			best = d
		}
	}
	if best == nil {
		return inventory.Disk{}, fmt.Errorf("rootdevice: %w: none of %d disk(s) is at least 4 GiB", ErrNoMatch, len(cand))
	}
	return *best, nil
}

// String renders the hints as name=op value pairs, for messages.
func (hs Hints) String() string {
	parts := make([]string, 0, len(hs))
	for _, h := range hs {
		if h.Name == "rotational" {
			parts = append(parts, fmt.Sprintf("rotational=%t", h.Bool))
			continue
		}
		if h.Op == "<or>" {
			parts = append(parts, fmt.Sprintf("%s=<or> %s", h.Name, strings.Join(h.Values, " <or> ")))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%s %s", h.Name, h.Op, h.Values[0]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
