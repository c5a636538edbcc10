package store

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

// Ids of the argument table.
const (
	argImage   = "a1b2c3d4-0000-4000-8000-000000000001"
	argMissing = "99999999-9999-4999-8999-999999999999"
	patch21    = "application/openstack-images-v2.1-json-patch"
	patch20    = "application/openstack-images-v2.0-json-patch"
)

// imageArgCase is one request and Glance's answer to it, learnt from its
// source (openstack/glance, named per case): the status, and the
// explanation or detail of the webob error it raises (webob's JSON body
// wraps them, see ironichttp.GlanceError).
type imageArgCase struct {
	name, method, path, ctype, body string
	status                          int
	explanation, detail             string
}

const schemaErr = "Provided object does not match schema 'image': "

var imageArgCases = []imageArgCase{
	// common/wsgi.JSONRequestDeserializer.from_json and
	// RequestDeserializer._get_request_body.
	{"create malformed JSON", "POST", "/v2/images", "application/json", "{", 400, "Malformed JSON in request body.", ""},
	{"create no body", "POST", "/v2/images", "application/json", "", 400, "Body expected in request.", ""},
	{"create body string", "POST", "/v2/images", "application/json", `"x"`, 400, "Unexpected body type. Expected list/dict.", ""},
	// RequestDeserializer._check_allowed (HTTPForbidden, explanation).
	{"create self", "POST", "/v2/images", "application/json", `{"self": "x"}`, 403, "Attribute 'self' is read-only.", ""},
	{"create stores", "POST", "/v2/images", "application/json", `{"stores": "x"}`, 403, "Attribute 'stores' is read-only.", ""},
	// schema.Schema.validate of images.get_schema(); the messages are
	// python-jsonschema's (checked with jsonschema 4.10 on Glance's base
	// properties).
	{"create name number", "POST", "/v2/images", "application/json", `{"name": 5}`, 400, schemaErr + "5 is not of type 'null', 'string'", ""},
	{"create name 256", "POST", "/v2/images", "application/json", `{"name": "` + strings.Repeat("n", 256) + `"}`, 400, schemaErr + "'" + strings.Repeat("n", 256) + "' is too long", ""},
	{"create visibility bogus", "POST", "/v2/images", "application/json", `{"visibility": "bogus"}`, 400, schemaErr + "'bogus' is not one of ['community', 'public', 'private', 'shared']", ""},
	{"create protected string", "POST", "/v2/images", "application/json", `{"protected": "yes"}`, 400, schemaErr + "'yes' is not of type 'boolean'", ""},
	{"create os_hidden string", "POST", "/v2/images", "application/json", `{"os_hidden": "true"}`, 400, schemaErr + "'true' is not of type 'boolean'", ""},
	{"create min_ram string", "POST", "/v2/images", "application/json", `{"min_ram": "1"}`, 400, schemaErr + "'1' is not of type 'integer'", ""},
	{"create min_ram float", "POST", "/v2/images", "application/json", `{"min_ram": 1.5}`, 400, schemaErr + "1.5 is not of type 'integer'", ""},
	{"create tags string", "POST", "/v2/images", "application/json", `{"tags": "x"}`, 400, schemaErr + "'x' is not of type 'array'", ""},
	{"create tag 256", "POST", "/v2/images", "application/json", `{"tags": ["` + strings.Repeat("t", 256) + `"]}`, 400, schemaErr + "'" + strings.Repeat("t", 256) + "' is too long", ""},
	{"create id garbage", "POST", "/v2/images", "application/json", `{"id": "banana"}`, 400, schemaErr + "'banana' does not match '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$'", ""},
	{"create container_format bogus", "POST", "/v2/images", "application/json", `{"container_format": "floppy"}`, 400, schemaErr + "'floppy' is not one of [None, 'ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed']", ""},
	{"create owner 256", "POST", "/v2/images", "application/json", `{"owner": "` + strings.Repeat("o", 256) + `"}`, 400, schemaErr + "'" + strings.Repeat("o", 256) + "' is too long", ""},
	// PermissiveSchema: other properties are strings.
	{"create extra number", "POST", "/v2/images", "application/json", `{"foo": 5}`, 400, schemaErr + "5 is not of type 'string'", ""},
	// jsonschema's best_match: a type error over another error at the same depth.
	{"create two errors", "POST", "/v2/images", "application/json", `{"min_ram": "x", "name": "` + strings.Repeat("n", 256) + `"}`, 400, schemaErr + "'x' is not of type 'integer'", ""},
	// RequestDeserializer.create: custom property names and reserved ones
	// (HTTPForbidden(msg): a detail).
	{"create extra name 256", "POST", "/v2/images", "application/json", `{"` + strings.Repeat("k", 256) + `": "v"}`, 400, "Custom property should not be greater than 255 characters.", ""},
	{"create deleted", "POST", "/v2/images", "application/json", `{"deleted": "x"}`, 403, "", "Attribute 'deleted' is reserved."},
	{"create os_glance namespace", "POST", "/v2/images", "application/json", `{"os_glance_x": "x"}`, 403, "", "Attribute 'os_glance_x' is reserved."},
	// domain.ImageFactory._check_readonly (ReadonlyProperty, explanation).
	{"create status", "POST", "/v2/images", "application/json", `{"status": "active"}`, 403, "Attribute 'status' is read-only.", ""},
	{"create checksum", "POST", "/v2/images", "application/json", `{"checksum": "x"}`, 403, "Attribute 'checksum' is read-only.", ""},
	// domain.Image.min_ram and min_disk setters (InvalidParameterValue).
	{"create min_ram negative", "POST", "/v2/images", "application/json", `{"min_ram": -1}`, 400, "Invalid value '-1' for parameter 'min_ram': Cannot be a negative value", ""},
	{"create min_disk negative", "POST", "/v2/images", "application/json", `{"min_disk": -5}`, 400, "Invalid value '-5' for parameter 'min_disk': Cannot be a negative value", ""},
	{"create", "POST", "/v2/images", "application/json", `{"id": "` + argImage + `", "name": "n", "disk_format": "qcow2", "container_format": "bare", "tags": ["a", "a"], "extra": "e"}`, 201, "", ""},
	// db/sqlalchemy/api._image_update: DBDuplicateEntry.
	{"create duplicate", "POST", "/v2/images", "application/json", `{"id": "` + argImage + `"}`, 409, "Image ID " + argImage + " already exists!", ""},

	// RequestDeserializer.index: _validate_limit, _get_filters.
	{"list limit garbage", "GET", "/v2/images?limit=abc", "", "", 400, "limit param must be an integer", ""},
	{"list limit float", "GET", "/v2/images?limit=1.5", "", "", 400, "limit param must be an integer", ""},
	{"list limit negative", "GET", "/v2/images?limit=-1", "", "", 400, "limit param must be positive", ""},
	{"list limit spaces", "GET", "/v2/images?limit=%201%20", "", "", 200, "", ""},
	{"list limit huge", "GET", "/v2/images?limit=100000", "", "", 200, "", ""},
	{"list visibility bogus", "GET", "/v2/images?visibility=bogus", "", "", 400, "Invalid visibility value: bogus", ""},
	// ImagesController.index: the marker's ImageNotFound is a 400.
	{"list marker unknown", "GET", "/v2/images?marker=" + argMissing, "", "", 400, "No image found with ID " + argMissing, ""},
	// ImagesController.show, delete.
	{"show unknown", "GET", "/v2/images/" + argMissing, "", "", 404, "No image found with ID " + argMissing, ""},
	{"delete unknown", "DELETE", "/v2/images/" + argMissing, "", "", 404, "Failed to find image " + argMissing + " to delete", ""},

	// RequestDeserializer.update: the media type (HTTPUnsupportedMediaType
	// with a detail; webob's 415 template names the type).
	{"patch json", "PATCH", "/v2/images/" + argImage, "application/json", `[]`, 415, "The request media type application/json is not supported by this server.", "Image PATCH expects Content-Type one of: " + patchTypeList},
	{"patch not list", "PATCH", "/v2/images/" + argImage, patch21, `{"op": "add"}`, 400, "Request body must be a JSON array of operation objects.", ""},
	{"patch op not object", "PATCH", "/v2/images/" + argImage, patch21, `["x"]`, 400, "Operations must be JSON objects.", ""},
	// _get_change_operation_d10, _get_change_path_d10, _get_change_value.
	{"patch no op", "PATCH", "/v2/images/" + argImage, patch21, `[{"path": "/name", "value": "x"}]`, 400, "Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.", ""},
	{"patch op move", "PATCH", "/v2/images/" + argImage, patch21, `[{"op": "move", "path": "/name", "value": "x"}]`, 400, "Invalid operation: `move`. It must be one of the following: add, remove, replace.", ""},
	{"patch no path", "PATCH", "/v2/images/" + argImage, patch21, `[{"op": "add", "value": "x"}]`, 400, "Unable to find 'path' in JSON Schema change", ""},
	{"patch no value", "PATCH", "/v2/images/" + argImage, patch21, `[{"op": "add", "path": "/name"}]`, 400, `Operation "add" requires a member named "value".`, ""},
	// _get_change_operation_d4 (draft 4: the op is the member's name).
	{"patch d4 two ops", "PATCH", "/v2/images/" + argImage, patch20, `[{"add": "/a", "replace": "/b", "value": "x"}]`, 400, `Operation objects must contain only one member named "add", "remove", or "replace".`, ""},
	{"patch d4 no op", "PATCH", "/v2/images/" + argImage, patch20, `[{"path": "/a", "value": "x"}]`, 400, `Operation objects must contain exactly one member named "add", "remove", or "replace".`, ""},
	{"patch d4 add", "PATCH", "/v2/images/" + argImage, patch20, `[{"add": "/d4", "value": "x"}]`, 200, "", ""},
	// _validate_json_pointer, _validate_path.
	{"patch path no slash", "PATCH", "/v2/images/" + argImage, patch21, `[{"op": "add", "path": "name", "value": "x"}]`, 400, "Pointer `name` does not start with \"/\".", ""},
	{"patch path adjacent", "PATCH", "/v2/images/" + argImage, patch21, `[{"op": "add", "path": "/a//b", "value": "x"}]`, 400, "Pointer `/a//b` contains adjacent \"/\".", ""},
	{"patch path trailing", "PATCH", "/v2/images/" + argImage, patch21, `[{"op": "add", "path": "/a/", "value": "x"}]`, 400, "Pointer `/a/` end with \"/\".", ""},
	{"patch path tilde", "PATCH", "/v2/images/" + argImage, patch21, `[{"op": "add", "path": "/a~2", "value": "x"}]`, 400, "Pointer `/a~2` contains \"~\" not part of a recognized escape sequence.", ""},
	{"patch path deep", "PATCH", "/v2/images/" + argImage, patch21, `[{"op": "add", "path": "/a/b", "value": "x"}]`, 400, "Invalid JSON pointer for this resource: '/a/b'", ""},
	// _validate_change: read-only, reserved, the value against the schema.
	{"patch id", "PATCH", "/v2/images/" + argImage, patch21, `[{"op": "replace", "path": "/id", "value": "x"}]`, 403, "Attribute 'id' is read-only.", ""},
	{"patch size", "PATCH", "/v2/images/" + argImage, patch21, `[{"op": "replace", "path": "/size", "value": 1}]`, 403, "Attribute 'size' is read-only.", ""},
	{"patch deleted", "PATCH", "/v2/images/" + argImage, patch21, `[{"op": "add", "path": "/deleted", "value": "x"}]`, 403, "Attribute 'deleted' is reserved.", ""},
	{"patch visibility bogus", "PATCH", "/v2/images/" + argImage, patch21, `[{"op": "replace", "path": "/visibility", "value": "bogus"}]`, 400, schemaErr + "'bogus' is not one of ['community', 'public', 'private', 'shared']", ""},
	{"patch extra number", "PATCH", "/v2/images/" + argImage, patch21, `[{"op": "add", "path": "/foo", "value": 5}]`, 400, schemaErr + "5 is not of type 'string'", ""},
	// ImagesController._do_replace, _do_remove (HTTPConflict(msg),
	// HTTPForbidden(msg): details); the min_ram setter.
	{"patch replace missing", "PATCH", "/v2/images/" + argImage, patch21, `[{"op": "replace", "path": "/nothere", "value": "x"}]`, 409, "", "Property nothere does not exist."},
	{"patch remove missing", "PATCH", "/v2/images/" + argImage, patch21, `[{"op": "remove", "path": "/nothere"}]`, 409, "", "Property nothere does not exist."},
	{"patch remove name", "PATCH", "/v2/images/" + argImage, patch21, `[{"op": "remove", "path": "/name"}]`, 403, "", "Property name may not be removed."},
	{"patch min_ram negative", "PATCH", "/v2/images/" + argImage, patch21, `[{"op": "replace", "path": "/min_ram", "value": -1}]`, 400, "Invalid value '-1' for parameter 'min_ram': Cannot be a negative value", ""},
	{"patch replace extra", "PATCH", "/v2/images/" + argImage, patch21, `[{"op": "replace", "path": "/extra", "value": "f"}, {"op": "remove", "path": "/d4"}]`, 200, "", ""},
	{"patch unknown image", "PATCH", "/v2/images/" + argMissing, patch21, `[{"op": "replace", "path": "/name", "value": "x"}]`, 404, "No image found with ID " + argMissing, ""},
}

// TestImageArgs sends imageArgCases to the image API on a real socket, in
// order, and asserts Glance's status and webob's JSON error body for each.
func TestImageArgs(t *testing.T) {
	_, base := newServer(t, t.TempDir())
	for _, c := range imageArgCases {
		resp, got := do(t, c.method, base+c.path, c.ctype, strings.NewReader(c.body))
		if resp.StatusCode != c.status {
			t.Errorf("%s: %s %s = %d %s, want %d", c.name, c.method, c.path, resp.StatusCode, got, c.status)
			continue
		}
		if c.status < 400 {
			continue
		}
		var body map[string]any
		if err := json.Unmarshal(got, &body); err != nil {
			t.Errorf("%s: %s %s = %d %q, not webob's JSON error", c.name, c.method, c.path, resp.StatusCode, got)
			continue
		}
		want := webobMessage(c)
		if body["message"] != want || body["title"] == nil || body["code"] == nil {
			t.Errorf("%s: %s %s = %d %q,\n want message %q", c.name, c.method, c.path, resp.StatusCode, got, want)
		}
	}
}

// webobMessage is the message of webob's JSON error body (its template,
// with its default explanation when Glance gives a detail only), written
// out independently of ironichttp.GlanceError.
func webobMessage(c imageArgCase) string {
	if c.status == 415 {
		return c.explanation + "\n<br /><br />\n" + c.detail
	}
	explanation := c.explanation
	if explanation == "" {
		explanation = map[int]string{403: "Access was denied to this resource.", 409: "There was a conflict when trying to complete your request."}[c.status]
	}
	return explanation + "<br /><br />\n" + c.detail + "\n\n"
}

// FuzzPatchRequest: any PATCH body is parsed or refused with a Glance
// error, never a panic; what is accepted names one of Glance's three
// operations and a path of one token (locations aside).
func FuzzPatchRequest(f *testing.F) {
	for _, c := range imageArgCases {
		if c.method == "PATCH" {
			f.Add(c.ctype == patch20, c.body)
		}
	}
	f.Fuzz(func(t *testing.T, draft4 bool, body string) {
		ct := patch21
		if draft4 {
			ct = patch20
		}
		req := httptest.NewRequest("PATCH", "/v2/images/"+argImage, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		changes, err := patchRequest(req)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.code < 400 {
				t.Fatalf("patchRequest(%q) = %v, not a Glance error", body, err)
			}
			return
		}
		for _, c := range changes {
			if (c.op != "add" && c.op != "remove" && c.op != "replace") || len(c.path) != 1 {
				t.Fatalf("patchRequest(%q) accepted %+v", body, c)
			}
		}
		img := &Image{Status: StatusQueued}
		_ = applyChanges(img, changes)
	})
}
