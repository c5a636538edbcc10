package netconfig

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// ironicBond is shaped like the network_data Ironic users give nodes for
// bonded, VLAN-tagged static networking.
const ironicBond = `{
  "links": [
    {"id": "enp1s0", "type": "phy", "ethernet_mac_address": "52:54:00:AA:00:01", "mtu": 9000},
    {"id": "enp2s0", "type": "phy", "ethernet_mac_address": "52:54:00:aa:00:02"},
    {"id": "bond0", "type": "bond", "bond_links": ["enp1s0", "enp2s0"], "bond_mode": "802.3ad",
     "bond_miimon": 100, "bond_xmit_hash_policy": "layer3+4", "ethernet_mac_address": "52:54:00:aa:00:01"},
    {"id": "vlan100", "type": "vlan", "vlan_link": "bond0", "vlan_id": 100, "vlan_mac_address": "52:54:00:aa:00:01"}
  ],
  "networks": [
    {"id": "prov", "type": "ipv4", "link": "vlan100", "ip_address": "192.0.2.10", "netmask": "255.255.255.0",
     "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "192.0.2.1"},
                {"network": "198.51.100.0", "netmask": "255.255.255.0", "gateway": "192.0.2.254"}],
     "services": [{"type": "dns", "address": "192.0.2.53"}]},
    {"id": "v6", "type": "ipv6", "link": "bond0", "ip_address": "2001:db8::10/64", "gateway": "2001:db8::1"},
    {"id": "d", "type": "ipv4_dhcp", "link": "enp2s0"}
  ],
  "services": [{"type": "dns", "address": "192.0.2.53"}, {"type": "dns", "address": "2001:db8::53"}, {"type": "ntp", "address": "x"}]
}`

func TestParse(t *testing.T) {
	mac := func(s string) []byte { return mustMAC(t, s) }
	p, err := Parse([]byte(ironicBond))
	if err != nil {
		t.Fatal(err)
	}
	want := &Plan{
		Links: []PlanLink{
			{ID: "enp1s0", Kind: KindPhysical, MAC: mac("52:54:00:aa:00:01"), MTU: 9000},
			{ID: "enp2s0", Kind: KindPhysical, MAC: mac("52:54:00:aa:00:02"), DHCP: []string{"ipv4_dhcp"}},
			{ID: "bond0", Kind: KindBond, MAC: mac("52:54:00:aa:00:01"), Members: []string{"enp1s0", "enp2s0"},
				BondMode: "802.3ad", Miimon: 100, XmitHashPolicy: "layer3+4"},
			{ID: "vlan100", Kind: KindVLAN, MAC: mac("52:54:00:aa:00:01"), Parent: "bond0", VLANID: 100},
		},
		Addrs: []PlanAddr{
			{Link: "vlan100", Prefix: netip.MustParsePrefix("192.0.2.10/24")},
			{Link: "bond0", Prefix: netip.MustParsePrefix("2001:db8::10/64")},
		},
		Routes: []PlanRoute{
			{Link: "vlan100", Dst: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("192.0.2.1")},
			{Link: "vlan100", Dst: netip.MustParsePrefix("198.51.100.0/24"), Gateway: netip.MustParseAddr("192.0.2.254")},
			{Link: "bond0", Dst: netip.MustParsePrefix("::/0"), Gateway: netip.MustParseAddr("2001:db8::1")},
		},
		DNS: []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("2001:db8::53")},
	}
	if d := cmp.Diff(want, p, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); d != "" {
		t.Errorf("plan (-want +got):\n%s", d)
	}
}

func TestParseAddresses(t *testing.T) {
	for _, tc := range []struct {
		ip, mask string
		v6       bool
		want     string // "" : error
	}{
		{"10.0.0.5", "255.255.255.0", false, "10.0.0.5/24"},
		{"10.0.0.5", "255.255.255.252", false, "10.0.0.5/30"},
		{"10.0.0.5/16", "", false, "10.0.0.5/16"},
		{"10.0.0.5", "24", false, "10.0.0.5/24"},
		{"2001:db8::5", "ffff:ffff:ffff:ffff::", true, "2001:db8::5/64"},
		{"2001:db8::5", "64", true, "2001:db8::5/64"},
		{"2001:db8::5/120", "", true, "2001:db8::5/120"},
		{"10.0.0.5", "", false, ""},
		{"10.0.0.5", "255.0.255.0", false, ""},
		{"10.0.0.5", "33", false, ""},
		{"10.0.0.300", "255.255.255.0", false, ""},
		{"2001:db8::5", "255.255.255.0", true, ""},
		{"10.0.0.5", "255.255.255.0", true, ""},
		{"2001:db8::5/64", "", false, ""},
		{"", "", false, ""},
	} {
		got, err := addrPrefix(tc.ip, tc.mask, tc.v6)
		if tc.want == "" {
			if err == nil {
				t.Errorf("addrPrefix(%q, %q, %v) = %v, want an error", tc.ip, tc.mask, tc.v6, got)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("addrPrefix(%q, %q, %v) = %v, %v, want %s", tc.ip, tc.mask, tc.v6, got, err, tc.want)
		}
	}
}

func TestParseBadInput(t *testing.T) {
	phy := `{"id": "e0", "type": "phy", "ethernet_mac_address": "52:54:00:00:00:01"}`
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"not json", `{"links": [`, "unexpected end"},
		{"unknown link type", `{"links": [{"id": "x", "type": "wifi", "ethernet_mac_address": "52:54:00:00:00:01"}]}`, `link "x": unknown link type "wifi"`},
		{"bad mac", `{"links": [{"id": "x", "type": "phy", "ethernet_mac_address": "52:54:00"}]}`, `link "x": bad MAC address "52:54:00"`},
		{"no mac", `{"links": [{"id": "x", "type": "phy"}]}`, `link "x": bad MAC address ""`},
		{"no id", `{"links": [{"type": "phy", "ethernet_mac_address": "52:54:00:00:00:01"}]}`, "link 0 has no id"},
		{"twice", `{"links": [` + phy + `,` + phy + `]}`, `link "e0" is listed twice`},
		{"same mac", `{"links": [` + phy + `, {"id": "e1", "type": "phy", "ethernet_mac_address": "52:54:00:00:00:01"}]}`, "same MAC address"},
		{"vlan id", `{"links": [` + phy + `, {"id": "v", "type": "vlan", "vlan_link": "e0", "vlan_id": 4095}]}`, `vlan_id 4095 out of range`},
		{"vlan parent", `{"links": [{"id": "v", "type": "vlan", "vlan_link": "nope", "vlan_id": 5}]}`, `link "v" names unknown link "nope"`},
		{"vlan loop", `{"links": [{"id": "v", "type": "vlan", "vlan_link": "w", "vlan_id": 5}, {"id": "w", "type": "vlan", "vlan_link": "v", "vlan_id": 6}]}`, "stands on itself"},
		{"bond mode", `{"links": [` + phy + `, {"id": "b", "type": "bond", "bond_links": ["e0"], "bond_mode": "fastest"}]}`, `unknown bond_mode "fastest"`},
		{"bond empty", `{"links": [{"id": "b", "type": "bond", "bond_links": []}]}`, "bond without bond_links"},
		{"mtu", `{"links": [{"id": "e0", "type": "phy", "ethernet_mac_address": "52:54:00:00:00:01", "mtu": 10}]}`, "mtu 10 out of range"},
		{"network link", `{"links": [` + phy + `], "networks": [{"id": "n", "type": "ipv4", "link": "e9", "ip_address": "10.0.0.1", "netmask": "255.0.0.0"}]}`, `network "n": unknown link "e9"`},
		{"network type", `{"links": [` + phy + `], "networks": [{"id": "n", "type": "ipx", "link": "e0"}]}`, `network "n": unknown network type "ipx"`},
		{"bad address", `{"links": [` + phy + `], "networks": [{"id": "n", "type": "ipv4", "link": "e0", "ip_address": "10.0.0.256", "netmask": "255.0.0.0"}]}`, `network "n": bad IPv4 address "10.0.0.256"`},
		{"v6 in v4", `{"links": [` + phy + `], "networks": [{"id": "n", "type": "ipv4", "link": "e0", "ip_address": "2001:db8::1/64"}]}`, `bad IPv4 address`},
		{"bad gateway", `{"links": [` + phy + `], "networks": [{"id": "n", "type": "ipv4", "link": "e0", "ip_address": "10.0.0.2/8", "gateway": "2001:db8::1"}]}`, `bad gateway "2001:db8::1"`},
		{"bad route", `{"links": [` + phy + `], "networks": [{"id": "n", "type": "ipv4", "link": "e0", "ip_address": "10.0.0.2/8", "routes": [{"network": "11.0.0.0", "netmask": "x", "gateway": "10.0.0.1"}]}]}`, `route 0: bad netmask "x"`},
		{"bad dns", `{"links": [` + phy + `], "services": [{"type": "dns", "address": "dns.example"}]}`, `bad dns address "dns.example"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse: %v, want ErrBadInput with %q", err, tc.want)
			}
		})
	}
}
