// Package ruleapi serves Ironic's inspection rules API (/v1/inspection_rules,
// API 1.96) over a rules.Store: list, create, get, patch, delete one and
// delete all. Errors are written in Ironic's fault shape
// ({"error_message": "{\"faultstring\": ...}"}) by the handlers themselves,
// so the routes work under any router.
package ruleapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/inspector/rules"
)

// MinVersion is the Ironic API microversion that introduced the routes.
const MinVersion = 96

// maxLimit is Ironic's [api]max_limit, the largest page of a listing.
const maxLimit = 1000

// Handler serves the inspection rules API.
type Handler struct {
	Rules rules.Store
}

// Routes returns the routes as a plain net/http handler and their list
// (/v1/inspection_rules and /v1/inspection_rules/:rule), for the Ironic
// API to mount behind its /v1 version negotiation.
func (h *Handler) Routes() *ironichttp.Mux {
	m := ironichttp.NewMux()
	m.Handle(http.MethodGet, "/v1/inspection_rules", h.list)
	m.Handle(http.MethodPost, "/v1/inspection_rules", h.create)
	m.Handle(http.MethodDelete, "/v1/inspection_rules", h.deleteAll)
	m.Handle(http.MethodGet, "/v1/inspection_rules/:rule", h.get)
	m.Handle(http.MethodPatch, "/v1/inspection_rules/:rule", h.patch)
	m.Handle(http.MethodDelete, "/v1/inspection_rules/:rule", h.delete)
	return m
}

// fault writes Ironic's error shape.
func fault(w http.ResponseWriter, code int, format string, args ...any) {
	ironichttp.WriteJSON(w, code, ironichttp.Errorf(code, format, args...).Body())
}

func storeError(w http.ResponseWriter, req *http.Request, err error) {
	switch {
	case errors.Is(err, rules.ErrNotFound):
		fault(w, http.StatusNotFound, "Inspection rule %s could not be found.", req.PathValue("rule"))
		return
	case errors.Is(err, rules.ErrExists):
		fault(w, http.StatusConflict, "%v", err)
		return
	case errors.Is(err, rules.ErrInvalidRule):
		fault(w, http.StatusBadRequest, "%v", err)
		return
	}
	fault(w, http.StatusInternalServerError, "Internal server error: %v", err)
}

func baseURL(req *http.Request) string { return ironichttp.BaseURL(req) }

func timeStr(t time.Time) string { return ironichttp.Time(t) }

// all fields of a rule in API order.
var allFields = []string{"uuid", "description", "priority", "sensitive", "phase", "conditions", "actions",
	"created_at", "updated_at", "links"}

// summary fields of a list without detail.
var summaryFields = []string{"uuid", "description", "priority", "sensitive", "phase", "created_at", "updated_at", "links"}

// render turns a rule into its API object. A sensitive rule's conditions
// and actions are masked (null).
func render(req *http.Request, r rules.Rule, fields []string) map[string]any {
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
				{"href": baseURL(req) + "/v1/inspection_rules/" + r.UUID, "rel": "self"},
				{"href": baseURL(req) + "/inspection_rules/" + r.UUID, "rel": "bookmark"},
			}
		}
	}
	return out
}

// fieldsParam parses ?fields=a,b (uuid always included).
func fieldsParam(req *http.Request, def []string) ([]string, error) {
	raw := req.URL.Query().Get("fields")
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

func (h *Handler) list(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	detail := false
	if q.Has("detail") {
		b, e := ironichttp.ArgBool("detail", q.Get("detail"))
		if e != nil {
			ironichttp.WriteFault(w, req, e)
			return
		}
		detail = *b
	}
	def := summaryFields
	if detail {
		def = allFields
	}
	if detail && q.Get("fields") != "" {
		fault(w, http.StatusBadRequest, "Can not specify ?detail=True and fields in the same request.")
		return
	}
	fields, err := fieldsParam(req, def)
	if err != nil {
		fault(w, http.StatusBadRequest, "%v", err)
		return
	}
	rs, err := h.Rules.List(req.Context())
	if err != nil {
		storeError(w, req, err)
		return
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
		fault(w, http.StatusBadRequest, "The sort_key value %q is an invalid field for sorting", key)
		return
	}
	switch q.Get("sort_dir") {
	case "", "asc":
	case "desc":
		slices.Reverse(rs)
	default:
		fault(w, http.StatusBadRequest, "Invalid sort direction: %s. Acceptable values are 'asc' or 'desc'", q.Get("sort_dir"))
		return
	}
	if m := q.Get("marker"); m != "" {
		i := slices.IndexFunc(rs, func(r rules.Rule) bool { return r.UUID == m })
		if i < 0 {
			fault(w, http.StatusBadRequest, "Marker %s could not be found.", m)
			return
		}
		rs = rs[i+1:]
	}
	limit := 0
	if q.Has("limit") {
		n, e := ironichttp.ArgLimit(q.Get("limit"), maxLimit)
		if e != nil {
			ironichttp.WriteFault(w, req, e)
			return
		}
		limit = n
	}
	items := []map[string]any{}
	for i, r := range rs {
		if limit > 0 && i == limit {
			break
		}
		items = append(items, render(req, r, fields))
	}
	out := map[string]any{"inspection_rules": items}
	if limit > 0 && len(rs) > limit {
		nq := req.URL.Query()
		nq.Set("marker", rs[limit-1].UUID)
		out["next"] = baseURL(req) + "/v1/inspection_rules?" + nq.Encode()
	}
	ironichttp.WriteJSON(w, http.StatusOK, out)
}

func (h *Handler) get(w http.ResponseWriter, req *http.Request) {
	fields, err := fieldsParam(req, allFields)
	if err != nil {
		fault(w, http.StatusBadRequest, "%v", err)
		return
	}
	r, err := h.Rules.Get(req.Context(), req.PathValue("rule"))
	if err != nil {
		storeError(w, req, err)
		return
	}
	ironichttp.WriteJSON(w, http.StatusOK, render(req, r, fields))
}

// readBody reads a rule or patch body: past 1 MiB a 413, a body that
// cannot be read (a broken chunked encoding) a 400.
// The refusal is written as the API's router writes its own (plain shape).
func readBody(w http.ResponseWriter, req *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 1<<20))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		ironichttp.WriteFault(w, req, &ironichttp.Error{Code: http.StatusRequestEntityTooLarge, Msg: "Request is too large.", Plain: true})
		return nil, false
	case err != nil:
		ironichttp.WriteFault(w, req, &ironichttp.Error{Code: http.StatusBadRequest, Msg: "Could not read the request body.", Plain: true})
		return nil, false
	}
	return b, true
}

func (h *Handler) create(w http.ResponseWriter, req *http.Request) {
	body, ok := readBody(w, req)
	if !ok {
		return
	}
	r, err := rules.Parse(body)
	if err != nil {
		storeError(w, req, err)
		return
	}
	r, err = h.Rules.Create(req.Context(), r)
	if err != nil {
		storeError(w, req, err)
		return
	}
	w.Header().Set("Location", baseURL(req)+"/v1/inspection_rules/"+r.UUID)
	ironichttp.WriteJSON(w, http.StatusCreated, render(req, r, allFields))
}

// patchable lists the fields a PATCH may change.
var patchable = []string{"description", "priority", "sensitive", "phase", "conditions", "actions"}

func (h *Handler) patch(w http.ResponseWriter, req *http.Request) {
	ctx := req.Context()
	body, ok := readBody(w, req)
	if !ok {
		return
	}
	var ops []ironichttp.Op
	if err := json.Unmarshal(body, &ops); err != nil || len(ops) == 0 {
		fault(w, http.StatusBadRequest, "Invalid patch: the body must be a non-empty JSON Patch list")
		return
	}
	for _, op := range ops {
		parts := ironichttp.SplitPointer(op.Path)
		if len(parts) == 0 || !slices.Contains(patchable, parts[0]) {
			fault(w, http.StatusBadRequest, "Cannot patch %s. Only the following can be updated: %s", op.Path, strings.Join(patchable, ", "))
			return
		}
	}
	old, err := h.Rules.Get(ctx, req.PathValue("rule"))
	if err != nil {
		storeError(w, req, err)
		return
	}
	if old.Sensitive {
		for _, op := range ops {
			if p := ironichttp.SplitPointer(op.Path); p[0] == "sensitive" && op.Value != true {
				fault(w, http.StatusBadRequest, "A sensitive inspection rule cannot be made non-sensitive.")
				return
			}
		}
	}
	raw, _ := json.Marshal(old)
	var doc map[string]any
	_ = json.Unmarshal(raw, &doc)
	if _, err := ironichttp.Apply(doc, ops); err != nil {
		fault(w, http.StatusBadRequest, "%v", err)
		return
	}
	doc["uuid"] = old.UUID
	raw, _ = json.Marshal(doc)
	r, err := rules.Parse(raw)
	if err != nil {
		storeError(w, req, err)
		return
	}
	r, err = h.Rules.Update(ctx, r)
	if err != nil {
		storeError(w, req, err)
		return
	}
	ironichttp.WriteJSON(w, http.StatusOK, render(req, r, allFields))
}

func (h *Handler) delete(w http.ResponseWriter, req *http.Request) {
	if err := h.Rules.Delete(req.Context(), req.PathValue("rule")); err != nil {
		storeError(w, req, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) deleteAll(w http.ResponseWriter, req *http.Request) {
	if v := req.URL.Query().Get("confirm"); v != "" && !strings.EqualFold(v, "true") {
		fault(w, http.StatusBadRequest, "Deleting all inspection rules needs confirm=true.")
		return
	}
	if err := h.Rules.DeleteAll(req.Context()); err != nil {
		storeError(w, req, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
