// Package ruleapi serves Ironic's inspection rules API (/v1/inspection_rules,
// API 1.96) over a rules.Store: list, create, get, patch, delete one and
// delete all. Errors are written in Ironic's fault shape
// ({"error_message": "{\"faultstring\": ...}"}) by the handlers themselves,
// so the routes work on any echo group.
package ruleapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/inspector/rules"
)

// MinVersion is the Ironic API microversion that introduced the routes.
const MinVersion = 96

// Handler serves the inspection rules API.
type Handler struct {
	Rules rules.Store
}

// Register mounts the routes on g, which is the Ironic /v1 group (routes
// are /inspection_rules and /inspection_rules/:rule).
func (h *Handler) Register(g *echo.Group) {
	g.GET("/inspection_rules", h.list)
	g.POST("/inspection_rules", h.create)
	g.DELETE("/inspection_rules", h.deleteAll)
	g.GET("/inspection_rules/:rule", h.get)
	g.PATCH("/inspection_rules/:rule", h.patch)
	g.DELETE("/inspection_rules/:rule", h.delete)
}

// fault writes Ironic's error shape.
func fault(c echo.Context, code int, format string, args ...any) error {
	return c.JSON(code, ironichttp.Errorf(code, format, args...).Body())
}

func storeError(c echo.Context, err error) error {
	switch {
	case errors.Is(err, rules.ErrNotFound):
		return fault(c, http.StatusNotFound, "Inspection rule %s could not be found.", c.Param("rule"))
	case errors.Is(err, rules.ErrExists):
		return fault(c, http.StatusConflict, "%v", err)
	case errors.Is(err, rules.ErrInvalidRule):
		return fault(c, http.StatusBadRequest, "%v", err)
	}
	return fault(c, http.StatusInternalServerError, "Internal server error: %v", err)
}

func baseURL(c echo.Context) string { return ironichttp.BaseURL(c.Request()) }

func timeStr(t time.Time) string { return ironichttp.Time(t) }

// all fields of a rule in API order.
var allFields = []string{"uuid", "description", "priority", "sensitive", "phase", "conditions", "actions",
	"created_at", "updated_at", "links"}

// summary fields of a list without detail.
var summaryFields = []string{"uuid", "description", "priority", "sensitive", "phase", "created_at", "updated_at", "links"}

// render turns a rule into its API object. A sensitive rule's conditions
// and actions are masked (null).
func render(c echo.Context, r rules.Rule, fields []string) map[string]any {
	out := map[string]any{}
	for _, f := range fields {
		switch f {
		case "uuid":
			out[f] = r.UUID
		case "description":
			if r.Description == "" {
				out[f] = nil
			} else {
				out[f] = r.Description
			}
		case "priority":
			out[f] = r.Priority
		case "sensitive":
			out[f] = r.Sensitive
		case "phase":
			out[f] = r.Phase
		case "conditions":
			if r.Sensitive {
				out[f] = nil
			} else if r.Conditions == nil {
				out[f] = []rules.Condition{}
			} else {
				out[f] = r.Conditions
			}
		case "actions":
			if r.Sensitive {
				out[f] = nil
			} else {
				out[f] = r.Actions
			}
		case "created_at":
			out[f] = timeStr(r.CreatedAt)
		case "updated_at":
			if r.UpdatedAt == nil {
				out[f] = nil
			} else {
				out[f] = timeStr(*r.UpdatedAt)
			}
		case "links":
			out[f] = []map[string]string{
				{"href": baseURL(c) + "/v1/inspection_rules/" + r.UUID, "rel": "self"},
				{"href": baseURL(c) + "/inspection_rules/" + r.UUID, "rel": "bookmark"},
			}
		}
	}
	return out
}

// fieldsParam parses ?fields=a,b (uuid always included).
func fieldsParam(c echo.Context, def []string) ([]string, error) {
	raw := c.QueryParam("fields")
	if raw == "" {
		return def, nil
	}
	out := []string{"uuid"}
	for _, f := range strings.Split(raw, ",") {
		f = strings.TrimSpace(f)
		if f == "" || f == "uuid" {
			continue
		}
		if !slices.Contains(allFields, f) {
			return nil, fmt.Errorf("Field(s) %q are not valid", f)
		}
		out = append(out, f)
	}
	return out, nil
}

func (h *Handler) list(c echo.Context) error {
	q := c.QueryParams()
	detail := false
	if v := q.Get("detail"); v != "" {
		b, ok := ironichttp.ParseBool(v)
		if !ok {
			return fault(c, http.StatusBadRequest, "Invalid value for detail: %q", v)
		}
		detail = b
	}
	def := summaryFields
	if detail {
		def = allFields
	}
	if detail && q.Get("fields") != "" {
		return fault(c, http.StatusBadRequest, "Can not specify ?detail=True and fields in the same request.")
	}
	fields, err := fieldsParam(c, def)
	if err != nil {
		return fault(c, http.StatusBadRequest, "%v", err)
	}
	rs, err := h.Rules.List(c.Request().Context())
	if err != nil {
		return storeError(c, err)
	}
	if ph := q.Get("phase"); ph != "" {
		rs = slices.DeleteFunc(rs, func(r rules.Rule) bool { return r.Phase != ph })
	}
	switch key := q.Get("sort_key"); key {
	case "", "id", "created_at":
	case "uuid", "priority", "description", "phase":
		sort.SliceStable(rs, func(i, j int) bool {
			a, b := rs[i], rs[j]
			switch key {
			case "uuid":
				return a.UUID < b.UUID
			case "priority":
				return a.Priority < b.Priority
			case "description":
				return a.Description < b.Description
			}
			return a.Phase < b.Phase
		})
	default:
		return fault(c, http.StatusBadRequest, "The sort_key value %q is an invalid field for sorting", key)
	}
	switch q.Get("sort_dir") {
	case "", "asc":
	case "desc":
		slices.Reverse(rs)
	default:
		return fault(c, http.StatusBadRequest, "Invalid sort direction: %s. Acceptable values are 'asc' or 'desc'", q.Get("sort_dir"))
	}
	if m := q.Get("marker"); m != "" {
		i := slices.IndexFunc(rs, func(r rules.Rule) bool { return r.UUID == m })
		if i < 0 {
			return fault(c, http.StatusBadRequest, "Marker %s could not be found.", m)
		}
		rs = rs[i+1:]
	}
	limit := 0
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return fault(c, http.StatusBadRequest, "Limit must be positive: %s", l)
		}
		limit = n
	}
	items := []map[string]any{}
	for i, r := range rs {
		if limit > 0 && i == limit {
			break
		}
		items = append(items, render(c, r, fields))
	}
	out := map[string]any{"inspection_rules": items}
	if limit > 0 && len(rs) > limit {
		nq := c.QueryParams()
		nq.Set("marker", rs[limit-1].UUID)
		out["next"] = baseURL(c) + "/v1/inspection_rules?" + nq.Encode()
	}
	return c.JSON(http.StatusOK, out)
}

func (h *Handler) get(c echo.Context) error {
	fields, err := fieldsParam(c, allFields)
	if err != nil {
		return fault(c, http.StatusBadRequest, "%v", err)
	}
	r, err := h.Rules.Get(c.Request().Context(), c.Param("rule"))
	if err != nil {
		return storeError(c, err)
	}
	return c.JSON(http.StatusOK, render(c, r, fields))
}

// readBody reads a rule or patch body: past 1 MiB a 413, a body that
// cannot be read (a broken chunked encoding) a 400.
func readBody(c echo.Context) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, 1<<20))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, echo.NewHTTPError(http.StatusRequestEntityTooLarge, "Request is too large.")
	case err != nil:
		return nil, echo.NewHTTPError(http.StatusBadRequest, "Could not read the request body.")
	}
	return b, nil
}

func (h *Handler) create(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	r, err := rules.Parse(body)
	if err != nil {
		return storeError(c, err)
	}
	r, err = h.Rules.Create(c.Request().Context(), r)
	if err != nil {
		return storeError(c, err)
	}
	c.Response().Header().Set("Location", baseURL(c)+"/v1/inspection_rules/"+r.UUID)
	return c.JSON(http.StatusCreated, render(c, r, allFields))
}

// patchable lists the fields a PATCH may change.
var patchable = []string{"description", "priority", "sensitive", "phase", "conditions", "actions"}

func (h *Handler) patch(c echo.Context) error {
	ctx := c.Request().Context()
	body, err := readBody(c)
	if err != nil {
		return err
	}
	var ops []ironichttp.Op
	if err := json.Unmarshal(body, &ops); err != nil || len(ops) == 0 {
		return fault(c, http.StatusBadRequest, "Invalid patch: the body must be a non-empty JSON Patch list")
	}
	for _, op := range ops {
		parts := ironichttp.SplitPointer(op.Path)
		if len(parts) == 0 || !slices.Contains(patchable, parts[0]) {
			return fault(c, http.StatusBadRequest, "Cannot patch %s. Only the following can be updated: %s", op.Path, strings.Join(patchable, ", "))
		}
	}
	old, err := h.Rules.Get(ctx, c.Param("rule"))
	if err != nil {
		return storeError(c, err)
	}
	if old.Sensitive {
		for _, op := range ops {
			if p := ironichttp.SplitPointer(op.Path); p[0] == "sensitive" && op.Value != true {
				return fault(c, http.StatusBadRequest, "A sensitive inspection rule cannot be made non-sensitive.")
			}
		}
	}
	raw, _ := json.Marshal(old)
	var doc map[string]any
	_ = json.Unmarshal(raw, &doc)
	if _, err := ironichttp.Apply(doc, ops); err != nil {
		return fault(c, http.StatusBadRequest, "%v", err)
	}
	doc["uuid"] = old.UUID
	raw, _ = json.Marshal(doc)
	r, err := rules.Parse(raw)
	if err != nil {
		return storeError(c, err)
	}
	r, err = h.Rules.Update(ctx, r)
	if err != nil {
		return storeError(c, err)
	}
	return c.JSON(http.StatusOK, render(c, r, allFields))
}

func (h *Handler) delete(c echo.Context) error {
	if err := h.Rules.Delete(c.Request().Context(), c.Param("rule")); err != nil {
		return storeError(c, err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *Handler) deleteAll(c echo.Context) error {
	if v := c.QueryParam("confirm"); v != "" && !strings.EqualFold(v, "true") {
		return fault(c, http.StatusBadRequest, "Deleting all inspection rules needs confirm=true.")
	}
	if err := h.Rules.DeleteAll(c.Request().Context()); err != nil {
		return storeError(c, err)
	}
	return c.NoContent(http.StatusNoContent)
}
