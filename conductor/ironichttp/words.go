package ironichttp

import (
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/ipa/protocol"
)

// TimeFormat is how Ironic renders a timestamp (UTC, seconds, explicit
// offset); TimeFormatMicro adds the microseconds Ironic shows when a time
// has them.
const (
	TimeFormat      = "2006-01-02T15:04:05+00:00"
	TimeFormatMicro = "2006-01-02T15:04:05.000000+00:00"
	// InspectorTimeFormat is ironic-inspector's: UTC without an offset.
	InspectorTimeFormat = "2006-01-02T15:04:05"
)

// Time renders t in UTC in Ironic's format.
func Time(t time.Time) string { return t.UTC().Format(TimeFormat) }

// ParseBool reads one of oslo's strict boolean words, as
// oslo_utils.strutils.bool_from_string(strict=True) does: true/false,
// on/off, yes/no, 1/0, t/f, y/n in any case, spaces trimmed. ok is false
// for anything else. The words are the ones the agent protocol reads.
func ParseBool(s string) (b, ok bool) { return protocol.ParseBool(s) }

var macRE = regexp.MustCompile(`^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$`)

// NormalizeMAC validates a MAC address as Ironic does (six pairs of hex
// digits separated by colons or dashes) and returns it in lower case with
// colons.
func NormalizeMAC(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if !macRE.MatchString(s) {
		return "", false
	}
	return strings.ReplaceAll(s, "-", ":"), true
}

// Scheme is the scheme a client used: https over TLS; from a peer on the
// same host or a private or link-local network (a proxy) what it said in
// X-Forwarded-Proto (its last value), X-Forwarded-Protocol,
// X-Forwarded-Ssl or X-Url-Scheme; else http. This is echo v4's default,
// so every API answers the same links.
func Scheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	if !trustedPeer(r.RemoteAddr) {
		return "http"
	}
	if vs := r.Header.Values("X-Forwarded-Proto"); len(vs) > 0 && vs[len(vs)-1] != "" {
		last := vs[len(vs)-1]
		if i := strings.LastIndexByte(last, ','); i >= 0 {
			last = last[i+1:]
		}
		if p, ok := proto(strings.TrimSpace(last)); ok {
			return p
		}
		return "http"
	}
	if p, ok := proto(r.Header.Get("X-Forwarded-Protocol")); ok {
		return p
	}
	if r.Header.Get("X-Forwarded-Ssl") == "on" {
		return "https"
	}
	if p, ok := proto(r.Header.Get("X-Url-Scheme")); ok {
		return p
	}
	return "http"
}

func proto(s string) (string, bool) {
	for _, p := range [...]string{"http", "https", "ws", "wss"} {
		if strings.EqualFold(s, p) {
			return p, true
		}
	}
	return "", false
}

// trustedPeer: a unix socket, loopback, link-local or private address.
func trustedPeer(addr string) bool {
	if addr == "" || addr[0] == '@' || addr[0] == '/' {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	ip := net.ParseIP(host)
	return ip != nil && (ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsPrivate())
}

// BaseURL is the scheme and host a client reached, the root that links in
// an answer point back through ("http://conductor:6385").
func BaseURL(r *http.Request) string { return Scheme(r) + "://" + r.Host }
