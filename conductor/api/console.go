package api

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// Node console state (GET/PUT /v1/nodes/{node}/states/console), served by
// the node's conductor: the manager starts and stops serial consoles
// (ipmitool-socat) and records console_enabled; the fake console only
// records it. Nodes with no-console are refused as Ironic refuses them.

// consoleUnsupported is Ironic's UnsupportedDriverExtension for a node
// whose console interface offers nothing (no-console).
func (s *Server) consoleUnsupported(n *store.Node) *Error {
	if obj, ok := s.mgr.Drivers().Object(n.Driver, "console", n.Interfaces["console"]); !ok || obj == nil {
		return badRequest("%v", &driver.UnsupportedError{Driver: n.Driver, Extension: "console"})
	}
	return nil
}

func (s *Server) getConsole(c echo.Context, n *store.Node) error {
	if n.ConsoleEnabled {
		if e := s.consoleUnsupported(n); e != nil {
			return e
		}
	}
	info, err := s.mgr.ConsoleInfo(c.Request().Context(), n.UUID)
	if err != nil {
		return mgrError(err)
	}
	return c.JSON(http.StatusOK, info)
}

func (s *Server) setConsole(c echo.Context, n *store.Node) error {
	body, _, err := readJSONObject(c, "console")
	if err != nil {
		return err
	}
	raw, ok := body["enabled"]
	if !ok || raw == nil {
		return badRequest("Missing mandatory parameter: enabled")
	}
	enabled, perr := boolArg(raw)
	if perr != nil {
		return badRequest("Invalid enabled: %v", perr)
	}
	if e := s.consoleUnsupported(n); e != nil {
		return e
	}
	if err := s.mgr.SetConsole(c.Request().Context(), n.UUID, enabled); err != nil {
		return mgrError(err)
	}
	c.Response().Header().Set("Location", baseURL(c)+"/v1/nodes/"+c.Param("node")+"/states/console")
	return c.NoContent(http.StatusAccepted)
}

// boolArg reads a boolean argument, with oslo's error for anything else.
func boolArg(v any) (bool, error) {
	if b, ok := protocol.ParseBool(v); ok {
		return b, nil
	}
	//lint:ignore ST1005 oslo's message, word for word
	return false, fmt.Errorf("Unrecognized value '%v', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'", v)
}
