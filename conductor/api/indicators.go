package api

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/driver"
)

// The indicators endpoints (Ironic API 1.63): a node's indicators (LEDs)
// by component, read and set one by one. An indicator is named
// "<id>@<component>" in paths and listings.

// indicatorManager is the manager's side of the indicators endpoints.
type indicatorManager interface {
	SupportedIndicators(ctx context.Context, ident string) (map[string]map[string]driver.Indicator, error)
	IndicatorState(ctx context.Context, ident, component, indicator string) (string, error)
	SetIndicatorState(ctx context.Context, ident, component, indicator, state string) error
}

// componentOrder is the order components are listed in.
var componentOrder = []string{driver.ComponentSystem, driver.ComponentChassis, driver.ComponentDisk, driver.ComponentPower, driver.ComponentNIC}

func (s *Server) indicatorRoutes(g *echo.Group) {
	g.GET("/nodes/:node/management/indicators", s.listIndicators, s.minVer(63, false), s.toOwner)
	g.GET("/nodes/:node/management/indicators/:indicator", s.getIndicator, s.minVer(63, false), s.toOwner)
	g.PUT("/nodes/:node/management/indicators/:indicator", s.setIndicator, s.minVer(63, false), s.toOwner)
}

func (s *Server) indicatorMgr() (indicatorManager, error) {
	im, ok := s.mgr.(indicatorManager)
	if !ok {
		return nil, notFound("Indicators are not available on this conductor.")
	}
	return im, nil
}

// splitIndicator cuts "<id>@<component>" at its first "@", as Ironic.
func splitIndicator(name string) (id, component string, err error) {
	id, component, ok := strings.Cut(name, "@")
	if !ok {
		return "", "", badRequest("Malformed indicator name \"%s\"", name)
	}
	return id, component, nil
}

// listIndicators lists every indicator of the node with its links, which
// name the node as the request did (Ironic's get_all).
func (s *Server) listIndicators(c echo.Context) error {
	ident := c.Param("node")
	n, err := s.findNode(c, ident)
	if err != nil {
		return err
	}
	im, err := s.indicatorMgr()
	if err != nil {
		return err
	}
	inds, err := im.SupportedIndicators(c.Request().Context(), n.UUID)
	if err != nil {
		return mgrError(err)
	}
	comps := slices.Sorted(maps.Keys(inds))
	slices.SortStableFunc(comps, func(a, b string) int { return rank(a) - rank(b) })
	b := baseURL(c)
	out := []map[string]any{}
	for _, comp := range comps {
		for _, id := range slices.Sorted(maps.Keys(inds[comp])) {
			in := inds[comp][id]
			name := id + "@" + comp
			states := in.States
			if states == nil {
				states = []string{}
			}
			sub := "/nodes/" + ident + "/management/indicators/" + name
			out = append(out, map[string]any{
				"name": name, "component": comp, "readonly": in.ReadOnly, "states": states,
				"links": []map[string]string{{"href": b + "/v1" + sub, "rel": "self"}, {"href": b + sub, "rel": "bookmark"}},
			})
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"indicators": out})
}

// rank places known components in componentOrder, others after them.
func rank(comp string) int {
	if i := slices.Index(componentOrder, comp); i >= 0 {
		return i
	}
	return len(componentOrder)
}

// getIndicator answers {"state": ...} for one indicator.
func (s *Server) getIndicator(c echo.Context) error {
	n, err := s.findNode(c, c.Param("node"))
	if err != nil {
		return err
	}
	id, comp, err := splitIndicator(c.Param("indicator"))
	if err != nil {
		return err
	}
	im, err := s.indicatorMgr()
	if err != nil {
		return err
	}
	state, err := im.IndicatorState(c.Request().Context(), n.UUID, comp, id)
	if err != nil {
		return mgrError(err)
	}
	return c.JSON(http.StatusOK, map[string]any{"state": state})
}

// setIndicator sets one indicator to the body's state (204).
func (s *Server) setIndicator(c echo.Context) error {
	n, err := s.findNode(c, c.Param("node"))
	if err != nil {
		return err
	}
	id, comp, err := splitIndicator(c.Param("indicator"))
	if err != nil {
		return err
	}
	body, _, err := readJSONObject(c, "indicator")
	if err != nil {
		return err
	}
	raw, ok := body["state"]
	if !ok {
		return badRequest("Missing argument: \"state\"")
	}
	state, ok := raw.(string)
	if !ok {
		return badRequest("Invalid value for state: %v is not a string", raw)
	}
	im, err := s.indicatorMgr()
	if err != nil {
		return err
	}
	if err := im.SetIndicatorState(c.Request().Context(), n.UUID, comp, id, state); err != nil {
		return mgrError(err)
	}
	return c.NoContent(http.StatusNoContent)
}
