package api

import (
	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/internal/python"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// Boot mode and Secure Boot changes (API 1.76): accepted with 202 and a
// Location of the node's states, carried out by the conductor (failures in
// last_error), as Ironic's.

// stateTarget reads the body {"target": ...} of a states request.
func stateTarget(c echo.Context, kind string) (any, error) {
	body, _, err := readJSONObject(c, kind)
	if err != nil {
		return nil, err
	}
	for k := range body {
		if k != "target" {
			return nil, badRequest("Unknown argument: \"%s\"", k)
		}
	}
	t, ok := body["target"]
	if !ok {
		return nil, badRequest("Missing mandatory parameter: target")
	}
	return t, nil
}

func (s *Server) setBootMode(c echo.Context, n *store.Node) error {
	t, err := stateTarget(c, "boot_mode")
	if err != nil {
		return err
	}
	mode, ok := t.(string)
	if !ok {
		return badRequest("Invalid boot mode %s requested for node. Allowed boot modes are: bios, uefi", python.Repr(t))
	}
	return stateAccepted(c, s.mgr.ChangeBootMode(c.Request().Context(), n.UUID, mode))
}

func (s *Server) setSecureBoot(c echo.Context, n *store.Node) error {
	t, err := stateTarget(c, "secure_boot")
	if err != nil {
		return err
	}
	on, ok := protocol.ParseBool(t)
	if !ok {
		return badRequest("Invalid target: Unrecognized value %s, acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'", python.Repr(t))
	}
	return stateAccepted(c, s.mgr.ChangeSecureBoot(c.Request().Context(), n.UUID, on))
}
