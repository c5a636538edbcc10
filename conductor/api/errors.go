package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
)

// Error is an API error rendered in Ironic's shape (see ironichttp).
type Error = ironichttp.Error

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

// errorHandler maps every error that reaches echo to Ironic's error shape.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var ae *Error
	var ue *manager.UserError
	var he *echo.HTTPError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &ue):
		// Every manager error maps here, whether or not a handler
		// called mgrError.
		ae = mgrStatus(ue)
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
	_ = c.JSON(ae.Code, ae.Body())
}

// mgrError maps manager errors to API errors; errorHandler does the same
// for any that reach it unmapped.
func mgrError(err error) error {
	var ue *manager.UserError
	if !errors.As(err, &ue) {
		return err
	}
	return mgrStatus(ue)
}

func mgrStatus(ue *manager.UserError) *Error {
	code, _ := manager.Status(ue)
	return &Error{Code: code, Msg: ue.Msg}
}
