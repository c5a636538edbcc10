package manager

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel kinds of manager errors. The API maps each to one HTTP status.
var (
	ErrInvalidState  = errors.New("invalid state")   // 400
	ErrInvalidInput  = errors.New("invalid input")   // 400
	ErrNodeLocked    = errors.New("node locked")     // 409
	ErrConflict      = errors.New("conflict")        // 409
	ErrNotFound      = errors.New("not found")       // 404
	ErrForbidden     = errors.New("forbidden")       // 403
	ErrNoWorkers     = errors.New("no free workers") // 503
	ErrNotAcceptable = errors.New("not acceptable")  // 406
)

// UserError carries a message meant for the API user and a sentinel kind.
type UserError struct {
	Kind error
	Msg  string
}

func (e *UserError) Error() string { return e.Msg }

// Unwrap returns the kind so errors.Is matches the sentinel.
func (e *UserError) Unwrap() error { return e.Kind }

func userErr(kind error, format string, args ...any) error {
	return &UserError{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// kindStatus is the HTTP status of each kind, as each Ironic exception
// carries its code.
var kindStatus = []struct {
	kind   error
	status int
}{
	{ErrNodeLocked, http.StatusConflict},
	{ErrConflict, http.StatusConflict},
	{ErrNotFound, http.StatusNotFound},
	{ErrForbidden, http.StatusForbidden},
	{ErrNoWorkers, http.StatusServiceUnavailable},
	{ErrNotAcceptable, http.StatusNotAcceptable},
	{ErrInvalidState, http.StatusBadRequest},
	{ErrInvalidInput, http.StatusBadRequest},
}

// Status is the HTTP status for err: its kind's when err wraps one, 400
// for a UserError of another kind; ok is false when err is neither (an
// internal error).
func Status(err error) (status int, ok bool) {
	for _, k := range kindStatus {
		if errors.Is(err, k.kind) {
			return k.status, true
		}
	}
	var ue *UserError
	if errors.As(err, &ue) {
		return http.StatusBadRequest, true
	}
	return 0, false
}
