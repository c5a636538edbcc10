package api

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/manager"
)

// TestManagerErrorsMapWithoutMgrError: a manager error a handler returns
// as it is (no mgrError call) still gets its kind's status and message,
// over a real socket, never a 500.
func TestManagerErrorsMapWithoutMgrError(t *testing.T) {
	tests := []struct {
		kind error
		want int
	}{
		{manager.ErrInvalidState, http.StatusBadRequest},
		{manager.ErrInvalidInput, http.StatusBadRequest},
		{manager.ErrNodeLocked, http.StatusConflict},
		{manager.ErrConflict, http.StatusConflict},
		{manager.ErrNotFound, http.StatusNotFound},
		{manager.ErrForbidden, http.StatusForbidden},
		{manager.ErrNoWorkers, http.StatusServiceUnavailable},
		{manager.ErrNotAcceptable, http.StatusNotAcceptable},
	}
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	e := echo.New()
	e.HTTPErrorHandler = s.errorHandler
	var next error
	e.GET("/x", func(echo.Context) error { return next })
	srv := httptest.NewServer(e)
	defer srv.Close()
	for _, tt := range tests {
		t.Run(tt.kind.Error(), func(t *testing.T) {
			ue := &manager.UserError{Kind: tt.kind, Msg: "node is busy"}
			for _, err := range []error{ue, fmt.Errorf("wrapped: %w", ue), mgrError(ue)} {
				next = err
				resp, gerr := http.Get(srv.URL + "/x")
				if gerr != nil {
					t.Fatal(gerr)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.want || !strings.Contains(string(b), `\"faultstring\": \"node is busy\"`) && !strings.Contains(string(b), `\"faultstring\":\"node is busy\"`) {
					t.Errorf("%v: %d %s, want %d with the manager's message", err, resp.StatusCode, b, tt.want)
				}
			}
		})
	}
}
