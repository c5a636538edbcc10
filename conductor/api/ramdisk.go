package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
)

// lookup serves GET /v1/lookup for the ramdisk agent.
func (s *Server) lookup(c echo.Context) error {
	var macs []string
	for _, a := range splitList(c.QueryParam("addresses")) {
		if m, ok := ironichttp.NormalizeMAC(a); ok {
			macs = append(macs, m)
		}
	}
	nodeUUID := c.QueryParam("node_uuid")
	if len(macs) == 0 && nodeUUID == "" {
		return badRequest("Either node_uuid or addresses must be provided to look up a node.")
	}
	n, token, err := s.mgr.Lookup(c.Request().Context(), macs, nodeUUID)
	if err != nil {
		if errors.Is(err, manager.ErrNotFound) || errors.Is(err, store.ErrNotFound) {
			return &Error{Code: http.StatusNotFound, Msg: "Resource could not be found."}
		}
		return mgrError(err)
	}
	return c.JSON(http.StatusOK, lookupDoc(c, n, token))
}

// lookupDoc is what the ramdisk gets from a lookup (and from
// continue_inspection at 1.84+): the node's restricted view and the
// agent's config with its token (masked when "": issued before).
func lookupDoc(c echo.Context, n *store.Node, token string) map[string]any {
	if token == "" {
		token = Masked
	}
	return map[string]any{
		"node": map[string]any{
			"uuid": n.UUID, "properties": objOrEmpty(n.Properties),
			"instance_info":        maskObject(n.InstanceInfo, maskInstanceInfo),
			"driver_internal_info": maskObject(n.DriverInternalInfo, isSecretKey),
			"links":                links(c, "nodes", n.UUID),
		},
		"config": map[string]any{
			"agent_token": token, "agent_token_required": true, "heartbeat_timeout": manager.HeartbeatTimeout,
			"metrics": map[string]any{"backend": "noop", "global_prefix": nil, "prepend_host": false,
				"prepend_host_reverse": true, "prepend_uuid": false},
			"metrics_statsd":                 map[string]any{"statsd_host": "localhost", "statsd_port": 8125},
			"disable_deep_image_inspection":  false,
			"enable_bios_bootloader_install": true,
			"permitted_image_formats":        []string{"raw", "qcow2", "iso"},
		},
	}
}

// heartbeatGates are the heartbeat's fields and the versions that
// brought them.
var heartbeatGates = map[string]Version{"agent_version": 36, "agent_token": 62, "agent_verify_ca": 68, "agent_status": 72, "agent_status_message": 72}

// heartbeat serves POST /v1/heartbeat/{node}.
func (s *Server) heartbeat(c echo.Context) error {
	v := ver(c)
	raw, err := readBody(c)
	if err != nil {
		return err
	}
	// One decode, into the heartbeat; what is not an object gets
	// readJSONObject's errors.
	var hb manager.Heartbeat
	herr := json.Unmarshal(raw, &hb)
	if t := bytes.TrimLeft(raw, " \t\r\n"); herr != nil || len(t) == 0 || t[0] != '{' {
		if _, err := jsonObject(raw, "heartbeat"); err != nil {
			return err
		}
	}
	// Fields newer than the request's version are refused. The body's
	// keys are decoded for it only when it may hold one: when it names
	// one, or has an escape (a key may be written with escapes).
	var keys map[string]json.RawMessage
	for k, min := range heartbeatGates {
		if v >= min || (!bytes.Contains(raw, []byte(`"`+k+`"`)) && bytes.IndexByte(raw, '\\') < 0) {
			continue
		}
		if keys == nil {
			if err := json.Unmarshal(raw, &keys); err != nil {
				return badRequest("Invalid heartbeat: %v", err)
			}
		}
		if _, ok := keys[k]; ok {
			return badRequest("Field %s is not supported by version %s.", k, v)
		}
	}
	if herr != nil {
		return badRequest("Invalid heartbeat: %v", herr)
	}
	if hb.CallbackURL == "" {
		return badRequest("Schema error for heartbeat: 'callback_url' is a required property")
	}
	n, err := s.findNode(c, c.Param("node"))
	if err != nil {
		return err
	}
	if err := s.mgr.Heartbeat(c.Request().Context(), n.UUID, hb); err != nil {
		return mgrError(err)
	}
	return c.NoContent(http.StatusAccepted)
}

// continueInspection serves POST /v1/continue_inspection (1.84).
func (s *Server) continueInspection(c echo.Context) error {
	if ver(c) >= 84 {
		return s.continueInspectionToken(c)
	}
	if c.QueryParams().Has("node_uuid") {
		if err := checkNodeUUIDParam(c); err != nil {
			return err
		}
		return notFound("API version 1.84 or newer is required")
	}
	body, err := readBody(c)
	if err != nil {
		return err
	}
	n, err := s.mgr.ContinueInspection(c.Request().Context(), body)
	if err != nil {
		if errors.Is(err, manager.ErrNotFound) {
			return notFound("Node could not be found for the inventory sent.")
		}
		return mgrError(err)
	}
	return c.JSON(http.StatusAccepted, map[string]any{"uuid": n.UUID})
}
