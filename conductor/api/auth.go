package api

import (
	"encoding/json"
	"net/http"

	"github.com/ferric-metal/ferric/conductor/auth"
)

// PublicRoutes are the requests Ironic serves without credentials under
// http_basic (its acl_public_routes): the root and /v1 documents, and the
// ramdisk's lookup, heartbeat and continue_inspection, which the agent
// token protects instead.
var PublicRoutes = []auth.Rule{
	{Path: "/"},
	{Path: "/v1"},
	{Path: "/v1/lookup"},
	{Path: "/v1/heartbeat/[a-z0-9-]+"},
	{Path: "/v1/continue_inspection"},
}

// Realm is the API's basic-auth realm, Ironic's.
const Realm = "Baremetal API"

// deny writes an authentication refusal as Ironic's basic-auth middleware
// does, wrapped by its error middleware: error_message holds
// {"error": {"message", "code"}}.
func deny(w http.ResponseWriter, _ *http.Request, status int, msg string) {
	inner, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "code": status}})
	body, _ := json.Marshal(map[string]string{"error_message": string(inner)})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
