package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
)

// continue_inspection from API 1.84, as Ironic: the ramdisk may name its
// node (?node_uuid=), the node gets an agent token before its data is
// processed, and the answer is a lookup's ({"node": ..., "config": ...},
// the token shown once), not ironic-inspector's {"uuid": ...}.

// inspectionTokenManager is the manager's side of it.
type inspectionTokenManager interface {
	ContinueInspectionToken(ctx context.Context, body []byte, nodeUUID string) (*store.Node, string, error)
}

// checkNodeUUIDParam refuses a node_uuid that is no UUID (Ironic's
// argument check, made before anything else).
func checkNodeUUIDParam(c echo.Context) error {
	if u := c.QueryParam("node_uuid"); c.QueryParams().Has("node_uuid") && !store.IsUUID(u) {
		return badRequest("Expected UUID for node_uuid: %s", u)
	}
	return nil
}

func (s *Server) continueInspectionToken(c echo.Context) error {
	if err := checkNodeUUIDParam(c); err != nil {
		return err
	}
	im, ok := s.mgr.(inspectionTokenManager)
	if !ok {
		return notFound("Inspection is not available on this conductor.")
	}
	body, err := readBody(c)
	if err != nil {
		return err
	}
	n, token, err := im.ContinueInspectionToken(c.Request().Context(), body, c.QueryParam("node_uuid"))
	if err != nil {
		if errors.Is(err, manager.ErrNotFound) {
			return notFound("Node could not be found for the inventory sent.")
		}
		return mgrError(err)
	}
	return c.JSON(http.StatusAccepted, lookupDoc(c, n, token))
}
