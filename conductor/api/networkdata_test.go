package api

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzNetworkData: any JSON value is checked against the network-data
// schema without a panic, and a refusal reads as Ironic's
// validate_network_data words it (the recorded answers are in
// test/ironicinput).
func FuzzNetworkData(f *testing.F) {
	for _, s := range []string{
		`{"links": [], "networks": [], "services": []}`,
		`{"links": [{"id": "eth0", "type": "bond", "ethernet_mac_address": "52:54:00:12:34:56", "bond_mode": "802.3ad", "bond_links": ["eth1"]}], "networks": [], "services": []}`,
		`{"links": [], "networks": [{"id": "n", "link": "l", "network_id": "n", "type": "ipv6", "ip_address": "fe80::1%eth0", "routes": [{"network": "::", "netmask": "::", "gateway": "fe80::1"}]}], "services": [{"type": "dns", "address": "::1"}]}`,
		`{"links": [{"mtu": 0}], "networks": "x"}`,
		`null`, `[1, "a"]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		if json.Unmarshal([]byte(s), &v) != nil {
			return
		}
		if err := validNetworkData(v); err != nil && (err.Code != 400 || !strings.HasPrefix(err.Msg, "Invalid network_data: ")) {
			t.Fatalf("validNetworkData(%s) = %d %q", s, err.Code, err.Msg)
		}
	})
}
