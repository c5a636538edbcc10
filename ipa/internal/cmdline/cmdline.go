// Package cmdline parses the kernel command line the ramdisk was booted
// with and extracts the agent's parameters (ipa-api-url, BOOTIF, ...).
package cmdline

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Parse splits a kernel command line into key → value. Values may be double
// quoted ("a b"); a key without '=' maps to "". Later keys win.
func Parse(s string) map[string]string {
	out := map[string]string{}
	var key, val strings.Builder
	inKey, quoted, any := true, false, false
	flush := func() {
		if any && key.Len() > 0 {
			out[key.String()] = val.String()
		}
		key.Reset()
		val.Reset()
		inKey, quoted, any = true, false, false
	}
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			any = true
		case !quoted && (r == ' ' || r == '\t' || r == '\n'):
			flush()
		case inKey && r == '=':
			inKey = false
			any = true
		case inKey:
			key.WriteRune(r)
			any = true
		default:
			val.WriteRune(r)
		}
	}
	flush()
	return out
}

// Params are the agent settings found on the kernel command line.
type Params struct {
	APIURLs               []string
	BootIF                string // MAC, lower case, colon separated
	InspectionCallbackURL string
	Insecure              bool
	AdvertiseHost         string
	AdvertisePort         int
	ListenPort            int
	// EnableAutoTLS is nil when the parameter is absent.
	EnableAutoTLS   *bool
	AgentToken      string
	GlobalRequestID string
	Debug           bool
	// Disk names a root device path (ferric extension: ferric-root-device).
	RootDevice string
	// BootMethod is boot_method: "vmedia" when Ironic booted the ramdisk
	// from virtual media.
	BootMethod string
}

// FromMap interprets parsed parameters. Unknown keys are ignored.
func FromMap(m map[string]string) (Params, error) {
	var p Params
	for _, u := range strings.Split(m["ipa-api-url"], ",") {
		if u = strings.TrimSpace(u); u != "" {
			p.APIURLs = append(p.APIURLs, strings.TrimRight(u, "/"))
		}
	}
	if b, ok := m["BOOTIF"]; ok && b != "" {
		mac, err := ParseBootIF(b)
		if err != nil {
			return p, err
		}
		p.BootIF = mac
	}
	p.InspectionCallbackURL = m["ipa-inspection-callback-url"]
	p.AdvertiseHost = m["ipa-advertise-host"]
	p.AgentToken = m["ipa-agent-token"]
	p.GlobalRequestID = m["ipa-global-request-id"]
	p.RootDevice = m["ferric-root-device"]
	p.BootMethod = m["boot_method"]
	var err error
	if p.Insecure, err = boolParam(m, "ipa-insecure"); err != nil {
		return p, err
	}
	if p.Debug, err = boolParam(m, "ipa-debug"); err != nil {
		return p, err
	}
	if _, ok := m["ipa-enable-auto-tls"]; ok {
		b, err := boolParam(m, "ipa-enable-auto-tls")
		if err != nil {
			return p, err
		}
		p.EnableAutoTLS = &b
	}
	for key, dst := range map[string]*int{"ipa-advertise-port": &p.AdvertisePort, "ipa-listen-port": &p.ListenPort} {
		if v, ok := m[key]; ok {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 || n > 65535 {
				return p, fmt.Errorf("cmdline: %s=%q is not a port", key, v)
			}
			*dst = n
		}
	}
	return p, nil
}

func boolParam(m map[string]string, k string) (bool, error) {
	v, ok := m[k]
	if !ok {
		return false, nil
	}
	switch strings.ToLower(v) {
	case "", "1", "true", "yes", "on", "y", "t":
		return true, nil
	case "0", "false", "no", "off", "n", "f":
		return false, nil
	}
	return false, fmt.Errorf("cmdline: %s=%q is not a boolean", k, v)
}

// ParseBootIF accepts pxelinux's "01-aa-bb-cc-dd-ee-ff" (hardware type 1
// prefix) or a plain MAC with ':' or '-'.
func ParseBootIF(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == ':' })
	if len(parts) == 7 && parts[0] == "01" {
		parts = parts[1:]
	}
	mac, err := net.ParseMAC(strings.Join(parts, ":"))
	if err != nil || len(mac) != 6 {
		return "", fmt.Errorf("cmdline: BOOTIF %q is not a MAC address", s)
	}
	return mac.String(), nil
}
