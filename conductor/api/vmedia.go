package api

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/internal/python"
	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
)

// The vmedia endpoints (Ironic API 1.89 POST and DELETE, 1.93 GET).

// vmediaManager is the manager's side of the vmedia endpoints.
type vmediaManager interface {
	AttachVirtualMedia(ctx context.Context, ident string, req manager.VirtualMediaAttach) error
	DetachVirtualMedia(ctx context.Context, ident string, deviceTypes []string) error
	VirtualMedia(ctx context.Context, ident string) ([]driver.MediaState, error)
}

// vmediaSchemes are the image URL schemes Ironic accepts.
var vmediaSchemes = []string{"http", "https", "nfs", "cifs", "smb"}

func (s *Server) vmediaMgr() (vmediaManager, error) {
	vm, ok := s.mgr.(vmediaManager)
	if !ok {
		return nil, notFound("Virtual media is not available on this conductor.")
	}
	return vm, nil
}

// attachVMedia validates the body as Ironic's schema does and has the
// conductor insert the image (204; failures land in last_error).
func (s *Server) attachVMedia(c echo.Context, n *store.Node) error {
	body, _, err := readJSONObject(c, "vmedia")
	if err != nil {
		return err
	}
	keys := slices.Sorted(maps.Keys(body))
	for _, k := range keys {
		switch k {
		case "device_type", "image_url", "image_download_source":
		default:
			return badRequest("Schema error for vmedia: Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	req := manager.VirtualMediaAttach{}
	for _, f := range []struct {
		key  string
		dst  *string
		enum []string
	}{{"device_type", &req.DeviceType, manager.VMediaDevices}, {"image_url", &req.ImageURL, nil},
		{"image_download_source", &req.DownloadSource, []string{"http", "local", "swift"}}} {
		v, ok := body[f.key]
		if !ok {
			if f.key != "image_download_source" {
				return badRequest("Schema error for vmedia: '%s' is a required property", f.key)
			}
			continue
		}
		str, isStr := v.(string)
		if !isStr {
			return badRequest("Schema error for vmedia: %s is not of type 'string'", python.Repr(v))
		}
		if f.enum != nil && !slices.Contains(f.enum, str) {
			return badRequest("Schema error for vmedia: %s is not one of %s", python.Repr(v), python.Repr(anySlice(f.enum)))
		}
		*f.dst = str
	}
	if u, err := url.Parse(req.ImageURL); err != nil || !slices.Contains(vmediaSchemes, u.Scheme) {
		scheme := ""
		if err == nil {
			scheme = u.Scheme
		}
		return badRequest("Unsupported or missing URL scheme: %s", scheme)
	}
	vm, err := s.vmediaMgr()
	if err != nil {
		return err
	}
	if err := vm.AttachVirtualMedia(c.Request().Context(), n.UUID, req); err != nil {
		return mgrError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// detachVMedia ejects the devices of ?device_types=a,b (all without it).
func (s *Server) detachVMedia(c echo.Context, n *store.Node) error {
	var types []string
	for _, v := range c.QueryParams()["device_types"] {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				types = append(types, t)
			}
		}
	}
	vm, err := s.vmediaMgr()
	if err != nil {
		return err
	}
	if err := vm.DetachVirtualMedia(c.Request().Context(), n.UUID, types); err != nil {
		return mgrError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// getVMedia lists the node's virtual media devices as Ironic's redfish
// management does: media_types, inserted and image of each.
func (s *Server) getVMedia(c echo.Context, n *store.Node) error {
	vm, err := s.vmediaMgr()
	if err != nil {
		return err
	}
	st, err := vm.VirtualMedia(c.Request().Context(), n.UUID)
	if err != nil {
		return mgrError(err)
	}
	out := []map[string]any{}
	for _, m := range st {
		types := m.Types
		if types == nil {
			types = []string{}
		}
		var image any
		if m.Image != "" {
			image = m.Image
		}
		out = append(out, map[string]any{"media_types": types, "inserted": m.Inserted, "image": image})
	}
	return c.JSON(http.StatusOK, out)
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
