package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/store"
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

func errf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *Error {
	return errf(http.StatusBadRequest, format, args...)
}
func notFound(format string, args ...any) *Error { return errf(http.StatusNotFound, format, args...) }
func conflict(format string, args ...any) *Error { return errf(http.StatusConflict, format, args...) }
func notAcceptable(format string, args ...any) *Error {
	return errf(http.StatusNotAcceptable, format, args...)
}

// maxErrorMsg bounds an error message: whatever a message quotes of the
// request, the answer stays short.
const maxErrorMsg = 1024

func (e *Error) body() map[string]string {
	var inner []byte
	if len(e.Msg) > maxErrorMsg {
		e.Msg = truncate(e.Msg, maxErrorMsg)
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

// errorHandler maps every error that reaches echo to Ironic's error shape.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var ae *Error
	var he *echo.HTTPError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &mbe):
		ae = tooLarge(mbe.Limit)
	case errors.As(err, &he):
		msg := ""
		if he.Code != http.StatusNotFound && he.Code != http.StatusMethodNotAllowed {
			msg = fmt.Sprint(he.Message)
		}
		ae = &Error{Code: he.Code, Msg: msg, Plain: true}
		if he.Code == http.StatusMethodNotAllowed {
			ae.Msg = "The server could not comply with the request since it is either malformed or otherwise incorrect."
		}
	case errors.Is(err, store.ErrNotFound):
		ae = notFound("Resource could not be found.")
	case errors.Is(err, store.ErrConflict):
		ae = conflict("The resource was changed by another request, please retry.")
	default:
		s.log.Error("api: internal error", "err", err, "path", c.Path(), "request_id", c.Response().Header().Get(hdrRequestID))
		ae = &Error{Code: http.StatusInternalServerError, Msg: "Internal server error: " + err.Error()}
	}
	if ae.Code == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", `Basic realm="Baremetal API"`)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ae.Code)
		return
	}
	_ = c.JSON(ae.Code, ae.body())
}
