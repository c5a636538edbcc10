package api

import (
	"slices"
	"strings"
	"sync"

	"github.com/ferric-metal/ferric/conductor/internal/python"
	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/manager"
)

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

// nodeSchemaTypes are the types node.node_schema gives each field; the
// fields of later releases not named here take any value in the schema
// (their setters check them).
var nodeSchemaTypes = map[string]*schema{
	"automated_clean":   tBoolish(),
	"boot_mode":         tStrNull(),
	"chassis_uuid":      tStrNull(),
	"conductor_group":   tStrNull(),
	"console_enabled":   tBoolish(),
	"description":       tStrNull().Max(4096),
	"driver":            tStr(),
	"driver_info":       tObjNull(),
	"extra":             tObjNull(),
	"instance_info":     tObjNull(),
	"instance_uuid":     tStrNull(),
	"lessee":            tStrNull(),
	"maintenance":       tBoolish(),
	"name":              tStrNull(),
	"owner":             tStrNull(),
	"properties":        tObjNull(),
	"resource_class":    tStrNull().Max(80),
	"retired":           tBoolish(),
	"retired_reason":    tStrNull(),
	"secure_boot":       tBoolish(),
	"shard":             tStrNull(),
	"uuid":              tStrNull(),
	"disable_power_off": tBoolish(),
	"instance_name":     tStrNull(),
	"parent_node":       tStrNull(),
	"network_data": {AnyOf: []*schema{
		ironichttp.T("null"),
		{Type: []string{"object"}, NoAdditional: true},
		networkDataSchema,
	}},
	// node_patch_schema adds these two.
	"protected":        tBoolish(),
	"protected_reason": tStrNull(),
}

// nodeSchema is node_schema() (create: without protected) or
// node_patch_schema(); properties in name order, as Ironic writes them.
func nodeSchema(patch bool) *schema {
	s := &schema{Type: []string{"object"}, Required: []string{"driver"}, NoAdditional: true}
	names := append(append([]string{"uuid", "console_enabled", "boot_mode", "secure_boot"}, patchableNode...), creatableNode...)
	slices.Sort(names)
	names = slices.Compact(names)
	for _, n := range names {
		if !patch && (n == "protected" || n == "protected_reason") {
			continue
		}
		t := nodeSchemaTypes[n]
		if t == nil {
			if strings.HasSuffix(n, "_interface") {
				t = tStrNull()
			} else {
				t = &schema{}
			}
		}
		s.Properties = append(s.Properties, prop{Name: n, Schema: t})
	}
	return s
}

var nodeCreateSchema, nodePatchSchema = sync.OnceValue(func() *schema { return nodeSchema(false) }), sync.OnceValue(func() *schema { return nodeSchema(true) })

// validateNode is Ironic's node_validator (create, name "node") or
// node_patch_validator (the patched node, name "patch"): the schema, then
// NODE_VALIDATE_EXTRA, whose boolean-like strings are coerced in doc.
func validateNode(name string, doc map[string]any) *Error {
	s := nodeCreateSchema()
	if name == "patch" {
		s = nodePatchSchema()
	}
	if e := s.Validate(name, doc); e != nil {
		return e
	}
	for _, k := range []string{"automated_clean", "chassis_uuid", "console_enabled", "instance_uuid", "protected", "maintenance", "retired", "uuid"} {
		switch k {
		case "chassis_uuid", "instance_uuid", "uuid":
			if e := ironichttp.ArgUUID(k, doc[k]); e != nil {
				return e
			}
		default:
			if _, ok := doc[k]; !ok {
				continue
			}
			b, e := ironichttp.ArgBool(k, doc[k])
			if e != nil {
				return e
			}
			if b != nil {
				doc[k] = *b
			}
		}
	}
	return nil
}

// traitSchema is utils.TRAITS_SCHEMA: a custom trait or a standard one.
// Standard traits are os-traits' names; ferric takes any upper-case name
// of that form rather than pinning one os-traits release.
var traitSchema = &schema{
	Type: []string{"string"}, MinLength: 1, MaxLength: 255,
	AnyOf: []*schema{
		{Pattern: `^CUSTOM_[A-Z0-9_]+$`},
		{Func: func(v any) string {
			if s, ok := v.(string); ok && traitRE.MatchString(s) {
				return ""
			}
			return python.Repr(v) + " is not one of the standard traits"
		}},
	},
}

// traitsBodySchema is the body of PUT /v1/nodes/{node}/traits.
var traitsBodySchema = &schema{
	Type:         []string{"object"},
	Properties:   []prop{{Name: "traits", Schema: &schema{Type: []string{"array"}, Items: traitSchema}}},
	NoAdditional: true,
}

// pyStr is an optional string as Python's "%s" shows it (None when unset).
func pyStr(s *string) string {
	if s == nil {
		return "None"
	}
	return python.Cut(*s)
}

// pyList is a list of strings as Python shows it: ['a', 'b'].
func pyList(xs []string) string {
	l := make([]any, len(xs))
	for i, x := range xs {
		l[i] = x
	}
	return python.Repr(l)
}

// allocationSchema is allocation.ALLOCATION_SCHEMA (owner: 1.60, node:
// 1.58, checked by the handler).
var allocationSchema = &schema{
	Type: []string{"object"},
	Properties: []prop{
		{Name: "candidate_nodes", Schema: &schema{Type: []string{"array", "null"}, Items: tStr()}},
		{Name: "extra", Schema: tObjNull()},
		{Name: "name", Schema: tStrNull()},
		{Name: "node", Schema: tStrNull()},
		{Name: "owner", Schema: tStrNull()},
		{Name: "resource_class", Schema: tStrNull().Max(80)},
		{Name: "traits", Schema: &schema{Type: []string{"array", "null"}, Items: traitSchema}},
		{Name: "uuid", Schema: tStrNull()},
	},
	NoAdditional: true,
}

// chassisSchema is chassis.CHASSIS_SCHEMA.
var chassisSchema = &schema{
	Type: []string{"object"},
	Properties: []prop{
		{Name: "uuid", Schema: tStrNull()},
		{Name: "extra", Schema: tObjNull()},
		{Name: "description", Schema: tStrNull().Max(255)},
	},
	NoAdditional: true,
}

// deployStepSchema is utils.DEPLOY_STEP_SCHEMA (the interfaces of ferric's
// deploy steps, which are those of a later Ironic than 21.4).
var deployStepSchema = &schema{
	Type: []string{"object"},
	Properties: []prop{
		{Name: "args", Schema: ironichttp.T("object")},
		{Name: "interface", Schema: &schema{Type: []string{"string"}, Enum: anyList(manager.StepInterfaces())}},
		{Name: "priority", Schema: &schema{AnyOf: []*schema{
			{Type: []string{"integer"}, Minimum: ptr(0.0)},
			{Type: []string{"string"}, MinLength: 1, Pattern: `^[0-9]+$`},
		}}},
		{Name: "step", Schema: &schema{Type: []string{"string"}, MinLength: 1}},
	},
	Required:     []string{"interface", "step", "args", "priority"},
	NoAdditional: true,
}

// templateSchema is deploy_template.TEMPLATE_SCHEMA.
var templateSchema = &schema{
	Type: []string{"object"},
	Properties: []prop{
		{Name: "description", Schema: tStrNull().Max(255)},
		{Name: "extra", Schema: tObjNull()},
		{Name: "name", Schema: traitSchema},
		{Name: "steps", Schema: &schema{Type: []string{"array"}, Items: deployStepSchema, MinItems: 1}},
		{Name: "uuid", Schema: tStrNull()},
	},
	Required:     []string{"steps", "name"},
	NoAdditional: true,
}

// validatePatchedTemplate is Ironic's check of a patched template: each
// step pruned to the step schema's fields and checked, then the template.
func validatePatchedTemplate(doc map[string]any) *Error {
	steps, _ := doc["steps"].([]any)
	for _, st := range steps {
		m, ok := st.(map[string]any)
		if !ok {
			continue
		}
		for k := range m {
			if deployStepSchema.Prop(k) == nil {
				delete(m, k)
			}
		}
		if e := deployStepSchema.Validate("patch", m); e != nil {
			return e
		}
	}
	return templateSchema.Validate("patch", doc)
}

func anyList(xs []string) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// portgroupSchema is portgroup.PORTGROUP_SCHEMA (with physical_network and
// category of later releases).
var portgroupSchema = &schema{
	Type: []string{"object"},
	Properties: []prop{
		{Name: "address", Schema: tStrNull()},
		{Name: "category", Schema: tStrNull().Max(80)},
		{Name: "extra", Schema: tObjNull()},
		{Name: "mode", Schema: tStrNull()},
		{Name: "name", Schema: tStrNull()},
		{Name: "node_uuid", Schema: tStr()},
		{Name: "physical_network", Schema: tStrNull().Max(64)},
		{Name: "properties", Schema: tObjNull()},
		{Name: "standalone_ports_supported", Schema: tBoolish()},
		{Name: "uuid", Schema: tStrNull()},
	},
	Required:     []string{"node_uuid"},
	NoAdditional: true,
}
