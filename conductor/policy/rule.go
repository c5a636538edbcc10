package policy

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// A check is one node of a parsed rule.
type check interface {
	eval(e *Enforcer, c *Creds, t Target, depth int) bool
}

type (
	trueCheck  struct{}
	falseCheck struct{}
	notCheck   struct{ x check }
	andCheck   []check
	orCheck    []check
	// ruleCheck is rule:NAME, another rule of the enforcer.
	ruleCheck string
	// roleCheck is role:NAME (case-insensitive; NAME may be a %(key)s
	// of the target).
	roleCheck string
	// genericCheck is KIND:MATCH: a credential attribute (or a literal)
	// compared with MATCH, a literal or a %(key)s of the target.
	genericCheck struct{ kind, match string }
)

// maxDepth bounds rule:NAME recursion (a rule naming itself is denied).
const maxDepth = 32

func (trueCheck) eval(*Enforcer, *Creds, Target, int) bool  { return true }
func (falseCheck) eval(*Enforcer, *Creds, Target, int) bool { return false }
func (n notCheck) eval(e *Enforcer, c *Creds, t Target, d int) bool {
	return !n.x.eval(e, c, t, d)
}

func (a andCheck) eval(e *Enforcer, c *Creds, t Target, d int) bool {
	for _, x := range a {
		if !x.eval(e, c, t, d) {
			return false
		}
	}
	return true
}

func (o orCheck) eval(e *Enforcer, c *Creds, t Target, d int) bool {
	for _, x := range o {
		if x.eval(e, c, t, d) {
			return true
		}
	}
	return false
}

func (r ruleCheck) eval(e *Enforcer, c *Creds, t Target, d int) bool {
	if d >= maxDepth {
		return false
	}
	x, ok := e.rules[string(r)]
	if !ok {
		return false
	}
	return x.check.eval(e, c, t, d+1)
}

func (r roleCheck) eval(_ *Enforcer, c *Creds, t Target, _ int) bool {
	want, ok := interpolate(string(r), t, c)
	if !ok {
		return false
	}
	for _, have := range c.Roles {
		if strings.EqualFold(have, want) {
			return true
		}
	}
	return false
}

func (g genericCheck) eval(_ *Enforcer, c *Creds, t Target, _ int) bool {
	match, ok := interpolate(g.match, t, c)
	if !ok {
		return false
	}
	// A literal on the left ('x', True, 3) is compared as it is.
	if lit, ok := literal(g.kind); ok {
		return match == lit
	}
	have, ok := c.value(g.kind)
	if !ok {
		return false
	}
	return match == have
}

// literal is the string form of a Python literal on a check's left side.
func literal(s string) (string, bool) {
	switch s {
	case "True", "False", "None":
		return s, true
	}
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1], true
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil {
		return s, true
	}
	return "", false
}

// interpolate expands the %(key)s of s from the target; a key the target
// lacks fails the check, as in oslo.policy. A nil value reads "None". As
// in Ironic, the target holds the caller's credentials too.
func interpolate(s string, t Target, c *Creds) (string, bool) {
	if !strings.Contains(s, "%(") {
		return s, true
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "%(")
		if i < 0 {
			b.WriteString(s)
			return b.String(), true
		}
		j := strings.Index(s[i:], ")s")
		if j < 0 {
			return "", false
		}
		b.WriteString(s[:i])
		key := s[i+2 : i+j]
		if v, ok := t[key]; ok {
			b.WriteString(pyStr(v))
		} else if v, ok := c.value(key); ok {
			b.WriteString(v)
		} else {
			return "", false
		}
		s = s[i+j+2:]
	}
}

// pyStr is Python's str() of a target value.
func pyStr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return x
	case *string:
		if x == nil {
			return "None"
		}
		return *x
	case bool:
		if x {
			return "True"
		}
		return "False"
	default:
		return fmt.Sprint(x)
	}
}

// parse reads a rule in oslo.policy's language: checks joined by and, or
// and not, with parentheses.
func parse(s string) (check, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return trueCheck{}, nil
	}
	p := &parser{toks: toks}
	c, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q", p.toks[p.i])
	}
	return c, nil
}

func tokenize(s string) ([]string, error) {
	var toks []string
	for _, f := range strings.Fields(s) {
		// Parentheses may be glued to a check: "(role:admin" "x)".
		for strings.HasPrefix(f, "(") {
			toks = append(toks, "(")
			f = f[1:]
		}
		closing := 0
		for strings.HasSuffix(f, ")") && !strings.HasSuffix(f, ")s") {
			closing++
			f = f[:len(f)-1]
		}
		if f != "" {
			toks = append(toks, f)
		}
		for ; closing > 0; closing-- {
			toks = append(toks, ")")
		}
	}
	return toks, nil
}

type parser struct {
	toks []string
	i    int
}

func (p *parser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *parser) or() (check, error) {
	xs, err := p.chain("or", p.and)
	switch {
	case err != nil:
		return nil, err
	case len(xs) == 1:
		return xs[0], nil
	}
	return orCheck(xs), nil
}

func (p *parser) and() (check, error) {
	xs, err := p.chain("and", p.not)
	switch {
	case err != nil:
		return nil, err
	case len(xs) == 1:
		return xs[0], nil
	}
	return andCheck(xs), nil
}

// chain parses operands joined by the word op (next, then op next, ...)
// and returns them.
func (p *parser) chain(op string, next func() (check, error)) ([]check, error) {
	first, err := next()
	if err != nil {
		return nil, err
	}
	out := []check{first}
	for strings.EqualFold(p.peek(), op) {
		p.i++
		x, err := next()
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

func (p *parser) not() (check, error) {
	if strings.EqualFold(p.peek(), "not") {
		p.i++
		x, err := p.not()
		if err != nil {
			return nil, err
		}
		return notCheck{x}, nil
	}
	return p.atom()
}

func (p *parser) atom() (check, error) {
	tok := p.peek()
	switch {
	case tok == "":
		return nil, fmt.Errorf("rule ends early")
	case tok == "(":
		p.i++
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, errors.New("a ( is not closed")
		}
		p.i++
		return x, nil
	case tok == ")":
		return nil, fmt.Errorf("unexpected )")
	case strings.EqualFold(tok, "and"), strings.EqualFold(tok, "or"):
		return nil, fmt.Errorf("unexpected %q", tok)
	}
	p.i++
	switch tok {
	case "@":
		return trueCheck{}, nil
	case "!":
		return falseCheck{}, nil
	}
	kind, match, ok := strings.Cut(tok, ":")
	if !ok || kind == "" || match == "" {
		return nil, fmt.Errorf("check %q: want KIND:VALUE, @ or ! alone", tok)
	}
	switch kind {
	case "rule":
		return ruleCheck(match), nil
	case "role":
		return roleCheck(match), nil
	case "http", "https":
		return nil, fmt.Errorf("check %q: remote (http) checks are not supported", tok)
	}
	return genericCheck{kind: kind, match: match}, nil
}
