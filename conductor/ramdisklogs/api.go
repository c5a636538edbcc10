package ramdisklogs

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
)

// Handler serves the ferric extension that lists and downloads a node's
// ramdisk logs:
//
//	GET /v1/nodes/{node}/ramdisk_logs         {"ramdisk_logs": [{name, node_uuid, size, created_at, links}]}
//	GET /v1/nodes/{node}/ramdisk_logs/{name}  the archive (application/gzip)
//
// It is mounted in the Ironic API, so it sits behind the API's
// authentication like every other route; errors come in Ironic's shape.
type Handler struct {
	Store *Store
	// Node resolves a node ident (UUID or name) to its UUID; found is
	// false for an unknown node.
	Node func(ident string) (uuid string, found bool, err error)
}

// Routes returns the routes as a plain net/http handler and their list,
// for the API to mount under /v1.
func (h *Handler) Routes() *ironichttp.Mux {
	m := ironichttp.NewMux()
	m.Handle(http.MethodGet, "/v1/nodes/:node/ramdisk_logs", h.list)
	m.Handle(http.MethodGet, "/v1/nodes/:node/ramdisk_logs/:name", h.download)
	return m
}

func fault(w http.ResponseWriter, r *http.Request, code int, format string, args ...any) {
	ironichttp.WriteFault(w, r, ironichttp.Errorf(code, format, args...))
}

func (h *Handler) node(w http.ResponseWriter, r *http.Request) (string, bool) {
	ident := r.PathValue("node")
	uuid, found, err := h.Node(ident)
	if err != nil {
		fault(w, r, http.StatusInternalServerError, "Internal server error: %v", err)
		return "", false
	}
	if !found {
		fault(w, r, http.StatusNotFound, "Node %s could not be found.", ident)
		return "", false
	}
	return uuid, true
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	uuid, ok := h.node(w, r)
	if !ok {
		return
	}
	list, err := h.Store.List(uuid)
	if err != nil {
		fault(w, r, http.StatusInternalServerError, "Internal server error: %v", err)
		return
	}
	base := ironichttp.BaseURL(r)
	out := make([]map[string]any, 0, len(list))
	for _, e := range list {
		out = append(out, map[string]any{
			"name": e.Name, "node_uuid": e.NodeUUID, "size": e.Size, "created_at": ironichttp.Time(e.CreatedAt),
			"links": []map[string]string{{"href": base + "/v1/nodes/" + e.NodeUUID + "/ramdisk_logs/" + e.Name, "rel": "self"}},
		})
	}
	ironichttp.WriteJSON(w, http.StatusOK, map[string]any{"ramdisk_logs": out})
}

func (h *Handler) download(w http.ResponseWriter, r *http.Request) {
	uuid, ok := h.node(w, r)
	if !ok {
		return
	}
	name := r.PathValue("name")
	f, e, err := h.Store.Open(uuid, name)
	if errors.Is(err, ErrNotFound) {
		fault(w, r, http.StatusNotFound, "Ramdisk logs %s of node %s could not be found.", name, uuid)
		return
	}
	if err != nil {
		fault(w, r, http.StatusInternalServerError, "Internal server error: %v", err)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Length", strconv.FormatInt(e.Size, 10))
	w.Header().Set("Content-Disposition", `attachment; filename="`+e.Name+`"`)
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, io.LimitReader(f, e.Size))
}
