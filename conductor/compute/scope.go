package compute

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/ferric-metal/ferric/conductor/auth"
	"github.com/ferric-metal/ferric/conductor/ironichttp"
)

// Project scoping of servers under --auth keystone, as Nova's default
// policy: a server belongs to the project that created it (its record's
// project_id, the token's project); a project's caller lists, sees and
// acts on its project's servers only, and another project's server is a
// 404 itemNotFound (it never learns the server exists). Readers may only
// look (GET); creating and acting takes the member role. Admins (the
// admin role) see and act on every server, and list every project's with
// all_tenants; a system-scoped token, which Nova does not scope by
// project, sees all. Without a Keystone identity (noauth, http_basic)
// every caller sees everything, as before.

// scope is a caller's view of the servers (nil: everything).
type scope struct {
	project, user string
	admin         bool // role admin or system scope: every server
	member        bool // may create and act
	reader        bool // may look
}

func scopeOf(r *http.Request) *scope {
	id := auth.IdentityFrom(r.Context())
	if id == nil {
		return nil
	}
	sc := &scope{project: id.ProjectID, user: id.UserID, admin: id.HasRole("admin") || id.System}
	sc.member = id.HasRole("admin") || id.HasRole("member")
	sc.reader = sc.member || id.HasRole("reader")
	return sc
}

// adminView reports whether the caller sees a server's admin-only members:
// the extended attributes (OS-EXT-SRV-ATTR:*, among them user_data; the
// hostname is everyone's from 2.90) and host_status, as Nova's default
// policy shows them to admins only. Without a Keystone identity every
// caller is an admin, as before.
func adminView(r *http.Request) bool {
	sc := scopeOf(r)
	return sc == nil || sc.admin
}

// sees reports whether the caller may see the server at all.
func (sc *scope) sees(rec record) bool {
	return sc == nil || sc.admin || (sc.project != "" && rec.Project == sc.project)
}

// policyFault is Nova's 403 for a rule the caller does not pass.
func policyFault(rule string) *fault {
	return faultf(http.StatusForbidden, "Policy doesn't allow %s to be performed.", rule)
}

// serverActionRules are Nova's rules of the server actions this API has.
var serverActionRules = map[string]string{
	"reboot": "os_compute_api:servers:reboot", "os-stop": "os_compute_api:servers:stop",
	"os-start": "os_compute_api:servers:start", "rebuild": "os_compute_api:servers:rebuild",
	"rescue": "os_compute_api:os-rescue", "unrescue": "os_compute_api:os-unrescue",
	"changePassword": "os_compute_api:os-admin-password",
}

// checkAccess answers a servers route the caller may not use: 404 for a
// server of another project, 403 (Nova's policy message) for a reader's
// write. Other routes (flavors, images, key pairs, limits) and requests
// without an identity pass.
func (h *Handler) checkAccess(r *http.Request) error {
	sc := scopeOf(r)
	rest, ok := strings.CutPrefix(r.URL.Path, base+"/servers")
	if sc == nil || !ok {
		return nil
	}
	rest = strings.Trim(rest, "/")
	if rest == "" || rest == "detail" {
		if r.Method == http.MethodPost {
			return sc.need(sc.member, "os_compute_api:servers:create")
		}
		rule := "os_compute_api:servers:index"
		if rest == "detail" {
			rule = "os_compute_api:servers:detail"
		}
		return sc.need(sc.reader, rule)
	}
	id, sub, _ := strings.Cut(rest, "/")
	a, err := h.st.Allocation(id)
	if err != nil {
		return nil // the handler's own 404
	}
	rec, isServer := recordOf(a)
	if !isServer {
		return nil
	}
	if !sc.sees(rec) {
		return faultf(http.StatusNotFound, "Instance %s could not be found.", id)
	}
	return sc.need(sc.ruleAllows(r, sub))
}

func (sc *scope) need(ok bool, rule string) error {
	if ok {
		return nil
	}
	return policyFault(rule)
}

// ruleAllows is the rule of a request on one server (sub: what follows
// its id) and whether the caller's roles pass it.
func (sc *scope) ruleAllows(r *http.Request, sub string) (bool, string) {
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	ok := sc.reader
	if write {
		ok = sc.member
	}
	switch {
	case sub == "" && r.Method == http.MethodPut:
		return ok, "os_compute_api:servers:update"
	case sub == "" && r.Method == http.MethodDelete:
		return ok, "os_compute_api:servers:delete"
	case sub == "":
		return ok, "os_compute_api:servers:show"
	case sub == "action":
		rule := "os_compute_api:servers:action"
		for k := range peekJSON(r) {
			if x, known := serverActionRules[k]; known {
				rule = x
			}
		}
		return ok, rule
	case strings.HasPrefix(sub, "metadata"):
		item := strings.Contains(sub, "/")
		switch {
		case r.Method == http.MethodGet && item:
			return ok, "os_compute_api:server-metadata:show"
		case r.Method == http.MethodGet:
			return ok, "os_compute_api:server-metadata:index"
		case r.Method == http.MethodPost:
			return ok, "os_compute_api:server-metadata:create"
		case r.Method == http.MethodPut && item:
			return ok, "os_compute_api:server-metadata:update"
		case r.Method == http.MethodPut:
			return ok, "os_compute_api:server-metadata:update_all"
		}
		return ok, "os_compute_api:server-metadata:delete"
	}
	return ok, "os_compute_api:servers:" + sub
}

// peekJSON reads a JSON object body and gives it back for the handler
// (nil when it is not one).
func peekJSON(r *http.Request) map[string]any {
	if r.Body == nil {
		return nil
	}
	raw, err := io.ReadAll(r.Body)
	rest := io.Reader(bytes.NewReader(raw))
	if err != nil {
		rest = io.MultiReader(rest, errReader{err})
	}
	r.Body = io.NopCloser(rest)
	var doc map[string]any
	_ = json.Unmarshal(raw, &doc)
	return doc
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// listScope is the filter a listing applies for the caller: its
// project's servers; every server for an admin with all_tenants (then
// narrowed by project_id or tenant_id, if given) and for a system-scoped
// caller. A non-admin's all_tenants is Nova's 403.
func listScope(r *http.Request, detail bool) (func(*server) bool, error) {
	q := r.URL.Query()
	all := q.Has("all_tenants")
	if v := q.Get("all_tenants"); v != "" {
		b, ok := ironichttp.ParseBool(v)
		if !ok {
			return nil, faultf(http.StatusBadRequest, "Invalid input received: Unrecognized value '%s', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'", v)
		}
		all = b
	}
	sc := scopeOf(r)
	if sc == nil {
		return func(*server) bool { return true }, nil
	}
	if all {
		if !sc.admin {
			rule := "os_compute_api:servers:index:get_all_tenants"
			if detail {
				rule = "os_compute_api:servers:detail:get_all_tenants"
			}
			return nil, policyFault(rule)
		}
		project := q.Get("project_id")
		if project == "" {
			project = q.Get("tenant_id")
		}
		return func(s *server) bool { return project == "" || s.rec.Project == project }, nil
	}
	if sc.project == "" && sc.admin {
		return func(*server) bool { return true }, nil // system scope
	}
	return func(s *server) bool { return sc.project != "" && s.rec.Project == sc.project }, nil
}

// ownServer records the creating caller as the server's owner.
func ownServer(r *http.Request, rec *record) {
	if id := auth.IdentityFrom(r.Context()); id != nil {
		rec.Project, rec.User = id.ProjectID, id.UserID
	}
}
