package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
)

// Request body limits: each route reads at most what its use needs, so an
// unauthenticated caller cannot make the conductor buffer more.
const (
	// AgentBodyLimit bounds the ramdisk's lookup and heartbeat (a
	// heartbeat is a callback URL, a token, a version and at most a PEM
	// certificate).
	AgentBodyLimit = 64 << 10
	// InventoryBodyLimit bounds continue_inspection (an inventory with
	// its plugin data).
	InventoryBodyLimit = 16 << 20
	// DefaultBodyLimit bounds every other API write.
	DefaultBodyLimit = 1 << 20
	// MaxJSONDepth bounds the nesting of arrays and objects in a body.
	MaxJSONDepth = 64
)

// BodyLimit returns the body limit of a request path on the API port (0:
// the route bounds its body itself, as image uploads do).
func BodyLimit(path string) int64 {
	switch {
	case strings.HasPrefix(path, "/v1/heartbeat/"), path == "/v1/lookup":
		return AgentBodyLimit
	case path == "/v1/continue_inspection":
		return InventoryBodyLimit
	case strings.HasPrefix(path, "/images/"):
		return 0
	}
	return DefaultBodyLimit
}

// limitBody bounds the request body by route before any handler (or
// authentication) runs: a declared length past the limit is refused
// without reading a byte, and a longer body fails its read.
func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		limit := BodyLimit(r.URL.Path)
		if limit == 0 || r.Body == nil || r.Body == http.NoBody {
			return next(c)
		}
		if r.ContentLength > limit {
			c.Response().Header().Set("Connection", "close")
			return tooLarge(limit)
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, limit)
		return next(c)
	}
}

func tooLarge(limit int64) *Error {
	return errf(http.StatusRequestEntityTooLarge, "Request is too large: the body of this request may hold at most %d bytes.", limit)
}

// readBody reads a JSON request body within the route's limit. A body
// past the limit is a 413, one that cannot be read (a malformed chunked
// encoding, a connection cut) or nests deeper than MaxJSONDepth a 400.
func readBody(c echo.Context) ([]byte, error) {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return nil, bodyError(err)
	}
	if err := checkDepth(body, MaxJSONDepth); err != nil {
		return nil, badRequest("Invalid JSON in request body: %v", err)
	}
	return body, nil
}

// bodyError maps a failed body read to a client error.
func bodyError(err error) *Error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(mbe.Limit)
	}
	return badRequest("Could not read the request body: %s", truncate(err.Error(), 128))
}

// truncate cuts s to n bytes (on a rune boundary) with "...".
func truncate(s string, n int) string { return ironichttp.Truncate(s, n) }

// checkDepth reports an error when arrays and objects in the JSON text b
// nest deeper than max. It only counts brackets outside strings; the
// syntax is left to the decoder.
func checkDepth(b []byte, max int) error {
	depth, inStr, esc := 0, false, false
	for _, c := range b {
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '[' || c == '{':
			if depth++; depth > max {
				return fmt.Errorf("arrays and objects nest deeper than %d levels", max)
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return nil
}
