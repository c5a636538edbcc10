package api

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/auth"
	"github.com/ferric-metal/ferric/conductor/policy"
)

// Projects of the access tests.
const (
	projOwner  = "7a7b0000000000000000000000000001"
	projLessee = "7a7b0000000000000000000000000002"
	projOther  = "7a7b0000000000000000000000000003"
)

// callers are Keystone identities as the auth layer hands them to the
// API, with the implied roles Keystone puts in tokens.
var callers = map[string]*auth.Identity{
	"system-admin":  {UserID: "u-sa", System: true, Roles: []string{"admin", "member", "reader"}},
	"system-member": {UserID: "u-sm", System: true, Roles: []string{"member", "reader"}},
	"system-reader": {UserID: "u-sr", System: true, Roles: []string{"reader"}},
	"owner-admin":   {UserID: "u-oa", ProjectID: projOwner, Roles: []string{"admin", "member", "reader"}},
	"owner-member":  {UserID: "u-om", ProjectID: projOwner, Roles: []string{"member", "reader"}},
	"owner-reader":  {UserID: "u-or", ProjectID: projOwner, Roles: []string{"reader"}},
	"lessee-admin":  {UserID: "u-la", ProjectID: projLessee, Roles: []string{"admin", "member", "reader"}},
	"lessee-member": {UserID: "u-lm", ProjectID: projLessee, Roles: []string{"member", "reader"}},
	"lessee-reader": {UserID: "u-lr", ProjectID: projLessee, Roles: []string{"reader"}},
	"other-admin":   {UserID: "u-xa", ProjectID: projOther, Roles: []string{"admin", "member", "reader"}},
}

// callerOrder is the column order of the table.
var callerOrder = []string{"system-admin", "system-member", "system-reader", "owner-admin", "owner-member",
	"owner-reader", "lessee-admin", "lessee-member", "lessee-reader", "other-admin"}

// hdrCaller names the caller a test request comes from.
const hdrCaller = "X-Test-Caller"

// newAccessEnv is a testEnv whose requests carry the identity of the
// caller named in X-Test-Caller, as --auth keystone's middleware attaches
// a validated token's identity; requests without it have none (noauth:
// the set-up's system admin).
func newAccessEnv(t *testing.T, rules *policy.Enforcer) *testEnv {
	e := newTestEnv(t, func(c *Config) { c.Policy = rules })
	inject := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name := r.Header.Get(hdrCaller); name != "" {
			id, ok := callers[name]
			if !ok {
				http.Error(w, "unknown test caller "+name, http.StatusTeapot)
				return
			}
			r = r.WithContext(auth.WithIdentity(r.Context(), id))
		}
		e.srv.ServeHTTP(w, r)
	})
	hs := httptest.NewServer(inject)
	t.Cleanup(hs.Close)
	e.url = hs.URL
	return e
}

// accessFixture is the fleet of the table: node N1 owned by projOwner and
// leased to projLessee, N2 owned by projOther, N0 owned by nobody; a port
// on N1 and on N2; allocations owned by projOwner, projOther and nobody.
type accessFixture struct {
	n1, n2, n0 string
	p1         string
	a1         string
	seq        atomic.Int64
}

func (e *testEnv) accessFixture() *accessFixture {
	f := &accessFixture{}
	f.n1 = e.createNode(map[string]any{"name": "n1", "owner": projOwner, "lessee": projLessee}).str("uuid")
	f.n2 = e.createNode(map[string]any{"name": "n2", "owner": projOther}).str("uuid")
	f.n0 = e.createNode(map[string]any{"name": "n0"}).str("uuid")
	f.p1 = e.must(201, e.do("POST", "/v1/ports", map[string]any{"address": "52:54:00:7a:00:01", "node_uuid": f.n1}), "port 1").str("uuid")
	e.must(201, e.do("POST", "/v1/ports", map[string]any{"address": "52:54:00:7a:00:02", "node_uuid": f.n2}), "port 2")
	e.must(201, e.do("POST", "/v1/volume/connectors", map[string]any{"node_uuid": f.n1, "type": "iqn", "connector_id": "iqn.n1"}, hdrLegacyVersion, "1.78"), "connector 1")
	e.must(201, e.do("POST", "/v1/volume/connectors", map[string]any{"node_uuid": f.n2, "type": "iqn", "connector_id": "iqn.n2"}, hdrLegacyVersion, "1.78"), "connector 2")
	f.a1 = e.must(201, e.do("POST", "/v1/allocations", map[string]any{"resource_class": "none-such", "owner": projOwner}), "allocation 1").str("uuid")
	e.must(201, e.do("POST", "/v1/allocations", map[string]any{"resource_class": "none-such", "owner": projOther}), "allocation 2")
	e.must(201, e.do("POST", "/v1/allocations", map[string]any{"resource_class": "none-such"}), "allocation 0")
	return f
}

// accessAction is one request of the table; prepare (optional) makes a
// fresh record for it (as the set-up's admin) and returns its path.
type accessAction struct {
	name   string
	method string
	path   func(f *accessFixture, e *testEnv) string
	body   func(f *accessFixture) any
	count  string // for listings: the collection whose length is checked
	want   []int  // by callerOrder
	counts []int  // listings: items seen, by callerOrder
	after  func(t *testing.T, e *testEnv, f *accessFixture, caller string, r *resp)
}

func fixed(p string) func(*accessFixture, *testEnv) string {
	return func(*accessFixture, *testEnv) string { return p }
}

func onN1(suffix string) func(*accessFixture, *testEnv) string {
	return func(f *accessFixture, _ *testEnv) string { return "/v1/nodes/" + f.n1 + suffix }
}

// TestAccessTable drives the API over HTTP with each caller (role and
// scope) and checks the status Ironic's default rules give: 404 where the
// caller may not see the record, 403 with Ironic's message where it may
// see it but not act, and the action's own answer otherwise (400 for a
// provision action that passes the rules but not the state machine).
func TestAccessTable(t *testing.T) {
	e := newAccessEnv(t, nil)
	f := e.accessFixture()
	freshNode := func(f *accessFixture, e *testEnv) string {
		return "/v1/nodes/" + e.createNode(map[string]any{"owner": projOwner, "lessee": projLessee}).str("uuid")
	}
	freshPort := func(f *accessFixture, e *testEnv) string {
		mac := fmt.Sprintf("52:54:00:7b:00:%02x", f.seq.Add(1))
		return "/v1/ports/" + e.must(201, e.do("POST", "/v1/ports", map[string]any{"address": mac, "node_uuid": f.n1}), "port").str("uuid")
	}
	freshAllocation := func(f *accessFixture, e *testEnv) string {
		return "/v1/allocations/" + e.must(201, e.do("POST", "/v1/allocations", map[string]any{"resource_class": "none-such", "owner": projOwner}), "allocation").str("uuid")
	}
	ownerIs := func(want string) func(*testing.T, *testEnv, *accessFixture, string, *resp) {
		return func(t *testing.T, _ *testEnv, _ *accessFixture, caller string, r *resp) {
			if r.code == 201 && r.str("owner") != want && !(want == "" && r.j["owner"] == nil) {
				t.Errorf("%s: created allocation's owner = %v, want the caller's project %q", caller, r.j["owner"], want)
			}
		}
	}
	//                     sys-admin sys-mem sys-read own-adm own-mem own-read les-adm les-mem les-read other
	actions := []accessAction{
		{name: "list nodes", method: "GET", path: fixed("/v1/nodes"), count: "nodes",
			want: []int{200, 200, 200, 200, 200, 200, 200, 200, 200, 200}, counts: []int{3, 3, 3, 1, 1, 1, 1, 1, 1, 1}},
		{name: "list nodes of another project", method: "GET", path: fixed("/v1/nodes?project=" + projOther),
			want: []int{200, 200, 200, 403, 403, 403, 403, 403, 403, 200}},
		{name: "list ports", method: "GET", path: fixed("/v1/ports"), count: "ports",
			want: []int{200, 200, 200, 200, 200, 200, 200, 200, 200, 200}, counts: []int{2, 2, 2, 1, 1, 1, 1, 1, 1, 1}},
		{name: "list allocations", method: "GET", path: fixed("/v1/allocations"), count: "allocations",
			want: []int{200, 200, 200, 200, 200, 200, 200, 200, 200, 200}, counts: []int{3, 3, 3, 1, 1, 1, 0, 0, 0, 1}},
		{name: "list volume connectors", method: "GET", path: fixed("/v1/volume/connectors"), count: "connectors",
			want: []int{200, 200, 200, 200, 200, 200, 200, 200, 200, 200}, counts: []int{2, 2, 2, 1, 1, 1, 1, 1, 1, 1}},
		{name: "show node", method: "GET", path: onN1(""),
			want: []int{200, 200, 200, 200, 200, 200, 200, 200, 200, 404}},
		{name: "node states", method: "GET", path: onN1("/states"),
			want: []int{200, 200, 200, 200, 200, 200, 200, 200, 200, 404}},
		{name: "patch extra", method: "PATCH", path: onN1(""), body: func(*accessFixture) any {
			return []map[string]any{{"op": "add", "path": "/extra/k", "value": "v"}}
		}, want: []int{200, 200, 403, 200, 200, 403, 200, 200, 403, 404}},
		{name: "patch driver_info", method: "PATCH", path: onN1(""), body: func(*accessFixture) any {
			return []map[string]any{{"op": "add", "path": "/driver_info/k", "value": "v"}}
		}, want: []int{200, 200, 403, 200, 200, 403, 403, 403, 403, 404}},
		{name: "patch instance_info", method: "PATCH", path: onN1(""), body: func(*accessFixture) any {
			return []map[string]any{{"op": "add", "path": "/instance_info/k", "value": "v"}}
		}, want: []int{200, 200, 403, 200, 200, 403, 200, 403, 403, 404}},
		{name: "patch owner", method: "PATCH", path: onN1(""), body: func(*accessFixture) any {
			return []map[string]any{{"op": "replace", "path": "/owner", "value": projOwner}}
		}, want: []int{200, 200, 403, 403, 403, 403, 403, 403, 403, 404}},
		{name: "patch driver interface", method: "PATCH", path: onN1(""), body: func(*accessFixture) any {
			return []map[string]any{{"op": "replace", "path": "/deploy_interface", "value": "fake"}}
		}, want: []int{200, 200, 403, 200, 403, 403, 403, 403, 403, 404}},
		{name: "set maintenance", method: "PUT", path: onN1("/maintenance"),
			want: []int{202, 202, 403, 202, 202, 403, 202, 403, 403, 404}},
		{name: "provision (provide from enroll)", method: "PUT", path: onN1("/states/provision"), body: func(*accessFixture) any {
			return map[string]any{"target": "provide"}
		}, want: []int{400, 400, 403, 400, 400, 403, 400, 403, 403, 404}},
		{name: "power off", method: "PUT", path: onN1("/states/power"), body: func(*accessFixture) any {
			return map[string]any{"target": "power off"}
		}, want: []int{202, 202, 403, 202, 202, 403, 202, 202, 403, 404},
			after: func(t *testing.T, e *testEnv, f *accessFixture, _ string, r *resp) {
				if r.code == 202 {
					e.waitNode(f.n1, "power off done", func(n map[string]any) bool { return n["reservation"] == nil && n["target_power_state"] == nil })
				}
			}},
		{name: "validate", method: "GET", path: onN1("/validate"),
			want: []int{200, 200, 403, 200, 200, 403, 200, 403, 403, 404}},
		{name: "delete node", method: "DELETE", path: freshNode,
			want: []int{204, 403, 403, 204, 403, 403, 403, 403, 403, 404}},
		{name: "node's ports", method: "GET", path: onN1("/ports"), count: "ports",
			want: []int{200, 200, 200, 200, 200, 200, 200, 200, 200, 404}, counts: []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 0}},
		{name: "show port", method: "GET", path: func(f *accessFixture, _ *testEnv) string { return "/v1/ports/" + f.p1 },
			want: []int{200, 200, 200, 200, 200, 200, 200, 200, 200, 404}},
		{name: "patch port", method: "PATCH", path: func(f *accessFixture, _ *testEnv) string { return "/v1/ports/" + f.p1 },
			body: func(*accessFixture) any { return []map[string]any{{"op": "add", "path": "/extra/k", "value": "v"}} },
			want: []int{200, 200, 403, 200, 403, 403, 403, 403, 403, 404}},
		{name: "create port", method: "POST", path: fixed("/v1/ports"), body: func(f *accessFixture) any {
			return map[string]any{"address": fmt.Sprintf("52:54:00:7c:00:%02x", f.seq.Add(1)), "node_uuid": f.n1}
		}, want: []int{201, 403, 403, 201, 403, 403, 403, 403, 403, 403}},
		{name: "delete port", method: "DELETE", path: freshPort,
			want: []int{204, 403, 403, 204, 403, 403, 403, 403, 403, 404}},
		{name: "show allocation", method: "GET", path: func(f *accessFixture, _ *testEnv) string { return "/v1/allocations/" + f.a1 },
			want: []int{200, 200, 200, 200, 200, 200, 404, 404, 404, 404}},
		{name: "create allocation", method: "POST", path: fixed("/v1/allocations"), body: func(*accessFixture) any {
			return map[string]any{"resource_class": "none-such"}
		}, want: []int{201, 201, 403, 201, 201, 403, 201, 201, 403, 201}},
		{name: "create allocation for another project", method: "POST", path: fixed("/v1/allocations"), body: func(*accessFixture) any {
			return map[string]any{"resource_class": "none-such", "owner": projOther}
		}, want: []int{201, 201, 403, 403, 403, 403, 403, 403, 403, 201}},
		{name: "delete allocation", method: "DELETE", path: freshAllocation,
			want: []int{204, 204, 403, 204, 204, 403, 404, 404, 404, 404}},
		{name: "list conductors", method: "GET", path: fixed("/v1/conductors"),
			want: []int{200, 200, 200, 403, 403, 403, 403, 403, 403, 403}},
		{name: "create node", method: "POST", path: fixed("/v1/nodes"), body: func(*accessFixture) any {
			return map[string]any{"driver": "fake-hardware"}
		}, want: []int{201, 403, 403, 201, 403, 403, 201, 403, 403, 201}},
	}
	// The created allocations and nodes are owned by the caller's project.
	for i := range actions {
		switch actions[i].name {
		case "create allocation", "create node":
			actions[i].after = func(t *testing.T, _ *testEnv, _ *accessFixture, caller string, r *resp) {
				ownerIs(callers[caller].ProjectID)(t, nil, nil, caller, r)
			}
		}
	}
	for _, a := range actions {
		t.Run(strings.ReplaceAll(a.name, " ", "_"), func(t *testing.T) {
			if len(a.want) != len(callerOrder) || (a.counts != nil && len(a.counts) != len(callerOrder)) {
				t.Fatalf("row %q has %d statuses for %d callers", a.name, len(a.want), len(callerOrder))
			}
			var got []string
			for i, caller := range callerOrder {
				path := a.path(f, e)
				var body any
				if a.body != nil {
					body = a.body(f)
				}
				r := e.do(a.method, path, body, hdrCaller, caller, hdrLegacyVersion, "1.78")
				got = append(got, fmt.Sprint(r.code))
				if r.code != a.want[i] {
					t.Errorf("%s %s as %s: %d, want %d: %s", a.method, path, caller, r.code, a.want[i], r.raw)
					continue
				}
				if r.code == 403 && !strings.HasPrefix(r.fault(), "Access was denied to the following resource: baremetal:") &&
					!strings.HasPrefix(r.fault(), "Cannot create allocation with an owner") {
					t.Errorf("%s %s as %s: 403 %q, want Ironic's message", a.method, path, caller, r.fault())
				}
				if r.code == 404 && !strings.Contains(r.fault(), "could not be found") {
					t.Errorf("%s %s as %s: 404 %q, want Ironic's not-found message", a.method, path, caller, r.fault())
				}
				if a.counts != nil && r.code == 200 {
					items, _ := r.j[a.count].([]any)
					if len(items) != a.counts[i] {
						t.Errorf("%s %s as %s: %d %s, want %d: %s", a.method, path, caller, len(items), a.count, a.counts[i], r.raw)
					}
				}
				if a.after != nil {
					a.after(t, e, f, caller, r)
				}
			}
			t.Logf("%-40s %s", a.name, strings.Join(got, " "))
		})
	}
}

// TestAccessNoIdentity: without a Keystone identity (noauth, http_basic)
// every request is served as before, whatever the policy file says.
func TestAccessNoIdentity(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte(`"baremetal:node:get": "!"`+"\n"+`"baremetal:node:list_all": "!"`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rules, err := policy.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	e := newAccessEnv(t, rules)
	f := e.accessFixture()
	e.must(200, e.do("GET", "/v1/nodes/"+f.n1, nil), "show without identity")
	if r := e.must(200, e.do("GET", "/v1/nodes", nil), "list without identity"); len(r.j["nodes"].([]any)) != 3 {
		t.Errorf("list without identity: %s", r.raw)
	}
	// The same rules bind a Keystone caller: the node is hidden.
	e.must(404, e.do("GET", "/v1/nodes/"+f.n1, nil, hdrCaller, "system-admin"), "show as system admin under the file")
}

// TestAccessPolicyFile: a policy file's rules replace the defaults.
func TestAccessPolicyFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	body := `# owners' readers may power nodes; nobody deletes them
"baremetal:node:set_power_state": "role:reader and project_id:%(node.owner)s"
"baremetal:node:delete": "!"
"baremetal:node:delete:self_owned_node": "!"
`
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	rules, err := policy.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	e := newAccessEnv(t, rules)
	f := e.accessFixture()
	e.must(202, e.do("PUT", "/v1/nodes/"+f.n1+"/states/power", map[string]any{"target": "power off"}, hdrCaller, "owner-reader"), "owner reader powers")
	r := e.must(403, e.do("PUT", "/v1/nodes/"+f.n1+"/states/power", map[string]any{"target": "power off"}, hdrCaller, "system-admin"), "system admin may not")
	if got := r.fault(); got != "Access was denied to the following resource: baremetal:node:set_power_state" {
		t.Errorf("403 message %q", got)
	}
	r = e.must(403, e.do("DELETE", "/v1/nodes/"+f.n0, nil, hdrCaller, "system-admin"), "nobody deletes")
	if got := r.fault(); got != "Access was denied to the following resource: baremetal:node:delete:self_owned_node" {
		t.Errorf("403 message %q", got)
	}
}

// TestAccessEventStream: a project's caller watching the change feed sees
// the changes of its project's nodes only.
func TestAccessEventStream(t *testing.T) {
	e := newAccessEnv(t, nil)
	f := e.accessFixture()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/v1/events/stream", nil)
	req.Header.Set(hdrCaller, "lessee-reader")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("stream as lessee reader: %s", res.Status)
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	waitFor := func(what string) []string {
		var seen []string
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("stream ended before %s; saw %q", what, seen)
				}
				seen = append(seen, l)
				if strings.Contains(l, what) {
					return seen
				}
			case <-ctx.Done():
				t.Fatalf("no %s on the stream; saw %q", what, seen)
			}
		}
	}
	waitFor("event: ready")
	// Another project's node changes first, then the caller's: the feed
	// is in commit order, so the first would arrive first if it leaked.
	patch := []map[string]any{{"op": "add", "path": "/extra/seen", "value": "yes"}}
	e.must(200, e.do("PATCH", "/v1/nodes/"+f.n2, patch), "patch n2")
	e.must(200, e.do("PATCH", "/v1/nodes/"+f.n0, patch), "patch n0")
	e.must(200, e.do("PATCH", "/v1/nodes/"+f.n1, patch), "patch n1")
	seen := waitFor(f.n1)
	for _, l := range seen {
		if strings.Contains(l, f.n2) || strings.Contains(l, f.n0) || strings.Contains(l, `"type":"conductor"`) {
			t.Errorf("lessee reader's stream shows another project's change: %s", l)
		}
	}
	// Without the list rules the stream is refused as the listing is.
	r := e.do("GET", "/v1/events/stream?project="+projOther, nil, hdrCaller, "lessee-reader")
	if r.code != 403 {
		t.Errorf("stream of another project: %d %s", r.code, r.raw)
	}
}

// TestAccessChildren: a node's children list holds the caller's
// project's nodes only, as Ironic's (1.83): the lessee of the parent sees
// the child it leases too, not the other.
func TestAccessChildren(t *testing.T) {
	e := newAccessEnv(t, nil)
	f := e.accessFixture()
	e.version = "1.83"
	// Children share their parent's owner; one is leased too.
	e.createNode(map[string]any{"owner": projOwner, "parent_node": f.n1})
	mine := e.createNode(map[string]any{"owner": projOwner, "lessee": projLessee, "parent_node": f.n1}).str("uuid")
	for caller, want := range map[string]int{"system-reader": 2, "owner-reader": 2, "lessee-reader": 1} {
		r := e.must(200, e.do("GET", "/v1/nodes/"+f.n1+"/children", nil, hdrCaller, caller, hdrLegacyVersion, "1.83"), caller+" children")
		got, _ := r.j["children"].([]any)
		if len(got) != want || (want == 1 && got[0] != mine) {
			t.Errorf("%s: children %v, want %d", caller, got, want)
		}
	}
}

// TestAccessMaskedFields: below system reader, a node's conductor
// bookkeeping, last error, lock holder and BMC details are shown only to
// its owner's readers, as Ironic masks them; the lessee sees the redaction.
func TestAccessMaskedFields(t *testing.T) {
	e := newAccessEnv(t, nil)
	f := e.accessFixture()
	e.must(200, e.do("PATCH", "/v1/nodes/"+f.n1, []map[string]any{{"op": "add", "path": "/driver_info/ipmi_address", "value": "192.0.2.9"}}), "driver_info")
	for _, tc := range []struct {
		caller string
		masked bool
	}{{"system-reader", false}, {"owner-reader", false}, {"lessee-admin", true}, {"lessee-reader", true}} {
		for _, path := range []string{"/v1/nodes/" + f.n1, "/v1/nodes/detail"} {
			r := e.must(200, e.do("GET", path, nil, hdrCaller, tc.caller), tc.caller+" "+path)
			doc := r.j
			if list, ok := r.j["nodes"].([]any); ok {
				doc = nil
				for _, x := range list {
					if m := x.(map[string]any); m["uuid"] == f.n1 {
						doc = m
					}
				}
			}
			if doc == nil {
				t.Fatalf("%s %s: no n1: %s", tc.caller, path, r.raw)
			}
			di, _ := doc["driver_info"].(map[string]any)
			le, _ := doc["last_error"].(string)
			if tc.masked {
				if di["content"] != "** Redacted - requires baremetal:node:get:driver_info permission. **" || di["ipmi_address"] != nil ||
					le != "** Value Redacted - Requires baremetal:node:get:last_error permission. **" {
					t.Errorf("%s %s: driver_info %v, last_error %q, want Ironic's redactions", tc.caller, path, di, le)
				}
			} else if di["ipmi_address"] != "192.0.2.9" || strings.Contains(le, "Redacted") {
				t.Errorf("%s %s: driver_info %v, last_error %q, want them shown", tc.caller, path, di, le)
			}
		}
	}
	// The unmasked cache of the listing is not served to a masked caller
	// and the other way round.
	r := e.must(200, e.do("GET", "/v1/nodes/detail", nil), "admin detail")
	if strings.Contains(string(r.raw), "Redacted") {
		t.Errorf("a masked rendering leaked into the cache: %s", r.raw)
	}
}
