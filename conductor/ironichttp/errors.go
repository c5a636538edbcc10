// Package ironichttp holds the HTTP conventions the Bare Metal API, the
// inspector API and the image API share: Ironic's error envelopes, the JSON
// Patch applier with python-jsonpatch's messages, the time format, the
// base URL of a request, oslo's boolean words and the MAC form Ironic
// accepts, and Ironic's argument rules (args.go: its coercions of booleans,
// UUIDs, names, MACs and integers, and the JSON-schema subset of its
// controllers, with their messages). Each API keeps its routes; the
// conventions live here once.
package ironichttp

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error is an API error rendered in Ironic's shape: a JSON object whose
// error_message is itself a JSON-encoded fault.
type Error struct {
	Code int
	Msg  string
	// Plain errors (routing misses, version errors) use the
	// {code,title,description} shape instead of the fault shape.
	Plain bool
}

func (e *Error) Error() string { return e.Msg }

// Errorf returns an Error with a formatted message.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// MaxErrorMsg bounds an error message: whatever a message quotes of the
// request, the answer stays short.
const MaxErrorMsg = 1024

// Body is the error's JSON answer: {"error_message": "<fault JSON>"}.
// The message is cut to MaxErrorMsg bytes first.
func (e *Error) Body() map[string]string {
	var inner []byte
	if len(e.Msg) > MaxErrorMsg {
		e.Msg = Truncate(e.Msg, MaxErrorMsg)
	}
	if e.Plain {
		inner, _ = json.Marshal(map[string]any{"code": e.Code, "title": http.StatusText(e.Code), "description": e.Msg})
	} else {
		fc := "Client"
		if e.Code >= 500 {
			fc = "Server"
		}
		inner, _ = json.Marshal(struct {
			FaultCode   string `json:"faultcode"`
			FaultString string `json:"faultstring"`
			DebugInfo   any    `json:"debuginfo"`
		}{fc, e.Msg, nil})
	}
	return map[string]string{"error_message": string(inner)}
}

// Truncate cuts s to at most n bytes on a UTF-8 boundary and marks the cut
// with "...".
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "..."
}

// InspectorError is ironic-inspector's error body: {"error": {"message": msg}}.
func InspectorError(msg string) map[string]any {
	return map[string]any{"error": map[string]string{"message": msg}}
}

// WriteJSON writes v as JSON with the status code, as echo's c.JSON does
// (application/json, one encoded value and a newline).
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteFault writes e in Ironic's error shape; a HEAD request gets the
// status alone.
func WriteFault(w http.ResponseWriter, r *http.Request, e *Error) {
	if r != nil && r.Method == http.MethodHead {
		w.WriteHeader(e.Code)
		return
	}
	WriteJSON(w, e.Code, e.Body())
}

// webobExplanations are webob's default explanations of the statuses the
// image API answers with, shown when an error carries only a detail.
var webobExplanations = map[int]string{
	http.StatusBadRequest:            "The server could not comply with the request since it is either malformed or otherwise incorrect.",
	http.StatusForbidden:             "Access was denied to this resource.",
	http.StatusNotFound:              "The resource could not be found.",
	http.StatusConflict:              "There was a conflict when trying to complete your request.",
	http.StatusRequestEntityTooLarge: "The body of your request was too large for this server.",
}

// GlanceError is the JSON body Glance's errors have: webob's
// HTTPException rendered for a client that accepts JSON, {"code": "400
// Bad Request", "title": "Bad Request", "message": ...}, the message
// being webob's template "EXPLANATION<br /><br />\nDETAIL\n\n". Glance
// raises most errors with an explanation; some with a detail only, which
// then follows webob's default explanation of the status.
func GlanceError(code int, explanation, detail string) map[string]any {
	if explanation == "" {
		explanation = webobExplanations[code]
	}
	msg := explanation + "<br /><br />\n" + detail + "\n\n"
	if code == http.StatusUnsupportedMediaType {
		// webob's own template of a 415: explanation is its first line,
		// "The request media type T is not supported by this server.".
		msg = explanation + "\n<br /><br />\n" + detail
	}
	text := http.StatusText(code)
	return map[string]any{"code": fmt.Sprintf("%d %s", code, text), "title": text, "message": msg}
}
