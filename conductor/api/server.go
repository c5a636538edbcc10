// Package api serves the Ironic v1 REST API (microversions 1.1 to 1.110, MaxMinor) on
// echo v4: discovery documents, nodes, ports, portgroups, chassis, drivers,
// conductors, allocations and the ramdisk's lookup and heartbeat.
//
// Requests are validated here (schemas, JSON Patch, microversion gating);
// work on machines is handed to a Manager. Reads are served from the
// store's committed view without locks.
//
// Each node field is described once, by its entry in nodeTable
// (node_table.go), which drives rendering, create, PATCH, sorting and the
// field reference node-fields.md.
package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/auth"
	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/policy"
	"github.com/ferric-metal/ferric/conductor/store"
)

// Manager does the work behind the API's action endpoints.
type Manager interface {
	Hostname() string
	// Drivers is the registry of the hardware types the conductor serves.
	Drivers() *driver.Registry
	// Owner names the conductor that serves the node ("" for none).
	Owner(n *store.Node) string
	// Serves reports whether a live conductor of the group offers the
	// hardware type.
	Serves(group, drv string) bool
	// OwnerURL is the API URL of the node's conductor when that is
	// another live conductor ("" to serve the node here).
	OwnerURL(n *store.Node) string
	Provision(ctx context.Context, ident string, req manager.ProvisionRequest) error
	SetPowerState(ctx context.Context, ident, target string, timeout int) error
	SetBootDevice(ctx context.Context, ident, device string, persistent bool) error
	BootDevice(ctx context.Context, ident string) (device string, persistent *bool, err error)
	SupportedBootDevices(ctx context.Context, ident string) ([]string, error)
	Validate(ctx context.Context, ident string) (map[string]manager.ValidateResult, error)
	Lookup(ctx context.Context, addresses []string, nodeUUID string) (*store.Node, string, error)
	Heartbeat(ctx context.Context, ident string, hb manager.Heartbeat) error
	StartAllocation(uuid string)
	ContinueInspection(ctx context.Context, body []byte) (*store.Node, error)
	InjectNMI(ctx context.Context, ident string) error
	ChangeBootMode(ctx context.Context, ident, mode string) error
	ChangeSecureBoot(ctx context.Context, ident string, on bool) error
	VendorMethods(ident string) (map[string]driver.VendorMethod, error)
	// CheckRAIDConfig checks a target_raid_config for the node's raid
	// interface.
	CheckRAIDConfig(n *store.Node, cfg map[string]any) error
	VendorPassthru(ctx context.Context, ident, method, httpMethod string, args map[string]any) (ret any, async bool, err error)
	// SetConsole, ConsoleInfo and NodeDeleted: the node's console
	// (states/console) and its end when the node is deleted.
	SetConsole(ctx context.Context, ident string, enabled bool) error
	ConsoleInfo(ctx context.Context, ident string) (map[string]any, error)
	NodeDeleted(ctx context.Context, ident string)
}

// Config configures the API server.
type Config struct {
	Store   store.Store
	Manager Manager
	Log     *slog.Logger
	// Authenticator checks credentials (nil: noauth). Every route needs
	// them but PublicRoutes and Public; routes mounted on Echo() later
	// too.
	Authenticator *auth.Authenticator
	// Public adds routes served without credentials (e.g. boot files).
	Public []auth.Rule
	// Auth is "noauth" (default) or "http_basic"; with http_basic and no
	// Authenticator, New loads Htpasswd, the bcrypt htpasswd file.
	Auth     string
	Htpasswd string
	// Stream bounds each client of the change feed (zero values: the
	// defaults StreamClientBuffer and StreamWriteTimeout).
	Stream StreamLimits
	// Policy holds the access rules checked for callers with a Keystone
	// identity (nil: Ironic's defaults); see access.go.
	Policy *policy.Enforcer
}

// Server is the Ironic API.
type Server struct {
	cfg  Config
	st   store.Store
	mgr  Manager
	log  *slog.Logger
	echo *echo.Echo
	// handler is echo behind the authenticator.
	handler http.Handler
	// nodeJSON caches rendered nodes for listings.
	nodeJSON itemCache
	policy   *policy.Enforcer
}

const versionKey = "ferric.version"

// New builds the API server. Mount extra handlers (boot files, images) on
// Echo() before serving.
func New(cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	s := &Server{cfg: cfg, st: cfg.Store, mgr: cfg.Manager, log: cfg.Log, policy: cfg.Policy}
	if s.policy == nil {
		s.policy = policy.Default()
	}
	if cfg.Authenticator == nil && cfg.Auth == "http_basic" {
		a, err := auth.New(auth.Config{Htpasswd: cfg.Htpasswd, Log: cfg.Log})
		if err != nil {
			return nil, fmt.Errorf("api: %w", err)
		}
		cfg.Authenticator = a
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.Pre(s.requestID, s.limitBody)
	s.echo = e
	s.routes()
	s.handler = cfg.Authenticator.Wrap(e, auth.Policy{Realm: Realm,
		Public: append(slices.Clone(PublicRoutes), cfg.Public...), Deny: deny})
	return s, nil
}

// Echo returns the underlying echo instance (to mount more routes).
func (s *Server) Echo() *echo.Echo { return s.echo }

// ServeHTTP implements http.Handler: the authenticator, then echo.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := "req-" + uuid.NewString()
		c.Response().Header().Set(hdrRequestID, id)
		c.Response().Header().Set(hdrXRequestID, id)
		return next(c)
	}
}

// v1 negotiates the microversion and sets the version headers on every
// /v1 response, errors included.
func (s *Server) v1(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set(hdrMinVersion, Version(MinMinor).String())
		h.Set(hdrMaxVersion, Version(MaxMinor).String())
		v, verr := parseVersion(c.Request().Header)
		if verr != nil {
			// Ironic answers version errors before its request-id hook runs,
			// and an unparseable version without any version header.
			h.Del(hdrRequestID)
			h.Del(hdrXRequestID)
			if strings.HasPrefix(verr.Msg, "Invalid value") {
				h.Del(hdrMinVersion)
				h.Del(hdrMaxVersion)
			}
			return verr
		}
		h.Set(hdrLegacyVersion, v.String())
		h.Set(hdrVersion, "baremetal "+v.String())
		if c.Request().Header.Get(hdrForwardedBy) != "" {
			h.Set(hdrConductor, s.mgr.Hostname())
		}
		c.Set(versionKey, v)
		c.Set(ownerKey, s.mgr) // names each node's conductor in node documents
		return next(c)
	}
}

// syncer is a store shared with other conductors whose cache can be
// brought up to every write they acknowledged (etcd).
type syncer interface {
	Sync(ctx context.Context) error
}

// fresh brings the store's cache up to date before a /v1 request is
// served, when the store is shared: a read answers every write any
// conductor acknowledged before it, and the checks before a write see
// the same. Alone on bbolt the cache is always current.
func (s *Server) fresh(next echo.HandlerFunc) echo.HandlerFunc {
	sy, ok := s.st.(syncer)
	if !ok {
		return next
	}
	return func(c echo.Context) error {
		if err := sy.Sync(c.Request().Context()); err != nil {
			return errf(http.StatusServiceUnavailable, "The conductor's copy of the state could not catch up with the store: %v", err)
		}
		return next(c)
	}
}

func ver(c echo.Context) Version {
	v, _ := c.Get(versionKey).(Version)
	if v == 0 {
		return MinMinor
	}
	return v
}

func baseURL(c echo.Context) string {
	return ironichttp.BaseURL(c.Request())
}

func links(c echo.Context, kind, id string) []map[string]string {
	b := baseURL(c)
	return []map[string]string{
		{"href": b + "/v1/" + kind + "/" + id, "rel": "self"},
		{"href": b + "/" + kind + "/" + id, "rel": "bookmark"},
	}
}

func (s *Server) routes() {
	e := s.echo
	e.GET("/", s.root)
	e.GET("/v1", s.v1doc, s.v1)
	e.GET("/v1/", s.v1doc, s.v1)
	g := e.Group("/v1", s.v1, s.fresh, s.access)
	// Ramdisk endpoints take no user auth (the agent token protects them;
	// see PublicRoutes).
	// Below their version Ironic answers these with its NotFound (404).
	g.GET("/lookup", s.lookup, ramdiskVersion)
	g.POST("/heartbeat/:node", s.heartbeat, ramdiskVersion, s.toOwner)
	g.POST("/continue_inspection", s.continueInspection, continueInspectionVersion)

	s.nodeRoutes(g)
	s.indicatorRoutes(g)
	s.portRoutes(g)
	s.portgroupRoutes(g)
	s.chassisRoutes(g)
	s.volumeRoutes(g)
	s.driverRoutes(g)
	s.conductorRoutes(g)
	s.allocationRoutes(g)
	g.GET("/shards", s.shards, s.minVer(82, false))
	g.POST("/events", s.postEvents, s.minVer(54, false))
	g.GET("/events/stream", s.eventStream)
	s.templates().routes(g)
	s.runbooks().routes(g)
	g.Any("/*", noRoute)
	e.Any("/*", noRoute)
}

// errNoRoute is the 404 for a path no route serves.
var errNoRoute = &Error{Code: http.StatusNotFound, Plain: true,
	Msg: "The resource could not be found."}

// noRoute answers unknown paths as Ironic does: a plain 404 without
// version or request-id headers (Ironic's router rejects them before its
// hooks run).
func noRoute(c echo.Context) error {
	h := c.Response().Header()
	for _, k := range []string{hdrRequestID, hdrXRequestID, hdrMinVersion, hdrMaxVersion, hdrLegacyVersion, hdrVersion} {
		h.Del(k)
	}
	return errNoRoute
}

// ramdiskVersion serves lookup and heartbeat from 1.22; below, Ironic's
// NotFound.
func ramdiskVersion(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if ver(c) < 22 {
			return notFound("Resource could not be found.")
		}
		return next(c)
	}
}

// continueInspectionVersion serves POST /v1/continue_inspection from 1.84
// and, as Ironic does for agents that post to it as to ironic-inspector
// (no version header), at 1.1; between them it is Ironic's 404.
func continueInspectionVersion(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if v := ver(c); v != MinMinor && v < 84 {
			return notFound("API version 1.84 or newer is required")
		}
		return next(c)
	}
}

// minVer hides a resource below version n: a 404 for sub-resources
// (Ironic's behaviour), or a 406 when notAcceptable is set.
func (s *Server) minVer(n Version, notAcceptable bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if ver(c) < n {
				if notAcceptable {
					return &Error{Code: http.StatusNotAcceptable, Plain: true,
						Msg: "The requested version of the API does not support this resource."}
				}
				return echo.ErrNotFound
			}
			return next(c)
		}
	}
}

func versionObj(c echo.Context) map[string]any {
	return map[string]any{
		"id":          "v1",
		"links":       []map[string]string{{"href": baseURL(c) + "/v1/", "rel": "self"}},
		"status":      "CURRENT",
		"min_version": Version(MinMinor).String(),
		"version":     Version(MaxMinor).String(),
	}
}

func (s *Server) root(c echo.Context) error {
	v := versionObj(c)
	return c.JSON(http.StatusOK, map[string]any{
		"name":            "OpenStack Ironic API",
		"description":     "Ironic is an OpenStack project which enables the provision and management of baremetal machines.",
		"default_version": v,
		"versions":        []any{v},
	})
}

func (s *Server) v1doc(c echo.Context) error {
	b := baseURL(c)
	pair := func(x string) []map[string]string {
		return []map[string]string{{"href": b + "/v1/" + x + "/", "rel": "self"}, {"href": b + "/" + x + "/", "rel": "bookmark"}}
	}
	doc := map[string]any{
		"id": "v1",
		"links": []map[string]string{
			{"href": b + "/v1/", "rel": "self"},
			{"href": "https://docs.openstack.org//ironic/latest/contributor//webapi.html", "rel": "describedby", "type": "text/html"},
		},
		"media_types": map[string]string{"base": "application/json", "type": "application/vnd.openstack.ironic.v1+json"},
		"version":     versionObj(c),
		"chassis":     pair("chassis"), "nodes": pair("nodes"), "ports": pair("ports"), "drivers": pair("drivers"),
	}
	v := ver(c)
	gated := []struct {
		name string
		min  Version
	}{{"lookup", 22}, {"heartbeat", 22}, {"portgroups", 23}, {"volume", 32}, {"conductors", 49},
		{"allocations", 52}, {"events", 54}, {"deploy_templates", 55}, {"shards", 82}, {"runbooks", 92}, {"continue_inspection", 84}, {"inspection_rules", 96}}
	for _, g := range gated {
		if v >= g.min {
			doc[g.name] = pair(g.name)
		}
	}
	return c.JSON(http.StatusOK, doc)
}

// splitList splits a comma-separated query value.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
