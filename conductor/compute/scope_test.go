package compute

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/auth"
	"github.com/ferric-metal/ferric/conductor/store"
)

// Projects and callers of the scoping table: Keystone identities as the
// API's keystone middleware attaches them, named by X-Test-Caller.
const (
	projA = "5c0e0000000000000000000000000001"
	projB = "5c0e0000000000000000000000000002"
)

var scopeCallers = map[string]*auth.Identity{
	"system-admin":  {UserID: "u-sa", System: true, Roles: []string{"admin", "member", "reader"}},
	"system-reader": {UserID: "u-sr", System: true, Roles: []string{"reader"}},
	"a-admin":       {UserID: "u-aa", ProjectID: projA, Roles: []string{"admin", "member", "reader"}},
	"a-member":      {UserID: "u-am", ProjectID: projA, Roles: []string{"member", "reader"}},
	"a-reader":      {UserID: "u-ar", ProjectID: projA, Roles: []string{"reader"}},
	"b-member":      {UserID: "u-bm", ProjectID: projB, Roles: []string{"member", "reader"}},
}

var scopeOrder = []string{"system-admin", "system-reader", "a-admin", "a-member", "a-reader", "b-member"}

type scopeLab struct {
	t       *testing.T
	url     string
	version string // OpenStack-API-Version, if set
}

func (l *scopeLab) call(caller, method, path string, body any) (int, map[string]any) {
	l.t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, l.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if caller != "" {
		req.Header.Set("X-Test-Caller", caller)
	}
	if l.version != "" {
		req.Header.Set("OpenStack-API-Version", l.version)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(rb, &out)
	return resp.StatusCode, out
}

// TestServerScope: under Keystone, the servers API scopes servers to the
// project that created them, as Nova's default policy: a project's caller
// lists and sees its own, another project's server is a 404
// itemNotFound, a reader cannot write (Nova's 403 policy message), an
// admin sees every server and lists them all with all_tenants, which a
// non-admin may not ask for. Without an identity all are seen.
func TestServerScope(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "ferric.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rc, off := "gold", "power off"
	node := &store.Node{UUID: "6f1c35b4-7a0e-4d4b-9f55-0c8f2e0a1b01", Name: ptr("bm0"), Driver: "fake-hardware",
		ProvisionState: "available", PowerState: &off, ResourceClass: &rc}
	if err := st.Update(context.Background(), func(tx store.Tx) error { return tx.PutNode(node) }); err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Store: st, Manager: &fakeManager{st: st, node: node.UUID}, Images: oneImage{},
		Flavors: []Flavor{{ID: "gold", Name: "gold", ResourceClass: "gold"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name := r.Header.Get("X-Test-Caller"); name != "" {
			r = r.WithContext(auth.WithIdentity(r.Context(), scopeCallers[name]))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	l := &scopeLab{t: t, url: srv.URL}
	const sv = "/compute/v2.1/servers"

	// Project A's member creates a server: it is project A's.
	code, out := l.call("a-member", "POST", sv, map[string]any{"server": map[string]any{"name": "a1", "imageRef": "img", "flavorRef": "gold"}})
	if code != 202 {
		t.Fatalf("create as a-member: %d %v", code, out)
	}
	sA := out["server"].(map[string]any)["id"].(string)
	// Project B's server (in the store as the API would have made it).
	sB := "0b0b0b0b-0000-4000-8000-000000000002"
	now := time.Now().UTC()
	recB := record{Name: "b1", FlavorID: "gold", ImageID: "img", Metadata: map[string]string{}, Created: now, Updated: now, Project: projB, User: "u-bm"}
	if err := st.Update(context.Background(), func(tx store.Tx) error {
		return tx.PutAllocation(&store.Allocation{UUID: sB, State: "allocating", ResourceClass: &rc, Traits: []string{}, CandidateNodes: []string{},
			Extra: store.Object{extraKey: recB.object()}})
	}); err != nil {
		t.Fatal(err)
	}
	code, out = l.call("a-member", "GET", sv+"/"+sA, nil)
	if s, _ := out["server"].(map[string]any); code != 200 || s["tenant_id"] != projA || s["user_id"] != "u-am" {
		t.Fatalf("a-member's server: %d %v, want tenant_id %s, user_id u-am", code, out, projA)
	}

	// want: status by scopeOrder; count: servers listed (listings).
	for _, tc := range []struct {
		name, method, path string
		body               any
		want               []int
		count              []int
		rule               string // the 403's rule
	}{
		{"list", "GET", sv, nil, []int{200, 200, 200, 200, 200, 200}, []int{2, 2, 1, 1, 1, 1}, ""},
		{"detail", "GET", sv + "/detail", nil, []int{200, 200, 200, 200, 200, 200}, []int{2, 2, 1, 1, 1, 1}, ""},
		{"list all_tenants", "GET", sv + "?all_tenants=1", nil, []int{200, 200, 200, 403, 403, 403}, []int{2, 2, 2}, "os_compute_api:servers:index:get_all_tenants"},
		{"detail all_tenants (empty)", "GET", sv + "/detail?all_tenants", nil, []int{200, 200, 200, 403, 403, 403}, []int{2, 2, 2}, "os_compute_api:servers:detail:get_all_tenants"},
		{"all_tenants of B", "GET", sv + "?all_tenants=true&project_id=" + projB, nil, []int{200, 200, 200, 403, 403, 403}, []int{1, 1, 1}, "os_compute_api:servers:index:get_all_tenants"},
		{"all_tenants bad", "GET", sv + "?all_tenants=maybe", nil, []int{400, 400, 400, 400, 400, 400}, nil, ""},
		{"all_tenants false", "GET", sv + "?all_tenants=0", nil, []int{200, 200, 200, 200, 200, 200}, []int{2, 2, 1, 1, 1, 1}, ""},
		{"show A", "GET", sv + "/" + sA, nil, []int{200, 200, 200, 200, 200, 404}, nil, ""},
		{"show B", "GET", sv + "/" + sB, nil, []int{200, 200, 200, 404, 404, 200}, nil, ""},
		{"metadata A", "GET", sv + "/" + sA + "/metadata", nil, []int{200, 200, 200, 200, 200, 404}, nil, ""},
		{"set metadata A", "PUT", sv + "/" + sA + "/metadata/k", map[string]any{"meta": map[string]any{"k": "v"}}, []int{200, 403, 200, 200, 403, 404}, nil, "os_compute_api:server-metadata:update"},
		{"rename A", "PUT", sv + "/" + sA, map[string]any{"server": map[string]any{"name": "a1"}}, []int{200, 403, 200, 200, 403, 404}, nil, "os_compute_api:servers:update"},
		{"rename B", "PUT", sv + "/" + sB, map[string]any{"server": map[string]any{"name": "b1"}}, []int{200, 403, 200, 404, 404, 200}, nil, "os_compute_api:servers:update"},
		{"create", "POST", sv, map[string]any{"server": map[string]any{"name": "x", "imageRef": "img", "flavorRef": "none-such"}}, []int{400, 403, 400, 400, 403, 400}, nil, "os_compute_api:servers:create"},
	} {
		for i, caller := range scopeOrder {
			code, out := l.call(caller, tc.method, tc.path, tc.body)
			if code != tc.want[i] {
				t.Errorf("%s as %s: %d %v, want %d", tc.name, caller, code, out, tc.want[i])
				continue
			}
			switch code {
			case 404:
				if f, _ := out["itemNotFound"].(map[string]any); f == nil || !strings.Contains(f["message"].(string), "could not be found") {
					t.Errorf("%s as %s: 404 body %v, want Nova's itemNotFound", tc.name, caller, out)
				}
			case 403:
				want := "Policy doesn't allow " + tc.rule + " to be performed."
				if f, _ := out["forbidden"].(map[string]any); f == nil || f["message"] != want {
					t.Errorf("%s as %s: 403 body %v, want %q", tc.name, caller, out, want)
				}
			case 200:
				if tc.count != nil {
					list, _ := out["servers"].([]any)
					if len(list) != tc.count[i] {
						t.Errorf("%s as %s: %d servers, want %d", tc.name, caller, len(list), tc.count[i])
					}
				}
			}
		}
	}
	// Admin-only members (Nova's os-extended-server-attributes and
	// show:host_status rules): an admin's view has them; a project
	// member's or reader's shows only the hostname, everyone's from 2.90.
	l.version = "compute 2.90"
	for caller, admin := range map[string]bool{"system-admin": true, "a-admin": true, "a-member": false, "a-reader": false} {
		code, out := l.call(caller, "GET", sv+"/"+sA, nil)
		s, _ := out["server"].(map[string]any)
		if code != 200 || s == nil {
			t.Errorf("show at 2.90 as %s: %d %v", caller, code, out)
			continue
		}
		for _, k := range []string{"OS-EXT-SRV-ATTR:user_data", "OS-EXT-SRV-ATTR:host", "OS-EXT-SRV-ATTR:instance_name",
			"OS-EXT-SRV-ATTR:reservation_id", "host_status"} {
			if _, ok := s[k]; ok != admin {
				t.Errorf("show at 2.90 as %s: %s shown: %v, want %v", caller, k, ok, admin)
			}
		}
		if _, ok := s["OS-EXT-SRV-ATTR:hostname"]; !ok {
			t.Errorf("show at 2.90 as %s: no OS-EXT-SRV-ATTR:hostname", caller)
		}
	}
	l.version = ""
	// Actions: a reader's and another project's are refused before the
	// action is looked at.
	for caller, want := range map[string]int{"a-reader": 403, "b-member": 404, "system-reader": 403} {
		code, out := l.call(caller, "POST", sv+"/"+sA+"/action", map[string]any{"os-stop": nil})
		if code != want {
			t.Errorf("os-stop as %s: %d %v, want %d", caller, code, out, want)
		} else if want == 403 && out["forbidden"].(map[string]any)["message"] != "Policy doesn't allow os_compute_api:servers:stop to be performed." {
			t.Errorf("os-stop as %s: %v", caller, out)
		}
	}
	// Without an identity (noauth, http_basic): every server.
	if code, out := l.call("", "GET", sv, nil); code != 200 || len(out["servers"].([]any)) != 2 {
		t.Errorf("noauth list: %d %v", code, out)
	}
	// Another project cannot delete; the owner can.
	if code, out := l.call("a-member", "DELETE", sv+"/"+sB, nil); code != 404 {
		t.Errorf("a-member deletes B's server: %d %v", code, out)
	}
	if code, out := l.call("b-member", "DELETE", sv+"/"+sB, nil); code != 204 {
		t.Errorf("b-member deletes its server: %d %v", code, out)
	}
}
