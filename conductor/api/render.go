package api

import (
	"maps"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/redact"
	"github.com/ferric-metal/ferric/conductor/store"
)

// Masked is what secrets are shown as.
const Masked = redact.Mask

// isSecretKey reports whether a driver_info / instance_info /
// driver_internal_info key holds a secret that the API never returns:
// oslo.utils' list (see package redact), the SNMP keys Ironic's node view
// adds, and image URLs (which may carry credentials).
func isSecretKey(k string) bool {
	if redact.Key(k) {
		return true
	}
	k = strings.ToLower(k)
	return k == "image_url" || k == "snmp_auth_key" || k == "snmp_priv_key"
}

// maskObject returns m with the values of top-level keys for which mask
// holds replaced by Masked, and secrets deeper down (nested objects and
// lists, strings such as "password=x") masked as Ironic's
// mask_dict_password does. m is copied only when something changes.
func maskObject(m store.Object, mask func(string) bool) store.Object {
	if m == nil {
		return store.Object{}
	}
	out, _ := maskedObject(m, mask)
	return out
}

// maskedObject is maskObject that also reports whether m held a secret.
func maskedObject(m store.Object, mask func(string) bool) (store.Object, bool) {
	var out store.Object
	set := func(k string, v any) {
		if out == nil {
			out = maps.Clone(m)
		}
		out[k] = v
	}
	for k, v := range m {
		if mask(k) {
			if v != Masked {
				set(k, Masked)
			}
			continue
		}
		if nv, changed := redact.Value(v); changed {
			set(k, nv)
		}
	}
	if out == nil {
		return m, false
	}
	return out, true
}

func maskInstanceInfo(k string) bool { return k == "configdrive" || k == "image_url" || isSecretKey(k) }

func objOrEmpty(m store.Object) store.Object {
	if m == nil {
		return store.Object{}
	}
	return m
}

// ironicTime renders a time as Ironic does: microseconds when non-zero.
func ironicTime(t time.Time) string {
	t = t.UTC()
	if t.Nanosecond()/1000 == 0 {
		return t.Format(ironichttp.TimeFormat)
	}
	return t.Format(ironichttp.TimeFormatMicro)
}

func timePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return ironicTime(*t)
}

// maskedStr is strPtr with the secrets written in the text masked (an
// error message quoting a command line or a request).
func maskedStr(s *string) any {
	if s == nil {
		return nil
	}
	return redact.String(*s)
}

func strPtr(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// field is one versioned field of a resource.
type field[T any] struct {
	name string
	min  Version
	get  func(c echo.Context, x T) any
}

// render builds the JSON object of x with the fields visible at v; when
// want is non-nil only those (plus always-present ones) are included.
func render[T any](c echo.Context, fields []field[T], x T, v Version, want map[string]bool) map[string]any {
	out := make(map[string]any, len(fields))
	for _, f := range fields {
		if f.min > v {
			continue
		}
		if want != nil && !want[f.name] && f.name != "links" {
			continue
		}
		out[f.name] = f.get(c, x)
	}
	return out
}

// fieldSet validates a fields= parameter against fields visible at v.
func fieldSet[T any](fields []field[T], v Version, raw string) (map[string]bool, *Error) {
	if raw == "" {
		return nil, nil
	}
	if v < 8 {
		return nil, notAcceptable("The fields parameter is not supported by version %s.", v)
	}
	want := map[string]bool{}
	var bad []string
	for _, name := range splitList(raw) {
		found := false
		for _, f := range fields {
			if f.name == name {
				found = true
				if f.min > v {
					return nil, notAcceptable("Field %s is not supported by version %s.", name, v)
				}
			}
		}
		if !found {
			bad = append(bad, name)
		}
		want[name] = true
	}
	if len(bad) > 0 {
		return nil, badRequest("Field(s) \"%s\" are not valid", strings.Join(bad, ", "))
	}
	return want, nil
}

// listWant is which fields a listing shows: want by default, every field
// with ?detail=True, those named by ?fields; detail and fields at once are
// refused with conflictMsg (Ironic's text differs by resource).
func listWant[T any](c echo.Context, fields []field[T], want map[string]bool, conflictMsg string) (map[string]bool, *Error) {
	q := c.QueryParams()
	if q.Has("detail") {
		d, ok := ironichttp.ParseBool(q.Get("detail"))
		if !ok {
			return nil, badRequest("Invalid value for detail: %s", q.Get("detail"))
		}
		if d && q.Has("fields") {
			return nil, badRequest("%s", conflictMsg)
		}
		if d {
			want = nil
		}
	}
	if q.Has("fields") {
		return fieldSet(fields, ver(c), q.Get("fields"))
	}
	return want, nil
}
