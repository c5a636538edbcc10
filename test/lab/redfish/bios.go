package redfish

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"sort"
	"sync"
)

// DefaultBIOS returns the factory BIOS attributes of an emulated system: a
// few of the settings a server BIOS offers, with the JSON types Redfish
// uses (strings for enumerations, numbers, booleans).
func DefaultBIOS() map[string]any {
	return map[string]any{
		"BootMode":           "Uefi",
		"ProcVirtualization": "Enabled",
		"ProcTurboMode":      "Enabled",
		"LogicalProc":        "Enabled",
		"SriovGlobalEnable":  "Disabled",
		"PxeDev1EnDis":       "Enabled",
		"NumLock":            "On",
		"ProcCores":          float64(8),
		"SecureBootEnable":   false,
	}
}

// bios is a system's BIOS: the current attributes, those pending in the
// settings object, and a pending factory reset. Pending changes take
// effect when the machine next starts, as on a real server.
type bios struct {
	mu       sync.Mutex
	defaults map[string]any
	current  map[string]any
	pending  map[string]any
	reset    bool
}

func newBIOS(defaults map[string]any) *bios {
	return &bios{defaults: maps.Clone(defaults), current: maps.Clone(defaults), pending: map[string]any{}}
}

// apply makes the pending changes current (the machine starts).
func (b *bios) apply(log *slog.Logger, id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.reset && len(b.pending) == 0 {
		return
	}
	if b.reset {
		b.current = maps.Clone(b.defaults)
		b.reset = false
	}
	names := make([]string, 0, len(b.pending))
	for k, v := range b.pending {
		b.current[k] = v
		names = append(names, k)
	}
	sort.Strings(names)
	b.pending = map[string]any{}
	log.Info("redfish: BIOS settings applied", "system", id, "changed", names)
}

// BIOS returns the current BIOS attributes of system id.
func (s *Server) BIOS(id string) (map[string]any, bool) {
	sys, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	sys.bios.mu.Lock()
	defer sys.bios.mu.Unlock()
	return maps.Clone(sys.bios.current), true
}

func (s *Server) biosRoute(w http.ResponseWriter, r *http.Request, sys *system, sub string) {
	self := root + "/Systems/" + sys.id + "/Bios"
	b := sys.bios
	switch {
	case sub == "" && r.Method == http.MethodGet:
		b.mu.Lock()
		attrs := maps.Clone(b.current)
		b.mu.Unlock()
		writeJSON(w, http.StatusOK, obj{
			"@odata.id": self, "@odata.type": "#Bios.v1_1_0.Bios", "Id": "BIOS", "Name": "BIOS Configuration Current Settings",
			"Attributes": attrs,
			"@Redfish.Settings": obj{"@odata.type": "#Settings.v1_3_0.Settings", "SettingsObject": ref(self + "/Settings"),
				"SupportedApplyTimes": []string{"OnReset"}},
			"Actions": obj{"#Bios.ResetBios": obj{"target": self + "/Actions/Bios.ResetBios"}},
		})
	case sub == "Settings" && r.Method == http.MethodGet:
		b.mu.Lock()
		attrs := maps.Clone(b.pending)
		b.mu.Unlock()
		writeJSON(w, http.StatusOK, obj{"@odata.id": self + "/Settings", "@odata.type": "#Bios.v1_1_0.Bios", "Id": "Settings",
			"Name": "BIOS Configuration Pending Settings", "Attributes": attrs})
	case sub == "Settings" && r.Method == http.MethodPatch:
		var body struct {
			Attributes map[string]any
			ApplyTime  *struct{ ApplyTime string } `json:"@Redfish.SettingsApplyTime"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
			writeError(w, http.StatusBadRequest, "Base.1.8.MalformedJSON", err.Error())
			return
		}
		if body.ApplyTime != nil && body.ApplyTime.ApplyTime != "OnReset" {
			writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueNotInList", fmt.Sprintf("ApplyTime %q not supported; want OnReset", body.ApplyTime.ApplyTime))
			return
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		for k, v := range body.Attributes {
			cur, ok := b.defaults[k]
			if !ok {
				writeError(w, http.StatusBadRequest, "Base.1.8.PropertyUnknown", fmt.Sprintf("BIOS attribute %s is unknown", k))
				return
			}
			if fmt.Sprintf("%T", cur) != fmt.Sprintf("%T", v) {
				writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueTypeError",
					fmt.Sprintf("BIOS attribute %s takes a %s, not %v", k, jsonType(cur), v))
				return
			}
		}
		maps.Copy(b.pending, body.Attributes)
		s.log.Info("redfish: BIOS settings pending", "system", sys.id, "count", len(body.Attributes))
		w.WriteHeader(http.StatusNoContent)
	case sub == "Actions/Bios.ResetBios" && r.Method == http.MethodPost:
		b.mu.Lock()
		b.reset, b.pending = true, map[string]any{}
		b.mu.Unlock()
		s.log.Info("redfish: BIOS reset to defaults pending", "system", sys.id)
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, http.StatusMethodNotAllowed, "Base.1.8.OperationNotAllowed", r.Method+" "+r.URL.Path+" not allowed")
	}
}

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64:
		return "number"
	}
	return fmt.Sprintf("%T", v)
}
