package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// API microversions served: 1.MinMinor to 1.MaxMinor. The newest, as
// Ironic's (ironic/api/controllers/v1/versions.py):
//
//	1.97  port description            1.104 node instance_name (and ?instance_name)
//	1.98  ~ and / escapes in patch    1.105 OVN VTEP keys of local_link_connection
//	      field names (no effect: the       refused again (taken 1.90-1.104)
//	      patch schema refuses them)  1.106 ?shard on port group listings
//	1.99  ?conductor_groups on port   1.107 X-OpenStack-Request-Id on every answer
//	      and port group listings     1.108 disable_ramdisk with target service
//	1.100 port vendor                 1.109 node health (the BMC's, power sync)
//	1.101 port category               1.110 abort in wait call-back
//	1.102 port group physical_network
//	1.103 port group category
const (
	MinMinor = 1
	MaxMinor = 110
)

const (
	hdrLegacyVersion = "X-OpenStack-Ironic-API-Version"
	hdrVersion       = "OpenStack-API-Version"
	hdrMinVersion    = "X-OpenStack-Ironic-API-Minimum-Version"
	hdrMaxVersion    = "X-OpenStack-Ironic-API-Maximum-Version"
	hdrRequestID     = "Openstack-Request-Id"
	// hdrXRequestID mirrors hdrRequestID on every answer (API 1.107), as
	// oslo's request-id middleware names it.
	hdrXRequestID = "X-Openstack-Request-Id"
)

// Version is a negotiated microversion (the minor number of 1.N).
type Version int

// String renders "1.N".
func (v Version) String() string { return "1." + strconv.Itoa(int(v)) }

// parseVersion negotiates the microversion from request headers. The
// OpenStack-API-Version header ("baremetal 1.N") wins over the legacy one;
// none means 1.1 and "latest" the maximum.
func parseVersion(h http.Header) (Version, *Error) {
	raw, hdr := "", hdrLegacyVersion
	for _, v := range h.Values(hdrVersion) {
		for _, part := range strings.Split(v, ",") {
			f := strings.Fields(part)
			if len(f) == 2 && strings.EqualFold(f[0], "baremetal") {
				raw, hdr = f[1], hdrVersion
			}
		}
	}
	if raw == "" {
		raw = strings.TrimSpace(h.Get(hdrLegacyVersion))
	}
	if raw == "" {
		return MinMinor, nil
	}
	if strings.EqualFold(raw, "latest") {
		return MaxMinor, nil
	}
	major, minor, ok := strings.Cut(raw, ".")
	ma, err1 := atoiDigits(major)
	mi, err2 := atoiDigits(minor)
	if !ok || err1 != nil || err2 != nil {
		return 0, &Error{Code: http.StatusNotAcceptable, Plain: true,
			Msg: fmt.Sprintf("Invalid value for %s header", canonicalName(hdr))}
	}
	if ma != 1 || mi < MinMinor || mi > MaxMinor {
		return 0, &Error{Code: http.StatusNotAcceptable, Plain: true, Msg: fmt.Sprintf(
			"Version %s was requested but the minor version is not supported by this service. The supported version range is: [1.%d, 1.%d].",
			raw, MinMinor, MaxMinor)}
	}
	return Version(mi), nil
}

func canonicalName(h string) string {
	if h == hdrVersion {
		return "OpenStack-API-Version"
	}
	return "X-OpenStack-Ironic-API-Version"
}

// atoiDigits parses a non-empty run of ASCII digits (no sign, no spaces),
// at most 9 of them.
func atoiDigits(s string) (int, error) {
	if s == "" || len(s) > 9 {
		return 0, strconv.ErrSyntax
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	return strconv.Atoi(s)
}
