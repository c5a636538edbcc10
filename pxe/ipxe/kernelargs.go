package ipxe

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ErrInvalidArg is wrapped by every error about a kernel parameter or URL
// that cannot be put on an iPXE command line safely.
var ErrInvalidArg = errors.New("ipxe: invalid kernel argument")

// Param is one kernel command-line parameter: Key=Value, or Key alone when
// Flag is set (for example "nomodeset").
type Param struct {
	Key   string
	Value string
	Flag  bool
}

// String returns the parameter as it appears on the command line.
func (p Param) String() string {
	if p.Flag {
		return p.Key
	}
	return p.Key + "=" + p.Value
}

// ParseParam splits "key=value" or "flag" into a Param and validates it.
func ParseParam(s string) (Param, error) {
	k, v, ok := strings.Cut(s, "=")
	p := Param{Key: k, Value: v, Flag: !ok}
	if err := p.Validate(); err != nil {
		return Param{}, err
	}
	return p, nil
}

// Validate reports whether the parameter can be passed through an iPXE
// "kernel" line to Linux unchanged. Keys are letters, digits and "_-.";
// values are printable ASCII without spaces, quotes, backslashes or "$" (iPXE
// splits on spaces and expands "${...}"; Linux has no escape for quotes).
// Percent-encode such characters inside URLs.
func (p Param) Validate() error {
	if p.Key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidArg)
	}
	for _, r := range p.Key {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return fmt.Errorf("%w: key %q: character %q not allowed", ErrInvalidArg, p.Key, r)
		}
	}
	if p.Flag {
		if p.Value != "" {
			return fmt.Errorf("%w: flag %q has a value", ErrInvalidArg, p.Key)
		}
		return nil
	}
	if err := checkWord(p.Value); err != nil {
		return fmt.Errorf("%w: value of %q: %w", ErrInvalidArg, p.Key, err)
	}
	return nil
}

// checkWord accepts a string that stays one word, unexpanded, on an iPXE
// command line and on the Linux command line.
func checkWord(s string) error {
	if len(s) > 4096 {
		return errors.New("longer than 4096 bytes")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c <= ' ' || c >= 0x7f:
			return fmt.Errorf("byte %#02x (space, control or non-ASCII) not allowed", c)
		case c == '"' || c == '\'' || c == '\\' || c == '$' || c == '`':
			return fmt.Errorf("character %q not allowed", c)
		}
	}
	return nil
}

// checkURL validates an absolute http or https URL for an iPXE command.
func checkURL(what, s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalidArg, what, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("%w: %s %q is not an absolute http(s) URL", ErrInvalidArg, what, s)
	}
	if err := checkWord(s); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalidArg, what, err)
	}
	return nil
}

// BootIF returns the BOOTIF value pxelinux and IPA use to find the boot
// interface: "01-" (ARP type Ethernet) and the MAC in lowercase hex with
// dashes.
func BootIF(mac net.HardwareAddr) string {
	return "01-" + strings.ReplaceAll(strings.ToLower(mac.String()), ":", "-")
}

// KernelArgs builds the deploy ramdisk's command line for mac from r. It
// validates every part and returns the parameters in a fixed order: IPA
// settings, BOOTIF, console, then r.ExtraArgs.
func KernelArgs(mac net.HardwareAddr, r Ramdisk) ([]Param, error) {
	var ps []Param
	if r.APIURL == "" {
		return nil, fmt.Errorf("%w: ipa-api-url is required", ErrInvalidArg)
	}
	if err := checkURL("ipa-api-url", r.APIURL); err != nil {
		return nil, err
	}
	ps = append(ps, Param{Key: "ipa-api-url", Value: r.APIURL})
	if r.InspectionCallbackURL != "" {
		if err := checkURL("ipa-inspection-callback-url", r.InspectionCallbackURL); err != nil {
			return nil, err
		}
		ps = append(ps, Param{Key: "ipa-inspection-callback-url", Value: r.InspectionCallbackURL})
	}
	if len(mac) > 0 {
		ps = append(ps, Param{Key: "BOOTIF", Value: BootIF(mac)})
	}
	for _, c := range r.Console {
		ps = append(ps, Param{Key: "console", Value: c})
	}
	ps = append(ps, r.ExtraArgs...)
	for _, p := range ps {
		if err := p.Validate(); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

// JoinArgs joins parameters with single spaces.
func JoinArgs(ps []Param) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, " ")
}
