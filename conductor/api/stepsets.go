package api

import (
	"errors"
	"net/http"
	"sort"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/internal/python"
	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
)

// Step sets: deploy templates (1.55) and runbooks (1.92) are both named
// lists of steps kept in the store, listed, shown, created, patched and
// deleted the same way; stepSet holds what differs between them.
type stepSet[T any] struct {
	noun       string // "deploy template", "runbook" (messages)
	param      string // the route's parameter: "template", "runbook"
	collection string // "deploy_templates", "runbooks" (path, list key)
	schema     string // "template", "runbook" ("Schema error for ...")
	// jsonSchema is Ironic's schema of a create body, and of a patched
	// record (validatePatched), when the resource has them written down.
	jsonSchema      *schema
	validatePatched func(doc map[string]any) *Error
	minVer          Version
	fields          []field[T]
	sortKeys        map[string]func(a, b T) int
	unsortable      map[string]bool // fields Ironic refuses as sort keys
	patchable       []string        // top-level fields a PATCH may touch

	store    store.Store
	fresh    func(uuid string) T // a new record with its defaults
	uuid     func(T) string
	name     func(T) string
	get      func(ident string) (T, error) // by UUID or name
	list     func() []T
	txGet    func(tx store.Tx, ident string) (T, error)
	txPut    func(tx store.Tx, v T) error
	txDelete func(tx store.Tx, uuid string) error
	doc      func(T) map[string]any      // the patchable fields, as a JSON document
	set      func(T, string, any) *Error // sets one writable field from a request value
	check    func(T) *Error              // the whole record, after its fields are set
	vetPatch func(T, []patchOp) *Error   // optional: refuses ops, or adjusts the record, before they apply
}

func (k *stepSet[T]) routes(g *echo.Group) {
	// Below minVer the resource does not exist: 404 for reads, 405 for
	// the rest, as Ironic answers.
	gate := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if ver(c) < k.minVer {
				msg := "The API version does not allow " + k.noun + "s"
				if c.Request().Method == http.MethodGet {
					return notFoundPlain(msg)
				}
				return &Error{Code: http.StatusMethodNotAllowed, Msg: msg}
			}
			return next(c)
		}
	}
	t := g.Group("/"+k.collection, gate)
	t.GET("", k.listAll)
	t.GET("/", k.listAll)
	t.POST("", k.create)
	t.GET("/:"+k.param, k.show)
	t.PATCH("/:"+k.param, k.patch)
	t.DELETE("/:"+k.param, k.delete)
}

func notFoundPlain(msg string) *Error { return &Error{Code: http.StatusNotFound, Msg: msg} }

func (k *stepSet[T]) find(ident string) (T, error) {
	if e := ironichttp.ArgUUIDOrName(k.param+"_ident", ident); e != nil {
		var zero T
		return zero, e
	}
	v, err := k.get(ident)
	if errors.Is(err, store.ErrNotFound) {
		return v, notFound("%s %s could not be found.", capitalize(k.noun), ident)
	}
	return v, err
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (k *stepSet[T]) listAll(c echo.Context) error {
	want, ferr := listWant(c, k.fields, map[string]bool{"uuid": true, "name": true, "links": true},
		"Can not specify ?detail=True and fields in the same request.")
	if ferr != nil {
		return ferr
	}
	page, perr := parsePaging(c, k.sortKeys, k.unsortable, nil)
	if perr != nil {
		return perr
	}
	items, next, perr := paginate(c, k.list(), page, k.sortKeys, k.uuid, k.get)
	if perr != nil {
		return perr
	}
	out := make([]map[string]any, len(items))
	for i, d := range items {
		out[i] = render(c, k.fields, d, ver(c), want)
	}
	return c.JSON(http.StatusOK, collection(k.collection, out, next))
}

func (k *stepSet[T]) show(c echo.Context) error {
	d, err := k.find(c.Param(k.param))
	if err != nil {
		return err
	}
	want, ferr := fieldSet(k.fields, ver(c), c.QueryParam("fields"))
	if ferr != nil {
		return ferr
	}
	return c.JSON(http.StatusOK, render(c, k.fields, d, ver(c), want))
}

func (k *stepSet[T]) duplicate(err error, name string) error {
	var de *store.DuplicateError
	if errors.As(err, &de) {
		if de.Field == "name" {
			return &Error{Code: http.StatusConflict, Msg: "A " + k.noun + " with name " + name + " already exists."}
		}
		return &Error{Code: http.StatusConflict, Msg: "A " + k.noun + " with UUID " + de.Value + " already exists."}
	}
	return err
}

func (k *stepSet[T]) create(c echo.Context) error {
	body, _, err := readJSONObject(c, k.schema)
	if err != nil {
		return err
	}
	if k.jsonSchema != nil {
		if e := k.jsonSchema.Validate(k.schema, body); e != nil {
			return e
		}
	}
	for _, f := range []string{"name", "steps"} {
		if _, ok := body[f]; !ok {
			return badRequest("Schema error for %s: '%s' is a required property", k.schema, f)
		}
	}
	id := uuid.NewString()
	if v, ok := body["uuid"]; ok {
		if e := ironichttp.ArgUUID("uuid", v); e != nil {
			return e
		}
		if u, isStr := v.(string); isStr {
			id = store.CanonicalUUID(u)
		}
	}
	d := k.fresh(id)
	for f, v := range body {
		if f == "uuid" {
			continue
		}
		if e := k.set(d, f, v); e != nil {
			return e
		}
	}
	if e := k.check(d); e != nil {
		return e
	}
	if err := k.update(c, func(tx store.Tx) error { return k.txPut(tx, d) }); err != nil {
		return k.duplicate(err, k.name(d))
	}
	c.Response().Header().Set("Location", baseURL(c)+"/v1/"+k.collection+"/"+k.uuid(d))
	return c.JSON(http.StatusCreated, render(c, k.fields, d, ver(c), nil))
}

// update runs fn in a store transaction.
func (k *stepSet[T]) update(c echo.Context, fn func(store.Tx) error) error {
	return k.store.Update(c.Request().Context(), fn)
}

func (k *stepSet[T]) patch(c echo.Context) error {
	d0, err := k.find(c.Param(k.param))
	if err != nil {
		return err
	}
	ops, err := readPatch(c, k.patchable)
	if err != nil {
		return err
	}
	var out T
	err = k.update(c, func(tx store.Tx) error {
		d, err := k.txGet(tx, k.uuid(d0))
		if err != nil {
			return err
		}
		if k.vetPatch != nil {
			if e := k.vetPatch(d, ops); e != nil {
				return e
			}
		}
		doc := k.doc(d)
		if e := applyPatch(doc, ops); e != nil {
			return e
		}
		if k.validatePatched != nil {
			if e := k.validatePatched(doc); e != nil {
				return e
			}
		}
		for _, f := range k.patchable {
			if e := k.set(d, f, doc[f]); e != nil {
				return e
			}
		}
		if e := k.check(d); e != nil {
			return e
		}
		out = d
		return k.txPut(tx, d)
	})
	if err != nil {
		return k.duplicate(err, k.name(d0))
	}
	return c.JSON(http.StatusOK, render(c, k.fields, out, ver(c), nil))
}

func (k *stepSet[T]) delete(c echo.Context) error {
	d, err := k.find(c.Param(k.param))
	if err != nil {
		return err
	}
	if err := k.update(c, func(tx store.Tx) error { return k.txDelete(tx, k.uuid(d)) }); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// checkStepSet checks the name (a trait) and the steps of a step set as
// Ironic's schemas do: at least one well-formed step, no step twice.
func checkStepSet(schema, stepKind, name string, steps []map[string]any) *Error {
	if e := validTrait(name); e != nil {
		return badRequest("Schema error for %s: '%s' does not match '^CUSTOM_[A-Z0-9_]+$' nor a standard trait", schema, name)
	}
	if len(steps) == 0 {
		return badRequest("Schema error for %s: [] is too short", schema)
	}
	count := map[string]int{}
	for _, st := range steps {
		if msg := manager.StepShapeError(stepKind, st); msg != "" {
			return badRequest("Schema error for %s: %s", schema, msg)
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
		noun := "template"
		if schema == "template" {
			noun = "deploy template" // Ironic 21.4's deploy template wording
		}
		return badRequest("Deploy template invalid: Duplicate deploy steps. A %s cannot have multiple deploy steps with the same interface and step. Duplicates: %s.", noun, strings.Join(dups, "; "))
	}
	return nil
}

// stepList reads a steps value of a request or a patched document.
func stepList(schema string, v any) ([]map[string]any, *Error) {
	list, ok := v.([]any)
	if !ok {
		return nil, badRequest("Schema error for %s: %s is not of type 'array'", schema, python.Repr(v))
	}
	steps := make([]map[string]any, 0, len(list))
	for _, x := range list {
		st, ok := x.(map[string]any)
		if !ok {
			return nil, badRequest("Schema error for %s: %s is not of type 'object'", schema, python.Repr(x))
		}
		steps = append(steps, st)
	}
	return steps, nil
}

// extraValue reads an extra value (null: empty).
func extraValue(schema string, v any) (store.Object, *Error) {
	if v == nil {
		return store.Object{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, badRequest("Schema error for %s: %s is not of type 'object', 'null'", schema, python.Repr(v))
	}
	return m, nil
}

// stepsDoc is a copy of steps as a patch document holds them.
func stepsDoc(steps []map[string]any) []any {
	out := make([]any, len(steps))
	for i, st := range steps {
		out[i] = cloneAny(st)
	}
	return out
}
