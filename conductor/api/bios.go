package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// Node BIOS settings (API 1.40) and firmware components (1.86): what a
// bios or firmware interface cached from the machine. No hardware type
// here has one that reads them (fake, no-bios, no-firmware), so every node
// has none, as in Ironic for those interfaces.

func (s *Server) listBIOS(c echo.Context) error {
	if _, err := s.findNode(c, c.Param("node")); err != nil {
		return err
	}
	q := c.QueryParams()
	if q.Has("detail") || q.Has("fields") {
		if ver(c) < 74 {
			return notAcceptable("The detail and fields parameters are not supported by version %s.", ver(c))
		}
		if q.Has("detail") && q.Has("fields") {
			return badRequest("Can not specify ?detail=True and fields in the same request.")
		}
		if d := q.Get("detail"); q.Has("detail") {
			if _, err := strconv.ParseBool(strings.ToLower(d)); err != nil {
				return badRequest("Invalid value for detail: %s", d)
			}
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"bios": []any{}})
}

func (s *Server) getBIOS(c echo.Context) error {
	n, err := s.findNode(c, c.Param("node"))
	if err != nil {
		return err
	}
	return notFound("Node %s doesn't have a BIOS setting '%s'", n.UUID, c.Param("setting"))
}

// Node firmware components (API 1.86): what a firmware interface cached;
// every hardware type here has no-firmware, so none.
func (s *Server) listFirmware(c echo.Context) error {
	if _, err := s.findNode(c, c.Param("node")); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"firmware": []any{}})
}
