package api

import (
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/store"
)

// Node BIOS settings (API 1.40; the registry fields and the detail and
// fields parameters 1.74): what the node's bios interface cached from the
// machine (redfish; fake and no-bios cache nothing, as in Ironic).

// biosRegistryFields are the fields ?detail=True adds (1.74).
var biosRegistryFields = []string{"attribute_type", "allowable_values", "lower_bound", "max_length", "min_length",
	"read_only", "reset_required", "unique", "upper_bound"}

// biosDoc renders a setting as Ironic does: created_at, updated_at and
// links always, then the fields asked for.
func biosDoc(c echo.Context, node string, st store.BIOSSetting, fields []string) map[string]any {
	b := baseURL(c)
	out := map[string]any{
		"created_at": ironicTime(st.CreatedAt),
		"updated_at": timePtr(st.UpdatedAt),
		"links": []map[string]string{
			{"href": b + "/v1/nodes/" + node + "/bios/" + st.Name, "rel": "self"},
			{"href": b + "/nodes/" + node + "/bios/" + st.Name, "rel": "bookmark"},
		},
	}
	for _, f := range fields {
		switch f {
		case "name":
			out[f] = st.Name
		case "value":
			out[f] = strPtr(st.Value)
		case "attribute_type":
			out[f] = strPtr(st.AttributeType)
		case "allowable_values":
			out[f] = st.AllowableValues
			if st.AllowableValues == nil {
				out[f] = []string{}
			}
		case "lower_bound":
			out[f] = st.LowerBound
		case "upper_bound":
			out[f] = st.UpperBound
		case "min_length":
			out[f] = st.MinLength
		case "max_length":
			out[f] = st.MaxLength
		case "read_only":
			out[f] = st.ReadOnly
		case "reset_required":
			out[f] = st.ResetRequired
		case "unique":
			out[f] = st.Unique
		}
	}
	return out
}

func (s *Server) listBIOS(c echo.Context, n *store.Node) error {
	q := c.QueryParams()
	fields := []string{"name", "value"}
	if q.Has("detail") || q.Has("fields") {
		if ver(c) < 74 {
			return notAcceptable("The detail and fields parameters are not supported by version %s.", ver(c))
		}
		if q.Has("detail") && q.Has("fields") {
			return badRequest("Can not specify ?detail=True and fields in the same request.")
		}
		if d := q.Get("detail"); q.Has("detail") {
			detail, ok := ironichttp.ParseBool(d)
			if !ok {
				return badRequest("Invalid value for detail: %s", d)
			}
			if detail {
				fields = append(fields, biosRegistryFields...)
			}
		}
		if q.Has("fields") {
			fields = nil
			allowed := append([]string{"name", "value"}, biosRegistryFields...)
			for _, f := range strings.Split(q.Get("fields"), ",") {
				f = strings.TrimSpace(f)
				if !slices.Contains(allowed, f) {
					return badRequest("Field(s) \"%s\" are not valid", f)
				}
				fields = append(fields, f)
			}
		}
	}
	settings, err := s.st.BIOSSettings(n.UUID)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(settings))
	for _, st := range settings {
		out = append(out, biosDoc(c, c.Param("node"), st, fields))
	}
	return c.JSON(http.StatusOK, map[string]any{"bios": out})
}

func (s *Server) getBIOS(c echo.Context, n *store.Node) error {
	settings, err := s.st.BIOSSettings(n.UUID)
	if err != nil {
		return err
	}
	name := c.Param("setting")
	for _, st := range settings {
		if st.Name == name {
			fields := []string{"name", "value"}
			if ver(c) >= 74 {
				fields = append(fields, biosRegistryFields...)
			}
			return c.JSON(http.StatusOK, map[string]any{name: biosDoc(c, n.UUID, st, fields)})
		}
	}
	return notFound("Node %s doesn't have a BIOS setting '%s'", n.UUID, name)
}

// Node firmware components (API 1.86): what the node's firmware interface
// cached (redfish: the BIOS and BMC versions; fake and no-firmware
// nothing, as in Ironic).
func (s *Server) listFirmware(c echo.Context, n *store.Node) error {
	comps, err := s.st.FirmwareComponents(n.UUID)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(comps))
	for _, fc := range comps {
		out = append(out, map[string]any{
			"component": fc.Component, "initial_version": fc.InitialVersion, "current_version": fc.CurrentVersion,
			"last_version_flashed": strPtr(fc.LastVersionFlashed),
			"created_at":           ironicTime(fc.CreatedAt), "updated_at": timePtr(fc.UpdatedAt),
		})
	}
	return c.JSON(http.StatusOK, map[string]any{"firmware": out})
}
