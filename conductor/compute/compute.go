// Package compute serves a subset of the OpenStack Compute (Nova) API at
// /compute/v2.1/ over ferric's own allocations and deploys, for clients
// that speak servers rather than nodes (the openstack CLI, gophercloud).
//
// A server is an allocation (its UUID is the server's id; the server's
// attributes live in the allocation's extra under "compute") plus the
// deploy of the node the allocation picked. Statuses are derived from the
// allocation's state and the node's provision and power states.
// Flavors map to a resource class and required traits; images are the
// image store's; key pairs are kept in a file under the state directory.
package compute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
	imgstore "github.com/ferric-metal/ferric/images/store"
)

// Version range of the API: microversions 2.1 (the base, which the
// openstack CLI and gophercloud use by default) to MaxVersion, which
// covers what Debian's openstacksdk (servers up to 2.73, flavors 2.61,
// key pairs 2.10) and python-novaclient (2.92) negotiate.
const (
	MinVersion = "2.1"
	MaxVersion = "2.96"
)

// Manager starts the work behind servers (ferric's conductor manager).
type Manager interface {
	StartAllocation(uuid string)
	Provision(ctx context.Context, ident string, req manager.ProvisionRequest) error
	SetPowerState(ctx context.Context, ident, target string, timeout int) error
}

// Images is the image store, read only.
type Images interface {
	List(f imgstore.Filter) ([]*imgstore.Image, bool, error)
	Get(id string) (*imgstore.Image, error)
}

// Flavor maps a Nova flavor to what a node must have.
type Flavor struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	ResourceClass string            `json:"resource_class"`
	Traits        []string          `json:"traits,omitempty"`
	VCPUs         int               `json:"vcpus"`
	RAM           int               `json:"ram"`
	Disk          int               `json:"disk"`
	ExtraSpecs    map[string]string `json:"extra_specs,omitempty"`
}

// Limits bound what a create request may carry (Nova's quotas).
const (
	MaxServerMeta      = 128
	MaxPersonality     = 5
	MaxPersonalitySize = 10240
	MaxMetaLength      = 255
	MaxKeypairs        = 100
)

// Config configures the handler.
type Config struct {
	Store   store.Store
	Manager Manager
	Images  Images
	// Flavors is the flavor mapping; empty derives one flavor per
	// resource class of the enrolled nodes (id and name the class).
	Flavors []Flavor
	// StateDir keeps the key pairs (keypairs.json); empty: in memory.
	StateDir string
	// PublicURL is the conductor's URL as the deployed machines reach it;
	// the config drive's phone-home URL is under it (none when empty).
	PublicURL string
	Log       *slog.Logger
}

// Handler is the compute API. Close it to stop the work it started.
type Handler struct {
	cfg    Config
	st     store.Store
	mgr    Manager
	log    *slog.Logger
	mux    *http.ServeMux
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	kpMu     sync.Mutex
	keypairs map[string]*Keypair

	phone *phoneHome
}

// New builds the handler, serving under /compute.
func New(cfg Config) (*Handler, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	h := &Handler{cfg: cfg, st: cfg.Store, mgr: cfg.Manager, log: cfg.Log, mux: http.NewServeMux(), phone: newPhoneHome()}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	if err := h.loadKeypairs(); err != nil {
		return nil, err
	}
	h.routes()
	// Deletions the conductor was following when it stopped go on.
	if h.st == nil {
		return h, nil
	}
	for _, s := range h.servers() {
		if s.rec.Task == "deleting" {
			id := s.a.UUID
			h.wg.Add(1)
			go func() {
				defer h.wg.Done()
				h.reap(id)
			}()
		}
	}
	h.resumeBuilds()
	h.recoverPasswords()
	return h, nil
}

// Close stops the deploys and deletions the handler follows.
func (h *Handler) Close() {
	h.cancel()
	h.wg.Wait()
}

const base = "/compute/v2.1"

// route is one route of the API, its path in echo's ":param" form.
type route struct {
	method, path string
	handler      http.HandlerFunc
}

func (h *Handler) table() []route {
	return []route{
		{"GET", "/compute", h.versions},
		{"GET", "/compute/", h.versions},
		{"GET", base, h.version},
		{"GET", base + "/", h.version},
		{"GET", base + "/servers", h.listServers(false)},
		{"GET", base + "/servers/detail", h.listServers(true)},
		{"POST", base + "/servers", h.createServer},
		{"GET", base + "/servers/:id", h.showServer},
		{"PUT", base + "/servers/:id", h.updateServer},
		{"DELETE", base + "/servers/:id", h.deleteServer},
		{"POST", base + "/servers/:id/action", h.action},
		{"GET", base + "/servers/:id/metadata", h.getMetadata},
		{"POST", base + "/servers/:id/metadata", h.setMetadata(false)},
		{"PUT", base + "/servers/:id/metadata", h.setMetadata(true)},
		{"GET", base + "/servers/:id/metadata/:key", h.getMetaItem},
		{"PUT", base + "/servers/:id/metadata/:key", h.putMetaItem},
		{"DELETE", base + "/servers/:id/metadata/:key", h.deleteMetaItem},
		{"GET", base + "/flavors", h.listFlavors(false)},
		{"GET", base + "/flavors/detail", h.listFlavors(true)},
		{"GET", base + "/flavors/:id", h.showFlavor},
		{"GET", base + "/flavors/:id/os-extra_specs", h.flavorExtraSpecs},
		{"GET", base + "/images", h.listImages(false)},
		{"GET", base + "/images/detail", h.listImages(true)},
		{"GET", base + "/images/:id", h.showImage},
		{"GET", base + "/os-keypairs", h.listKeypairs},
		{"POST", base + "/os-keypairs", h.createKeypair},
		{"GET", base + "/os-keypairs/:name", h.showKeypair},
		{"DELETE", base + "/os-keypairs/:name", h.deleteKeypair},
		{"GET", base + "/limits", h.limits},
	}
}

var paramRE = regexp.MustCompile(`:([a-z]+)`)

func (h *Handler) routes() {
	for _, r := range h.table() {
		p := paramRE.ReplaceAllString(r.path, "{$1}")
		if strings.HasSuffix(p, "/") {
			p += "{$}"
		}
		h.mux.HandleFunc(r.method+" "+p, r.handler)
	}
}

// Routes lists the routes the handler serves (paths in ":param" form),
// for the API's router to mount.
func (h *Handler) Routes() []ironichttp.Route {
	var out []ironichttp.Route
	for _, r := range h.table() {
		out = append(out, ironichttp.Route{Method: r.method, Path: r.path})
	}
	return out
}

// ServeHTTP negotiates the microversion, then routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, base) {
		w.Header().Add("Vary", "OpenStack-API-Version")
		w.Header().Add("Vary", "X-OpenStack-Nova-API-Version")
		v, err := negotiate(r.Header)
		if err != nil {
			h.writeErr(w, err)
			return
		}
		w.Header().Set("OpenStack-API-Version", "compute "+v.String())
		w.Header().Set("X-OpenStack-Nova-API-Version", v.String())
		r = withVersion(r, v)
	}
	if w.Header().Get("X-Compute-Request-Id") == "" {
		w.Header().Set("X-Compute-Request-Id", "req-"+uuid.NewString())
	}
	if _, pattern := h.mux.Handler(r); pattern == "" {
		writeFault(w, http.StatusNotFound, "The resource could not be found.")
		return
	}
	if err := h.checkAccess(r); err != nil {
		h.writeErr(w, err)
		return
	}
	h.mux.ServeHTTP(w, r)
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func versionDoc(r *http.Request) map[string]any {
	return map[string]any{"id": "v2.1", "status": "CURRENT", "version": MaxVersion, "min_version": MinVersion,
		"updated": "2013-07-23T11:33:21Z",
		"links":   []map[string]string{{"rel": "self", "href": baseURL(r) + base + "/"}},
		"media-types": []map[string]string{{"base": "application/json",
			"type": "application/vnd.openstack.compute+json;version=2.1"}}}
}

func (h *Handler) versions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"versions": []any{versionDoc(r)}})
}

func (h *Handler) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"version": versionDoc(r)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// faultNames are Nova's fault keys by status code.
var faultNames = map[int]string{
	http.StatusBadRequest:            "badRequest",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              "itemNotFound",
	http.StatusMethodNotAllowed:      "badMethod",
	http.StatusNotAcceptable:         "notAcceptable",
	http.StatusConflict:              "conflictingRequest",
	http.StatusRequestEntityTooLarge: "overLimit",
	http.StatusNotImplemented:        "notImplemented",
}

// writeFault answers with Nova's fault body: {"<name>": {"code", "message"}}.
func writeFault(w http.ResponseWriter, code int, format string, args ...any) {
	name := faultNames[code]
	if name == "" {
		name = "computeFault"
	}
	writeJSON(w, code, map[string]any{name: map[string]any{"code": code, "message": fmt.Sprintf(format, args...)}})
}

// fault is an error that answers with a Nova fault.
type fault struct {
	code int
	msg  string
}

func (f *fault) Error() string { return f.msg }

func faultf(code int, format string, args ...any) *fault {
	return &fault{code: code, msg: fmt.Sprintf(format, args...)}
}

// writeErr answers err: its fault, or a 500 computeFault.
func (h *Handler) writeErr(w http.ResponseWriter, err error) {
	var f *fault
	if errors.As(err, &f) {
		writeFault(w, f.code, "%s", f.msg)
		return
	}
	h.log.Error("compute: request failed", "err", err)
	writeFault(w, http.StatusInternalServerError, "Unexpected API Error. %v", err)
}

// readBody decodes a JSON object body, whose single key must be key.
func readBody(r *http.Request, key string) (map[string]any, error) {
	var body map[string]any
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		return nil, faultf(http.StatusBadRequest, "Malformed request body")
	}
	if key == "" {
		return body, nil
	}
	inner, ok := body[key].(map[string]any)
	if !ok {
		return nil, faultf(http.StatusBadRequest, "Invalid input for field/attribute %s. Value: %v. 'A required property' %s is missing or not an object", key, body[key], key)
	}
	return inner, nil
}
