package store

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
)

// idPatternText is the pattern of an image id in Glance's image schema
// (api/v2/images.get_base_properties).
const idPatternText = `^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$`

var idPattern = regexp.MustCompile(idPatternText)

// Glance's formats ([image_format] container_formats and disk_formats
// defaults) and visibilities.
var (
	containerFormatList = []string{"ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"}
	diskFormatList      = []string{"ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"}
	visibilityList      = []string{"community", "public", "private", "shared"}
)

// imageSchema is Glance's image schema (api/v2/images.get_schema: the base
// properties in their order, a PermissiveSchema whose other properties
// are strings), written with the shared schema rules so its messages are
// python-jsonschema's.
var imageSchema = func() *ironichttp.Schema {
	t := ironichttp.T
	enumOf := func(nullable bool, vs []string) *ironichttp.Schema {
		s := t("string")
		if nullable {
			s = t("null", "string")
			s.Enum = append(s.Enum, nil)
		}
		for _, v := range vs {
			s.Enum = append(s.Enum, v)
		}
		return s
	}
	return &ironichttp.Schema{
		Type: nil,
		Properties: []ironichttp.Prop{
			{Name: "id", Schema: &ironichttp.Schema{Type: []string{"string"}, Pattern: idPatternText}},
			{Name: "name", Schema: t("null", "string").Max(255)},
			{Name: "status", Schema: enumOf(false, []string{"queued", "saving", "active", "killed", "deleted", "uploading", "importing", "pending_delete", "deactivated"})},
			{Name: "visibility", Schema: enumOf(false, visibilityList)},
			{Name: "protected", Schema: t("boolean")},
			{Name: "os_hidden", Schema: t("boolean")},
			{Name: "checksum", Schema: t("null", "string").Max(32)},
			{Name: "os_hash_algo", Schema: t("null", "string").Max(64)},
			{Name: "os_hash_value", Schema: t("null", "string").Max(128)},
			{Name: "owner", Schema: t("null", "string").Max(255)},
			{Name: "size", Schema: t("null", "integer")},
			{Name: "virtual_size", Schema: t("null", "integer")},
			{Name: "container_format", Schema: enumOf(true, containerFormatList)},
			{Name: "disk_format", Schema: enumOf(true, diskFormatList)},
			{Name: "created_at", Schema: t("string")},
			{Name: "updated_at", Schema: t("string")},
			{Name: "tags", Schema: &ironichttp.Schema{Type: []string{"array"}, Items: t("string").Max(255)}},
			{Name: "direct_url", Schema: t("string")},
			{Name: "min_ram", Schema: t("integer")},
			{Name: "min_disk", Schema: t("integer")},
			{Name: "self", Schema: t("string")},
			{Name: "file", Schema: t("string")},
			{Name: "stores", Schema: t("string")},
			{Name: "schema", Schema: t("string")},
			{Name: "locations", Schema: t("array")},
		},
		AdditionalProperties: t("string"),
	}
}()

// apiError is an error of the image API as Glance raises it: a status, an
// explanation and, for errors Glance raises with a detail only, the
// detail (webob then shows its default explanation).
type apiError struct {
	code                int
	explanation, detail string
	// header is set on the answer (e.g. Accept-Patch).
	header map[string]string
}

func (e *apiError) Error() string { return e.explanation + e.detail }

func badRequest(format string, a ...any) *apiError {
	return &apiError{code: http.StatusBadRequest, explanation: fmt.Sprintf(format, a...)}
}

func forbidden(format string, a ...any) *apiError {
	return &apiError{code: http.StatusForbidden, explanation: fmt.Sprintf(format, a...)}
}

// validateImage is glance.schema.Schema.validate: jsonschema's message
// after "Provided object does not match schema 'image': ". Glance quotes
// str() of jsonschema's error, which goes on with a dump of the failing
// sub-schema and of the instance; ferric gives the first line only.
func validateImage(v map[string]any) *apiError {
	if msg := imageSchema.Check(v); msg != "" {
		return badRequest("Provided object does not match schema 'image': %s", msg)
	}
	return nil
}

// Glance's lists of attributes (api/v2/images.RequestDeserializer and
// domain.ImageFactory).
var (
	// disallowed in a create body (_check_allowed).
	disallowedAttrs = []string{"direct_url", "self", "file", "schema", "stores"}
	// read-only for a patch (_readonly_properties) and a create
	// (ImageFactory._readonly_properties, a subset).
	readOnlyAttrs       = []string{"created_at", "updated_at", "status", "checksum", "size", "virtual_size", "direct_url", "self", "file", "schema", "id", "os_hash_algo", "os_hash_value"}
	createReadOnlyAttrs = []string{"created_at", "updated_at", "status", "checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size"}
	// reserved (_reserved_properties) and the reserved namespace.
	reservedAttrs     = []string{"location", "deleted", "deleted_at"}
	reservedNamespace = "os_glance"
)

func reserved(key string) bool {
	for _, r := range reservedAttrs {
		if key == r {
			return true
		}
	}
	return strings.HasPrefix(key, reservedNamespace)
}
