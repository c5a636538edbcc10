package redfish

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The EventService keeps event subscriptions (EventDestination resources):
// a POST to its Subscriptions collection with Destination (an absolute
// http or https URL), Protocol (Redfish), Context, EventTypes (from
// EventTypesForSubscription) and HttpHeaders creates one, a GET reads it,
// a DELETE removes it. The emulator sends no events.

// EventTypes are the event types a subscription may ask for.
var EventTypes = []string{"StatusChange", "ResourceUpdated", "ResourceAdded", "ResourceRemoved", "Alert"}

// subscription is one EventDestination.
type subscription struct {
	ID, Destination, Context, Protocol string
	EventTypes                         []string
	// Headers are sent with each event and, as the spec says, never shown.
	Headers []map[string]string
}

// Subscription is what the emulator knows of one subscription (for tests).
type Subscription struct {
	ID, Destination, Context, Protocol string
	EventTypes                         []string
	Headers                            []map[string]string
}

// Subscriptions returns the EventService's subscriptions in creation order.
func (s *Server) Subscriptions() []Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Subscription, 0, len(s.subs))
	for _, x := range s.subs {
		out = append(out, Subscription(x))
	}
	return out
}

const subsPath = root + "/EventService/Subscriptions"

func (s *Server) eventService(w http.ResponseWriter, r *http.Request, sub string) {
	switch {
	case sub == "" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, obj{"@odata.id": root + "/EventService", "@odata.type": "#EventService.v1_5_0.EventService",
			"Id": "EventService", "Name": "Event Service", "ServiceEnabled": true, "Status": enabled,
			"DeliveryRetryAttempts": 3, "DeliveryRetryIntervalSeconds": 30,
			"EventTypesForSubscription": EventTypes, "Subscriptions": ref(subsPath)})
	case sub == "Subscriptions" && r.Method == http.MethodGet:
		s.mu.Lock()
		members := []obj{}
		for _, x := range s.subs {
			members = append(members, ref(subsPath+"/"+x.ID))
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, obj{"@odata.id": subsPath, "@odata.type": "#EventDestinationCollection.EventDestinationCollection",
			"Name": "Event Subscriptions Collection", "Members": members, "Members@odata.count": len(members)})
	case sub == "Subscriptions" && r.Method == http.MethodPost:
		s.subscribe(w, r)
	case strings.HasPrefix(sub, "Subscriptions/") && (r.Method == http.MethodGet || r.Method == http.MethodDelete):
		id := strings.TrimPrefix(sub, "Subscriptions/")
		s.mu.Lock()
		i := slices.IndexFunc(s.subs, func(x subscription) bool { return x.ID == id })
		var x subscription
		if i >= 0 {
			x = s.subs[i]
			if r.Method == http.MethodDelete {
				s.subs = slices.Delete(s.subs, i, i+1)
			}
		}
		s.mu.Unlock()
		switch {
		case i < 0:
			writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", fmt.Sprintf("The resource at the URI %s was not found.", r.URL.Path))
		case r.Method == http.MethodDelete:
			s.log.Info("redfish: subscription deleted", "id", id)
			w.WriteHeader(http.StatusNoContent)
		default:
			writeJSON(w, http.StatusOK, x.render())
		}
	case sub == "" || sub == "Subscriptions" || strings.HasPrefix(sub, "Subscriptions/"):
		writeError(w, http.StatusMethodNotAllowed, "Base.1.8.OperationNotAllowed", r.Method+" "+r.URL.Path+" not allowed")
	default:
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "no resource at "+r.Method+" "+r.URL.Path)
	}
}

func (x subscription) render() obj {
	return obj{"@odata.id": subsPath + "/" + x.ID, "@odata.type": "#EventDestination.v1_7_0.EventDestination",
		"Id": x.ID, "Name": "Event Subscription " + x.ID, "Destination": x.Destination, "Context": x.Context,
		"Protocol": x.Protocol, "EventTypes": x.EventTypes, "SubscriptionType": "RedfishEvent", "HttpHeaders": []obj{}}
}

func (s *Server) subscribe(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Destination *string
		Context     *string
		Protocol    *string
		EventTypes  []string
		HttpHeaders []map[string]string
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.MalformedJSON", err.Error())
		return
	}
	if body.Destination == nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.PropertyMissing", "The property Destination is a required property and must be included in the request.")
		return
	}
	if u, err := url.Parse(*body.Destination); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueFormatError",
			fmt.Sprintf("The value %s for the property Destination is of a different format than the property can accept.", *body.Destination))
		return
	}
	x := subscription{Destination: *body.Destination, Protocol: "Redfish", EventTypes: body.EventTypes, Headers: body.HttpHeaders}
	if body.Protocol != nil {
		if *body.Protocol != "Redfish" {
			writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueNotInList",
				fmt.Sprintf("The value %s for the property Protocol is not in the list of acceptable values.", *body.Protocol))
			return
		}
	}
	if body.Context != nil {
		x.Context = *body.Context
	}
	for _, t := range body.EventTypes {
		if !slices.Contains(EventTypes, t) {
			writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueNotInList",
				fmt.Sprintf("The value %s for the property EventTypes is not in the list of acceptable values.", t))
			return
		}
	}
	if x.EventTypes == nil {
		x.EventTypes = []string{}
	}
	s.mu.Lock()
	s.subSeq++
	x.ID = strconv.Itoa(s.subSeq)
	s.subs = append(s.subs, x)
	s.mu.Unlock()
	s.log.Info("redfish: subscription created", "id", x.ID, "event_types", x.EventTypes)
	w.Header().Set("Location", subsPath+"/"+x.ID)
	writeJSON(w, http.StatusCreated, x.render())
}
