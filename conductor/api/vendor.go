package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/store"
)

// Node vendor passthru: the methods of the node's vendor interface
// (ipmitool: send_raw, bmc_reset) called by name.

func (s *Server) vendorMethods(c echo.Context, n *store.Node) error {
	methods, err := s.mgr.VendorMethods(n.UUID)
	if err != nil {
		return mgrError(err)
	}
	return c.JSON(http.StatusOK, methods)
}

func (s *Server) vendorPassthru(c echo.Context, n *store.Node) error {
	method := c.QueryParam("method")
	if method == "" {
		return badRequest("Method not specified")
	}
	args := map[string]any{}
	if c.Request().ContentLength != 0 {
		body, _, err := readJSONObject(c, "vendor_passthru")
		if err != nil {
			return err
		}
		if body != nil {
			args = body
		}
	}
	ret, async, err := s.mgr.VendorPassthru(c.Request().Context(), n.UUID, method, c.Request().Method, args)
	if err != nil {
		return mgrError(err)
	}
	if async {
		return c.NoContent(http.StatusAccepted)
	}
	return c.JSON(http.StatusOK, ret)
}

// injectNMI sends the node a non-maskable interrupt (API 1.29).
func (s *Server) injectNMI(c echo.Context, n *store.Node) error {
	if c.Request().ContentLength != 0 {
		body, _, err := readJSONObject(c, "inject_nmi")
		if err != nil {
			return err
		}
		for k := range body {
			return badRequest("Unknown argument: \"%s\"", k)
		}
	}
	if err := s.mgr.InjectNMI(c.Request().Context(), n.UUID); err != nil {
		return mgrError(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// Driver-level vendor passthru: no vendor interface here has driver-level
// methods (as Ironic's ipmitool and redfish ones).
func (s *Server) driverVendorMethods(c echo.Context) error {
	if s.mgr.Drivers().Lookup(c.Param("name")) == nil {
		return notFound("Could not find the following driver(s) or hardware type(s): %s.", c.Param("name"))
	}
	return c.JSON(http.StatusOK, map[string]any{})
}

func (s *Server) driverVendorPassthru(c echo.Context) error {
	if s.mgr.Drivers().Lookup(c.Param("name")) == nil {
		return notFound("Could not find the following driver(s) or hardware type(s): %s.", c.Param("name"))
	}
	method := c.QueryParam("method")
	if method == "" {
		return badRequest("Method not specified")
	}
	return badRequest("No handler for method %s", method)
}
