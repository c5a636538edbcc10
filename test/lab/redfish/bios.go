package redfish

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
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
		"AssetTag":           "",
		"SystemModelName":    "QEMU lab machine",
	}
}

// biosRegistryName is the AttributeRegistry the emulated Bios names.
const biosRegistryName = "BiosAttributeRegistry.v1_0_0"

// biosAttr describes a BIOS attribute in the emulator's attribute
// registry; PATCHes of the settings are checked against it.
type biosAttr struct {
	Type          string // Enumeration, Integer, Boolean, String
	Values        []string
	Lower, Upper  int64
	MaxLength     int64
	ReadOnly      bool
	ResetRequired bool
}

// biosRegistry describes DefaultBIOS's attributes.
var biosRegistry = map[string]biosAttr{
	"BootMode":           {Type: "Enumeration", Values: []string{"Uefi", "Bios"}, ResetRequired: true},
	"ProcVirtualization": {Type: "Enumeration", Values: []string{"Enabled", "Disabled"}, ResetRequired: true},
	"ProcTurboMode":      {Type: "Enumeration", Values: []string{"Enabled", "Disabled"}, ResetRequired: true},
	"LogicalProc":        {Type: "Enumeration", Values: []string{"Enabled", "Disabled"}, ResetRequired: true},
	"SriovGlobalEnable":  {Type: "Enumeration", Values: []string{"Enabled", "Disabled"}, ResetRequired: true},
	"PxeDev1EnDis":       {Type: "Enumeration", Values: []string{"Enabled", "Disabled"}, ResetRequired: true},
	"NumLock":            {Type: "Enumeration", Values: []string{"On", "Off"}},
	"ProcCores":          {Type: "Integer", Lower: 1, Upper: 64, ResetRequired: true},
	"SecureBootEnable":   {Type: "Boolean", ResetRequired: true},
	"AssetTag":           {Type: "String", MaxLength: 32},
	"SystemModelName":    {Type: "String", MaxLength: 64, ReadOnly: true},
}

// check reports what is wrong with value v for attribute name, "" if
// nothing (attributes outside the registry are only type-checked).
func (a biosAttr) check(name string, v any) string {
	switch a.Type {
	case "Enumeration":
		s, ok := v.(string)
		if !ok || !slices.Contains(a.Values, s) {
			return fmt.Sprintf("BIOS attribute %s takes one of %s, not %v", name, strings.Join(a.Values, ", "), v)
		}
	case "Integer":
		f, ok := v.(float64)
		if !ok || f != float64(int64(f)) || int64(f) < a.Lower || int64(f) > a.Upper {
			return fmt.Sprintf("BIOS attribute %s takes an integer from %d to %d, not %v", name, a.Lower, a.Upper, v)
		}
	case "Boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Sprintf("BIOS attribute %s takes a boolean, not %v", name, v)
		}
	case "String":
		s, ok := v.(string)
		if !ok || (a.MaxLength > 0 && int64(len(s)) > a.MaxLength) {
			return fmt.Sprintf("BIOS attribute %s takes a string of at most %d characters, not %v", name, a.MaxLength, v)
		}
	}
	if a.ReadOnly {
		return fmt.Sprintf("BIOS attribute %s is read-only", name)
	}
	return ""
}

// registryJSON is the emulator's AttributeRegistry resource.
func registryJSON(self string) obj {
	names := make([]string, 0, len(biosRegistry))
	for n := range biosRegistry {
		names = append(names, n)
	}
	sort.Strings(names)
	attrs := make([]obj, 0, len(names))
	for _, n := range names {
		a := biosRegistry[n]
		o := obj{"AttributeName": n, "Type": a.Type, "DisplayName": n, "ReadOnly": a.ReadOnly, "ResetRequired": a.ResetRequired,
			"IsSystemUniqueProperty": false, "DefaultValue": DefaultBIOS()[n]}
		switch a.Type {
		case "Enumeration":
			vals := make([]obj, 0, len(a.Values))
			for _, v := range a.Values {
				vals = append(vals, obj{"ValueName": v, "ValueDisplayName": v})
			}
			o["Value"] = vals
		case "Integer":
			o["LowerBound"], o["UpperBound"] = a.Lower, a.Upper
		case "String":
			o["MinLength"], o["MaxLength"] = 0, a.MaxLength
		}
		attrs = append(attrs, o)
	}
	return obj{"@odata.id": self, "@odata.type": "#AttributeRegistry.v1_3_0.AttributeRegistry", "Id": biosRegistryName,
		"Name": "BIOS Attribute Registry", "Language": "en", "RegistryVersion": "1.0.0", "OwningEntity": "ferric",
		"RegistryEntries": obj{"Attributes": attrs}}
}

// registriesRoute serves the Registries collection: one file, the BIOS
// attribute registry, with its English location.
func (s *Server) registriesRoute(w http.ResponseWriter, r *http.Request, sub string) {
	coll := root + "/Registries"
	file := coll + "/" + biosRegistryName
	switch {
	case r.Method != http.MethodGet:
		writeError(w, http.StatusMethodNotAllowed, "Base.1.8.OperationNotAllowed", r.Method+" not allowed")
	case sub == "":
		collection(w, coll, "MessageRegistryFile", "Registry File Collection", []obj{ref(file)})
	case sub == biosRegistryName:
		writeJSON(w, http.StatusOK, obj{"@odata.id": file, "@odata.type": "#MessageRegistryFile.v1_1_0.MessageRegistryFile",
			"Id": biosRegistryName, "Name": "BIOS Attribute Registry File", "Registry": biosRegistryName, "Languages": []string{"en"},
			"Location": []obj{{"Language": "en", "Uri": file + "/registry"}}})
	case sub == biosRegistryName+"/registry":
		writeJSON(w, http.StatusOK, registryJSON(file+"/registry"))
	default:
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "no registry at "+r.URL.Path)
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
			"Attributes": attrs, "AttributeRegistry": biosRegistryName,
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
			if a, ok := biosRegistry[k]; ok {
				if msg := a.check(k, v); msg != "" {
					writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueNotInList", msg)
					return
				}
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
