package api

import (
	"github.com/ferric-metal/ferric/conductor/ironichttp"
)

// networkDataSchema is Ironic's network-data-schema.json (Nova's
// network_data.json): links (physical, bond and VLAN interfaces), networks
// (IPv4 and IPv6, with routes) and services, each item of the shape the
// schema gives it. Properties and alternatives are in the file's order, so
// jsonschema's choice among equally relevant errors is the same. The bond
// modes are the corrected list of later Ironic ("802.3ad"; 21.4 lists the
// typo "802.1ad").
var networkDataSchema = func() *schema {
	str := func() *schema { return ironichttp.T("string") }
	pat := func(p string) *schema { return &schema{Type: []string{"string"}, Pattern: p} }
	enum := func(vs ...any) *schema { return &schema{Type: []string{"string"}, Enum: vs} }
	num := func(f float64) *float64 { return &f }
	obj := func(required []string, props ...prop) *schema {
		return &schema{Type: []string{"object"}, Required: required, Properties: props}
	}

	l2Address := pat(`(?i)^([0-9A-F]{2}[:-]){5}([0-9A-F]{2})$`)
	l2MTU := &schema{AnyOf: []*schema{
		{Type: []string{"number"}, Minimum: num(1), Maximum: num(65535)},
		ironichttp.T("null"),
	}}
	l2Link := obj([]string{"ethernet_mac_address", "id", "type"},
		prop{Name: "id", Schema: str()},
		prop{Name: "ethernet_mac_address", Schema: l2Address},
		prop{Name: "mtu", Schema: l2MTU},
		prop{Name: "type", Schema: enum("bridge", "dvs", "hw_veb", "hyperv", "ovs", "tap", "vhostuser", "vif", "phy")},
		prop{Name: "vif_id", Schema: str()},
	)
	l2Bond := obj([]string{"ethernet_mac_address", "id", "type", "bond_mode", "bond_links"},
		prop{Name: "id", Schema: str()},
		prop{Name: "ethernet_mac_address", Schema: l2Address},
		prop{Name: "mtu", Schema: l2MTU},
		prop{Name: "type", Schema: enum("bond")},
		prop{Name: "vif_id", Schema: str()},
		prop{Name: "bond_mode", Schema: enum("802.3ad", "balance-rr", "active-backup", "balance-xor", "broadcast", "balance-tlb", "balance-alb")},
		prop{Name: "bond_links", Schema: &schema{Type: []string{"array"}, Items: str()}},
	)
	l2VLAN := obj([]string{"vlan_mac_address", "id", "type", "vlan_link", "vlan_id"},
		prop{Name: "id", Schema: str()},
		prop{Name: "vlan_mac_address", Schema: l2Address},
		prop{Name: "mtu", Schema: l2MTU},
		prop{Name: "type", Schema: enum("vlan")},
		prop{Name: "vif_id", Schema: str()},
		prop{Name: "vlan_id", Schema: ironichttp.T("integer")},
		prop{Name: "vlan_link", Schema: str()},
	)

	const (
		ipv4Host    = `^(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)$`
		v6          = `([0-9a-fA-F]{1,4}:){7,7}[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,7}:|([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}|([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}|([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}|[0-9a-fA-F]{1,4}:((:[0-9a-fA-F]{1,4}){1,6})|`
		v6Mapped    = `|fe80:(:[0-9a-fA-F]{0,4}){0,4}%[0-9a-zA-Z]{1,}|::(ffff(:0{1,4}){0,1}:){0,1}((25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9])\.){3,3}(25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9])|([0-9a-fA-F]{1,4}:){1,4}:((25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9])\.){3,3}(25[0-5]|(2[0-4]|1{0,1}[0-9]){0,1}[0-9])`
		ipv6Host    = `^(` + v6 + `:((:[0-9a-fA-F]{1,4}){1,7}|:)` + v6Mapped + `)(/[0-9]{1,2})?$`
		ipv6Gateway = `^(` + v6 + `:((:[0-9a-fA-F]{1,4}){1,7}|:)` + v6Mapped + `)$`
		ipv6Net     = `^(` + v6 + `:((:[0-9a-fA-F]{1,4}){1,7})|(::))$`
		ipv4Netmask = `^(254|252|248|240|224|192|128|0)\.0\.0\.0|255\.(254|252|248|240|224|192|128|0)\.0\.0|255\.255\.(254|252|248|240|224|192|128|0)\.0|255\.255\.255\.(254|252|248|240|224|192|128|0)$`
		ipv4Net     = `^(([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])\.){3}([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])$`
	)
	service := func(host string) *schema {
		return obj([]string{"address", "type"},
			prop{Name: "address", Schema: pat(host)},
			prop{Name: "type", Schema: enum("dns")},
		)
	}
	ipv4Service, ipv6Service := service(ipv4Host), service(ipv6Host)
	route := func(nw, mask, gw string, svc *schema) *schema {
		return obj([]string{"gateway", "netmask", "network"},
			prop{Name: "network", Schema: pat(nw)},
			prop{Name: "netmask", Schema: pat(mask)},
			prop{Name: "gateway", Schema: pat(gw)},
			prop{Name: "services", Schema: &schema{Type: []string{"array"}, Items: svc}},
		)
	}
	network := func(typ *schema, host, mask string, rt *schema) *schema {
		return obj([]string{"id", "link", "network_id", "type"},
			prop{Name: "id", Schema: str()},
			prop{Name: "link", Schema: str()},
			prop{Name: "network_id", Schema: str()},
			prop{Name: "type", Schema: typ},
			prop{Name: "ip_address", Schema: pat(host)},
			prop{Name: "netmask", Schema: pat(mask)},
			prop{Name: "routes", Schema: &schema{Type: []string{"array"}, Items: rt}},
		)
	}
	ipv4Network := network(enum("ipv4", "ipv4_dhcp"), ipv4Host, ipv4Netmask, route(ipv4Net, ipv4Netmask, ipv4Host, ipv4Service))
	ipv6Network := network(enum("ipv6", "ipv6_dhcp", "ipv6_slaac"), ipv6Host, ipv6Net, route(ipv6Net, ipv6Net, ipv6Gateway, ipv6Service))

	return obj([]string{"links", "networks", "services"},
		prop{Name: "links", Schema: &schema{Type: []string{"array"}, Items: &schema{OneOf: []*schema{l2Link, l2Bond, l2VLAN}}}},
		prop{Name: "networks", Schema: &schema{Type: []string{"array"}, Items: &schema{OneOf: []*schema{ipv4Network, ipv6Network}}}},
		prop{Name: "services", Schema: &schema{Type: []string{"array"}, Items: &schema{AnyOf: []*schema{ipv4Service, ipv6Service}}}},
	)
}()

// validNetworkData is Ironic's validate_network_data, run on each value a
// patch gives /network_data: the value alone against the schema, with
// Ironic's words (and its trailing space).
func validNetworkData(v any) *ironichttp.Error {
	if msg := networkDataSchema.Check(v); msg != "" {
		return ironichttp.Errorf(400, "Invalid network_data: %s ", msg)
	}
	return nil
}
