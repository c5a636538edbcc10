// Package introspection serves ironic-inspector's v1 API (versions 1.0 to
// 1.18, default port 5050) for clients that still use it (gophercloud's
// baremetalintrospection, metal3, scripts): starting, watching and aborting
// introspection, reading the stored data, legacy introspection rules, and
// the ramdisk's POST /v1/continue.
//
// There is no separate inspector state: the status of an introspection is
// derived from the node (inspect wait is "waiting", manageable after an
// inspection is "finished", inspect failed is "error"), starting one fires
// the conductor's provision "inspect" verb, and /v1/continue runs the same
// processing as Ironic's /v1/continue_inspection.
package introspection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ferric-metal/ferric/conductor/auth"
	"github.com/ferric-metal/ferric/conductor/httpserver"
	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/inspector/rules"
)

// Defaults and API versions.
const (
	DefaultListen = "127.0.0.1:5050"
	MinVersion    = "1.0"
	MaxVersion    = "1.18"
	maxMinor      = 18

	hdrVersion    = "X-OpenStack-Ironic-Inspector-API-Version"
	hdrMinVersion = "X-OpenStack-Ironic-Inspector-API-Minimum-Version"
	hdrMaxVersion = "X-OpenStack-Ironic-Inspector-API-Maximum-Version"

	// provisionVersion is the Ironic microversion the verbs are fired with.
	provisionVersion = 89
)

// Conductor does the work: *manager.Manager implements it.
type Conductor interface {
	// Provision fires a provision verb ("inspect", "abort") on a node.
	Provision(ctx context.Context, ident string, req manager.ProvisionRequest) error
	// ContinueInspection processes data posted by the ramdisk.
	ContinueInspection(ctx context.Context, body []byte) (*store.Node, error)
}

// Config configures the server.
type Config struct {
	// Listen is the address to serve on (DefaultListen).
	Listen    string
	Store     store.Store
	Conductor Conductor
	// Rules backs /v1/rules; nil answers 404 there.
	Rules rules.Store
	// Authenticator checks HTTP basic credentials on every route but
	// PublicRoutes; nil is noauth.
	Authenticator *auth.Authenticator
	Log           *slog.Logger
	// Ready, when set, receives the bound address once serving.
	Ready func(addr string)
	// HTTP bounds the server's connections and sets its TLS.
	HTTP httpserver.Config
}

// Server is the ironic-inspector API.
type Server struct {
	cfg Config
	st  store.Store
	mux *ironichttp.Mux
	log *slog.Logger
	// handler is the router behind the authenticator.
	handler http.Handler
}

// PublicRoutes are the requests ironic-inspector serves without
// credentials (its is_public_api routes): the root and version documents,
// and the ramdisk's POST /v1/continue.
var PublicRoutes = []auth.Rule{
	{Methods: []string{http.MethodGet, http.MethodHead}, Path: "/"},
	{Methods: []string{http.MethodGet, http.MethodHead}, Path: "/[^/]+"},
	{Methods: []string{http.MethodPost}, Path: "/v1/continue"},
}

// New returns the server.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	s := &Server{cfg: cfg, st: cfg.Store, log: cfg.Log}
	m := ironichttp.NewMux()
	m.Miss = func(w http.ResponseWriter, req *http.Request, code int) {
		s.fail(w, req, &apiError{code: code, msg: http.StatusText(code)})
	}
	for _, r := range []struct {
		method, path string
		h            func(http.ResponseWriter, *http.Request) error
	}{
		{http.MethodGet, "/", s.root},
		{http.MethodGet, "/v1", s.v1doc},
		{http.MethodGet, "/v1/", s.v1doc},
		{http.MethodPost, "/v1/continue", s.cont},
		{http.MethodGet, "/v1/introspection", s.list},
		{http.MethodPost, "/v1/introspection/:node", s.start},
		{http.MethodGet, "/v1/introspection/:node", s.status},
		{http.MethodPost, "/v1/introspection/:node/abort", s.abort},
		{http.MethodGet, "/v1/introspection/:node/data", s.data},
		{http.MethodGet, "/v1/introspection/:node/data/unprocessed", s.unprocessed},
		{http.MethodPost, "/v1/introspection/:node/data/unprocessed", s.reapply},
		{http.MethodGet, "/v1/rules", s.listRules},
		{http.MethodPost, "/v1/rules", s.createRule},
		{http.MethodDelete, "/v1/rules", s.deleteRules},
		{http.MethodGet, "/v1/rules/:rule", s.getRule},
		{http.MethodDelete, "/v1/rules/:rule", s.deleteRule},
	} {
		h := r.h
		m.Handle(r.method, r.path, func(w http.ResponseWriter, req *http.Request) {
			if err := h(w, req); err != nil {
				s.fail(w, req, err)
			}
		})
	}
	s.mux = m
	s.handler = cfg.Authenticator.Wrap(s.version(m), auth.Policy{Realm: "Baremetal Introspection API",
		Public: PublicRoutes, Deny: deny})
	return s
}

// ServeHTTP implements http.Handler: the authenticator, then the router.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Routes lists the routes the server serves (for route tables in tests).
func (s *Server) Routes() []ironichttp.Route { return s.mux.Routes() }

// deny writes an authentication refusal in ironic-inspector's shape, with
// its version headers.
func deny(w http.ResponseWriter, _ *http.Request, status int, msg string) {
	if status == http.StatusUnauthorized {
		msg = "Authentication required" // ironic-inspector's words
	}
	h := w.Header()
	h.Set(hdrMinVersion, MinVersion)
	h.Set(hdrMaxVersion, MaxVersion)
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"message": msg}})
}

// Run listens on Config.Listen and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("introspection: listen %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then shuts down cleanly.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.log.Info("introspection API ready", "listen", s.cfg.HTTP.Scheme()+"://"+ln.Addr().String())
	if s.cfg.Ready != nil {
		s.cfg.Ready(ln.Addr().String())
	}
	if err := httpserver.Serve(ctx, ln, s, s.cfg.HTTP); err != nil {
		return fmt.Errorf("introspection: %w", err)
	}
	return nil
}

// apiError is an error rendered in ironic-inspector's shape
// {"error": {"message": ...}}.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

// continueBodyLimit bounds the ramdisk's inventory.
const continueBodyLimit = 16 << 20

// readBody reads a request body of at most limit bytes: past it a 413, a
// body that cannot be read (a broken chunked encoding) a 400.
func readBody(w http.ResponseWriter, req *http.Request, limit int64) ([]byte, error) {
	if req.ContentLength > limit {
		return nil, errf(http.StatusRequestEntityTooLarge, "Request body is larger than %d bytes", limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, errf(http.StatusRequestEntityTooLarge, "Request body is larger than %d bytes", limit)
	case err != nil:
		return nil, errf(http.StatusBadRequest, "Could not read the request body: %v", err)
	}
	return body, nil
}

func errf(code int, format string, args ...any) error {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

// fail writes err in ironic-inspector's error shape: an apiError with
// its code, anything else as an internal error.
func (s *Server) fail(w http.ResponseWriter, req *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		s.log.Error("introspection: internal error", "err", err, "path", req.URL.Path)
		ae = &apiError{code: http.StatusInternalServerError, msg: err.Error()}
	}
	if ae.code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="Baremetal Introspection API"`)
	}
	ironichttp.WriteJSON(w, ae.code, ironichttp.InspectorError(ae.msg))
}

func writeJSON(w http.ResponseWriter, code int, v any) error {
	ironichttp.WriteJSON(w, code, v)
	return nil
}

func noContent(w http.ResponseWriter, code int) error {
	w.WriteHeader(code)
	return nil
}

// version negotiates X-OpenStack-Ironic-Inspector-API-Version as
// ironic-inspector's main.check_api_version does: no header is the newest
// version (its DEFAULT_API_VERSION), "latest" too, MAJOR.MINOR else
// (microversion_parse: Python integers around the first dot); a malformed
// one is a 400, one out of range a 406.
func (s *Server) version(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := w.Header()
		h.Set(hdrMinVersion, MinVersion)
		h.Set(hdrMaxVersion, MaxVersion)
		raw := strings.TrimSpace(req.Header.Get(hdrVersion))
		minor := maxMinor
		if raw != "" && !strings.EqualFold(raw, "latest") {
			ma, mi, ok := strings.Cut(raw, ".")
			a, ok1 := ironichttp.PyInt(ma)
			b, ok2 := ironichttp.PyInt(mi)
			if !ok || !ok1 || !ok2 {
				s.fail(w, req, errf(http.StatusBadRequest, "Malformed API version: expected string in form of X.Y or latest"))
				return
			}
			if a != 1 || b < 0 || b > maxMinor {
				s.fail(w, req, errf(http.StatusNotAcceptable, "Unsupported API version %d.%d, supported range is %s to %s", a, b, MinVersion, MaxVersion))
				return
			}
			minor = int(b)
		}
		h.Set(hdrVersion, "1."+strconv.Itoa(minor))
		next.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), minorKey{}, minor)))
	})
}

// minorKey keys the negotiated minor version in a request's context.
type minorKey struct{}

func minor(req *http.Request) int { m, _ := req.Context().Value(minorKey{}).(int); return m }

func baseURL(req *http.Request) string { return ironichttp.BaseURL(req) }

func (s *Server) root(w http.ResponseWriter, req *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]any{"versions": []any{map[string]any{
		"id": MaxVersion, "status": "CURRENT",
		"links": []map[string]string{{"href": baseURL(req) + "/v1", "rel": "self"}},
	}}})
}

func (s *Server) v1doc(w http.ResponseWriter, req *http.Request) error {
	var res []any
	for _, r := range []string{"introspection", "continue", "rules"} {
		res = append(res, map[string]any{"name": r, "links": []map[string]string{{"href": baseURL(req) + "/v1/" + r, "rel": "self"}}})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"resources": res})
}

// ---- introspection ----

// Status is one introspection's status.
type Status struct {
	UUID       string              `json:"uuid"`
	Finished   bool                `json:"finished"`
	State      string              `json:"state"`
	Error      *string             `json:"error"`
	StartedAt  *string             `json:"started_at"`
	FinishedAt *string             `json:"finished_at"`
	Links      []map[string]string `json:"links"`
}

func timeStr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.UTC().Format(ironichttp.InspectorTimeFormat)
	return &s
}

// statusOf derives the introspection status from a node; ok is false for a
// node that was never inspected.
func statusOf(n *store.Node) (Status, bool) {
	st := Status{UUID: n.UUID, StartedAt: timeStr(n.InspectionStartedAt), FinishedAt: timeStr(n.InspectionFinishedAt)}
	switch n.ProvisionState {
	case "inspecting":
		st.State = "starting"
		st.FinishedAt = nil
	case "inspect wait":
		st.State = "waiting"
		st.FinishedAt = nil
	case "inspect failed":
		st.State, st.Finished = "error", true
		msg := "Canceled by operator"
		if n.LastError != nil && *n.LastError != "" {
			msg = *n.LastError
		}
		st.Error = &msg
		if st.FinishedAt == nil {
			st.FinishedAt = timeStr(n.ProvisionUpdatedAt)
		}
	default:
		if n.InspectionFinishedAt == nil {
			return st, false
		}
		st.State, st.Finished = "finished", true
		if st.StartedAt == nil {
			st.StartedAt = st.FinishedAt
		}
	}
	if n.InspectionStartedAt == nil && n.InspectionFinishedAt == nil && !st.Finished && st.State == "" {
		return st, false
	}
	return st, true
}

// node finds the node of the path as ironic-inspector's
// common/ironic.get_node asks Ironic for it: "Node X was not found in
// Ironic" (404) when there is none.
func (s *Server) node(req *http.Request) (*store.Node, error) {
	id := req.PathValue("node")
	n, err := s.st.Node(id)
	if err != nil {
		return nil, errf(http.StatusNotFound, "Node %s was not found in Ironic", id)
	}
	return n, nil
}

// cached finds the node of the path and its introspection as
// ironic-inspector's node_cache.get_node does: a UUID is looked up in the
// introspection cache directly ("Could not find node X in cache", 404), a
// name in Ironic first.
func (s *Server) cached(req *http.Request) (*store.Node, Status, error) {
	id := req.PathValue("node")
	n, err := s.st.Node(id)
	if err != nil && !ironichttp.IsUUIDLike(id) {
		return nil, Status{}, errf(http.StatusNotFound, "Node %s was not found in Ironic", id)
	}
	uuid := id
	if n != nil {
		uuid = n.UUID
	}
	var st Status
	ok := err == nil
	if ok {
		st, ok = statusOf(n)
	}
	if !ok {
		return nil, Status{}, errf(http.StatusNotFound, "Could not find node %s in cache", uuid)
	}
	return n, st, nil
}

func withLinks(req *http.Request, st Status) Status {
	st.Links = []map[string]string{{"href": baseURL(req) + "/v1/introspection/" + st.UUID, "rel": "self"}}
	return st
}

func (s *Server) status(w http.ResponseWriter, req *http.Request) error {
	_, st, err := s.cached(req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, withLinks(req, st))
}

// listArgs are the arguments of a listing, read as ironic-inspector's
// api_tools reads them (marker_field, limit_field, state_field, in that
// order): each bad one is a 400 "Bad request: ...".
type listArgs struct {
	marker string
	limit  int
	states []string
}

// maxLimit is ironic-inspector's [DEFAULT]api_max_limit: the page size
// when none (or 0) is asked, and the largest one may ask.
const maxLimit = 1000

// states are ironic-inspector's introspection states
// (introspection_state.States.all()).
var states = []string{"starting", "waiting", "processing", "finished", "error", "reapplying", "enrolling", "aborting"}

func readListArgs(req *http.Request) (listArgs, error) {
	q := req.URL.Query()
	a := listArgs{limit: maxLimit}
	badRequest := func(msg string) error { return errf(http.StatusBadRequest, "Bad request: %s", msg) }
	if q.Has("marker") {
		a.marker = q.Get("marker")
		if !ironichttp.IsUUIDLike(a.marker) {
			return a, badRequest("Marker not UUID-like")
		}
	}
	if q.Has("limit") {
		raw := q.Get("limit")
		n, ok := ironichttp.PyInt(raw)
		switch {
		case !ok:
			return a, badRequest(ironichttp.IntLiteralMsg(raw))
		case n < 0:
			return a, badRequest("Limit cannot be negative")
		case n > maxLimit:
			return a, badRequest(fmt.Sprintf("Limit over %d", maxLimit))
		case n > 0:
			a.limit = int(n)
		}
	}
	if q.Has("state") {
		a.states = strings.Split(q.Get("state"), ",")
		var invalid []string
		for _, st := range a.states {
			if !slices.Contains(states, st) {
				invalid = append(invalid, st)
			}
		}
		if len(invalid) > 0 {
			return a, badRequest(fmt.Sprintf("State(s) \"%s\" are not valid", strings.Join(invalid, ", ")))
		}
	}
	return a, nil
}

func (s *Server) list(w http.ResponseWriter, req *http.Request) error {
	args, err := readListArgs(req)
	if err != nil {
		return err
	}
	var all []Status
	for _, n := range s.st.Nodes(nil) {
		if st, ok := statusOf(n); ok {
			all = append(all, withLinks(req, st))
		}
	}
	// Newest first, as ironic-inspector lists.
	sort.SliceStable(all, func(i, j int) bool {
		a, b := all[i].StartedAt, all[j].StartedAt
		switch {
		case a == nil:
			return false
		case b == nil:
			return true
		}
		if *a != *b {
			return *a > *b
		}
		return all[i].UUID < all[j].UUID
	})
	if m := args.marker; m != "" {
		// The marker is any node of the cache, whatever the state filter
		// (node_cache.get_node_list reads it from the database first).
		i := slices.IndexFunc(all, func(st Status) bool { return strings.EqualFold(st.UUID, m) })
		if i < 0 {
			return errf(http.StatusNotFound, "The requested node was not found.")
		}
		all = all[i+1:]
	}
	if len(args.states) > 0 {
		all = slices.DeleteFunc(all, func(st Status) bool { return !slices.Contains(args.states, st.State) })
	}
	if len(all) > args.limit {
		all = all[:args.limit]
	}
	if all == nil {
		all = []Status{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"introspection": all})
}

// conductorError maps the manager's error kinds to HTTP codes (the
// manager's one table) and a missing node to 404.
func conductorError(err error) error {
	code, ok := manager.Status(err)
	switch {
	case ok:
	case errors.Is(err, store.ErrNotFound):
		code = http.StatusNotFound
	default:
		code = http.StatusInternalServerError
	}
	return &apiError{code: code, msg: err.Error()}
}

func (s *Server) start(w http.ResponseWriter, req *http.Request) error {
	n, err := s.node(req)
	if err != nil {
		return err
	}
	if q := req.URL.Query(); q.Has("manage_boot") {
		v := q.Get("manage_boot")
		if b, ok := ironichttp.ParseBool(v); !ok {
			return errf(http.StatusBadRequest, "Invalid boolean value for manage_boot: %s", v)
		} else if !b {
			return errf(http.StatusBadRequest, "Managed boot is required: this inspector boots the node itself (manage_boot=false is not supported)")
		}
	}
	if err := s.cfg.Conductor.Provision(req.Context(), n.UUID, manager.ProvisionRequest{Target: "inspect", Version: provisionVersion}); err != nil {
		return conductorError(err)
	}
	return noContent(w, http.StatusAccepted)
}

func (s *Server) abort(w http.ResponseWriter, req *http.Request) error {
	n, _, err := s.cached(req)
	if err != nil {
		return err
	}
	if n.ProvisionState != "inspect wait" {
		return errf(http.StatusBadRequest, "Node %s is not being introspected (state %q), nothing to abort", n.UUID, n.ProvisionState)
	}
	if err := s.cfg.Conductor.Provision(req.Context(), n.UUID, manager.ProvisionRequest{Target: "abort", Version: provisionVersion}); err != nil {
		return conductorError(err)
	}
	return noContent(w, http.StatusAccepted)
}

// storedInventory returns the node's inventory object and plugin data
// (the inventory may be stored alone or as the whole ramdisk payload).
func storedInventory(n *store.Node) (map[string]any, map[string]any, bool) {
	if len(n.Inventory) == 0 {
		return nil, nil, false
	}
	var inv map[string]any
	if json.Unmarshal(n.Inventory, &inv) != nil || inv == nil {
		return nil, nil, false
	}
	plugin := map[string]any{}
	if wrapped, ok := inv["inventory"].(map[string]any); ok {
		for k, v := range inv {
			if k != "inventory" {
				plugin[k] = v
			}
		}
		inv = wrapped
	}
	var pd map[string]any
	if len(n.PluginData) > 0 && json.Unmarshal(n.PluginData, &pd) == nil {
		for k, v := range pd {
			plugin[k] = v
		}
	}
	return inv, plugin, true
}

// Data renders the stored data in ironic-inspector's processed format:
// the plugin data and inventory, plus the keys its hooks added (cpus,
// cpu_arch, memory_mb, local_gb, interfaces, all_interfaces, macs,
// boot_interface, ipmi_address, error). portMACs are the node's port
// addresses: the interfaces with a port are the valid ones.
func Data(n *store.Node, portMACs []string) (map[string]any, bool) {
	inv, plugin, ok := storedInventory(n)
	if !ok {
		return nil, false
	}
	out := map[string]any{}
	for k, v := range plugin {
		out[k] = v
	}
	out["inventory"] = inv
	if _, ok := out["error"]; !ok {
		out["error"] = nil
	}
	for _, k := range []string{"cpus", "cpu_arch", "memory_mb", "local_gb"} {
		if v, ok := n.Properties[k]; ok {
			out[k] = v
		}
	}
	pxe := ""
	if b, ok := inv["boot"].(map[string]any); ok {
		pxe, _ = b["pxe_interface"].(string)
		out["boot_interface"] = pxe
	}
	all := map[string]any{}
	valid := map[string]any{}
	var macs []any
	ports := map[string]bool{}
	for _, p := range portMACs {
		ports[strings.ToLower(p)] = true
	}
	if ifaces, ok := inv["interfaces"].([]any); ok {
		for _, x := range ifaces {
			i, _ := x.(map[string]any)
			name, _ := i["name"].(string)
			mac, _ := i["mac_address"].(string)
			if name == "" || mac == "" {
				continue
			}
			mac = strings.ToLower(mac)
			ip, _ := i["ipv4_address"].(string)
			entry := map[string]any{"mac": mac, "ip": ip, "client_id": i["client_id"],
				"pxe": pxe != "" && strings.HasSuffix(strings.ToLower(strings.ReplaceAll(pxe, "-", ":")), mac)}
			all[name] = entry
			if ports[mac] || len(ports) == 0 {
				valid[name] = entry
				macs = append(macs, mac)
			}
		}
	}
	out["all_interfaces"], out["interfaces"] = all, valid
	if pm, ok := plugin["macs"].([]any); ok {
		macs = pm
	}
	if macs == nil {
		macs = []any{}
	}
	out["macs"] = macs
	if a, ok := inv["bmc_address"].(string); ok && a != "" {
		out["ipmi_address"] = a
	}
	if a, ok := inv["bmc_v6address"].(string); ok && a != "" {
		out["ipmi_v6address"] = a
	}
	return out, true
}

func (s *Server) data(w http.ResponseWriter, req *http.Request) error {
	n, err := s.node(req)
	if err != nil {
		return err
	}
	d, ok := s.dataOf(n)
	if !ok {
		return errf(http.StatusNotFound, "Introspection data not found for node %s", n.UUID)
	}
	return writeJSON(w, http.StatusOK, d)
}

func (s *Server) dataOf(n *store.Node) (map[string]any, bool) {
	var macs []string
	for _, p := range s.st.Ports(func(p *store.Port) bool { return p.NodeUUID == n.UUID }) {
		macs = append(macs, p.Address)
	}
	return Data(n, macs)
}

func (s *Server) unprocessed(w http.ResponseWriter, req *http.Request) error {
	n, err := s.node(req)
	if err != nil {
		return err
	}
	inv, plugin, ok := storedInventory(n)
	if !ok {
		return errf(http.StatusNotFound, "Introspection data not found for node %s", n.UUID)
	}
	out := map[string]any{"inventory": inv}
	for k, v := range plugin {
		out[k] = v
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) reapply(w http.ResponseWriter, req *http.Request) error {
	return errf(http.StatusBadRequest, "Reapplying introspection on stored data is not supported; start a new introspection")
}

// cont serves the ramdisk's POST /v1/continue.
func (s *Server) cont(w http.ResponseWriter, req *http.Request) error {
	body, err := readBody(w, req, continueBodyLimit)
	if err != nil {
		return err
	}
	if err := jsonObject(body); err != nil {
		return err
	}
	n, err := s.cfg.Conductor.ContinueInspection(req.Context(), body)
	if err != nil {
		return conductorError(err)
	}
	return writeJSON(w, http.StatusOK, map[string]string{"uuid": n.UUID})
}

// ---- legacy rules ----

func (s *Server) rules() (rules.Store, error) {
	if s.cfg.Rules == nil {
		return nil, errf(http.StatusNotFound, "Introspection rules are not enabled")
	}
	return s.cfg.Rules, nil
}

// jsonObject checks a body is a JSON object, as ironic-inspector's
// api_continue and api_rules do ("Invalid data: expected a JSON object,
// got list").
func jsonObject(body []byte) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return errf(http.StatusBadRequest, "Invalid data: the body is not JSON: %v", err)
	}
	if _, ok := v.(map[string]any); !ok {
		return errf(http.StatusBadRequest, "Invalid data: expected a JSON object, got %s", ironichttp.PyTypeName(v))
	}
	return nil
}

// rulesError words a rule store's error as ironic-inspector's
// utils.RuleNotFoundError and RuleUUIDExistError do; uuid is the rule's.
func rulesError(err error, uuid string) error {
	switch {
	case errors.Is(err, rules.ErrNotFound):
		return errf(http.StatusNotFound, "Rule %s was not found", uuid)
	case errors.Is(err, rules.ErrExists):
		return errf(http.StatusConflict, "Rule with UUID %s already exists", uuid)
	case errors.Is(err, rules.ErrInvalidRule):
		return errf(http.StatusBadRequest, "%v", err)
	}
	return err
}

// legacyView renders a rule in ironic-inspector's format.
func legacyView(req *http.Request, r rules.Rule, short bool) map[string]any {
	out := map[string]any{"uuid": r.UUID, "description": r.Description,
		"links": []map[string]string{{"href": baseURL(req) + "/v1/rules/" + r.UUID, "rel": "self"}}}
	if r.Description == "" {
		out["description"] = nil
	}
	if short {
		return out
	}
	conds := []any{}
	for _, cd := range r.Conditions {
		m := map[string]any{}
		for k, v := range cd.Args {
			m[k] = v
		}
		op := cd.Op
		m["invert"] = strings.HasPrefix(op, "!")
		m["op"] = strings.TrimPrefix(op, "!")
		if cd.Field != "" {
			m["field"] = cd.Field
		}
		m["multiple"] = cd.Multiple
		if cd.Multiple == "" {
			m["multiple"] = "any"
		}
		conds = append(conds, m)
	}
	acts := []any{}
	for _, a := range r.Actions {
		m := map[string]any{}
		for k, v := range a.Args {
			if a.Op == "fail" && k == "msg" {
				k = "message"
			}
			m[k] = v
		}
		m["action"] = a.Op
		acts = append(acts, m)
	}
	out["conditions"], out["actions"] = conds, acts
	out["scope"] = nil
	if r.Scope != "" {
		out["scope"] = r.Scope
	}
	return out
}

func (s *Server) listRules(w http.ResponseWriter, req *http.Request) error {
	rs, err := s.rules()
	if err != nil {
		return err
	}
	list, err := rs.List(req.Context())
	if err != nil {
		return rulesError(err, "")
	}
	out := []any{}
	for _, r := range list {
		out = append(out, legacyView(req, r, true))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"rules": out})
}

func (s *Server) createRule(w http.ResponseWriter, req *http.Request) error {
	rs, err := s.rules()
	if err != nil {
		return err
	}
	body, err := readBody(w, req, 1<<20)
	if err != nil {
		return err
	}
	if err := jsonObject(body); err != nil {
		return err
	}
	// main.api_rules checks these two before the rule itself.
	var head struct {
		UUID  any `json:"uuid"`
		Scope any `json:"scope"`
	}
	_ = json.Unmarshal(body, &head)
	if u, ok := head.UUID.(string); ironichttp.Truthy(head.UUID) && (!ok || !ironichttp.IsUUIDLike(u)) {
		return errf(http.StatusBadRequest, "Invalid UUID value")
	}
	if sc, ok := head.Scope.(string); ok && utf8.RuneCountInString(sc) > 255 {
		return errf(http.StatusBadRequest, "Invalid scope: the length of the scope should be within 255 characters")
	}
	r, err := rules.Parse(body)
	if err != nil {
		return rulesError(err, "")
	}
	created, err := rs.Create(req.Context(), r)
	if err != nil {
		return rulesError(err, r.UUID)
	}
	r = created
	code := http.StatusOK
	if minor(req) >= 6 {
		code = http.StatusCreated
	}
	return writeJSON(w, code, legacyView(req, r, false))
}

func (s *Server) getRule(w http.ResponseWriter, req *http.Request) error {
	rs, err := s.rules()
	if err != nil {
		return err
	}
	r, err := rs.Get(req.Context(), req.PathValue("rule"))
	if err != nil {
		return rulesError(err, req.PathValue("rule"))
	}
	return writeJSON(w, http.StatusOK, legacyView(req, r, false))
}

func (s *Server) deleteRule(w http.ResponseWriter, req *http.Request) error {
	rs, err := s.rules()
	if err != nil {
		return err
	}
	if err := rs.Delete(req.Context(), req.PathValue("rule")); err != nil {
		return rulesError(err, req.PathValue("rule"))
	}
	return noContent(w, http.StatusNoContent)
}

func (s *Server) deleteRules(w http.ResponseWriter, req *http.Request) error {
	rs, err := s.rules()
	if err != nil {
		return err
	}
	if err := rs.DeleteAll(req.Context()); err != nil {
		return rulesError(err, "")
	}
	return noContent(w, http.StatusNoContent)
}
