package compute

import (
	"maps"
	"net/http"
)

func (h *Handler) getMetadata(w http.ResponseWriter, r *http.Request) {
	s, err := h.server(r.PathValue("id"))
	if err != nil {
		h.writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"metadata": s.rec.Metadata})
}

// setMetadata merges (POST) or replaces (PUT) the server's metadata.
func (h *Handler) setMetadata(replace bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if _, err := h.server(id); err != nil {
			h.writeErr(w, err)
			return
		}
		var body map[string]any
		if err := decode(r, &body); err != nil {
			h.writeErr(w, err)
			return
		}
		md, err := parseMetadata(body["metadata"])
		if err == nil && body["metadata"] == nil {
			err = faultf(http.StatusBadRequest, "Malformed request body: metadata is missing")
		}
		if err != nil {
			h.writeErr(w, err)
			return
		}
		var out map[string]string
		err = h.updateRecord(r.Context(), id, func(rec *record) error {
			next := map[string]string{}
			if !replace {
				maps.Copy(next, rec.Metadata)
			}
			maps.Copy(next, md)
			if len(next) > MaxServerMeta {
				return faultf(http.StatusForbidden, "Quota exceeded for resources: ['metadata_items'].")
			}
			rec.Metadata, out = next, next
			return nil
		})
		if err != nil {
			h.writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"metadata": out})
	}
}

func (h *Handler) getMetaItem(w http.ResponseWriter, r *http.Request) {
	s, err := h.server(r.PathValue("id"))
	if err != nil {
		h.writeErr(w, err)
		return
	}
	key := r.PathValue("key")
	v, ok := s.rec.Metadata[key]
	if !ok {
		writeFault(w, http.StatusNotFound, "Metadata item was not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"meta": map[string]string{key: v}})
}

func (h *Handler) putMetaItem(w http.ResponseWriter, r *http.Request) {
	id, key := r.PathValue("id"), r.PathValue("key")
	if _, err := h.server(id); err != nil {
		h.writeErr(w, err)
		return
	}
	var body map[string]any
	if err := decode(r, &body); err != nil {
		h.writeErr(w, err)
		return
	}
	meta, ok := body["meta"].(map[string]any)
	if !ok || len(meta) != 1 {
		writeFault(w, http.StatusBadRequest, "Request body contains too many items")
		return
	}
	if _, ok := meta[key]; !ok {
		writeFault(w, http.StatusBadRequest, "Request body and URI mismatch")
		return
	}
	md, err := parseMetadata(meta)
	if err != nil {
		h.writeErr(w, err)
		return
	}
	err = h.updateRecord(r.Context(), id, func(rec *record) error {
		if _, had := rec.Metadata[key]; !had && len(rec.Metadata) >= MaxServerMeta {
			return faultf(http.StatusForbidden, "Quota exceeded for resources: ['metadata_items'].")
		}
		rec.Metadata[key] = md[key]
		return nil
	})
	if err != nil {
		h.writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"meta": md})
}

func (h *Handler) deleteMetaItem(w http.ResponseWriter, r *http.Request) {
	id, key := r.PathValue("id"), r.PathValue("key")
	err := h.updateRecord(r.Context(), id, func(rec *record) error {
		if _, ok := rec.Metadata[key]; !ok {
			return faultf(http.StatusNotFound, "Metadata item was not found")
		}
		delete(rec.Metadata, key)
		return nil
	})
	if err != nil {
		h.writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
