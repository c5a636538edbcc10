package ironicinput

import "strings"

// Difference is a case where ferric answers other than Ironic 21.4 on
// purpose, with the reason.
type Difference struct {
	Ferric Answer
	Reason string
	// Summary: ferric answers the recorded status and the recorded message
	// without jsonschema's dump of the schema and the value (see summary),
	// Ferric is not used.
	Summary bool
}

// summary is a Glance schema error's message as ferric gives it: the
// message up to jsonschema's "Failed validating ..." paragraph, then
// webob's ending.
func summary(msg string) string {
	i := strings.Index(msg, "\n\nFailed validating ")
	j := strings.LastIndex(msg, "<br /><br />")
	if i < 0 || j < i {
		return msg
	}
	return msg[:i] + msg[j:]
}

// canonicalUUID is the reason of the cases that give a UUID in another
// form than lower case with dashes.
const canonicalUUID = "ferric keeps a UUID given in another form (upper case, no dashes) as the canonical lower-case dashed UUID, " +
	"its store's key, so the record is found by any form; Ironic keeps the string as sent (and then finds it by that string only)"

const stepIfaceMsg = "Schema error for template: 'bogus' is not one of ['vendor', 'power', 'management', 'firmware', 'deploy', 'bios', 'raid']"

// bondMode is the reason of the bond mode cases.
const bondMode = "Ironic 21.4's network-data schema lists the bond mode \"802.1ad\", a typo later Ironic releases corrected to " +
	"\"802.3ad\" (Linux's LACP mode, the one clients send); ferric takes the corrected list"

// networkDataInput is the value of the network_data input named name.
func networkDataInput(name string) any {
	for _, nd := range networkDataInputs() {
		if nd.name == name {
			return nd.value
		}
	}
	return nil
}

// Differences, by case name. Keep this list short: every entry is an
// answer a client of Ironic would not get from ferric.
var Differences = map[string]Difference{
	"port create pxe_enabled null": {
		Ferric: Answer{Status: 400, Fault: "Field `pxe_enabled' cannot be None"},
		Reason: "Ironic's port object refuses None with an unhandled error (500); the client's input is at fault, so 400 with the same text",
	},
	"node list fields bogus": {
		Ferric: Answer{Status: 400, Fault: `Field(s) "bogus" are not valid`},
		Reason: "Ironic 21.4 fails with a 500 (an attribute error) on an unknown field of a node listing; ferric answers the 400 Ironic gives for unknown fields elsewhere",
	},
	"node create description 4097": {
		Ferric: Answer{Status: 400, Fault: "Schema error for node: '" + strings.Repeat("a", 511) + "... is too long"},
		Reason: "a message quotes at most 512 bytes of a value (python.MaxRepr): an answer never echoes a huge request; values one past Ironic's limits of 255 and less are quoted whole",
	},
	"node create boot_interface unknown": {
		Ferric: Answer{Status: 400, Fault: "Could not find the following interface in the 'ironic.hardware.interfaces.boot' entrypoint: nope. Valid interfaces are ['fake', 'ipxe', 'pxe']."},
		Reason: "the enabled implementations are configuration: the recorded Ironic enables fake and pxe boot, ferric's fake-hardware also ipxe (the message is the same)",
	},
	"node patch power_interface unknown": {
		Ferric: Answer{Status: 400, Fault: "Could not find the following interface in the 'ironic.hardware.interfaces.power' entrypoint: nope. Valid interfaces are ['fake']."},
		Reason: "the enabled implementations are configuration: the recorded Ironic enables ipmitool power for every hardware type, ferric's fake-hardware offers fake (the message is the same)",
	},
	"template create step interface bad": {
		Ferric: Answer{Status: 400, Fault: stepIfaceMsg},
		Reason: "ferric's deploy steps include the vendor and firmware interfaces of later Ironic releases",
	},
	"node create uuid upper": {
		Ferric: Answer{Status: 201, Fields: map[string]any{"driver": "fake-hardware", "uuid": "aaaaaaaa-1111-4111-8111-111111111111"}},
		Reason: canonicalUUID,
	},
	"node create uuid no dashes": {
		Ferric: Answer{Status: 201, Fields: map[string]any{"driver": "fake-hardware", "uuid": "bbbbbbbb-1111-4111-8111-11111111111b"}},
		Reason: canonicalUUID,
	},
	"port create uuid upper": {
		Ferric: Answer{Status: 201, Fields: map[string]any{"address": "52:54:00:00:02:4e", "node_uuid": "11111111-1111-4111-8111-111111111111", "uuid": "cccccccc-1111-4111-8111-111111111111"}},
		Reason: canonicalUUID,
	},
	"chassis create uuid upper": {
		Ferric: Answer{Status: 201, Fields: map[string]any{"uuid": "dddddddd-1111-4111-8111-111111111111"}},
		Reason: canonicalUUID,
	},
	"port patch pxe_enabled null": {
		Ferric: Answer{Status: 400, Fault: "Field `pxe_enabled' cannot be None"},
		Reason: "as for create: Ironic's 500 is the client's fault, so 400 with the same text",
	},
	"allocation create traits duplicate": {
		Ferric: Answer{Status: 201, Fields: map[string]any{"resource_class": "rc", "traits": []any{"CUSTOM_A"}}},
		Reason: "ferric keeps an allocation's traits as a set (a trait named twice once), as a node's traits are; matching is the same",
	},
	"node create network_data bond 802.3ad": {
		Ferric: Answer{Status: 201, Fields: map[string]any{"driver": "fake-hardware", "network_data": networkDataInput("bond 802.3ad")}},
		Reason: bondMode,
	},
	"node patch network_data bond 802.3ad": {
		Ferric: Answer{Status: 200, Fields: map[string]any{"network_data": networkDataInput("bond 802.3ad")}},
		Reason: bondMode,
	},
	"connector create type bogus": {
		Ferric: Answer{Status: 400, Fault: "Schema error for connector: 'bogus' is not one of ['iqn', 'ip', 'mac', 'wwnn', 'wwpn', 'port', 'portgroup']"},
		Reason: "Ironic stores any connector type and its storage interface fails on it later; ferric refuses a type no client or storage interface knows (TestBadInputIsClientError)",
	},
	"connector patch type bogus": {
		Ferric: Answer{Status: 400, Fault: "Schema error for patch: 'bogus' is not one of ['iqn', 'ip', 'mac', 'wwnn', 'wwpn', 'port', 'portgroup']"},
		Reason: "as for create: the type is checked first (Ironic 21.4 answers its conductor's refusal to update volumes of a node whose power state is unknown)",
	},
}

// inspectorVersion is the reason of the malformed version cases.
const inspectorVersion = "ironic-inspector 11.1 reads the version header as a tuple of integers and fails on its own error " +
	"response (a TypeError, 500) when that fails or has one part, and accepts any tuple in range (\"1.2.3\"); later releases " +
	"parse it with microversion_parse and answer this 400 to anything but MAJOR.MINOR, as ferric does"

const malformedVersion = "Malformed API version: expected string in form of X.Y or latest"

// InspectorDifferences are the inspector API's deliberate differences from
// ironic-inspector 11.1, by call name.
var InspectorDifferences = map[string]Difference{
	"version garbage":     {Ferric: Answer{Status: 400, Fault: malformedVersion}, Reason: inspectorVersion},
	"version major only":  {Ferric: Answer{Status: 400, Fault: malformedVersion}, Reason: inspectorVersion},
	"version three parts": {Ferric: Answer{Status: 400, Fault: malformedVersion}, Reason: inspectorVersion},
	"list marker unknown": {
		Ferric: Answer{Status: 404, Fault: "The requested node was not found."},
		Reason: "ironic-inspector 11.1 overwrites the marker before quoting it (\"Node not found for marker: None\"); later releases " +
			"answer the database's not-found text, as ferric does",
	},
	"rule body list": {
		Ferric: Answer{Status: 400, Fault: "Invalid data: expected a JSON object, got list"},
		Reason: "a rule body that is not an object fails ironic-inspector's body.get (an AttributeError, 500); the client is at fault, " +
			"so ferric answers the 400 ironic-inspector gives such a body on /v1/continue",
	},
}

// schemaDump is the reason of the image schema errors.
const schemaDump = "Glance's schema errors end with jsonschema's dump of the failing schema fragment and of the value " +
	"(Python's pprint of Glance's schema, descriptions included); ferric answers jsonschema's message, the first paragraph, " +
	"which is the part clients match (and the whole of what Ironic answers for its schemas)"

// ImageDifferences are the image API's deliberate differences from Glance
// 25.1, by call name.
var ImageDifferences = map[string]Difference{
	"create body list": {
		Ferric: Answer{Status: 400, Fault: "Provided object does not match schema 'image': [{'name': 'x'}] is not of type 'object'<br /><br />\n\n\n"},
		Reason: "Glance's create deserializer fails on a list body (an AttributeError, 500); the client is at fault, so ferric answers " +
			"the 400 its schema check gives a value that is not an object",
	},
}

func init() {
	for _, name := range []string{"create name number", "create name 256", "create visibility bogus", "create protected string",
		"create os_hidden string", "create min_ram string", "create min_ram float", "create tags string", "create tag 256",
		"create id garbage", "create container_format bogus", "create owner 256", "create extra number", "create two errors",
		"patch visibility bogus", "patch extra number"} {
		ImageDifferences[name] = Difference{Summary: true, Reason: schemaDump}
	}
}
