// Package policy decides what an authenticated caller may do, as Ironic's
// access rules (oslo.policy with Ironic's defaults) do: named rules such
// as baremetal:node:get, each a check string over the caller's roles and
// scope and the target object's owner and lessee.
//
// The defaults are Ironic 21.4's, enforced as Ironic does with
// [oslo_policy] enforce_scope and enforce_new_defaults on (defaults.go). An
// operator overrides rules with a policy file (YAML or JSON, a map of rule
// name to check string, as oslo.policy's policy_file) read by Load.
//
// The rule language is oslo.policy's, without remote checks:
//
//	@                  always
//	!                  never
//	rule:NAME          another rule
//	role:NAME          the caller holds the role (case-insensitive)
//	KIND:VALUE         a credential attribute equals VALUE: project_id,
//	                   project_name, project_domain_id, user_id,
//	                   user_domain_id, domain_id, system_scope ("all"),
//	                   is_admin_project; VALUE may be %(node.owner)s,
//	                   %(node.lessee)s or %(allocation.owner)s of the target
//	A and B, A or B, not A, ( ... )
//
// An empty check string allows everyone.
package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Creds are the caller's credentials, from its Keystone token.
type Creds struct {
	UserID, UserDomainID                    string
	ProjectID, ProjectName, ProjectDomainID string
	DomainID                                string
	// System is a system-scoped token (system_scope:all).
	System bool
	Roles  []string
}

// Scope is the token's scope as oslo.policy names it: system, domain,
// project or "" (unscoped).
func (c *Creds) Scope() string {
	switch {
	case c.System:
		return "system"
	case c.DomainID != "":
		return "domain"
	case c.ProjectID != "":
		return "project"
	}
	return ""
}

// value is the string form (Python's str) of a credential attribute.
func (c *Creds) value(kind string) (string, bool) {
	orNone := func(s string) string {
		if s == "" {
			return "None"
		}
		return s
	}
	switch kind {
	case "user_id":
		return orNone(c.UserID), true
	case "user_domain_id":
		return orNone(c.UserDomainID), true
	case "project_id":
		return orNone(c.ProjectID), true
	case "project_name":
		return orNone(c.ProjectName), true
	case "project_domain_id":
		return orNone(c.ProjectDomainID), true
	case "domain_id":
		return orNone(c.DomainID), true
	case "system_scope":
		if c.System {
			return "all", true
		}
		return "None", true
	case "is_admin_project":
		return "True", true
	}
	return "", false
}

// Target describes the object acted on: "node.owner", "node.lessee",
// "allocation.owner" (a nil or absent value matches no project).
type Target map[string]any

// NodeTarget is the target of a node with this owner and lessee (nil for
// none), as Ironic builds it.
func NodeTarget(owner, lessee *string) Target {
	t := Target{"node.owner": nil}
	if owner != nil {
		t["node.owner"] = *owner
	}
	// Ironic sets the lessee only when the node has one.
	if lessee != nil && *lessee != "" {
		t["node.lessee"] = *lessee
	}
	return t
}

// AllocationTarget is the target of an allocation with this owner.
func AllocationTarget(owner *string) Target {
	t := Target{"allocation.owner": nil}
	if owner != nil {
		t["allocation.owner"] = *owner
	}
	return t
}

type rule struct {
	text   string
	check  check
	scopes []string
}

// Enforcer holds the rules.
type Enforcer struct {
	rules map[string]rule
	// overridden names the rules a policy file set.
	overridden []string
}

// New returns the enforcer of the defaults with overrides (rule name to
// check string) applied. A check string that does not parse is an error.
func New(overrides map[string]string) (*Enforcer, error) {
	e := &Enforcer{rules: map[string]rule{}}
	for _, d := range append(Defaults(), Additions()...) {
		c, err := parse(d.Check)
		if err != nil {
			return nil, fmt.Errorf("policy: default %s: %w", d.Name, err)
		}
		e.rules[d.Name] = rule{text: d.Check, check: c, scopes: d.Scopes}
	}
	over := maps.Clone(overrides)
	for name, older := range renamed {
		if text, ok := overrides[older]; ok {
			if _, set := overrides[name]; !set {
				over[name] = text
			}
		}
	}
	names := make([]string, 0, len(over))
	for name := range over {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		text := over[name]
		c, err := parse(text)
		if err != nil {
			return nil, fmt.Errorf("policy: rule %q: %q: %w", name, text, err)
		}
		old := e.rules[name]
		e.rules[name] = rule{text: text, check: c, scopes: old.scopes}
		if _, ok := overrides[name]; ok {
			e.overridden = append(e.overridden, name)
		}
	}
	return e, nil
}

// Default returns the enforcer of Ironic's defaults.
func Default() *Enforcer {
	e, err := New(nil)
	if err != nil {
		panic(err) // the defaults are constants
	}
	return e
}

// Load reads a policy file: a YAML or JSON map of rule name to check
// string, as oslo.policy reads policy.yaml (JSON is YAML). An unreadable
// file, another shape or a check string that does not parse is an error.
func Load(file string) (*Enforcer, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("policy: %s: %w", file, err)
	}
	var doc map[string]any
	if err := json.Unmarshal(js, &doc); err != nil || (doc == nil && strings.TrimSpace(string(js)) != "null") {
		return nil, fmt.Errorf("policy: %s: want a map of rule names to check strings", file)
	}
	over := map[string]string{}
	for name, v := range doc {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("policy: %s: rule %q: the check must be a string, not %s", file, name, string(mustJSON(v)))
		}
		over[name] = s
	}
	e, err := New(over)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, file)
	}
	return e, nil
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// Overridden lists the rules a policy file set.
func (e *Enforcer) Overridden() []string { return slices.Clone(e.overridden) }

// Rule is the check string of a rule and whether it exists.
func (e *Enforcer) Rule(name string) (string, bool) {
	r, ok := e.rules[name]
	return r.text, ok
}

// ErrScope: the token's scope is not one the rule accepts (oslo.policy's
// InvalidScope).
var ErrScope = errors.New("policy: invalid scope")

// Check reports whether the caller passes the rule on the target. A rule
// that does not exist is denied; a token of a scope the rule does not
// accept is denied (ErrScope from Authorize).
func (e *Enforcer) Check(name string, c *Creds, t Target) bool {
	return e.Authorize(name, c, t) == nil
}

// Authorize is Check with the reason of a refusal: ErrScope, or an error
// naming the rule.
func (e *Enforcer) Authorize(name string, c *Creds, t Target) error {
	r, ok := e.rules[name]
	if !ok {
		return fmt.Errorf("policy: no rule %q", name)
	}
	// As oslo.policy, an unscoped token is not refused for its scope.
	if sc := c.Scope(); sc != "" && len(r.scopes) > 0 && !slices.Contains(r.scopes, sc) {
		return ErrScope
	}
	if t == nil {
		t = Target{}
	}
	if !r.check.eval(e, c, t, 0) {
		return fmt.Errorf("policy: %s denied", name)
	}
	return nil
}
