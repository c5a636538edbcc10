package api

import (
	"time"

	"github.com/labstack/echo/v4"
)

// Observer records one request (conductor/metrics.Registry is one).
type Observer interface {
	Observe(method, route string, code int, d time.Duration)
}

// Metrics is the echo middleware that tells o of every request, labelled
// with echo's route pattern.
func Metrics(o Observer) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			code := c.Response().Status
			if he, ok := err.(*echo.HTTPError); ok && !c.Response().Committed {
				code = he.Code
			}
			o.Observe(c.Request().Method, c.Path(), code, time.Since(start))
			return err
		}
	}
}
