// Package safepath validates file names that arrive from the network (TFTP
// read requests, HTTP paths) before they are opened below a served root
// directory.
//
// Clean is purely lexical. Callers open the result with an *os.Root so that
// a symbolic link inside the root cannot lead out of it either.
package safepath

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// MaxLen is the longest name Clean accepts, in bytes.
const MaxLen = 255

// ErrRefused is returned (wrapped) for every name Clean rejects.
var ErrRefused = errors.New("path refused")

// Clean checks a slash-separated name requested by a client and returns it
// cleaned and relative to the served root. It refuses empty and overlong
// names, absolute names, any ".." element, backslashes, NUL and other control
// bytes, and invalid UTF-8. "." elements and doubled slashes are removed.
func Clean(name string) (string, error) {
	switch {
	case name == "":
		return "", fmt.Errorf("%w: empty name", ErrRefused)
	case len(name) > MaxLen:
		return "", fmt.Errorf("%w: name longer than %d bytes", ErrRefused, MaxLen)
	case !utf8.ValidString(name):
		return "", fmt.Errorf("%w: name is not valid UTF-8", ErrRefused)
	case strings.HasPrefix(name, "/"):
		return "", fmt.Errorf("%w: absolute name %q", ErrRefused, name)
	case strings.ContainsRune(name, '\\'):
		return "", fmt.Errorf("%w: backslash in %q", ErrRefused, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("%w: control character in %q", ErrRefused, name)
		}
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "", fmt.Errorf("%w: %q leaves the root", ErrRefused, name)
		}
	}
	c := path.Clean(name)
	if c == "." {
		return "", fmt.Errorf("%w: %q names the root itself", ErrRefused, name)
	}
	return c, nil
}
