package ruleapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/inspector/rules"
)

func serve(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer((&Handler{Rules: rules.NewMemStore()}).Routes())
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, srv *httptest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestCRUD(t *testing.T) {
	srv := serve(t)
	rule := `{"description": "qemu", "priority": 20,
	  "conditions": [{"op": "eq", "args": {"values": ["{inventory[system_vendor][manufacturer]}", "QEMU"]}}],
	  "actions": [{"op": "add-trait", "args": {"name": "CUSTOM_QEMU"}}]}`
	code, got := call(t, srv, "POST", "/v1/inspection_rules", rule)
	if code != 201 || got["uuid"] == nil || got["phase"] != "main" || got["priority"] != 20.0 {
		t.Fatalf("POST = %d %v", code, got)
	}
	id := got["uuid"].(string)
	code, got = call(t, srv, "POST", "/v1/inspection_rules", `{"actions": [{"op": "explode", "args": {}}]}`)
	if code != 400 || !strings.Contains(got["error_message"].(string), "unsupported action") {
		t.Errorf("POST invalid = %d %v, want 400 with the reason", code, got)
	}
	code, got = call(t, srv, "GET", "/v1/inspection_rules", "")
	items, _ := got["inspection_rules"].([]any)
	if code != 200 || len(items) != 1 {
		t.Fatalf("GET list = %d %v", code, got)
	}
	if _, has := items[0].(map[string]any)["conditions"]; has {
		t.Errorf("list without detail shows conditions: %v", items[0])
	}
	code, got = call(t, srv, "GET", "/v1/inspection_rules?detail=true", "")
	if items, _ := got["inspection_rules"].([]any); code != 200 || len(items) != 1 || items[0].(map[string]any)["actions"] == nil {
		t.Errorf("GET list detail = %d %v", code, got)
	}
	code, got = call(t, srv, "PATCH", "/v1/inspection_rules/"+id, `[{"op": "replace", "path": "/priority", "value": 5}, {"op": "add", "path": "/sensitive", "value": true}]`)
	if code != 200 || got["priority"] != 5.0 || got["sensitive"] != true || got["actions"] != nil || got["updated_at"] == nil {
		t.Errorf("PATCH = %d %v, want priority 5, sensitive with masked actions", code, got)
	}
	code, got = call(t, srv, "PATCH", "/v1/inspection_rules/"+id, `[{"op": "replace", "path": "/uuid", "value": "x"}]`)
	if code != 400 {
		t.Errorf("PATCH uuid = %d %v, want 400", code, got)
	}
	code, got = call(t, srv, "GET", "/v1/inspection_rules/"+id+"?fields=priority", "")
	if code != 200 || len(got) != 2 || got["priority"] != 5.0 {
		t.Errorf("GET fields = %d %v", code, got)
	}
	if code, _ := call(t, srv, "DELETE", "/v1/inspection_rules/"+id, ""); code != 204 {
		t.Errorf("DELETE = %d, want 204", code)
	}
	if code, _ := call(t, srv, "GET", "/v1/inspection_rules/"+id, ""); code != 404 {
		t.Errorf("GET deleted = %d, want 404", code)
	}
	call(t, srv, "POST", "/v1/inspection_rules", rule)
	call(t, srv, "POST", "/v1/inspection_rules", rule)
	code, got = call(t, srv, "GET", "/v1/inspection_rules?limit=1", "")
	if items, _ := got["inspection_rules"].([]any); code != 200 || len(items) != 1 || got["next"] == nil {
		t.Errorf("GET limit=1 = %d %v, want one item and next", code, got)
	}
	if code, _ := call(t, srv, "DELETE", "/v1/inspection_rules", ""); code != 204 {
		t.Errorf("DELETE all = %d, want 204", code)
	}
	if _, got := call(t, srv, "GET", "/v1/inspection_rules", ""); len(got["inspection_rules"].([]any)) != 0 {
		t.Errorf("rules left after DELETE all: %v", got)
	}
}

// TestListArgs: the listing's arguments take Ironic's argument rules
// (ironic/api/controllers/v1/inspection_rule.py: args.boolean for detail,
// args.integer and api_utils.validate_limit for limit), with their
// messages, as every other listing of the Ironic API.
func TestListArgs(t *testing.T) {
	srv := serve(t)
	for _, tc := range []struct {
		query string
		code  int
		msg   string
	}{
		{"detail=banana", 400, "Invalid detail: Unrecognized value 'banana', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"},
		{"detail=%20On%20", 200, ""},
		{"detail=", 400, "Invalid detail: Unrecognized value '', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"},
		{"limit=abc", 400, "Expected an integer for limit: abc"},
		{"limit=0", 400, "Limit must be positive"},
		{"limit=-2", 400, "Limit must be positive"},
		{"limit=%203%20", 200, ""},
	} {
		code, got := call(t, srv, "GET", "/v1/inspection_rules?"+tc.query, "")
		msg := ""
		if em, ok := got["error_message"].(string); ok {
			var fault struct {
				FaultString string `json:"faultstring"`
			}
			_ = json.Unmarshal([]byte(em), &fault)
			msg = fault.FaultString
		}
		if code != tc.code || msg != tc.msg {
			t.Errorf("GET /v1/inspection_rules?%s = %d %q, want %d %q", tc.query, code, msg, tc.code, tc.msg)
		}
	}
}
