// Package hints selects the root (OS install) disk with Ironic's root device
// hints: a map such as {"size": ">= 20", "model": "<in> samsung",
// "serial": ["S1", "S2"], "rotational": false} taken from the node's
// instance_info.root_device or properties.root_device. All hints must match.
// Without hints the smallest disk of at least MinDefaultSize wins.
//
// Operators: numeric "==" (default), "!=", ">=", ">", "<=", "<", "=" (legacy
// ">="), "<range-in> (a b)" / "[a b]" (brackets: inclusive, parentheses:
// exclusive); string "s==" (default), "s!=", "s>=", "s>", "s<=", "s<",
// "<in>" (substring), "<or> a <or> b"; "<all-in>" for collections. Strings
// are compared lower-cased.
package hints

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/ferric-metal/ferric/ipa/protocol"
)

// MinDefaultSize is the smallest disk picked when no hints are given.
const MinDefaultSize = 4 << 30

// ErrNoDevice is returned when no disk satisfies the hints.
var ErrNoDevice = errors.New("hints: no suitable root device")

// Supported hint names.
var names = map[string]bool{
	"size": true, "model": true, "vendor": true, "serial": true, "wwn": true,
	"wwn_with_extension": true, "wwn_vendor_extension": true, "name": true,
	"rotational": true, "hctl": true, "by_path": true, "tran": true,
}

// Matcher is one parsed hint expression.
type Matcher struct {
	Op   string
	Args []string
}

var numOps = []string{"<range-in>", "==", "!=", ">=", "<=", "=", ">", "<"}
var strOps = []string{"<all-in>", "<range-in>", "<in>", "<or>", "s==", "s!=", "s>=", "s<=", "s>", "s<"}

// Parse parses one hint expression. numeric selects the numeric default.
func Parse(expr string, numeric bool) (Matcher, error) {
	s := strings.TrimSpace(expr)
	if strings.HasPrefix(s, "<or>") {
		var args []string
		for _, p := range strings.Split(s, "<or>")[1:] {
			if p = strings.TrimSpace(p); p != "" {
				args = append(args, p)
			}
		}
		if len(args) == 0 {
			return Matcher{}, fmt.Errorf("hints: %q: <or> without operands", expr)
		}
		return Matcher{Op: "<or>", Args: args}, nil
	}
	ops := strOps
	if numeric {
		ops = append(numOps, strOps...)
	}
	for _, op := range ops {
		if rest, ok := strings.CutPrefix(s, op); ok {
			rest = strings.TrimSpace(rest)
			if op == "<range-in>" {
				if len(rest) < 2 || !strings.ContainsRune("([", rune(rest[0])) || !strings.ContainsRune(")]", rune(rest[len(rest)-1])) {
					return Matcher{}, fmt.Errorf("hints: %q: want <range-in> (a b) or [a b]", expr)
				}
				f := strings.Fields(rest[1 : len(rest)-1])
				if len(f) != 2 {
					return Matcher{}, fmt.Errorf("hints: %q: want two range bounds", expr)
				}
				return Matcher{Op: op, Args: []string{rest[:1], f[0], f[1], rest[len(rest)-1:]}}, nil
			}
			if rest == "" {
				return Matcher{}, fmt.Errorf("hints: %q: operator without operand", expr)
			}
			if op == "<all-in>" {
				return Matcher{Op: op, Args: strings.Fields(rest)}, nil
			}
			return Matcher{Op: op, Args: []string{rest}}, nil
		}
	}
	if numeric {
		return Matcher{Op: "==", Args: []string{s}}, nil
	}
	return Matcher{Op: "s==", Args: []string{s}}, nil
}

func norm(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		s = u
	}
	return strings.ToLower(strings.TrimSpace(s))
}

// Match reports whether value satisfies m (numeric when value parses as a
// number and the operator is numeric).
func (m Matcher) Match(value string) bool {
	v := norm(value)
	switch m.Op {
	case "s==":
		return v == norm(m.Args[0])
	case "s!=":
		return v != norm(m.Args[0])
	case "s>=":
		return v >= norm(m.Args[0])
	case "s>":
		return v > norm(m.Args[0])
	case "s<=":
		return v <= norm(m.Args[0])
	case "s<":
		return v < norm(m.Args[0])
	case "<in>":
		return strings.Contains(v, norm(m.Args[0]))
	case "<all-in>":
		for _, a := range m.Args {
			if !strings.Contains(v, norm(a)) {
				return false
			}
		}
		return true
	case "<or>":
		for _, a := range m.Args {
			if v == norm(a) {
				return true
			}
		}
		return false
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return false
	}
	if m.Op == "<range-in>" {
		lo, err1 := strconv.ParseFloat(m.Args[1], 64)
		hi, err2 := strconv.ParseFloat(m.Args[2], 64)
		if err1 != nil || err2 != nil {
			return false
		}
		okLo := x > lo || (m.Args[0] == "[" && x == lo)
		okHi := x < hi || (m.Args[3] == "]" && x == hi)
		return okLo && okHi
	}
	y, err := strconv.ParseFloat(strings.TrimSpace(m.Args[0]), 64)
	if err != nil {
		return false
	}
	switch m.Op {
	case "==":
		return x == y
	case "!=":
		return x != y
	case ">=", "=":
		return x >= y
	case ">":
		return x > y
	case "<=":
		return x <= y
	case "<":
		return x < y
	}
	return false
}

// Hints is a parsed set of root device hints.
type Hints map[string][]Matcher

// FromMap parses hints as they appear in node properties (values may be
// strings, numbers, booleans, or lists for serial/wwn).
func FromMap(m map[string]any) (Hints, error) {
	h := Hints{}
	for k, v := range m {
		if !names[k] {
			return nil, fmt.Errorf("hints: unknown root device hint %q", k)
		}
		numeric := k == "size"
		var exprs []string
		switch x := v.(type) {
		case string:
			exprs = []string{x}
		case float64:
			exprs = []string{strconv.FormatFloat(x, 'f', -1, 64)}
		case int:
			exprs = []string{strconv.Itoa(x)}
		case bool:
			exprs = []string{strconv.FormatBool(x)}
		case []any:
			for _, e := range x {
				exprs = append(exprs, fmt.Sprint(e))
			}
			if len(exprs) > 1 {
				// A list means "any of these" (serial/wwn).
				h[k] = []Matcher{{Op: "<or>", Args: exprs}}
				continue
			}
		default:
			return nil, fmt.Errorf("hints: %s: unsupported value %v", k, v)
		}
		for _, e := range exprs {
			if k == "rotational" {
				b, err := parseBool(e)
				if err != nil {
					return nil, fmt.Errorf("hints: rotational: %w", err)
				}
				e = strconv.FormatBool(b)
			}
			if k == "name" && !strings.ContainsAny(e, "<>=!") && !strings.HasPrefix(e, "/") {
				e = "/dev/" + e
			}
			mt, err := Parse(e, numeric)
			if err != nil {
				return nil, err
			}
			h[k] = append(h[k], mt)
		}
	}
	return h, nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "t", "true", "on", "y", "yes":
		return true, nil
	case "0", "f", "false", "off", "n", "no":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean", s)
}

func field(d protocol.Disk, k string) (string, bool) {
	s := func(p *string) (string, bool) {
		if p == nil {
			return "", false
		}
		return *p, true
	}
	switch k {
	case "size":
		return strconv.FormatInt(d.Size>>30, 10), true
	case "model":
		return d.Model, true
	case "name":
		return d.Name, true
	case "rotational":
		return strconv.FormatBool(d.Rotational), true
	case "vendor":
		return s(d.Vendor)
	case "serial":
		return s(d.Serial)
	case "wwn":
		return s(d.WWN)
	case "wwn_with_extension":
		return s(d.WWNWithExtension)
	case "wwn_vendor_extension":
		return s(d.WWNVendorExtension)
	case "hctl":
		return s(d.HCTL)
	case "by_path":
		return s(d.ByPath)
	case "tran":
		return s(d.Tran)
	}
	return "", false
}

// Matches reports whether d satisfies every hint.
func (h Hints) Matches(d protocol.Disk) bool {
	for k, ms := range h {
		v, ok := field(d, k)
		if !ok {
			return false
		}
		for _, m := range ms {
			if !m.Match(v) {
				return false
			}
		}
	}
	return true
}

// Select returns the root device among disks: the first disk matching all
// hints, or without hints the smallest disk of at least minSize bytes (ties
// broken by name).
func Select(disks []protocol.Disk, h Hints, minSize int64) (protocol.Disk, error) {
	if len(h) > 0 {
		for _, d := range disks {
			if h.Matches(d) {
				return d, nil
			}
		}
		return protocol.Disk{}, fmt.Errorf("%w: none of %d disks matches the hints", ErrNoDevice, len(disks))
	}
	cands := make([]protocol.Disk, 0, len(disks))
	for _, d := range disks {
		if d.Size >= minSize {
			cands = append(cands, d)
		}
	}
	if len(cands) == 0 {
		return protocol.Disk{}, fmt.Errorf("%w: no disk of at least %d bytes among %d", ErrNoDevice, minSize, len(disks))
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].Size != cands[j].Size {
			return cands[i].Size < cands[j].Size
		}
		return cands[i].Name < cands[j].Name
	})
	return cands[0], nil
}
