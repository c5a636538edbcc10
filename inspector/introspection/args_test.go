package introspection_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/store"
)

// Ids of the argument table.
const (
	missingUUID = "99999999-9999-4999-8999-999999999999"
	ruleUUID    = "7d3c2a1b-5e4f-4a6b-8c7d-9e0f1a2b3c4d"
	// inspectedUUID is a node inspected before (in the introspection cache).
	inspectedUUID = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
)

// argCase is one request and ironic-inspector's answer to it, learnt from
// its source (openstack/ironic-inspector, named per case).
type argCase struct {
	name, method, path, version, body string
	status                            int
	message                           string
}

// inspectorArgCases are bad and borderline inputs of the ironic-inspector
// v1 API, in the order they are sent (a rule is created before the
// duplicate is refused).
var inspectorArgCases = []argCase{
	// main._get_version: microversion_parse.parse_version_string (Python
	// int() of both halves of the first dot), else this 400.
	{"version garbage", "GET", "/v1/introspection", "abc", "", 400, "Malformed API version: expected string in form of X.Y or latest"},
	{"version major only", "GET", "/v1/introspection", "1", "", 400, "Malformed API version: expected string in form of X.Y or latest"},
	{"version three parts", "GET", "/v1/introspection", "1.2.3", "", 400, "Malformed API version: expected string in form of X.Y or latest"},
	{"version latest any case", "GET", "/v1/introspection", "LATEST", "", 200, ""},
	{"version underscores", "GET", "/v1/introspection", "1.1_0", "", 200, ""},
	// main.check_api_version: out of [MINIMUM_API_VERSION, CURRENT_API_VERSION].
	{"version 2.0", "GET", "/v1/introspection", "2.0", "", 406, "Unsupported API version 2.0, supported range is 1.0 to 1.18"},
	{"version 1.19", "GET", "/v1/introspection", "1.19", "", 406, "Unsupported API version 1.19, supported range is 1.0 to 1.18"},
	{"version 1.-1", "GET", "/v1/introspection", "1.-1", "", 406, "Unsupported API version 1.-1, supported range is 1.0 to 1.18"},

	// api_tools.limit_field through raises_coercion_exceptions ("Bad
	// request: " and the ValueError or AssertionError text); 0 is
	// [DEFAULT]api_max_limit (1000).
	{"list limit garbage", "GET", "/v1/introspection?limit=abc", "", "", 400, "Bad request: invalid literal for int() with base 10: 'abc'"},
	{"list limit float", "GET", "/v1/introspection?limit=1.5", "", "", 400, "Bad request: invalid literal for int() with base 10: '1.5'"},
	{"list limit empty", "GET", "/v1/introspection?limit=", "", "", 400, "Bad request: invalid literal for int() with base 10: ''"},
	{"list limit negative", "GET", "/v1/introspection?limit=-1", "", "", 400, "Bad request: Limit cannot be negative"},
	{"list limit 1001", "GET", "/v1/introspection?limit=1001", "", "", 400, "Bad request: Limit over 1000"},
	{"list limit 0", "GET", "/v1/introspection?limit=0", "", "", 200, ""},
	{"list limit spaces", "GET", "/v1/introspection?limit=%207%20", "", "", 200, ""},
	// api_tools.marker_field: is_uuid_like, checked before the limit (the
	// order of api_introspection_statuses' arguments).
	{"list marker garbage", "GET", "/v1/introspection?marker=banana&limit=abc", "", "", 400, "Bad request: Marker not UUID-like"},
	// node_cache.get_node_list: db.get_node raises NodeNotFoundInDBError.
	{"list marker unknown", "GET", "/v1/introspection?marker=" + missingUUID, "", "", 404, "The requested node was not found."},
	{"list marker known", "GET", "/v1/introspection?marker=" + inspectedUUID, "", "", 200, ""},
	// api_tools.state_field: every state of introspection_state.States.all().
	{"list state bogus", "GET", "/v1/introspection?state=bogus", "", "", 400, `Bad request: State(s) "bogus" are not valid`},
	{"list states some bogus", "GET", "/v1/introspection?state=finished,bogus,x", "", "", 400, `Bad request: State(s) "bogus, x" are not valid`},
	{"list state finished", "GET", "/v1/introspection?state=finished,error", "", "", 200, ""},

	// node_cache.get_node: a UUID is looked up in the cache, a name in
	// Ironic first (common/ironic.get_node raises NotFound).
	{"status unknown uuid", "GET", "/v1/introspection/" + missingUUID, "", "", 404, "Could not find node " + missingUUID + " in cache"},
	{"status unknown name", "GET", "/v1/introspection/no-such-node", "", "", 404, "Node no-such-node was not found in Ironic"},
	{"status never inspected", "GET", "/v1/introspection/" + nodeUUID, "", "", 404, "Could not find node " + nodeUUID + " in cache"},
	{"status by name", "GET", "/v1/introspection/inspected", "", "", 200, ""},
	// main.api_introspection: strutils.bool_from_string(strict=True).
	{"start manage_boot garbage", "POST", "/v1/introspection/" + nodeUUID + "?manage_boot=maybe", "", "", 400, "Invalid boolean value for manage_boot: maybe"},
	{"start manage_boot empty", "POST", "/v1/introspection/" + nodeUUID + "?manage_boot=", "", "", 400, "Invalid boolean value for manage_boot: "},
	// introspect.introspect: ir_utils.get_node.
	{"start unknown", "POST", "/v1/introspection/" + missingUUID, "", "", 404, "Node " + missingUUID + " was not found in Ironic"},
	// introspect.abort: node_cache.get_node.
	{"abort unknown", "POST", "/v1/introspection/" + missingUUID + "/abort", "", "", 404, "Could not find node " + missingUUID + " in cache"},
	{"abort unknown name", "POST", "/v1/introspection/no-such-node/abort", "", "", 404, "Node no-such-node was not found in Ironic"},

	// main.api_continue: "expected a JSON object, got <class name>".
	{"continue list", "POST", "/v1/continue", "", "[1]", 400, "Invalid data: expected a JSON object, got list"},
	{"continue string", "POST", "/v1/continue", "", `"inventory"`, 400, "Invalid data: expected a JSON object, got str"},
	{"continue null", "POST", "/v1/continue", "", "null", 400, "Invalid data: expected a JSON object, got NoneType"},

	// main.api_rules: uuid (when truthy) is_uuid_like, scope at most 255.
	{"rule uuid garbage", "POST", "/v1/rules", "", `{"uuid": "banana", "conditions": [], "actions": [{"action": "fail", "message": "x"}]}`, 400, "Invalid UUID value"},
	{"rule uuid number", "POST", "/v1/rules", "", `{"uuid": 5, "conditions": [], "actions": [{"action": "fail", "message": "x"}]}`, 400, "Invalid UUID value"},
	{"rule scope 256", "POST", "/v1/rules", "", `{"scope": "` + strings.Repeat("s", 256) + `", "conditions": [], "actions": [{"action": "fail", "message": "x"}]}`, 400, "Invalid scope: the length of the scope should be within 255 characters"},
	{"rule create", "POST", "/v1/rules", "", `{"uuid": "` + ruleUUID + `", "scope": "` + strings.Repeat("s", 255) + `", "conditions": [], "actions": [{"action": "fail", "message": "x"}]}`, 201, ""},
	// db.create_rule: RuleUUIDExistError (409).
	{"rule create again", "POST", "/v1/rules", "", `{"uuid": "` + ruleUUID + `", "conditions": [], "actions": [{"action": "fail", "message": "x"}]}`, 409, "Rule with UUID " + ruleUUID + " already exists"},
	// db.get_rule, db.delete_rule: RuleNotFoundError (404).
	{"rule get unknown", "GET", "/v1/rules/" + missingUUID, "", "", 404, "Rule " + missingUUID + " was not found"},
	{"rule delete unknown", "DELETE", "/v1/rules/" + missingUUID, "", "", 404, "Rule " + missingUUID + " was not found"},
	// Deliberate difference: a body that is not an object fails
	// api_rules' body.get with an AttributeError, a 500 there; ferric
	// answers api_continue's 400.
	{"rule body list", "POST", "/v1/rules", "", "[1]", 400, "Invalid data: expected a JSON object, got list"},
}

// TestInspectorArgs sends inspectorArgCases to the API on a real socket
// and asserts ironic-inspector's status and message
// ({"error": {"message": ...}}) for each.
func TestInspectorArgs(t *testing.T) {
	e := setup(t)
	started, finished := time.Now().Add(-time.Hour).UTC(), time.Now().Add(-time.Minute).UTC()
	name := "inspected"
	n := &store.Node{UUID: inspectedUUID, Name: &name, Driver: "fake-hardware", ProvisionState: "manageable",
		DriverInfo: store.Object{}, DriverInternalInfo: store.Object{}, Properties: store.Object{}, Extra: store.Object{},
		InstanceInfo: store.Object{}, Traits: []string{}, InspectionStartedAt: &started, InspectionFinishedAt: &finished}
	if err := e.st.Update(context.Background(), func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
		t.Fatal(err)
	}
	for _, c := range inspectorArgCases {
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		resp, got := e.do(t, c.method, c.path, c.version, body)
		msg := ""
		if resp.StatusCode >= 400 {
			var fault struct {
				Error struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(got, &fault); err != nil {
				t.Errorf("%s: %s %s = %d %q, not ironic-inspector's error shape", c.name, c.method, c.path, resp.StatusCode, got)
				continue
			}
			msg = fault.Error.Message
		}
		if resp.StatusCode != c.status || msg != c.message {
			t.Errorf("%s: %s %s = %d %q, want %d %q", c.name, c.method, c.path, resp.StatusCode, msg, c.status, c.message)
		}
	}
}
