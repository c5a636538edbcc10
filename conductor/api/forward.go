package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
)

// hdrForwardedBy marks a request one conductor passed to another: it is
// served where it arrives, never passed on again.
const hdrForwardedBy = "X-Ferric-Forwarded-By"

// hdrConductor names the conductor that served a request.
const hdrConductor = "X-Ferric-Conductor"

// toOwner passes a request about a node that another live conductor
// serves (its place on the hash ring: its conductor group, its share) to
// that conductor's API, as Ironic's API routes such calls to the owning
// conductor over RPC: the BMC and the agent are then driven from the
// conductor that is meant to reach them. With one conductor, or when the
// owner cannot be reached through the store's records, the request is
// served here.
func (s *Server) toOwner(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().Header.Get(hdrForwardedBy) != "" {
			return next(c)
		}
		n, err := s.st.Node(c.Param("node"))
		if err != nil {
			return next(c) // the handler answers the 404
		}
		if s.mgr.Owner(n) == "" { // no live conductor serves the node's group
			return noValidHost(n.Driver, strings.ToLower(n.ConductorGroup))
		}
		target := s.mgr.OwnerURL(n)
		if target == "" {
			return next(c)
		}
		u, err := url.Parse(target)
		if err != nil {
			return next(c)
		}
		host := s.mgr.Hostname()
		proxy := &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(u)
				r.Out.Header.Set(hdrForwardedBy, host)
			},
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				s.log.Warn("api: forwarding to the node's conductor failed", "node", n.UUID, "to", target, "err", err)
				e := &Error{Code: http.StatusServiceUnavailable,
					Msg: fmt.Sprintf("The conductor of node %s (%s) could not be reached; please retry.", n.UUID, target)}
				w.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
				w.WriteHeader(e.Code)
				_ = json.NewEncoder(w).Encode(e.Body())
			},
		}
		// The owner answers with its own headers (request id, versions,
		// conductor).
		h := c.Response().Header()
		for _, k := range []string{hdrRequestID, hdrXRequestID, hdrMinVersion, hdrMaxVersion, hdrVersion, hdrConductor} {
			h.Del(k)
		}
		proxy.ServeHTTP(c.Response(), c.Request())
		return nil
	}
}
