// Package ipxe serves the HTTP side of network boot: the generic boot.ipxe
// script, per-MAC scripts built from the conductor's decision, and the
// kernel, ramdisk and iPXE binaries as files with Range support.
//
// The conductor mounts Handler under a prefix such as /boot/:
//
//	mux.Handle("/boot/", http.StripPrefix("/boot", h))
//
// Routes (relative to the prefix):
//
//	GET /boot.ipxe                 chain to nodes/${net0/mac}.ipxe
//	GET /nodes/{mac}.ipxe          per-MAC script from Nodes.BootFor
//	GET /files/{path...}           Config.FilesDir (kernels, ramdisks)
//	GET /firmware/{path...}        Config.FirmwareDir (ipxe.efi for UEFI HTTP boot)
package ipxe

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/ferric-metal/ferric/pxe/internal/safepath"
)

// DefaultFirmwareDir is where Debian's ipxe package installs its binaries.
const DefaultFirmwareDir = "/usr/lib/ipxe"

// Nodes is what the boot handlers need from the conductor: the next boot
// for the node that owns a MAC address. The conductor implements it from
// its ports and node states. It returns an Action of kind ActionUnknown (and
// a nil error) for a MAC it does not know; an error means it could not tell.
type Nodes interface {
	BootFor(ctx context.Context, mac net.HardwareAddr) (Action, error)
}

// Config configures Handler.
type Config struct {
	// BaseURL is the absolute URL under which the handler is mounted, as
	// the booting machine reaches it, e.g. "http://10.99.0.1:6385/boot/".
	// Required.
	BaseURL string
	// Nodes decides each MAC's boot. Required.
	Nodes Nodes
	// FilesDir is served under files/. Empty disables the route.
	FilesDir string
	// FirmwareDir is served under firmware/. Default DefaultFirmwareDir;
	// "-" disables the route.
	FirmwareDir string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Handler serves the boot routes. It is safe for concurrent use.
type Handler struct {
	roots []*os.Root
	base  string
	nodes Nodes
	log   *slog.Logger
	mux   *http.ServeMux
}

// New validates cfg and returns the handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Nodes == nil {
		return nil, errors.New("ipxe: Config.Nodes is required")
	}
	if err := checkURL("base URL", cfg.BaseURL); err != nil {
		return nil, err
	}
	if !strings.HasSuffix(cfg.BaseURL, "/") {
		cfg.BaseURL += "/"
	}
	if cfg.FirmwareDir == "" {
		cfg.FirmwareDir = DefaultFirmwareDir
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Handler{base: cfg.BaseURL, nodes: cfg.Nodes, log: cfg.Logger, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /boot.ipxe", h.chain)
	h.mux.HandleFunc("GET /nodes/{file}", h.node)
	if cfg.FilesDir != "" {
		fh, err := newFiles(cfg.FilesDir, cfg.Logger)
		if err != nil {
			return nil, err
		}
		h.roots = append(h.roots, fh.root)
		h.mux.Handle("GET /files/", http.StripPrefix("/files/", fh))
	}
	if cfg.FirmwareDir != "-" {
		fh, err := newFiles(cfg.FirmwareDir, cfg.Logger)
		if err != nil {
			h.Close()
			return nil, err
		}
		h.roots = append(h.roots, fh.root)
		h.mux.Handle("GET /firmware/", http.StripPrefix("/firmware/", fh))
	}
	return h, nil
}

// Close releases the served directories. The handler must not be used
// afterwards.
func (h *Handler) Close() error {
	var errs []error
	for _, r := range h.roots {
		errs = append(errs, r.Close())
	}
	h.roots = nil
	return errors.Join(errs...)
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func writeScript(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(s))
}

func (h *Handler) chain(w http.ResponseWriter, r *http.Request) {
	writeScript(w, ChainScript(h.base))
}

// ParseScriptName parses "52:54:00:12:34:56.ipxe" (colons, dashes or no
// separators) into a MAC address.
func ParseScriptName(name string) (net.HardwareAddr, error) {
	s, ok := strings.CutSuffix(name, ".ipxe")
	if !ok {
		return nil, fmt.Errorf("ipxe: %q does not end in .ipxe", name)
	}
	if len(s) == 12 && !strings.ContainsAny(s, ":-.") {
		var b strings.Builder
		for i := 0; i < 12; i += 2 {
			if i > 0 {
				b.WriteByte(':')
			}
			b.WriteString(s[i : i+2])
		}
		s = b.String()
	}
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		return nil, fmt.Errorf("ipxe: %q is not an Ethernet MAC address", name)
	}
	return mac, nil
}

func (h *Handler) node(w http.ResponseWriter, r *http.Request) {
	mac, err := ParseScriptName(r.PathValue("file"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	a, err := h.nodes.BootFor(r.Context(), mac)
	if err != nil {
		h.log.Error("ipxe: boot decision failed", "mac", mac.String(), "err", err)
		http.Error(w, "ipxe: boot decision failed", http.StatusInternalServerError)
		return
	}
	s, err := Script(mac, a)
	if err != nil {
		h.log.Error("ipxe: cannot render boot script", "mac", mac.String(), "node", a.Node, "err", err)
		http.Error(w, "ipxe: cannot render boot script", http.StatusInternalServerError)
		return
	}
	h.log.Info("ipxe: boot script", "mac", mac.String(), "node", a.Node, "action", a.Kind.String())
	writeScript(w, s)
}

// files serves regular files below one directory with Range support.
// Directory listings are not offered, and names that leave the directory
// (lexically or through a symbolic link) are answered with 404.
type files struct {
	root *os.Root
	log  *slog.Logger
}

func newFiles(dir string, log *slog.Logger) (*files, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("ipxe: open %s: %w", dir, err)
	}
	return &files{root: root, log: log}, nil
}

func (f *files) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, err := safepath.Clean(r.URL.Path)
	if err != nil {
		f.log.Warn("ipxe: file request refused", "path", r.URL.Path, "err", err)
		http.NotFound(w, r)
		return
	}
	file, err := f.root.Open(name)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			f.log.Warn("ipxe: file request refused", "path", name, "err", err)
		}
		http.NotFound(w, r)
		return
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), file)
}
