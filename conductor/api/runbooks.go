package api

import (
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/internal/python"
	"github.com/ferric-metal/ferric/conductor/store"
)

// Runbooks (API 1.92): named lists of clean steps that a manual cleaning
// or a servicing runs instead of the request's own steps
// (PUT /v1/nodes/{node}/states/provision with "runbook"), on nodes that
// have a trait equal to the runbook's name. The manager resolves them;
// here they are kept. A runbook is public or has an owner (a project), as
// in Ironic; without projects, ferric's users see and use them all.

var runbookFields = []field[*store.Runbook]{
	{"uuid", 92, func(_ echo.Context, r *store.Runbook) any { return r.UUID }},
	{"name", 92, func(_ echo.Context, r *store.Runbook) any { return r.Name }},
	{"steps", 92, func(_ echo.Context, r *store.Runbook) any { return maskedSteps(r.Steps) }},
	{"disable_ramdisk", 92, func(_ echo.Context, r *store.Runbook) any { return r.DisableRamdisk }},
	{"extra", 92, func(_ echo.Context, r *store.Runbook) any { return objOrEmpty(r.Extra) }},
	{"public", 92, func(_ echo.Context, r *store.Runbook) any { return r.Public }},
	{"owner", 92, func(_ echo.Context, r *store.Runbook) any { return strPtr(r.Owner) }},
	{"created_at", 92, func(_ echo.Context, r *store.Runbook) any { return ironicTime(r.CreatedAt) }},
	{"updated_at", 92, func(_ echo.Context, r *store.Runbook) any { return timePtr(r.UpdatedAt) }},
	{"links", 92, func(c echo.Context, r *store.Runbook) any { return links(c, "runbooks", r.UUID) }},
}

var runbookSortKeys = map[string]func(a, b *store.Runbook) int{
	"id":         func(a, b *store.Runbook) int { return cmpInt(a.ID, b.ID) },
	"uuid":       func(a, b *store.Runbook) int { return strings.Compare(a.UUID, b.UUID) },
	"name":       func(a, b *store.Runbook) int { return strings.Compare(a.Name, b.Name) },
	"owner":      func(a, b *store.Runbook) int { return strings.Compare(deref(a.Owner), deref(b.Owner)) },
	"public":     func(a, b *store.Runbook) int { return cmpBool(a.Public, b.Public) },
	"created_at": func(a, b *store.Runbook) int { return a.CreatedAt.Compare(b.CreatedAt) },
	"updated_at": func(a, b *store.Runbook) int { return cmpTime(a.UpdatedAt, b.UpdatedAt) },
}

// runbooks is the runbook resource.
func (s *Server) runbooks() *stepSet[*store.Runbook] {
	return &stepSet[*store.Runbook]{
		param: "runbook", noun: "runbook", collection: "runbooks", schema: "runbook", minVer: 92,
		fields: runbookFields, sortKeys: runbookSortKeys, unsortable: map[string]bool{"steps": true, "extra": true},
		patchable: []string{"disable_ramdisk", "extra", "name", "owner", "public", "steps"},
		store:     s.st,
		fresh:     func(id string) *store.Runbook { return &store.Runbook{UUID: id, Extra: store.Object{}} },
		uuid:      func(r *store.Runbook) string { return r.UUID },
		name:      func(r *store.Runbook) string { return r.Name },
		get:       s.st.Runbook,
		list:      func() []*store.Runbook { return s.st.Runbooks(nil) },
		txGet:     func(tx store.Tx, id string) (*store.Runbook, error) { return tx.Runbook(id) },
		txPut:     func(tx store.Tx, r *store.Runbook) error { return tx.PutRunbook(r) },
		txDelete:  func(tx store.Tx, id string) error { return tx.DeleteRunbook(id) },
		doc: func(r *store.Runbook) map[string]any {
			return map[string]any{"name": r.Name, "steps": stepsDoc(r.Steps), "extra": cloneAny(objOrEmpty(r.Extra)),
				"disable_ramdisk": r.DisableRamdisk, "public": r.Public, "owner": strPtr(r.Owner)}
		},
		set:      setRunbookField,
		check:    checkRunbook,
		vetPatch: vetRunbookPatch,
	}
}

// setRunbookField sets one writable field from a request or patch value.
func setRunbookField(r *store.Runbook, k string, v any) *Error {
	var e *Error
	switch k {
	case "name":
		name, ok := v.(string)
		if !ok {
			return badRequest("Schema error for runbook: %s is not of type 'string'", python.Repr(v))
		}
		r.Name = name
	case "steps":
		r.Steps, e = stepList("runbook", v)
	case "extra":
		r.Extra, e = extraValue("runbook", v)
	case "disable_ramdisk", "public":
		b, ok := v.(bool)
		if v != nil && !ok {
			return badRequest("Schema error for runbook: %s is not of type 'boolean', 'null'", python.Repr(v))
		}
		if k == "public" {
			r.Public = b
		} else {
			r.DisableRamdisk = b
		}
	case "owner":
		if v == nil {
			r.Owner = nil
			return nil
		}
		str, ok := v.(string)
		if !ok {
			return badRequest("Schema error for runbook: %s is not of type 'string', 'null'", python.Repr(v))
		}
		if len(str) > 255 {
			return badRequest("Schema error for runbook: %s is too long", python.Repr(v))
		}
		r.Owner = &str
	default:
		return badRequest("Schema error for runbook: Additional properties are not allowed ('%s' was unexpected)", k)
	}
	return e
}

// checkRunbook checks a runbook as Ironic's schema does and keeps each
// step's order as a number and its args as an object.
func checkRunbook(r *store.Runbook) *Error {
	if e := checkStepSet("runbook", "runbook", r.Name, r.Steps); e != nil {
		return e
	}
	for _, st := range r.Steps {
		if o, ok := st["order"].(string); ok {
			n, _ := strconv.Atoi(o) // digits only, as checked
			st["order"] = n
		}
		if _, ok := st["args"]; !ok {
			st["args"] = map[string]any{}
		}
	}
	return nil
}

// vetRunbookPatch refuses an owner for a runbook that is or becomes
// public, and forgets the owner when the patch sets public, as Ironic's
// runbook PATCH does.
func vetRunbookPatch(r *store.Runbook, ops []patchOp) *Error {
	var owner, public []any
	for _, op := range ops {
		if op.Op == "remove" {
			continue
		}
		switch op.Path {
		case "/owner":
			owner = append(owner, op.Raw()["value"])
		case "/public":
			public = append(public, op.Raw()["value"])
		}
	}
	if len(owner) > 0 {
		publicValue := len(public) > 0 && python.Truthy(public[0])
		if r.Public && len(public) == 0 || publicValue {
			raw := make([]any, len(ops))
			for i, op := range ops {
				raw[i] = op.Raw()
			}
			return badRequest("Couldn't apply patch '%s'. Reason: There cannot be an owner for a public runbook", python.Repr(raw))
		}
	}
	if len(public) > 0 {
		r.Owner = nil
	}
	return nil
}
