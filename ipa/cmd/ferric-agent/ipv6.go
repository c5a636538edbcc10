package main

import (
	"net/netip"
	"net/url"

	"github.com/ferric-metal/ferric/ipa/internal/cmdline"
)

// ipv6API reports whether the conductor is reached over IPv6: the host
// of the first API URL (or, without one, of the inspection callback) is
// an IPv6 literal, as in ipa-api-url=http://[fd00::1]:6385. The ramdisk
// then configures its links by DHCPv6 instead of DHCPv4.
func ipv6API(p cmdline.Params) bool {
	u := p.InspectionCallbackURL
	if len(p.APIURLs) > 0 {
		u = p.APIURLs[0]
	}
	parsed, err := url.Parse(u)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(parsed.Hostname())
	return err == nil && a.Is6() && !a.Is4In6()
}
