package api

import "github.com/ferric-metal/ferric/conductor/ironichttp"

// The JSON schemas of Ironic's controllers, written with the argument rules
// of ironichttp (one home for the messages). A schema lists properties in
// Ironic's order; fields of later Ironic releases are in it too, their
// microversion checked by the handlers.

type schema = ironichttp.Schema
type prop = ironichttp.Prop

var (
	tStr        = func() *schema { return ironichttp.T("string") }
	tStrNull    = func() *schema { return ironichttp.T("string", "null") }
	tObjNull    = func() *schema { return ironichttp.T("object", "null") }
	tBoolish    = func() *schema { return ironichttp.T("string", "boolean", "null") }
	tNullObject = func() *schema { return ironichttp.T("null", "object") }
)

// portSchema is port.PORT_SCHEMA (with name 1.88, description 1.97,
// vendor 1.100, category 1.101).
var portSchema = &schema{
	Type: []string{"object"},
	Properties: []prop{
		{Name: "address", Schema: tStr()},
		{Name: "category", Schema: tStrNull().Max(80)},
		{Name: "description", Schema: tStrNull().Max(255)},
		{Name: "extra", Schema: tObjNull()},
		{Name: "is_smartnic", Schema: tBoolish()},
		{Name: "local_link_connection", Schema: tNullObject()},
		{Name: "name", Schema: tStrNull().Max(255)},
		{Name: "node_uuid", Schema: tStr()},
		{Name: "physical_network", Schema: tStrNull().Max(64)},
		{Name: "portgroup_uuid", Schema: tStrNull()},
		{Name: "pxe_enabled", Schema: tBoolish()},
		{Name: "uuid", Schema: tStrNull()},
		{Name: "vendor", Schema: tStrNull().Max(32)},
	},
	Required:     []string{"address", "node_uuid"},
	NoAdditional: true,
}

func llcBase(required ...string) *schema {
	return &schema{
		Type: []string{"object"},
		Properties: []prop{
			{Name: "port_id", Schema: tStr()},
			{Name: "switch_id", Schema: tStr()},
			{Name: "hostname", Schema: tStr()},
			{Name: "switch_info", Schema: tStr()},
			{Name: "network_type", Schema: &schema{Type: []string{"string"}, Enum: []any{"managed", "unmanaged"}}},
			{Name: "vtep-logical-switch", Schema: tStr()},
			{Name: "vtep-physical-switch", Schema: tStr()},
		},
		NoAdditional:    true,
		AdditionalFirst: true,
		Required:        required,
	}
}

// localLinkSchema is utils.LOCAL_LINK_CONN_SCHEMA: a switch port, a smart
// NIC, an unmanaged link, or {}.
var localLinkSchema = func() *schema {
	unmanaged := llcBase("network_type")
	unmanaged.Properties[4].Schema = &schema{Type: []string{"string"}, Enum: []any{"unmanaged"}}
	return &schema{AnyOf: []*schema{
		llcBase("port_id", "switch_id"),
		llcBase("port_id", "hostname"),
		unmanaged,
		// OVN VTEP switches (1.90 to 1.104; the handler checks the version).
		llcBase("port_id", "vtep-logical-switch", "vtep-physical-switch"),
		{Type: []string{"object"}, NoAdditional: true},
	}}
}()
