package manager

import (
	"errors"
	"fmt"
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
