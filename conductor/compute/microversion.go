package compute

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// version is a compute API microversion, major*1000+minor (2.47 is 2047).
type version int

func (v version) String() string {
	return strconv.Itoa(int(v)/1000) + "." + strconv.Itoa(int(v)%1000)
}

// Microversions at which the API changes behaviour, as Nova's (only those
// this API honours; README.md lists them).
const (
	v21  version = 2001
	v22  version = 2002 // key pair type; create 201, delete 204
	v23  version = 2003 // extended server attributes (reservation_id, hostname, ...)
	v29  version = 2009 // locked
	v210 version = 2010 // key pairs of a user_id
	v216 version = 2016 // host_status
	v219 version = 2019 // description
	v226 version = 2026 // tags
	v235 version = 2035 // key pair paging
	v236 version = 2036 // no network quotas in limits
	v237 version = 2037 // networks required on create ("auto", "none" or a list)
	v238 version = 2038 // an unknown status filter is a 400
	v247 version = 2047 // the flavor embedded in a server
	v252 version = 2052 // tags on create
	v254 version = 2054 // key_name on rebuild
	v255 version = 2055 // flavor description
	v257 version = 2057 // no personality; user_data on rebuild
	v261 version = 2061 // flavor extra_specs in the flavor
	v263 version = 2063 // trusted_image_certificates
	v271 version = 2071 // server_groups
	v273 version = 2073 // locked_reason
	v275 version = 2075 // full server on update and rebuild; strict list query
	v290 version = 2090 // OS-EXT-SRV-ATTR:hostname for everyone
	v292 version = 2092 // key pairs are imported only (public_key required)
	v294 version = 2094 // a hostname may be a FQDN
	v296 version = 2096 // pinned_availability_zone
)

// versionRE is Nova's microversion syntax: no leading zeros.
var versionRE = regexp.MustCompile(`^([1-9][0-9]*)\.([1-9][0-9]*|0)$`)

func parseVersionString(s string) (version, bool) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	maj, err1 := strconv.Atoi(m[1])
	min, err2 := strconv.Atoi(m[2])
	if err1 != nil || err2 != nil || min > 999 {
		return 0, false
	}
	return version(maj*1000 + min), true
}

// headerVersion is the microversion string a request names: the compute
// entry of OpenStack-API-Version, else X-OpenStack-Nova-API-Version; ""
// without one.
func headerVersion(hdr http.Header) string {
	for _, s := range hdr.Values("OpenStack-API-Version") {
		for _, part := range strings.Split(s, ",") {
			f := strings.Fields(part)
			if len(f) == 2 && strings.EqualFold(f[0], "compute") {
				return f[1]
			}
		}
	}
	return strings.TrimSpace(hdr.Get("X-OpenStack-Nova-API-Version"))
}

// negotiate is the microversion a request asks for: MinVersion without a
// header, MaxVersion for "latest"; a fault when the string is not a
// version (400) or outside the range (406).
func negotiate(hdr http.Header) (version, error) {
	s := headerVersion(hdr)
	lo, _ := parseVersionString(MinVersion)
	hi, _ := parseVersionString(MaxVersion)
	switch strings.ToLower(s) {
	case "":
		return lo, nil
	case "latest":
		return hi, nil
	}
	v, ok := parseVersionString(s)
	if !ok {
		return 0, faultf(http.StatusBadRequest, "API Version String %s is of invalid format. Must be of format MajorNum.MinorNum.", s)
	}
	if v < lo || v > hi {
		return 0, faultf(http.StatusNotAcceptable, "Version %s is not supported by the API. Minimum is %s and maximum is %s.", v, MinVersion, MaxVersion)
	}
	return v, nil
}

type versionKey struct{}

func withVersion(r *http.Request, v version) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), versionKey{}, v))
}

// reqVersion is the request's negotiated microversion (2.1 if none).
func reqVersion(r *http.Request) version {
	if v, ok := r.Context().Value(versionKey{}).(version); ok {
		return v
	}
	return v21
}

// atLeast tells whether the request's microversion is v or later.
func atLeast(r *http.Request, v version) bool { return reqVersion(r) >= v }
