package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
)

// The API's router is echo; other packages hand it plain net/http
// handlers through these methods, so echo stays inside this package.

// Instrument tells o of every request the API serves.
func (s *Server) Instrument(o Observer) { s.echo.Use(Metrics(o)) }

// Handle serves method on path with h (path in ":param" form).
func (s *Server) Handle(method, path string, h http.Handler) {
	s.echo.Add(method, path, echo.WrapHandler(h))
}

// HandleAny serves every method on path with h; a trailing "/*" takes
// the whole subtree.
func (s *Server) HandleAny(path string, h http.Handler) {
	s.echo.Any(path, echo.WrapHandler(h))
}

// Mount serves prefix and everything below it with h, which serves
// routes (full paths). Paths below prefix that no route takes are
// answered by h; a Mux should answer them with s.Miss.
func (s *Server) Mount(prefix string, h http.Handler, routes []ironichttp.Route) {
	wh := echo.WrapHandler(h)
	s.echo.Any(prefix, wh)
	s.echo.Any(prefix+"/*", wh)
	s.mounts = append(s.mounts, mount{prefix: prefix, routes: routes})
}

type mount struct {
	prefix string
	routes []ironichttp.Route
}

// Miss answers a path no route serves (404) or a method a path does not
// take (405) as the API's router does.
func (s *Server) Miss(w http.ResponseWriter, r *http.Request, code int) {
	e := &Error{Code: code, Plain: true}
	if code == http.StatusMethodNotAllowed {
		e.Msg = "The server could not comply with the request since it is either malformed or otherwise incorrect."
	}
	ironichttp.WriteFault(w, r, e)
}

// Routes lists what the API serves: its own routes and those of the
// handlers mounted on it.
func (s *Server) Routes() []ironichttp.Route {
	var out []ironichttp.Route
next:
	for _, r := range s.echo.Routes() {
		if r.Method == echo.RouteNotFound {
			continue // echo's internal 404 route of a group
		}
		for _, m := range s.mounts {
			if r.Path == m.prefix || r.Path == m.prefix+"/*" {
				continue next
			}
		}
		out = append(out, ironichttp.Route{Method: r.Method, Path: r.Path})
	}
	for _, m := range s.mounts {
		out = append(out, m.routes...)
	}
	return out
}
