package api

import (
	"errors"
	"maps"
	"net/http"
	"sort"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/internal/python"
	"github.com/ferric-metal/ferric/conductor/manager"
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

func (s *Server) templateRoutes(g *echo.Group) {
	// Below 1.55 the resource does not exist: 404 for reads, 405 for the rest.
	gate := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if ver(c) < 55 {
				if c.Request().Method == http.MethodGet {
					return notFoundPlain("The API version does not allow deploy templates")
				}
				return &Error{Code: http.StatusMethodNotAllowed, Msg: "The API version does not allow deploy templates"}
			}
			return next(c)
		}
	}
	t := g.Group("/deploy_templates", gate)
	t.GET("", s.listTemplates)
	t.GET("/", s.listTemplates)
	t.POST("", s.createTemplate)
	t.GET("/:tpl", s.getTemplate)
	t.PATCH("/:tpl", s.patchTemplate)
	t.DELETE("/:tpl", s.deleteTemplate)
}

func notFoundPlain(msg string) *Error { return &Error{Code: http.StatusNotFound, Msg: msg} }

func (s *Server) findTemplate(ident string) (*store.DeployTemplate, error) {
	d, err := s.st.DeployTemplate(ident)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("Deploy template %s could not be found.", ident)
	}
	return d, err
}

func (s *Server) listTemplates(c echo.Context) error {
	want, ferr := listWant(c, templateFields, map[string]bool{"uuid": true, "name": true, "links": true},
		"Can not specify ?detail=True and fields in the same request.")
	if ferr != nil {
		return ferr
	}
	page, perr := parsePaging(c, templateSortKeys, map[string]bool{"steps": true, "extra": true}, nil)
	if perr != nil {
		return perr
	}
	items, next, perr := paginate(c, s.st.DeployTemplates(nil), page, templateSortKeys,
		func(d *store.DeployTemplate) string { return d.UUID },
		func(id string) (*store.DeployTemplate, error) { return s.st.DeployTemplate(id) })
	if perr != nil {
		return perr
	}
	out := make([]map[string]any, len(items))
	for i, d := range items {
		out[i] = render(c, templateFields, d, ver(c), want)
	}
	return c.JSON(http.StatusOK, collection("deploy_templates", out, next))
}

func (s *Server) getTemplate(c echo.Context) error {
	d, err := s.findTemplate(c.Param("tpl"))
	if err != nil {
		return err
	}
	want, ferr := fieldSet(templateFields, ver(c), c.QueryParam("fields"))
	if ferr != nil {
		return ferr
	}
	return c.JSON(http.StatusOK, render(c, templateFields, d, ver(c), want))
}

// templateError checks a template as Ironic's schema does (name a trait,
// at least one well-formed deploy step, no step twice).
func templateError(d *store.DeployTemplate) *Error {
	if e := validTrait(d.Name); e != nil {
		return badRequest("Schema error for template: '%s' does not match '^CUSTOM_[A-Z0-9_]+$' nor a standard trait", d.Name)
	}
	if len(d.Steps) == 0 {
		return badRequest("Schema error for template: [] is too short")
	}
	count := map[string]int{}
	for _, st := range d.Steps {
		if msg := manager.StepShapeError("deploy", st); msg != "" {
			return badRequest("Schema error for template: %s", msg)
		}
		count["interface: "+st["interface"].(string)+", step: "+st["step"].(string)]++
	}
	var dups []string
	for k, n := range count {
		if n > 1 {
			dups = append(dups, k)
		}
	}
	if len(dups) > 0 {
		sort.Strings(dups)
		return badRequest("Deploy template invalid: Duplicate deploy steps. A deploy template cannot have multiple deploy steps with the same interface and step. Duplicates: %s", strings.Join(dups, "; "))
	}
	return nil
}

// setTemplateField sets one writable field from a request or patch value.
func setTemplateField(d *store.DeployTemplate, k string, v any) *Error {
	switch k {
	case "name":
		name, ok := v.(string)
		if !ok {
			return badRequest("Schema error for template: %s is not of type 'string'", python.Repr(v))
		}
		d.Name = name
	case "steps":
		list, ok := v.([]any)
		if !ok {
			return badRequest("Schema error for template: %s is not of type 'array'", python.Repr(v))
		}
		d.Steps = make([]map[string]any, 0, len(list))
		for _, x := range list {
			st, ok := x.(map[string]any)
			if !ok {
				return badRequest("Schema error for template: %s is not of type 'object'", python.Repr(x))
			}
			d.Steps = append(d.Steps, st)
		}
	case "extra":
		if v == nil {
			d.Extra = store.Object{}
			return nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			return badRequest("Schema error for template: %s is not of type 'object', 'null'", python.Repr(v))
		}
		d.Extra = m
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
	return nil
}

func templateDuplicate(err error, name string) error {
	var de *store.DuplicateError
	if errors.As(err, &de) {
		if de.Field == "name" {
			return &Error{Code: http.StatusConflict, Msg: "A deploy template with name " + name + " already exists."}
		}
		return &Error{Code: http.StatusConflict, Msg: "A deploy template with UUID " + de.Value + " already exists."}
	}
	return err
}

func (s *Server) createTemplate(c echo.Context) error {
	body, _, err := readJSONObject(c, "template")
	if err != nil {
		return err
	}
	d := &store.DeployTemplate{UUID: uuid.NewString(), Extra: store.Object{}}
	for _, k := range []string{"name", "steps"} {
		if _, ok := body[k]; !ok {
			return badRequest("Schema error for template: '%s' is a required property", k)
		}
	}
	for k, v := range body {
		if k == "uuid" {
			u, ok := v.(string)
			if v != nil && (!ok || !store.IsUUID(u)) {
				return badRequest("Expected a UUID but received %v.", v)
			}
			if ok {
				d.UUID = store.CanonicalUUID(u)
			}
			continue
		}
		if e := setTemplateField(d, k, v); e != nil {
			return e
		}
	}
	if e := templateError(d); e != nil {
		return e
	}
	if err := s.st.Update(c.Request().Context(), func(tx store.Tx) error { return tx.PutDeployTemplate(d) }); err != nil {
		return templateDuplicate(err, d.Name)
	}
	c.Response().Header().Set("Location", baseURL(c)+"/v1/deploy_templates/"+d.UUID)
	return c.JSON(http.StatusCreated, render(c, templateFields, d, ver(c), nil))
}

func (s *Server) patchTemplate(c echo.Context) error {
	d0, err := s.findTemplate(c.Param("tpl"))
	if err != nil {
		return err
	}
	ops, err := readPatch(c, []string{"name", "steps", "extra", "description"})
	if err != nil {
		return err
	}
	var out *store.DeployTemplate
	err = s.st.Update(c.Request().Context(), func(tx store.Tx) error {
		d, err := tx.DeployTemplate(d0.UUID)
		if err != nil {
			return err
		}
		steps := make([]any, len(d.Steps))
		for i, st := range d.Steps {
			steps[i] = cloneAny(st)
		}
		doc := map[string]any{"name": d.Name, "steps": steps, "extra": cloneAny(objOrEmpty(d.Extra)), "description": strPtr(d.Description)}
		if e := applyPatch(doc, ops); e != nil {
			return e
		}
		for _, k := range []string{"name", "steps", "extra", "description"} {
			if e := setTemplateField(d, k, doc[k]); e != nil {
				return e
			}
		}
		if e := templateError(d); e != nil {
			return e
		}
		out = d
		return tx.PutDeployTemplate(d)
	})
	if err != nil {
		return templateDuplicate(err, d0.Name)
	}
	return c.JSON(http.StatusOK, render(c, templateFields, out, ver(c), nil))
}

func (s *Server) deleteTemplate(c echo.Context) error {
	d, err := s.findTemplate(c.Param("tpl"))
	if err != nil {
		return err
	}
	if err := s.st.Update(c.Request().Context(), func(tx store.Tx) error { return tx.DeleteDeployTemplate(d.UUID) }); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
