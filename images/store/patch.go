package store

import (
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strings"
)

// The image PATCH media types and the JSON Schema draft of each (Glance's
// RequestDeserializer.update).
var patchTypes = map[string]int{
	"application/openstack-images-v2.0-json-patch": 4,
	"application/openstack-images-v2.1-json-patch": 10,
}

// patchTypeList is the Accept-Patch header of a 415 (Glance's sorted list).
const patchTypeList = "application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch"

// change is one parsed PATCH operation: op, the decoded path, the value.
type change struct {
	op    string
	path  []string
	value any
}

const supportedOps = "add, remove, replace"

// patchRequest reads a PATCH request as Glance's RequestDeserializer.update
// does, with its checks and messages, in its order.
func patchRequest(r *http.Request) ([]change, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	draft, ok := patchTypes[ct]
	if !ok {
		return nil, &apiError{code: http.StatusUnsupportedMediaType,
			explanation: fmt.Sprintf("The request media type %s is not supported by this server.", r.Header.Get("Content-Type")),
			header:      map[string]string{"Accept-Patch": patchTypeList}}
	}
	v, err := readBody(r)
	if err != nil {
		return nil, err
	}
	list, ok := v.([]any)
	if !ok {
		return nil, badRequest("Request body must be a JSON array of operation objects.")
	}
	var out []change
	for _, item := range list {
		raw, ok := item.(map[string]any)
		if !ok {
			return nil, badRequest("Operations must be JSON objects.")
		}
		c, err := parseChange(raw, draft)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func parseChange(raw map[string]any, draft int) (change, error) {
	var c change
	var pointer any
	if draft == 10 {
		op, ok := raw["op"]
		if !ok || op == nil {
			return c, badRequest("Unable to find `op` in JSON Schema change. It must be one of the following: %s.", supportedOps)
		}
		c.op, _ = op.(string)
		if c.op != "add" && c.op != "remove" && c.op != "replace" {
			return c, badRequest("Invalid operation: `%s`. It must be one of the following: %s.", str(op), supportedOps)
		}
		if pointer, ok = raw["path"]; !ok {
			return c, badRequest("Unable to find 'path' in JSON Schema change")
		}
	} else {
		for _, op := range []string{"add", "remove", "replace"} {
			if _, ok := raw[op]; ok {
				if c.op != "" {
					return c, badRequest(`Operation objects must contain only one member named "add", "remove", or "replace".`)
				}
				c.op = op
			}
		}
		if c.op == "" {
			return c, badRequest(`Operation objects must contain exactly one member named "add", "remove", or "replace".`)
		}
		pointer = raw[c.op]
	}
	path, err := decodePointer(str(pointer))
	if err != nil {
		return c, err
	}
	c.path = path
	// _validate_path: one level, but for locations (not kept here).
	depth := 1
	if path[0] == "locations" && c.op != "replace" {
		depth = 2
	}
	if len(path) != depth {
		return c, badRequest("Invalid JSON pointer for this resource: '/%s'", strings.Join(path, "/"))
	}
	if c.op != "remove" {
		v, ok := raw["value"]
		if !ok {
			return c, badRequest(`Operation "%s" requires a member named "value".`, c.op)
		}
		c.value = v
	}
	return c, validateChange(c)
}

func str(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

var (
	adjacentSlashes = regexp.MustCompile(`/\s*?/`)
	badTilde        = regexp.MustCompile(`~[^01]`)
)

// decodePointer is Glance's _decode_json_pointer (with
// _validate_json_pointer's messages): its limited JSON pointers, each
// token unescaped and stripped.
func decodePointer(p string) ([]string, error) {
	switch {
	case !strings.HasPrefix(p, "/"):
		return nil, badRequest("Pointer `%s` does not start with \"/\".", p)
	case adjacentSlashes.MatchString(p[1:]):
		return nil, badRequest("Pointer `%s` contains adjacent \"/\".", p)
	case len(p) > 1 && strings.HasSuffix(p, "/"):
		return nil, badRequest("Pointer `%s` end with \"/\".", p)
	case strings.TrimSpace(p[1:]) == "/":
		return nil, badRequest("Pointer `%s` does not contains valid token.", p)
	case badTilde.MatchString(p) || strings.HasSuffix(p, "~"):
		return nil, badRequest("Pointer `%s` contains \"~\" not part of a recognized escape sequence.", p)
	}
	parts := strings.Split(strings.TrimLeft(p, "/"), "/")
	for i, s := range parts {
		parts[i] = strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~"))
	}
	return parts, nil
}

// validateChange is Glance's _validate_change: read-only and reserved
// attributes, then the value against the schema.
func validateChange(c change) error {
	root := c.path[0]
	for _, k := range readOnlyAttrs {
		if root == k {
			return forbidden("Attribute '%s' is read-only.", root)
		}
	}
	if reserved(root) {
		return forbidden("Attribute '%s' is reserved.", root)
	}
	if root == "locations" {
		return forbidden("Attribute '%s' is reserved.", root) // no image locations here
	}
	if c.op == "remove" {
		return nil
	}
	if err := validateImage(map[string]any{root: c.value}); err != nil {
		return err
	}
	return nil
}

// attrs are the attributes of Glance's domain Image a PATCH may reach
// (hasattr(image, path_root)); other names are extra properties.
var attrs = []string{"name", "visibility", "protected", "os_hidden", "min_disk", "min_ram", "owner", "disk_format", "container_format", "tags"}

func isAttr(key string) bool {
	for _, a := range attrs {
		if a == key {
			return true
		}
	}
	return false
}

// applyChanges is ImagesController._do_add, _do_replace and _do_remove.
func applyChanges(img *Image, changes []change) error {
	for _, c := range changes {
		root := c.path[0]
		_, extra := img.Properties[root]
		switch c.op {
		case "replace", "add":
			if c.op == "replace" && !isAttr(root) && !extra {
				return &apiError{code: http.StatusConflict, detail: fmt.Sprintf("Property %s does not exist.", root)}
			}
			if (root == "disk_format" || root == "container_format") && img.Status != StatusQueued {
				return forbidden("Attribute %s can be only replaced for a queued image.", root)
			}
			if err := setAttr(img, root, c.value); err != nil {
				return err
			}
		case "remove":
			if isAttr(root) {
				return &apiError{code: http.StatusForbidden, detail: fmt.Sprintf("Property %s may not be removed.", root)}
			}
			if !extra {
				return &apiError{code: http.StatusConflict, detail: fmt.Sprintf("Property %s does not exist.", root)}
			}
			delete(img.Properties, root)
		}
	}
	return nil
}
