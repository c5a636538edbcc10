package bmc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/stmcginnis/gofish"
	"github.com/stmcginnis/gofish/common"
	"github.com/stmcginnis/gofish/redfish"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/internal/python"
)

// The redfish vendor interface, as Ironic's: BMC event subscriptions
// through vendor passthru (create_subscription, delete_subscription,
// get_subscription, get_all_subscriptions). gofish v0.20.0 reads the
// EventService and deletes subscriptions, but its create call requires a
// non-empty Context and at least one event type, where Ironic sends
// Context "" by default and the BMC decides; and it returns no resource
// bodies as JSON, which these methods answer with. So the POST and the
// reads of the subscriptions are written here over gofish's client.

// Vendor methods of the redfish vendor interface.
var redfishVendorMethods = map[string]driver.VendorMethod{
	"create_subscription": {HTTPMethods: []string{"POST"},
		Description: "Create a BMC event subscription. Required argument: 'Destination' (the URL events go to); optional: 'EventTypes' (default ['Alert']), 'Context' (default ''), 'Protocol' (default 'Redfish'), 'HttpHeaders' (a list)."},
	"delete_subscription": {HTTPMethods: []string{"DELETE"},
		Description: "Delete a BMC event subscription. Required argument: 'id' (the subscription's Id on the BMC)."},
	"get_subscription": {HTTPMethods: []string{"GET"},
		Description: "Show a BMC event subscription. Required argument: 'id' (the subscription's Id on the BMC)."},
	"get_all_subscriptions": {HTTPMethods: []string{"GET"},
		Description: "List the BMC's event subscriptions."},
}

// subscriptionFields are the fields of a subscription the methods show.
var subscriptionFields = []string{"Id", "Context", "Protocol", "Destination", "EventTypes"}

var _ driver.Vendor = (*Redfish)(nil)

// Methods lists the redfish vendor methods.
func (d *Redfish) Methods() map[string]driver.VendorMethod { return redfishVendorMethods }

// ValidateCall checks the node's Redfish driver_info and the arguments as
// Ironic does before the call (EventTypes are checked against the BMC's
// list when the call runs).
func (d *Redfish) ValidateCall(n *driver.Node, method string, args map[string]any) error {
	if _, err := parseRedfishInfo(n); err != nil {
		return err
	}
	switch method {
	case "create_subscription":
		return validateSubscription(args)
	case "delete_subscription", "get_subscription":
		if id, _ := args["id"].(string); id == "" {
			return errors.New("id can't be None")
		}
		return nil
	case "get_all_subscriptions":
		return nil
	}
	return fmt.Errorf("bmc: no vendor method %s", method)
}

func validateSubscription(args map[string]any) error {
	if et, ok := args["EventTypes"]; ok && et != nil {
		l, isList := et.([]any)
		allStrings := isList
		for _, e := range l {
			if _, s := e.(string); !s {
				allStrings = false
			}
		}
		if !allStrings {
			return fmt.Errorf("EventTypes %s is not a valid value, allowed values are the BMC's EventTypesForSubscription", python.Repr(et))
		}
	}
	if c, ok := args["Context"]; ok {
		if _, s := c.(string); !s {
			//lint:ignore ST1005 Ironic's message
			return fmt.Errorf("Context %s is not a valid string", python.Repr(c))
		}
	}
	if p, ok := args["Protocol"]; ok {
		if _, s := p.(string); !s {
			//lint:ignore ST1005 Ironic's message
			return fmt.Errorf("Protocol %s is not a string", python.Repr(p))
		}
	}
	if h, ok := args["HttpHeaders"]; ok && h != nil {
		if _, l := h.([]any); !l {
			return fmt.Errorf("HttpHeaders %s is not a list of headers", python.Repr(h))
		}
	}
	dest, _ := args["Destination"].(string)
	u, err := url.Parse(dest)
	if dest == "" || err != nil || u.Scheme == "" || u.Host == "" {
		//lint:ignore ST1005 Ironic's message
		return fmt.Errorf("Destination %s is not a valid URI", python.Repr(args["Destination"]))
	}
	return nil
}

// Call runs a redfish vendor method.
func (d *Redfish) Call(ctx context.Context, n *driver.Node, method string, args map[string]any) (any, error) {
	if err := d.ValidateCall(n, method, args); err != nil {
		return nil, err
	}
	var out any
	err := d.withSystem(ctx, n, "event subscriptions", func(sys *redfish.ComputerSystem) error {
		c := sys.GetClient()
		es, err := eventService(sys)
		if err != nil {
			return err
		}
		id, _ := args["id"].(string)
		member := strings.TrimSuffix(es.Subscriptions, "/") + "/" + id
		switch method {
		case "create_subscription":
			payload := map[string]any{"Destination": args["Destination"], "Protocol": "Redfish", "Context": "", "EventTypes": []any{"Alert"}}
			for _, k := range []string{"Protocol", "Context", "EventTypes"} {
				if v, ok := args[k]; ok && v != nil {
					payload[k] = v
				}
			}
			if h, _ := args["HttpHeaders"].([]any); len(h) > 0 {
				payload["HttpHeaders"] = h
			}
			if et, ok := args["EventTypes"].([]any); ok {
				for _, e := range et {
					if !slices.Contains(es.EventTypesForSubscription, redfish.EventType(e.(string))) {
						return fmt.Errorf("EventTypes %s is not a valid value, allowed values %s", python.Repr(et), python.Repr(toAny(es.EventTypesForSubscription)))
					}
				}
			}
			resp, err := c.Post(es.Subscriptions, payload)
			if err != nil {
				//lint:ignore ST1005 Ironic's message
				return fmt.Errorf("Failed to create subscription on node %s. Error: %s", n.UUID, bmcMessage(err))
			}
			defer resp.Body.Close()
			var body map[string]any
			_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body)
			if body["Id"] == nil {
				if loc := resp.Header.Get("Location"); loc != "" {
					body, err = getJSON(c, pathOf(loc))
					if err != nil {
						//lint:ignore ST1005 Ironic's message
						return fmt.Errorf("Failed to create subscription on node %s. Error: %s", n.UUID, bmcMessage(err))
					}
				}
			}
			out = filterSubscription(body)
		case "delete_subscription":
			if _, err := getJSON(c, member); err != nil {
				return fmt.Errorf("Redfish delete_subscription failed for subscription %s on node %s. Error: %s: %w", id, n.UUID, bmcMessage(err), driver.ErrNotFound)
			}
			resp, err := c.Delete(member)
			if err != nil {
				return fmt.Errorf("Redfish delete_subscription failed for subscription %s on node %s. Error: %s: %w", id, n.UUID, bmcMessage(err), driver.ErrNotFound)
			}
			resp.Body.Close()
		case "get_subscription":
			body, err := getJSON(c, member)
			if err != nil {
				return fmt.Errorf("Redfish get_subscription failed for subscription %s on node %s. Error: %s", id, n.UUID, bmcMessage(err))
			}
			out = filterSubscription(body)
		case "get_all_subscriptions":
			body, err := getJSON(c, es.Subscriptions)
			if err != nil {
				return fmt.Errorf("Redfish get_subscriptions failed for node %s. Error: %s", n.UUID, bmcMessage(err))
			}
			out = body
		}
		return nil
	})
	d.cfg.Logger.Info("bmc: vendor passthru", "node", n.UUID, "method", method, "error", err)
	return out, err
}

func toAny[T ~string](l []T) []any {
	out := make([]any, len(l))
	for i, x := range l {
		out[i] = string(x)
	}
	return out
}

// eventService reads the service's EventService.
func eventService(sys *redfish.ComputerSystem) (*redfish.EventService, error) {
	root, err := gofish.ServiceRoot(sys.GetClient())
	if err != nil {
		return nil, fmt.Errorf("bmc: reading the service root: %s", bmcMessage(err))
	}
	es, err := root.EventService()
	if err != nil || es == nil || es.Subscriptions == "" {
		if err == nil {
			err = errors.New("the BMC has no EventService subscriptions")
		}
		return nil, fmt.Errorf("bmc: reading the EventService: %s: %w", bmcMessage(err), driver.ErrUnsupported)
	}
	return es, nil
}

func filterSubscription(body map[string]any) map[string]any {
	out := map[string]any{}
	for _, k := range subscriptionFields {
		if v, ok := body[k]; ok {
			out[k] = v
		}
	}
	return out
}

// getJSON reads a resource as JSON.
func getJSON(c common.Client, path string) (map[string]any, error) {
	resp, err := c.Get(path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("bmc: reading %s: %w", path, err)
	}
	return out, nil
}
