package api

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/internal/python"
	"github.com/ferric-metal/ferric/conductor/store"
)

// External events (API 1.54), as networking-baremetal posts them when
// Neutron binds, unbinds or deletes a port: checked as Ironic checks them,
// then logged (Ironic acts on none of them either).

var networkEventTypes = []string{"network.bind_port", "network.unbind_port", "network.delete_port"}

func (s *Server) postEvents(c echo.Context) error {
	body, _, err := readJSONObject(c, "evts")
	if err != nil {
		return err
	}
	if msg := eventsError(body); msg != "" {
		return badRequest("%s", msg)
	}
	for _, e := range body["events"].([]any) {
		s.log.Info("api: external event", "event", e)
	}
	return c.NoContent(http.StatusNoContent)
}

func eventsError(body map[string]any) string {
	for k := range body {
		if k != "events" {
			return fmt.Sprintf("Schema error for evts: Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	raw, ok := body["events"]
	if !ok {
		return "Schema error for evts: 'events' is a required property"
	}
	list, ok := raw.([]any)
	if !ok {
		return fmt.Sprintf("Schema error for evts: %s is not of type 'array'", python.Repr(raw))
	}
	if len(list) == 0 {
		return "Schema error for evts: [] is too short"
	}
	for _, item := range list {
		ev, ok := item.(map[string]any)
		if !ok {
			return fmt.Sprintf("Schema error for evts: %s is not of type 'object'", python.Repr(item))
		}
		name, ok := ev["event"].(string)
		if _, has := ev["event"]; !has {
			return "Schema error for evts: 'event' is a required property"
		}
		if !ok || !slices.Contains(networkEventTypes, name) {
			return fmt.Sprintf("Schema error for evts: %s is not one of ['%s']", python.Repr(ev["event"]), strings.Join(networkEventTypes, "', '"))
		}
		if msg := networkEventError(ev); msg != "" {
			return msg
		}
	}
	return ""
}

// networkEventError checks one network event (port_id, mac_address and
// status required; device_id and binding:host_id UUIDs when set).
func networkEventError(ev map[string]any) string {
	allowed := map[string]bool{"event": true, "port_id": true, "mac_address": true, "status": true,
		"device_id": true, "binding:host_id": true, "binding:vnic_type": true}
	for k := range ev {
		if !allowed[k] {
			return fmt.Sprintf("Schema error for evts: Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	for _, k := range []string{"event", "port_id", "mac_address", "status"} {
		if _, ok := ev[k]; !ok {
			return fmt.Sprintf("Schema error for evts: '%s' is a required property", k)
		}
		if _, ok := ev[k].(string); !ok {
			return fmt.Sprintf("Schema error for evts: %s is not of type 'string'", python.Repr(ev[k]))
		}
	}
	for _, k := range []string{"device_id", "binding:host_id", "binding:vnic_type"} {
		if v, ok := ev[k]; ok && v != nil {
			if _, isStr := v.(string); !isStr {
				return fmt.Sprintf("Schema error for evts: %s is not of type 'string', 'null'", python.Repr(v))
			}
		}
	}
	for _, k := range []string{"port_id", "device_id", "binding:host_id"} {
		if v, _ := ev[k].(string); v != "" && !store.IsUUID(v) {
			return fmt.Sprintf("Expected UUID for %s: %s", k, v)
		}
	}
	if _, err := net.ParseMAC(ev["mac_address"].(string)); err != nil {
		return fmt.Sprintf("Expected valid MAC address for mac_address: %s", ev["mac_address"])
	}
	return ""
}
