package ironicinput

import (
	"net/http"
	"strings"
)

// Ids and media types of the image API's cases.
const (
	// ImageUUID is the image the cases create, then patch.
	ImageUUID = "a1b2c3d4-0000-4000-8000-000000000001"
	patch21   = "application/openstack-images-v2.1-json-patch"
	patch20   = "application/openstack-images-v2.0-json-patch"
)

// ImageCalls are bad and borderline inputs of the image (Glance v2) API,
// in the order they are sent (an image is created, then patched). Each
// group names the Glance function that answers it. Every call accepts
// JSON, as the clients do (webob's errors are JSON then).
func ImageCalls() []Call {
	var cs []Call
	img := func(name, method, path, ctype, body string) {
		h := map[string]string{"Accept": "application/json"}
		if ctype != "" {
			h["Content-Type"] = ctype
		}
		cs = append(cs, Call{Name: name, Service: Image, Method: method, Path: path, Header: h, Body: body})
	}
	const argImage, argMissing = ImageUUID, MissingUUID
	// common/wsgi.JSONRequestDeserializer.from_json and
	// RequestDeserializer._get_request_body.
	img("create malformed JSON", http.MethodPost, "/v2/images", "application/json", "{")
	img("create no body", http.MethodPost, "/v2/images", "application/json", "")
	img("create body string", http.MethodPost, "/v2/images", "application/json", `"x"`)
	// A list passes _get_request_body; ImagesController.create then fails on it.
	img("create body list", http.MethodPost, "/v2/images", "application/json", `[{"name": "x"}]`)
	// RequestDeserializer._check_allowed (HTTPForbidden, explanation).
	img("create self", http.MethodPost, "/v2/images", "application/json", `{"self": "x"}`)
	img("create stores", http.MethodPost, "/v2/images", "application/json", `{"stores": "x"}`)
	// schema.Schema.validate of images.get_schema(); the messages are
	// python-jsonschema's (checked with jsonschema 4.10 on Glance's base
	// properties).
	img("create name number", http.MethodPost, "/v2/images", "application/json", `{"name": 5}`)
	img("create name 256", http.MethodPost, "/v2/images", "application/json", `{"name": "`+strings.Repeat("n", 256)+`"}`)
	img("create visibility bogus", http.MethodPost, "/v2/images", "application/json", `{"visibility": "bogus"}`)
	img("create protected string", http.MethodPost, "/v2/images", "application/json", `{"protected": "yes"}`)
	img("create os_hidden string", http.MethodPost, "/v2/images", "application/json", `{"os_hidden": "true"}`)
	img("create min_ram string", http.MethodPost, "/v2/images", "application/json", `{"min_ram": "1"}`)
	img("create min_ram float", http.MethodPost, "/v2/images", "application/json", `{"min_ram": 1.5}`)
	img("create tags string", http.MethodPost, "/v2/images", "application/json", `{"tags": "x"}`)
	img("create tag 256", http.MethodPost, "/v2/images", "application/json", `{"tags": ["`+strings.Repeat("t", 256)+`"]}`)
	img("create id garbage", http.MethodPost, "/v2/images", "application/json", `{"id": "banana"}`)
	img("create container_format bogus", http.MethodPost, "/v2/images", "application/json", `{"container_format": "floppy"}`)
	img("create owner 256", http.MethodPost, "/v2/images", "application/json", `{"owner": "`+strings.Repeat("o", 256)+`"}`)
	// PermissiveSchema: other properties are strings.
	img("create extra number", http.MethodPost, "/v2/images", "application/json", `{"foo": 5}`)
	// jsonschema's best_match: a type error over another error at the same depth.
	img("create two errors", http.MethodPost, "/v2/images", "application/json", `{"min_ram": "x", "name": "`+strings.Repeat("n", 256)+`"}`)
	// RequestDeserializer.create: custom property names and reserved ones
	// (HTTPForbidden(msg): a detail).
	img("create extra name 256", http.MethodPost, "/v2/images", "application/json", `{"`+strings.Repeat("k", 256)+`": "v"}`)
	img("create deleted", http.MethodPost, "/v2/images", "application/json", `{"deleted": "x"}`)
	img("create os_glance namespace", http.MethodPost, "/v2/images", "application/json", `{"os_glance_x": "x"}`)
	// domain.ImageFactory._check_readonly (ReadonlyProperty, explanation).
	img("create status", http.MethodPost, "/v2/images", "application/json", `{"status": "active"}`)
	img("create checksum", http.MethodPost, "/v2/images", "application/json", `{"checksum": "x"}`)
	// domain.Image.min_ram and min_disk setters (InvalidParameterValue).
	img("create min_ram negative", http.MethodPost, "/v2/images", "application/json", `{"min_ram": -1}`)
	img("create min_disk negative", http.MethodPost, "/v2/images", "application/json", `{"min_disk": -5}`)
	img("create", http.MethodPost, "/v2/images", "application/json", `{"id": "`+argImage+`", "name": "n", "disk_format": "qcow2", "container_format": "bare", "tags": ["a", "a"], "extra": "e"}`)
	// db/sqlalchemy/api._image_update: DBDuplicateEntry.
	img("create duplicate", http.MethodPost, "/v2/images", "application/json", `{"id": "`+argImage+`"}`)

	// RequestDeserializer.index: _validate_limit, _get_filters.
	img("list limit garbage", http.MethodGet, "/v2/images?limit=abc", "", "")
	img("list limit float", http.MethodGet, "/v2/images?limit=1.5", "", "")
	img("list limit negative", http.MethodGet, "/v2/images?limit=-1", "", "")
	img("list limit spaces", http.MethodGet, "/v2/images?limit=%201%20", "", "")
	img("list limit huge", http.MethodGet, "/v2/images?limit=100000", "", "")
	img("list visibility bogus", http.MethodGet, "/v2/images?visibility=bogus", "", "")
	// ImagesController.index: the marker's ImageNotFound is a 400.
	img("list marker unknown", http.MethodGet, "/v2/images?marker="+argMissing, "", "")
	// ImagesController.show, delete.
	img("show unknown", http.MethodGet, "/v2/images/"+argMissing, "", "")
	img("delete unknown", http.MethodDelete, "/v2/images/"+argMissing, "", "")

	// RequestDeserializer.update: the media type (HTTPUnsupportedMediaType
	// with a detail; webob's 415 template names the type).
	img("patch json", http.MethodPatch, "/v2/images/"+argImage, "application/json", `[]`)
	img("patch not list", http.MethodPatch, "/v2/images/"+argImage, patch21, `{"op": "add"}`)
	img("patch op not object", http.MethodPatch, "/v2/images/"+argImage, patch21, `["x"]`)
	// _get_change_operation_d10, _get_change_path_d10, _get_change_value.
	img("patch no op", http.MethodPatch, "/v2/images/"+argImage, patch21, `[{"path": "/name", "value": "x"}]`)
	img("patch op move", http.MethodPatch, "/v2/images/"+argImage, patch21, `[{"op": "move", "path": "/name", "value": "x"}]`)
	img("patch no path", http.MethodPatch, "/v2/images/"+argImage, patch21, `[{"op": "add", "value": "x"}]`)
	img("patch no value", http.MethodPatch, "/v2/images/"+argImage, patch21, `[{"op": "add", "path": "/name"}]`)
	// _get_change_operation_d4 (draft 4: the op is the member's name).
	img("patch d4 two ops", http.MethodPatch, "/v2/images/"+argImage, patch20, `[{"add": "/a", "replace": "/b", "value": "x"}]`)
	img("patch d4 no op", http.MethodPatch, "/v2/images/"+argImage, patch20, `[{"path": "/a", "value": "x"}]`)
	img("patch d4 add", http.MethodPatch, "/v2/images/"+argImage, patch20, `[{"add": "/d4", "value": "x"}]`)
	// _validate_json_pointer, _validate_path.
	img("patch path no slash", http.MethodPatch, "/v2/images/"+argImage, patch21, `[{"op": "add", "path": "name", "value": "x"}]`)
	img("patch path adjacent", http.MethodPatch, "/v2/images/"+argImage, patch21, `[{"op": "add", "path": "/a//b", "value": "x"}]`)
	img("patch path trailing", http.MethodPatch, "/v2/images/"+argImage, patch21, `[{"op": "add", "path": "/a/", "value": "x"}]`)
	img("patch path tilde", http.MethodPatch, "/v2/images/"+argImage, patch21, `[{"op": "add", "path": "/a~2", "value": "x"}]`)
	img("patch path deep", http.MethodPatch, "/v2/images/"+argImage, patch21, `[{"op": "add", "path": "/a/b", "value": "x"}]`)
	// _validate_change: read-only, reserved, the value against the schema.
	img("patch id", http.MethodPatch, "/v2/images/"+argImage, patch21, `[{"op": "replace", "path": "/id", "value": "x"}]`)
	img("patch size", http.MethodPatch, "/v2/images/"+argImage, patch21, `[{"op": "replace", "path": "/size", "value": 1}]`)
	img("patch deleted", http.MethodPatch, "/v2/images/"+argImage, patch21, `[{"op": "add", "path": "/deleted", "value": "x"}]`)
	img("patch visibility bogus", http.MethodPatch, "/v2/images/"+argImage, patch21, `[{"op": "replace", "path": "/visibility", "value": "bogus"}]`)
	img("patch extra number", http.MethodPatch, "/v2/images/"+argImage, patch21, `[{"op": "add", "path": "/foo", "value": 5}]`)
	// ImagesController._do_replace, _do_remove (HTTPConflict(msg),
	// HTTPForbidden(msg): details); the min_ram setter.
	img("patch replace missing", http.MethodPatch, "/v2/images/"+argImage, patch21, `[{"op": "replace", "path": "/nothere", "value": "x"}]`)
	img("patch remove missing", http.MethodPatch, "/v2/images/"+argImage, patch21, `[{"op": "remove", "path": "/nothere"}]`)
	img("patch remove name", http.MethodPatch, "/v2/images/"+argImage, patch21, `[{"op": "remove", "path": "/name"}]`)
	img("patch min_ram negative", http.MethodPatch, "/v2/images/"+argImage, patch21, `[{"op": "replace", "path": "/min_ram", "value": -1}]`)
	img("patch replace extra", http.MethodPatch, "/v2/images/"+argImage, patch21, `[{"op": "replace", "path": "/extra", "value": "f"}, {"op": "remove", "path": "/d4"}]`)
	img("patch unknown image", http.MethodPatch, "/v2/images/"+argMissing, patch21, `[{"op": "replace", "path": "/name", "value": "x"}]`)
	return cs
}
