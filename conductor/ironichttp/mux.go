package ironichttp

import (
	"net/http"
	"strings"
)

// Route is one method and path a handler serves, the path in the
// ":param" form route tables and metrics labels use.
type Route struct {
	Method, Path string
}

// Mux routes requests by method and path over http.ServeMux, lists its
// routes, and answers paths it does not serve (404) and methods a path
// does not take (405) through Miss, so a mounted handler answers those
// as the API it is mounted in does.
type Mux struct {
	// Miss writes the answer for an unserved path or method; nil writes
	// the bare status.
	Miss   func(w http.ResponseWriter, r *http.Request, code int)
	mux    *http.ServeMux
	paths  map[string]map[string]http.HandlerFunc
	routes []Route
}

// NewMux returns an empty Mux.
func NewMux() *Mux {
	m := &Mux{mux: http.NewServeMux(), paths: map[string]map[string]http.HandlerFunc{}}
	m.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { m.miss(w, r, http.StatusNotFound) })
	return m
}

// Handle serves method on path; ":name" segments match one path segment,
// read with r.PathValue("name").
func (m *Mux) Handle(method, path string, h http.HandlerFunc) {
	m.routes = append(m.routes, Route{Method: method, Path: path})
	methods, ok := m.paths[path]
	if !ok {
		methods = map[string]http.HandlerFunc{}
		m.paths[path] = methods
		m.mux.HandleFunc(pattern(path), func(w http.ResponseWriter, r *http.Request) {
			if h, ok := methods[r.Method]; ok {
				h(w, r)
				return
			}
			m.miss(w, r, http.StatusMethodNotAllowed)
		})
	}
	methods[method] = h
}

// pattern turns "/a/:id/" into ServeMux's "/a/{id}/{$}".
func pattern(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	p := strings.Join(segs, "/")
	if strings.HasSuffix(p, "/") {
		p += "{$}"
	}
	return p
}

func (m *Mux) miss(w http.ResponseWriter, r *http.Request, code int) {
	if m.Miss != nil {
		m.Miss(w, r, code)
		return
	}
	w.WriteHeader(code)
}

// Routes lists what the Mux serves, in the order it was told.
func (m *Mux) Routes() []Route { return append([]Route(nil), m.routes...) }

// ServeHTTP implements http.Handler.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.mux.ServeHTTP(w, r) }
