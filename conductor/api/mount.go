package api

import (
	"net/http"
	"strings"

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

// Mount serves each of routes (full paths, ":param" form) with h, which
// routes them again itself (an ironichttp.Mux): echo lists them, labels
// their metrics and answers the paths and methods they do not take.
func (s *Server) Mount(h http.Handler, routes []ironichttp.Route) {
	wh := echo.WrapHandler(h)
	for _, r := range routes {
		s.echo.Add(r.Method, r.Path, wh)
	}
}

// MountV1 is Mount for routes under /v1 that need microversion min or
// later: they get the API's version negotiation and headers.
func (s *Server) MountV1(min Version, h http.Handler, routes []ironichttp.Route) {
	g := s.echo.Group("/v1", s.v1, s.minVer(min, false))
	wh := echo.WrapHandler(h)
	for _, r := range routes {
		g.Add(r.Method, strings.TrimPrefix(r.Path, "/v1"), wh)
	}
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

// Routes lists what the API serves, mounted handlers included.
func (s *Server) Routes() []ironichttp.Route {
	var out []ironichttp.Route
	for _, r := range s.echo.Routes() {
		if r.Method == echo.RouteNotFound {
			continue // echo's internal 404 route of a group
		}
		out = append(out, ironichttp.Route{Method: r.Method, Path: r.Path})
	}
	return out
}
