package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

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

// glanceError writes err as Glance does (webob's JSON error body): an
// apiError as it is, the store's errors by kind.
func (s *Store) glanceError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{code: http.StatusInternalServerError, explanation: strings.TrimPrefix(err.Error(), "store: ")}
		switch {
		case errors.Is(err, ErrNotFound):
			ae.code = http.StatusNotFound
		case errors.Is(err, ErrConflict):
			ae.code = http.StatusConflict
		case errors.Is(err, ErrInvalid):
			ae.code = http.StatusBadRequest
		case errors.Is(err, ErrForbidden):
			ae.code = http.StatusForbidden
		}
	}
	if ae.code == http.StatusInternalServerError {
		s.log.Error("images: internal error", "err", err)
	}
	for k, v := range ae.header {
		w.Header().Set(k, v)
	}
	ironichttp.WriteJSON(w, ae.code, ironichttp.GlanceError(ae.code, ae.explanation, ae.detail))
}

// tooLarge answers an upload past the store's size cap, as Glance does
// past its image_size_cap.
func (s *Store) tooLarge(w http.ResponseWriter, max int64) {
	s.glanceError(w, &apiError{code: http.StatusRequestEntityTooLarge,
		explanation: fmt.Sprintf("Denying attempt to upload image larger than %d bytes.", max)})
}

// readBody reads a JSON request body as Glance's JSONRequestDeserializer
// does: none is "Body expected in request.", bad JSON "Malformed JSON in
// request body.", and it must be an object or a list.
func readBody(r *http.Request) (any, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, badRequest("Malformed JSON in request body.")
	}
	if len(b) == 0 {
		return nil, badRequest("Body expected in request.")
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, badRequest("Malformed JSON in request body.")
	}
	switch v.(type) {
	case map[string]any, []any:
		return v, nil
	}
	return nil, badRequest("Unexpected body type. Expected list/dict.")
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

// setAttr sets one top-level attribute from a JSON value the schema
// checked.
func setAttr(img *Image, key string, v any) error {
	str := func() *string {
		if v == nil {
			return nil
		}
		x, _ := v.(string)
		return &x
	}
	num := func() (int, error) {
		f, _ := v.(float64)
		// domain.Image's min_disk and min_ram setters.
		if f < 0 {
			return 0, badRequest("Invalid value '%s' for parameter '%s': Cannot be a negative value", strconv.FormatFloat(f, 'f', -1, 64), key)
		}
		return int(f), nil
	}
	var err error
	switch key {
	case "id":
		img.ID, _ = v.(string)
	case "name":
		img.Name = str()
	case "disk_format":
		img.DiskFormat = str()
	case "container_format":
		img.ContainerFormat = str()
	case "visibility":
		img.Visibility, _ = v.(string)
	case "min_disk":
		img.MinDisk, err = num()
	case "min_ram":
		img.MinRAM, err = num()
	case "protected":
		img.Protected, _ = v.(bool)
	case "tags":
		img.Tags = []string{}
		l, _ := v.([]any)
		for _, t := range l {
			if t, ok := t.(string); ok && !slices.Contains(img.Tags, t) {
				img.Tags = append(img.Tags, t)
			}
		}
	case "owner":
		img.Owner = str()
	case "os_hidden":
		b, _ := v.(bool)
		setProp(img, key, b)
	default:
		setProp(img, key, v)
	}
	return err
}

func setProp(img *Image, key string, v any) {
	if img.Properties == nil {
		img.Properties = map[string]any{}
	}
	img.Properties[key] = v
}

// create is Glance's RequestDeserializer.create and ImagesController.create.
func (s *Store) create(w http.ResponseWriter, r *http.Request) {
	img, err := createRequest(r)
	if err != nil {
		s.glanceError(w, err)
		return
	}
	created, err := s.Create(img)
	if errors.Is(err, ErrConflict) {
		err = &apiError{code: http.StatusConflict, explanation: fmt.Sprintf("Image ID %s already exists!", img.ID)}
	}
	if err != nil {
		s.glanceError(w, err)
		return
	}
	w.Header().Set("Location", "/v2/images/"+created.ID)
	ironichttp.WriteJSON(w, http.StatusCreated, view(created))
}

func createRequest(r *http.Request) (*Image, error) {
	v, err := readBody(r)
	if err != nil {
		return nil, err
	}
	body, ok := v.(map[string]any)
	if !ok {
		// Glance's create pops keys of the body: a list is its 500.
		return nil, badRequest("Provided object does not match schema 'image': %s is not of type 'object'", ironichttp.Repr(v))
	}
	for _, k := range disallowedAttrs {
		if _, ok := body[k]; ok {
			return nil, forbidden("Attribute '%s' is read-only.", k)
		}
	}
	if err := validateImage(body); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if imageSchema.Prop(k) != nil {
			continue
		}
		if utf8.RuneCountInString(k) > 255 {
			return nil, badRequest("Custom property should not be greater than 255 characters.")
		}
		if reserved(k) {
			return nil, &apiError{code: http.StatusForbidden, detail: fmt.Sprintf("Attribute '%s' is reserved.", k)}
		}
	}
	for _, k := range createReadOnlyAttrs {
		if _, ok := body[k]; ok {
			return nil, forbidden("Attribute '%s' is read-only.", k)
		}
	}
	if _, ok := body["locations"]; ok {
		return nil, forbidden("Attribute 'locations' is reserved.")
	}
	img := &Image{}
	for _, k := range keys {
		if err := setAttr(img, k, body[k]); err != nil {
			return nil, err
		}
	}
	return img, nil
}

func notFound(id string) *apiError {
	return &apiError{code: http.StatusNotFound, explanation: fmt.Sprintf("No image found with ID %s", id)}
}

func (s *Store) show(w http.ResponseWriter, r *http.Request) {
	img, err := s.Get(r.PathValue("id"))
	if errors.Is(err, ErrNotFound) {
		err = notFound(r.PathValue("id"))
	}
	if err != nil {
		s.glanceError(w, err)
		return
	}
	ironichttp.WriteJSON(w, http.StatusOK, view(img))
}

// list is Glance's index with RequestDeserializer.index's checks of limit
// (_validate_limit: Python's int(), not negative; past api_limit_max the
// page is that size) and visibility (_get_filters).
func (s *Store) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultLimit
	if q.Has("limit") {
		n, ok := ironichttp.PyInt(q.Get("limit"))
		if !ok {
			s.glanceError(w, badRequest("limit param must be an integer"))
			return
		}
		if n < 0 {
			s.glanceError(w, badRequest("limit param must be positive"))
			return
		}
		limit = int(min(n, maxLimit))
	}
	if v := q.Get("visibility"); v != "" && v != "all" && !slices.Contains(visibilityList, v) {
		s.glanceError(w, badRequest("Invalid visibility value: %s", v))
		return
	}
	f := Filter{Name: q.Get("name"), Status: q.Get("status"), Visibility: q.Get("visibility"),
		DiskFormat: q.Get("disk_format"), Marker: q.Get("marker"), Limit: limit}
	imgs, more, err := s.List(f)
	if errors.Is(err, ErrNotFound) {
		// The marker: _image_get's NotFound, a 400 in index.
		err = badRequest("No image found with ID %s", f.Marker)
	}
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

func (s *Store) patch(w http.ResponseWriter, r *http.Request) {
	changes, err := patchRequest(r)
	if err != nil {
		s.glanceError(w, err)
		return
	}
	img, err := s.Update(r.PathValue("id"), func(img *Image) error { return applyChanges(img, changes) })
	if errors.Is(err, ErrNotFound) {
		err = notFound(r.PathValue("id"))
	}
	if err != nil {
		s.glanceError(w, err)
		return
	}
	ironichttp.WriteJSON(w, http.StatusOK, view(img))
}

func (s *Store) delete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := s.Delete(id)
	switch {
	case errors.Is(err, ErrNotFound):
		err = &apiError{code: http.StatusNotFound, explanation: fmt.Sprintf("Failed to find image %s to delete", id)}
	case errors.Is(err, ErrForbidden):
		err = forbidden("Image %s is protected and cannot be deleted.", id)
	}
	if err != nil {
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
			s.tooLarge(w, s.MaxSize)
			return
		}
		body = http.MaxBytesReader(w, body, s.MaxSize)
	}
	img, err := s.Upload(r.Context(), r.PathValue("id"), body, r.ContentLength)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		s.tooLarge(w, s.MaxSize)
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
