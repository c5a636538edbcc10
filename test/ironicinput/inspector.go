package ironicinput

import (
	"net/http"
	"strings"
)

// Ids of the inspector's fixtures and cases.
const (
	// InspNodeUUID is a node of Ironic never introspected.
	InspNodeUUID = "6d2b8f4e-2c37-4f3a-9f0c-0a3a1b8f9e11"
	// InspectedUUID is a node (named "inspected") whose introspection was
	// started by the fixtures, so the inspector knows it.
	InspectedUUID = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d"
	// RuleUUID is the introspection rule the cases create.
	RuleUUID = "7d3c2a1b-5e4f-4a6b-8c7d-9e0f1a2b3c4d"
	// InspectorVersionHeader is ironic-inspector's microversion header.
	InspectorVersionHeader = "X-OpenStack-Ironic-Inspector-API-Version"
)

// InspectorCalls are the fixtures (two nodes in Ironic, one of them
// managed and its introspection started), then bad and borderline inputs
// of the ironic-inspector v1 API, in the order they are sent (a rule is
// created before the duplicate is refused). Each group names the
// ironic-inspector function that answers it.
func InspectorCalls() []Call {
	ironicHdr := map[string]string{"X-OpenStack-Ironic-API-Version": Version, "Content-Type": "application/json"}
	cs := []Call{
		{Name: "fixture node", Service: Ironic, Method: http.MethodPost, Path: "/v1/nodes", Header: ironicHdr, Fixture: true,
			Body: `{"uuid": "` + InspNodeUUID + `", "name": "never-inspected", "driver": "fake-hardware"}`},
		{Name: "fixture inspected node", Service: Ironic, Method: http.MethodPost, Path: "/v1/nodes", Header: ironicHdr, Fixture: true,
			Body: `{"uuid": "` + InspectedUUID + `", "name": "inspected", "driver": "fake-hardware"}`},
		{Name: "fixture manage", Service: Ironic, Method: http.MethodPut, Path: "/v1/nodes/" + InspectedUUID + "/states/provision", Header: ironicHdr, Fixture: true,
			Body:  `{"target": "manage"}`,
			Until: &Until{Path: "/v1/nodes/" + InspectedUUID, Field: "provision_state", Value: "manageable"}},
		{Name: "fixture introspect", Service: Inspector, Method: http.MethodPost, Path: "/v1/introspection/" + InspectedUUID, Fixture: true,
			Until: &Until{Path: "/v1/introspection/" + InspectedUUID}},
	}
	insp := func(name, method, path, version, body string) {
		h := map[string]string{}
		if version != "" {
			h[InspectorVersionHeader] = version
		}
		if body != "" {
			h["Content-Type"] = "application/json"
		}
		cs = append(cs, Call{Name: name, Service: Inspector, Method: method, Path: path, Header: h, Body: body})
	}
	const get, post, del = http.MethodGet, http.MethodPost, http.MethodDelete
	failRule := `"conditions": [], "actions": [{"action": "fail", "message": "x"}]`

	// main._get_version: microversion_parse.parse_version_string (Python
	// int() of both halves of the first dot), else a 400.
	insp("version garbage", get, "/v1/introspection", "abc", "")
	insp("version major only", get, "/v1/introspection", "1", "")
	insp("version three parts", get, "/v1/introspection", "1.2.3", "")
	insp("version latest any case", get, "/v1/introspection", "LATEST", "")
	insp("version underscores", get, "/v1/introspection", "1.1_0", "")
	// main.check_api_version: out of [MINIMUM_API_VERSION, CURRENT_API_VERSION].
	insp("version 2.0", get, "/v1/introspection", "2.0", "")
	insp("version 1.19", get, "/v1/introspection", "1.19", "")
	insp("version 1.-1", get, "/v1/introspection", "1.-1", "")

	// api_tools.limit_field through raises_coercion_exceptions ("Bad
	// request: " and the ValueError or AssertionError text); 0 is
	// [DEFAULT]api_max_limit (1000).
	insp("list limit garbage", get, "/v1/introspection?limit=abc", "", "")
	insp("list limit float", get, "/v1/introspection?limit=1.5", "", "")
	insp("list limit empty", get, "/v1/introspection?limit=", "", "")
	insp("list limit negative", get, "/v1/introspection?limit=-1", "", "")
	insp("list limit 1001", get, "/v1/introspection?limit=1001", "", "")
	insp("list limit 0", get, "/v1/introspection?limit=0", "", "")
	insp("list limit spaces", get, "/v1/introspection?limit=%207%20", "", "")
	// api_tools.marker_field: is_uuid_like, checked before the limit.
	insp("list marker garbage", get, "/v1/introspection?marker=banana&limit=abc", "", "")
	// node_cache.get_node_list: db.get_node raises NodeNotFoundInDBError.
	insp("list marker unknown", get, "/v1/introspection?marker="+MissingUUID, "", "")
	insp("list marker known", get, "/v1/introspection?marker="+InspectedUUID, "", "")
	// api_tools.state_field: the states of introspection_state.States.all().
	insp("list state bogus", get, "/v1/introspection?state=bogus", "", "")
	insp("list states some bogus", get, "/v1/introspection?state=finished,bogus,x", "", "")
	insp("list state finished", get, "/v1/introspection?state=finished,error", "", "")

	// node_cache.get_node: a UUID is looked up in the cache, a name in
	// Ironic first (common/ironic.get_node raises NotFound).
	insp("status unknown uuid", get, "/v1/introspection/"+MissingUUID, "", "")
	insp("status unknown name", get, "/v1/introspection/no-such-node", "", "")
	insp("status never inspected", get, "/v1/introspection/"+InspNodeUUID, "", "")
	insp("status by name", get, "/v1/introspection/inspected", "", "")
	// main.api_introspection: strutils.bool_from_string(strict=True).
	insp("start manage_boot garbage", post, "/v1/introspection/"+InspNodeUUID+"?manage_boot=maybe", "", "")
	insp("start manage_boot empty", post, "/v1/introspection/"+InspNodeUUID+"?manage_boot=", "", "")
	// introspect.introspect: ir_utils.get_node.
	insp("start unknown", post, "/v1/introspection/"+MissingUUID, "", "")
	// introspect.abort: node_cache.get_node.
	insp("abort unknown", post, "/v1/introspection/"+MissingUUID+"/abort", "", "")
	insp("abort unknown name", post, "/v1/introspection/no-such-node/abort", "", "")

	// main.api_continue: "expected a JSON object, got <class name>".
	insp("continue list", post, "/v1/continue", "", "[1]")
	insp("continue string", post, "/v1/continue", "", `"inventory"`)
	insp("continue null", post, "/v1/continue", "", "null")

	// main.api_rules: uuid (when truthy) is_uuid_like, scope at most 255.
	insp("rule uuid garbage", post, "/v1/rules", "", `{"uuid": "banana", `+failRule+`}`)
	insp("rule uuid number", post, "/v1/rules", "", `{"uuid": 5, `+failRule+`}`)
	insp("rule scope 256", post, "/v1/rules", "", `{"scope": "`+strings.Repeat("s", 256)+`", `+failRule+`}`)
	insp("rule create", post, "/v1/rules", "", `{"uuid": "`+RuleUUID+`", "scope": "`+strings.Repeat("s", 255)+`", `+failRule+`}`)
	// db.create_rule: RuleUUIDExistError (409).
	insp("rule create again", post, "/v1/rules", "", `{"uuid": "`+RuleUUID+`", `+failRule+`}`)
	// db.get_rule, db.delete_rule: RuleNotFoundError (404).
	insp("rule get unknown", get, "/v1/rules/"+MissingUUID, "", "")
	insp("rule delete unknown", del, "/v1/rules/"+MissingUUID, "", "")
	// api_rules reads the body with body.get: a body that is not an object.
	insp("rule body list", post, "/v1/rules", "", "[1]")
	return cs
}
