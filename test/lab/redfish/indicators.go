package redfish

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
)

// Indicator LEDs: the system, its chassis and each drive of its storage
// show an IndicatorLED ("Off" until set) that a PATCH of
// {"IndicatorLED": "Lit"|"Blinking"|"Off"} changes, as on BMCs that still
// implement the (deprecated) property. The system and chassis carry a
// stable UUID made from the system Id, which clients use to name them.

// ledStates are the IndicatorLED values a PATCH may set.
var ledStates = map[string]bool{"Lit": true, "Blinking": true, "Off": true}

// resourceUUID is a stable UUID for the resource kind of system id.
func resourceUUID(kind, id string) string {
	h := sha256.Sum256([]byte("ferric-vbmc/" + kind + "/" + id))
	h[6] = h[6]&0x0f | 0x50 // a name-based UUID's version and variant bits
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// LED returns the IndicatorLED of the resource at path (its @odata.id).
func (s *Server) LED(path string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.leds[path]; ok {
		return v
	}
	return "Off"
}

// setLED validates and records a PATCHed IndicatorLED; it answers the
// request when the value is not one of ledStates.
func (s *Server) setLED(w http.ResponseWriter, path, v string) bool {
	if !ledStates[v] {
		writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueNotInList", fmt.Sprintf("IndicatorLED %q not supported", v))
		return false
	}
	s.mu.Lock()
	if s.leds == nil {
		s.leds = map[string]string{}
	}
	s.leds[path] = v
	s.mu.Unlock()
	s.log.Info("redfish: indicator", "resource", path, "IndicatorLED", v)
	return true
}

// patchLED serves a PATCH that may change only IndicatorLED (chassis,
// drives).
func (s *Server) patchLED(w http.ResponseWriter, r *http.Request, path string) {
	var body map[string]json.RawMessage
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.MalformedJSON", err.Error())
		return
	}
	raw, ok := body["IndicatorLED"]
	if !ok || len(body) != 1 {
		writeError(w, http.StatusBadRequest, "Base.1.8.PropertyNotWritable", "only IndicatorLED can be changed")
		return
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueTypeError", "IndicatorLED must be a string")
		return
	}
	if s.setLED(w, path, v) {
		w.WriteHeader(http.StatusNoContent)
	}
}
