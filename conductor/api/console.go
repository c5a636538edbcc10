package api

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// Node console state (GET/PUT /v1/nodes/{node}/states/console). Only the
// fake console interface can be enabled (fake-hardware); nodes with
// no-console are refused as Ironic refuses them.

// fakeConsoleInfo is what Ironic's fake console reports.
var fakeConsoleInfo = map[string]any{}

// consoleUnsupported is Ironic's UnsupportedDriverExtension for a node
// whose console interface offers nothing (no-console).
func (s *Server) consoleUnsupported(n *store.Node) *Error {
	if obj, ok := s.mgr.Drivers().Object(n.Driver, "console", n.Interfaces["console"]); !ok || obj == nil {
		return badRequest("%v", &driver.UnsupportedError{Driver: n.Driver, Extension: "console"})
	}
	return nil
}

func (s *Server) getConsole(c echo.Context, n *store.Node) error {
	if !n.ConsoleEnabled {
		return c.JSON(http.StatusOK, map[string]any{"console_enabled": false, "console_info": nil})
	}
	if e := s.consoleUnsupported(n); e != nil {
		return e
	}
	return c.JSON(http.StatusOK, map[string]any{"console_enabled": true, "console_info": fakeConsoleInfo})
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
	if enabled != n.ConsoleEnabled {
		if err := s.updateNode(c, n.UUID, func(n *store.Node) error {
			n.ConsoleEnabled, n.LastError = enabled, nil
			return nil
		}); err != nil {
			return err
		}
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
