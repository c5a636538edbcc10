package api

import (
	"maps"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/internal/python"
	"github.com/ferric-metal/ferric/conductor/store"
)

// Deploy templates (API 1.55): named sets of deploy steps that a deploy
// runs when the template's name is among the instance's traits
// (instance_info.traits). The manager merges them with the request's
// deploy_steps.

var templateFields = []field[*store.DeployTemplate]{
	{"uuid", 55, func(_ echo.Context, d *store.DeployTemplate) any { return d.UUID }},
	{"name", 55, func(_ echo.Context, d *store.DeployTemplate) any { return d.Name }},
	{"description", 55, func(_ echo.Context, d *store.DeployTemplate) any { return strPtr(d.Description) }},
	{"steps", 55, func(_ echo.Context, d *store.DeployTemplate) any { return maskedSteps(d.Steps) }},
	{"extra", 55, func(_ echo.Context, d *store.DeployTemplate) any { return objOrEmpty(d.Extra) }},
	{"created_at", 55, func(_ echo.Context, d *store.DeployTemplate) any { return ironicTime(d.CreatedAt) }},
	{"updated_at", 55, func(_ echo.Context, d *store.DeployTemplate) any { return timePtr(d.UpdatedAt) }},
	{"links", 55, func(c echo.Context, d *store.DeployTemplate) any { return links(c, "deploy_templates", d.UUID) }},
}

var templateSortKeys = map[string]func(a, b *store.DeployTemplate) int{
	"id":         func(a, b *store.DeployTemplate) int { return cmpInt(a.ID, b.ID) },
	"uuid":       func(a, b *store.DeployTemplate) int { return strings.Compare(a.UUID, b.UUID) },
	"name":       func(a, b *store.DeployTemplate) int { return strings.Compare(a.Name, b.Name) },
	"created_at": func(a, b *store.DeployTemplate) int { return a.CreatedAt.Compare(b.CreatedAt) },
	"updated_at": func(a, b *store.DeployTemplate) int { return cmpTime(a.UpdatedAt, b.UpdatedAt) },
}

// maskedSteps hides secrets in step arguments.
func maskedSteps(steps []map[string]any) []map[string]any {
	out := make([]map[string]any, len(steps))
	for i, st := range steps {
		out[i] = maskStep(st)
	}
	return out
}

// maskStep returns a step whose args hide secrets (a copy when it must
// change).
func maskStep[M ~map[string]any](st M) M {
	a, ok := st["args"].(map[string]any)
	if !ok {
		return st
	}
	if m, changed := maskedObject(a, isSecretKey); changed {
		c := maps.Clone(st)
		c["args"] = m
		return c
	}
	return st
}

// maskStepLists hides secrets in the step lists driver_internal_info
// keeps (the steps a deploy or a manual cleaning was asked to run).
func maskStepLists(dii store.Object) store.Object {
	var out store.Object
	for _, k := range []string{"user_deploy_steps", "clean_steps"} {
		var masked []any
		switch list := dii[k].(type) {
		case []any: // as read back from the store
			for _, x := range list {
				if st, ok := x.(map[string]any); ok {
					x = maskStep(st)
				}
				masked = append(masked, x)
			}
		case []map[string]any: // as a request stored it
			for _, st := range list {
				masked = append(masked, maskStep(st))
			}
		default:
			continue
		}
		if out == nil {
			out = maps.Clone(dii)
		}
		out[k] = masked
	}
	if out == nil {
		return dii
	}
	return out
}

// templates is the deploy template resource.
func (s *Server) templates() *stepSet[*store.DeployTemplate] {
	return &stepSet[*store.DeployTemplate]{
		param: "template", noun: "deploy template", collection: "deploy_templates", schema: "template", minVer: 55,
		jsonSchema: templateSchema, validatePatched: validatePatchedTemplate,
		fields: templateFields, sortKeys: templateSortKeys, unsortable: map[string]bool{"steps": true, "extra": true},
		patchable: []string{"extra", "name", "steps", "description"}, // Ironic's order
		store:     s.st,
		fresh:     func(id string) *store.DeployTemplate { return &store.DeployTemplate{UUID: id, Extra: store.Object{}} },
		uuid:      func(d *store.DeployTemplate) string { return d.UUID },
		name:      func(d *store.DeployTemplate) string { return d.Name },
		get:       s.st.DeployTemplate,
		list:      func() []*store.DeployTemplate { return s.st.DeployTemplates(nil) },
		txGet:     func(tx store.Tx, id string) (*store.DeployTemplate, error) { return tx.DeployTemplate(id) },
		txPut:     func(tx store.Tx, d *store.DeployTemplate) error { return tx.PutDeployTemplate(d) },
		txDelete:  func(tx store.Tx, id string) error { return tx.DeleteDeployTemplate(id) },
		doc: func(d *store.DeployTemplate) map[string]any {
			return map[string]any{"name": d.Name, "steps": stepsDoc(d.Steps), "extra": cloneAny(objOrEmpty(d.Extra)), "description": strPtr(d.Description)}
		},
		set:   setTemplateField,
		check: func(d *store.DeployTemplate) *Error { return checkStepSet("template", "deploy", d.Name, d.Steps) },
	}
}

// setTemplateField sets one writable field from a request or patch value.
func setTemplateField(d *store.DeployTemplate, k string, v any) *Error {
	var e *Error
	switch k {
	case "name":
		name, ok := v.(string)
		if !ok {
			return badRequest("Schema error for template: %s is not of type 'string'", python.Repr(v))
		}
		d.Name = name
	case "steps":
		d.Steps, e = stepList("template", v)
	case "extra":
		d.Extra, e = extraValue("template", v)
	case "description":
		if v == nil {
			d.Description = nil
			return nil
		}
		str, ok := v.(string)
		if !ok || len(str) > 255 {
			return badRequest("Schema error for template: %s is not valid for description", python.Repr(v))
		}
		d.Description = &str
	default:
		return badRequest("Schema error for template: Additional properties are not allowed ('%s' was unexpected)", k)
	}
	return e
}
