package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
)

const (
	patchContentType = "application/openstack-images-v2.1-json-patch"
	defaultLimit     = 25
	maxLimit         = 1000
)

// Handler returns the Glance v2 routes mounted at prefix (e.g. "/images";
// "" for the root), as a plain net/http handler. Paths it does not serve
// are answered by the returned Mux's Miss, which the mounting API sets.
func (s *Store) Handler(prefix string) *ironichttp.Mux {
	m := ironichttp.NewMux()
	base := func(r *http.Request) string { return ironichttp.BaseURL(r) + prefix }
	multiple := func(w http.ResponseWriter, r *http.Request) { s.versions(w, base(r), http.StatusMultipleChoices) }
	if prefix != "" {
		m.Handle(http.MethodGet, prefix, multiple)
	}
	m.Handle(http.MethodGet, prefix+"/", multiple)
	m.Handle(http.MethodGet, prefix+"/versions", multiple)
	m.Handle(http.MethodGet, prefix+"/v2", func(w http.ResponseWriter, r *http.Request) { s.versions(w, base(r), http.StatusOK) })
	m.Handle(http.MethodGet, prefix+"/v2/schemas/image", s.schema)
	m.Handle(http.MethodPost, prefix+"/v2/images", s.create)
	m.Handle(http.MethodGet, prefix+"/v2/images", s.list)
	m.Handle(http.MethodGet, prefix+"/v2/images/:id", s.show)
	m.Handle(http.MethodPatch, prefix+"/v2/images/:id", s.patch)
	m.Handle(http.MethodDelete, prefix+"/v2/images/:id", s.delete)
	m.Handle(http.MethodPut, prefix+"/v2/images/:id/file", s.upload)
	m.Handle(http.MethodGet, prefix+"/v2/images/:id/file", s.download)
	m.Handle(http.MethodHead, prefix+"/v2/images/:id/file", s.download)
	return m
}

// glanceError writes an error in the shape Glance (webob) uses for JSON.
func (s *Store) glanceError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, ErrForbidden):
		code = http.StatusForbidden
	}
	if code == http.StatusInternalServerError {
		s.log.Error("images: internal error", "err", err)
	}
	text := http.StatusText(code)
	ironichttp.WriteJSON(w, code, map[string]any{
		"code":    fmt.Sprintf("%d %s", code, text),
		"title":   text,
		"message": strings.TrimPrefix(err.Error(), "store: "),
	})
}

// tooLarge answers an upload past the store's size cap, as Glance does
// past its image_size_cap.
func tooLarge(w http.ResponseWriter, max int64) {
	code := http.StatusRequestEntityTooLarge
	ironichttp.WriteJSON(w, code, map[string]any{
		"code":    fmt.Sprintf("%d %s", code, http.StatusText(code)),
		"title":   http.StatusText(code),
		"message": fmt.Sprintf("Denying attempt to upload image larger than %d bytes.", max),
	})
}

// versions answers the version document; base is the URL the store is
// mounted at, so links point clients back through the same mount.
func (s *Store) versions(w http.ResponseWriter, base string, code int) {
	href := base + "/v2/"
	var vs []map[string]any
	for i, v := range []string{"2.9", "2.8", "2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0"} {
		status := "SUPPORTED"
		if i == 0 {
			status = "CURRENT"
		}
		vs = append(vs, map[string]any{"id": "v" + v, "status": status, "links": []map[string]string{{"rel": "self", "href": href}}})
	}
	ironichttp.WriteJSON(w, code, map[string]any{"versions": vs})
}

func (s *Store) schema(w http.ResponseWriter, r *http.Request) {
	str := map[string]any{"type": []string{"null", "string"}}
	ironichttp.WriteJSON(w, http.StatusOK, map[string]any{
		"name": "image",
		"properties": map[string]any{
			"id": map[string]any{"type": "string"}, "name": str, "status": map[string]any{"type": "string"},
			"visibility":  map[string]any{"type": "string", "enum": []string{"public", "private", "shared", "community"}},
			"disk_format": str, "container_format": str, "checksum": str, "os_hash_algo": str, "os_hash_value": str,
			"size": map[string]any{"type": []string{"null", "integer"}}, "virtual_size": map[string]any{"type": []string{"null", "integer"}},
			"min_disk": map[string]any{"type": "integer"}, "min_ram": map[string]any{"type": "integer"},
			"protected": map[string]any{"type": "boolean"}, "tags": map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
			"owner": str, "created_at": map[string]any{"type": "string"}, "updated_at": map[string]any{"type": "string"},
			"self": map[string]any{"type": "string"}, "file": map[string]any{"type": "string"}, "schema": map[string]any{"type": "string"},
		},
		"additionalProperties": map[string]any{"type": "string"},
		"links":                []map[string]string{{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"}, {"rel": "describedby", "href": "{schema}"}},
	})
}

// view renders an image the way Glance does: extra properties flattened.
func view(img *Image) map[string]any {
	b, _ := json.Marshal(img)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	delete(m, "properties")
	for k, v := range img.Properties {
		m[k] = v
	}
	m["created_at"] = img.CreatedAt.Format("2006-01-02T15:04:05Z")
	m["updated_at"] = img.UpdatedAt.Format("2006-01-02T15:04:05Z")
	m["self"] = "/v2/images/" + img.ID
	m["file"] = "/v2/images/" + img.ID + "/file"
	m["schema"] = "/v2/schemas/image"
	return m
}

// readOnly are the attributes clients may not set.
var readOnly = set("id", "status", "checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size",
	"created_at", "updated_at", "self", "file", "schema", "direct_url", "locations", "owner")

// setAttr sets one top-level attribute from a JSON value.
func setAttr(img *Image, key string, raw json.RawMessage, creating bool) error {
	if readOnly[key] && !(creating && key == "id") {
		return fmt.Errorf("store: attribute '%s' is read-only: %w", key, ErrForbidden)
	}
	strp := func(dst **string) error {
		if string(raw) == "null" {
			*dst = nil
			return nil
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("store: %s must be a string: %w", key, ErrInvalid)
		}
		*dst = &v
		return nil
	}
	into := func(dst any) error {
		if err := json.Unmarshal(raw, dst); err != nil {
			return fmt.Errorf("store: invalid value for %s: %w", key, ErrInvalid)
		}
		return nil
	}
	switch key {
	case "id":
		return into(&img.ID)
	case "name":
		return strp(&img.Name)
	case "disk_format":
		return strp(&img.DiskFormat)
	case "container_format":
		return strp(&img.ContainerFormat)
	case "visibility":
		return into(&img.Visibility)
	case "min_disk":
		return into(&img.MinDisk)
	case "min_ram":
		return into(&img.MinRAM)
	case "protected":
		return into(&img.Protected)
	case "tags":
		return into(&img.Tags)
	}
	var v any
	if err := into(&v); err != nil {
		return err
	}
	if img.Properties == nil {
		img.Properties = map[string]any{}
	}
	img.Properties[key] = v
	return nil
}

func (s *Store) create(w http.ResponseWriter, r *http.Request) {
	var body map[string]json.RawMessage
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		s.glanceError(w, fmt.Errorf("store: request body is not a JSON object: %w", ErrInvalid))
		return
	}
	img := &Image{}
	for k, v := range body {
		if err := setAttr(img, k, v, true); err != nil {
			s.glanceError(w, err)
			return
		}
	}
	created, err := s.Create(img)
	if err != nil {
		s.glanceError(w, err)
		return
	}
	w.Header().Set("Location", "/v2/images/"+created.ID)
	ironichttp.WriteJSON(w, http.StatusCreated, view(created))
}

func (s *Store) show(w http.ResponseWriter, r *http.Request) {
	img, err := s.Get(r.PathValue("id"))
	if err != nil {
		s.glanceError(w, err)
		return
	}
	ironichttp.WriteJSON(w, http.StatusOK, view(img))
}

func (s *Store) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.glanceError(w, fmt.Errorf("store: limit %q: %w", v, ErrInvalid))
			return
		}
		limit = min(n, maxLimit)
	}
	f := Filter{Name: q.Get("name"), Status: q.Get("status"), Visibility: q.Get("visibility"),
		DiskFormat: q.Get("disk_format"), Marker: q.Get("marker"), Limit: limit}
	imgs, more, err := s.List(f)
	if err != nil {
		s.glanceError(w, err)
		return
	}
	out := make([]map[string]any, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, view(img))
	}
	resp := map[string]any{"images": out, "schema": "/v2/schemas/images", "first": "/v2/images"}
	if more && len(imgs) > 0 {
		next := url.Values{}
		for k, vs := range q {
			if k != "marker" {
				next[k] = vs
			}
		}
		next.Set("marker", imgs[len(imgs)-1].ID)
		resp["next"] = "/v2/images?" + next.Encode()
	}
	ironichttp.WriteJSON(w, http.StatusOK, resp)
}

type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

func (s *Store) patch(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, patchContentType) {
		ironichttp.WriteJSON(w, http.StatusUnsupportedMediaType, map[string]any{"code": "415 Unsupported Media Type", "title": "Unsupported Media Type",
			"message": "content type must be " + patchContentType})
		return
	}
	var ops []patchOp
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&ops); err != nil {
		s.glanceError(w, fmt.Errorf("store: body is not a JSON patch list: %w", ErrInvalid))
		return
	}
	img, err := s.Update(r.PathValue("id"), func(img *Image) error { return applyPatch(img, ops) })
	if err != nil {
		s.glanceError(w, err)
		return
	}
	ironichttp.WriteJSON(w, http.StatusOK, view(img))
}

func applyPatch(img *Image, ops []patchOp) error {
	for _, op := range ops {
		parts := ironichttp.SplitPointer(op.Path)
		if len(parts) != 1 {
			return fmt.Errorf("store: patch path %q: only top-level attributes can be changed: %w", op.Path, ErrInvalid)
		}
		key := parts[0]
		switch op.Op {
		case "add", "replace":
			if op.Value == nil {
				return fmt.Errorf("store: patch %s %s needs a value: %w", op.Op, op.Path, ErrInvalid)
			}
			if readOnly[key] {
				return fmt.Errorf("store: attribute '%s' is read-only: %w", key, ErrForbidden)
			}
			if op.Op == "replace" && !hasAttr(img, key) {
				return fmt.Errorf("store: patch replace %s: no such attribute: %w", op.Path, ErrConflict)
			}
			if err := setAttr(img, key, op.Value, false); err != nil {
				return err
			}
		case "remove":
			if readOnly[key] {
				return fmt.Errorf("store: attribute '%s' is read-only: %w", key, ErrForbidden)
			}
			if _, ok := img.Properties[key]; !ok {
				return fmt.Errorf("store: patch remove %s: only extra properties can be removed and this one does not exist: %w", op.Path, ErrConflict)
			}
			delete(img.Properties, key)
		default:
			return fmt.Errorf("store: patch op %q: %w", op.Op, ErrInvalid)
		}
	}
	return nil
}

func hasAttr(img *Image, key string) bool {
	switch key {
	case "name", "disk_format", "container_format", "visibility", "min_disk", "min_ram", "protected", "tags":
		return true
	}
	_, ok := img.Properties[key]
	return ok
}

func (s *Store) delete(w http.ResponseWriter, r *http.Request) {
	if err := s.Delete(r.PathValue("id")); err != nil {
		s.glanceError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Store) upload(w http.ResponseWriter, r *http.Request) {
	body := r.Body
	if s.MaxSize > 0 {
		if r.ContentLength > s.MaxSize {
			w.Header().Set("Connection", "close")
			tooLarge(w, s.MaxSize)
			return
		}
		body = http.MaxBytesReader(w, body, s.MaxSize)
	}
	img, err := s.Upload(r.Context(), r.PathValue("id"), body, r.ContentLength)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		tooLarge(w, s.MaxSize)
		return
	}
	if err != nil {
		if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrConflict) && !errors.Is(err, ErrInvalid) {
			err = fmt.Errorf("%w: %w", err, ErrInvalid)
		}
		s.glanceError(w, err)
		return
	}
	_ = img
	w.WriteHeader(http.StatusNoContent)
}

func (s *Store) download(w http.ResponseWriter, r *http.Request) {
	f, img, err := s.Open(r.Context(), r.PathValue("id"))
	if err != nil {
		if errors.Is(err, ErrConflict) {
			w.WriteHeader(http.StatusNoContent) // Glance: image has no data
			return
		}
		s.glanceError(w, err)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	if img.Checksum != nil {
		h.Set("Content-MD5", *img.Checksum)
		h.Set("ETag", `"`+*img.Checksum+`"`)
	}
	http.ServeContent(w, r, "", img.UpdatedAt, f)
}
