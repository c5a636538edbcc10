package manager

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ferric-metal/ferric/conductor/internal/python"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// User clean and deploy steps, checked as Ironic checks them: their shape
// when the request arrives (Ironic's JSON schemas), the steps themselves
// against what the node offers once its agent lists them.

// stepInterfaces are the interfaces a user clean or deploy step may name,
// in Ironic's order of precedence for steps of equal priority (first
// wins); firmware and vendor came with the firmware interface (API 1.86).
var stepInterfaces = []string{"vendor", "power", "management", "firmware", "deploy", "bios", "raid"}

// StepInterfaces are the interfaces of deploy and clean steps, in the
// order of Ironic's step priorities (for the API's step schema).
func StepInterfaces() []string { return slices.Clone(stepInterfaces) }

// serviceStepInterfaces are those of service steps (API 1.87, Ironic's
// servicing interface order).
var serviceStepInterfaces = []string{"vendor", "power", "management", "firmware", "deploy", "bios", "raid", "network"}

// writeImagePriority is the priority of the direct deploy interface's
// write_image step: user deploy steps above it run before the image is
// written, those below it after.
const writeImagePriority = 80

// conductorDeploySteps are the steps the direct deploy interface runs
// itself, with their priorities. deploy.deploy is the core step.
var conductorDeploySteps = map[string]int{
	"deploy.deploy": 100, "deploy.write_image": writeImagePriority, "deploy.prepare_instance_boot": 60,
	"deploy.tear_down_agent": 40, "deploy.switch_to_tenant_network": 30, "deploy.boot_instance": 20,
}

// checkStepShapes validates user steps of kind "clean" or "deploy" as
// Ironic's schemas do: interface, step (and for deploy steps args and
// priority) required, nothing else allowed.
func checkStepShapes(kind string, steps []map[string]any) error {
	for _, st := range steps {
		if msg := StepShapeError(kind, st); msg != "" {
			return userErr(ErrInvalidInput, "Invalid %s_steps: %s", kind, msg)
		}
	}
	return nil
}

// StepShapeError returns what is wrong with the shape of a user step of
// kind "clean", "service", "deploy" or "runbook" (a runbook's step, with
// the interfaces of clean steps), in jsonschema's words, or "".
func StepShapeError(kind string, st map[string]any) string {
	// Clean and service steps may carry the order a runbook gave them;
	// a runbook's steps must.
	allowed := []string{"interface", "step", "args", "order"}
	required := []string{"interface", "step"}
	switch kind {
	case "deploy":
		allowed = []string{"interface", "step", "args", "priority"}
		required = allowed
	case "runbook":
		required = []string{"interface", "step", "order"}
	}
	var extra []string
	for k := range st {
		if !slices.Contains(allowed, k) {
			extra = append(extra, "'"+k+"'")
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		verb := "was"
		if len(extra) > 1 {
			verb = "were"
		}
		return fmt.Sprintf("Additional properties are not allowed (%s %s unexpected)", strings.Join(extra, ", "), verb)
	}
	for _, k := range required {
		if _, ok := st[k]; !ok {
			return fmt.Sprintf("'%s' is a required property", k)
		}
	}
	ifaces := stepInterfaces
	if kind == "service" {
		ifaces = serviceStepInterfaces
	}
	if i, ok := st["interface"].(string); !ok || !slices.Contains(ifaces, i) {
		return fmt.Sprintf("%s is not one of ['%s']", python.Repr(st["interface"]), strings.Join(ifaces, "', '"))
	}
	switch s := st["step"].(type) {
	case string:
		if s == "" {
			return "'' is too short"
		}
	default:
		return fmt.Sprintf("%s is not of type 'string'", python.Repr(s))
	}
	if a, ok := st["args"]; ok {
		if _, isObj := a.(map[string]any); !isObj {
			return fmt.Sprintf("%s is not of type 'object'", python.Repr(a))
		}
	}
	for _, k := range []string{"priority", "order"} {
		if p, ok := st[k]; ok {
			if _, err := stepPriority(p); err != nil {
				return fmt.Sprintf("%s is not valid under any of the given schemas", python.Repr(p))
			}
		}
	}
	return ""
}

// stepPriority reads a deploy step priority: a non-negative integer or a
// string of digits.
func stepPriority(v any) (int, error) {
	switch p := v.(type) {
	case float64:
		if p >= 0 && p == float64(int(p)) {
			return int(p), nil
		}
	case string:
		if n, err := strconv.Atoi(p); err == nil && n >= 0 && strings.Trim(p, "0123456789") == "" {
			return n, nil
		}
	}
	return 0, fmt.Errorf("invalid priority %v", v)
}

func stepID(st map[string]any) string {
	i, _ := st["interface"].(string)
	s, _ := st["step"].(string)
	return i + "." + s
}

// checkCoreDeploySteps rejects, when the request arrives, user deploy
// steps that would override the core step (as Ironic does) and those
// naming the direct deploy interface's own steps with another priority:
// ferric runs those in their fixed order.
func checkCoreDeploySteps(steps []map[string]any) error {
	seen := map[string]bool{}
	var errs, dups []string
	for _, st := range steps {
		id := stepID(st)
		if seen[id] && !slices.Contains(dups, id) {
			dups = append(dups, id)
		}
		seen[id] = true
		def, ok := conductorDeploySteps[id]
		if !ok {
			continue
		}
		p, _ := stepPriority(st["priority"])
		switch {
		case id == "deploy.deploy" && p > 0:
			errs = append(errs, fmt.Sprintf("deploy step %s on interface deploy is a core step and cannot be overridden by user steps. It may be disabled by setting the priority to 0", st["step"]))
		case p != def:
			errs = append(errs, fmt.Sprintf("deploy step %s runs at its own priority %d here and cannot be reordered or disabled", id, def))
		}
	}
	if len(dups) > 0 { // Ironic's text, after the steps' own errors
		errs = append(errs, "deploy steps from all deploy templates matching this node's instance traits cannot have the same interface and step. Duplicate deploy steps for "+strings.Join(dups, ", "))
	}
	if len(errs) > 0 {
		return userErr(ErrInvalidInput, "%s", strings.Join(errs, "; "))
	}
	return nil
}

// agentDeploySteps orders the user deploy steps (those not of the direct
// deploy interface's own) by priority, highest first, ties broken by
// interface as Ironic does, and splits them around write_image. Steps
// with priority 0 are disabled. A step neither the agent offers nor the
// conductor runs itself (conductorSide) fails the deploy with Ironic's
// message.
func agentDeploySteps(user []map[string]any, offered []protocol.Step, conductorSide func(map[string]any) bool) (before, after []map[string]any, err error) {
	known := map[string]bool{}
	for _, s := range offered {
		known[s.Interface+"."+s.Step] = true
	}
	var run []map[string]any
	var errs []string
	for _, st := range user {
		id := stepID(st)
		if _, own := conductorDeploySteps[id]; own {
			continue
		}
		if !known[id] && (conductorSide == nil || !conductorSide(st)) {
			b, _ := json.Marshal(st)
			errs = append(errs, "node does not support this deploy step: "+string(b))
			continue
		}
		if p, _ := stepPriority(st["priority"]); p > 0 {
			run = append(run, st)
		}
	}
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	sortSteps(run)
	for _, st := range run {
		if p, _ := stepPriority(st["priority"]); p > writeImagePriority {
			before = append(before, st)
		} else {
			after = append(after, st)
		}
	}
	return before, after, nil
}

// templateSteps returns the steps of the deploy templates named by the
// instance's traits (instance_info.traits), as Ironic selects them.
func (m *Manager) templateSteps(n *store.Node) []map[string]any {
	var out []map[string]any
	for _, dt := range m.matchingTemplates(n) {
		for _, st := range dt.Steps {
			out = append(out, maps.Clone(st))
		}
	}
	return out
}

// matchingTemplates returns the deploy templates named by the instance's
// traits, in the traits' order.
func (m *Manager) matchingTemplates(n *store.Node) []*store.DeployTemplate {
	traits, _ := n.InstanceInfo["traits"].([]any)
	var out []*store.DeployTemplate
	for _, t := range traits {
		name, _ := t.(string)
		if name == "" || store.IsUUID(name) { // a trait, never a template's UUID
			continue
		}
		if dt, err := m.st.DeployTemplate(name); err == nil {
			out = append(out, dt)
		}
	}
	return out
}

// validateDeploySteps is the deploy interface's step check of node
// validation, as Ironic runs it before an agent reports its steps: the
// instance traits must be set on the node, and the steps of the deploy
// templates they name and the user's stored deploy steps must not repeat
// a step nor override the core one. The reason is Ironic's text; empty
// when all is well.
func (m *Manager) validateDeploySteps(n *store.Node) string {
	if err := checkInstanceTraits(n); err != nil {
		return err.Error()
	}
	templates := m.matchingTemplates(n)
	var steps []map[string]any
	names := make([]string, 0, len(templates))
	for _, dt := range templates {
		names = append(names, dt.Name)
		for _, st := range dt.Steps {
			steps = append(steps, maps.Clone(st))
		}
	}
	if err := checkCoreDeploySteps(m.conductorSteps(n, steps)); err != nil {
		return fmt.Sprintf("Validation of deploy steps from deploy templates matching this node's instance traits failed. Matching deploy templates: %s. Errors: %v", strings.Join(names, ","), err)
	}
	if err := checkCoreDeploySteps(m.conductorSteps(n, userDeploySteps(n))); err != nil {
		return fmt.Sprintf("Validation of deploy steps from \"deploy steps\" argument failed.%v", err)
	}
	return ""
}

// userDeploySteps reads the steps a deploy request stored.
func userDeploySteps(n *store.Node) []map[string]any {
	var steps []map[string]any
	if raw, ok := n.DriverInternalInfo["user_deploy_steps"]; ok {
		b, _ := json.Marshal(raw)
		_ = json.Unmarshal(b, &steps)
	}
	return steps
}

// sortSteps orders steps as Ironic runs them: higher priority first, and at
// the same priority by interface (stepInterfaces' order); stable otherwise.
func sortSteps(run []map[string]any) {
	rank := func(st map[string]any) (int, int) {
		p, _ := stepPriority(st["priority"])
		i, _ := st["interface"].(string)
		return p, len(stepInterfaces) - slices.Index(stepInterfaces, i)
	}
	sort.SliceStable(run, func(a, b int) bool {
		pa, ia := rank(run[a])
		pb, ib := rank(run[b])
		if pa != pb {
			return pa > pb
		}
		return ia > ib
	})
}
