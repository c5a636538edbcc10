package compute_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/ferric-metal/ferric/conductor/compute"
	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/harness"
)

// TestServerUpdate renames a server with gophercloud and sets its
// description (2.19) and hostname (2.90); bad input is refused with
// Nova's faults and changes nothing.
func TestServerUpdate(t *testing.T) {
	l := startLab(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cc := l.client()
	srv, err := servers.Create(ctx, cc, servers.CreateOpts{Name: "old", FlavorRef: "gold", ImageRef: l.image}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := servers.WaitForStatus(ctx, cc, srv.ID, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	got, err := servers.Update(ctx, cc, srv.ID, servers.UpdateOpts{Name: "new", AccessIPv4: "198.51.100.7"}).Extract()
	if err != nil || got.Name != "new" || got.AccessIPv4 != "198.51.100.7" {
		t.Fatalf("update: %+v %v", got, err)
	}
	if got, _ = servers.Get(ctx, cc, srv.ID).Extract(); got.Name != "new" {
		t.Fatalf("show after rename: %q", got.Name)
	}
	if n := l.do("GET", "/v1/nodes/bm0", nil, 200); n["instance_info"].(map[string]any)["display_name"] != "new" {
		t.Errorf("node's display_name %v, want the new name", n["instance_info"].(map[string]any)["display_name"])
	}
	path := "/compute/v2.1/servers/" + srv.ID
	// The answer below 2.75 is the short view; from 2.75 the full one.
	_, _, body := l.call("PUT", path, "2.19", map[string]any{"server": map[string]any{"description": "db tier"}})
	if s := body["server"].(map[string]any); s["description"] != "db tier" || s["OS-EXT-STS:vm_state"] != nil || s["name"] != "new" {
		t.Errorf("update at 2.19: %v", s)
	}
	_, _, body = l.call("PUT", path, "2.75", map[string]any{"server": map[string]any{"description": nil}})
	if s := body["server"].(map[string]any); s["description"] != nil || s["OS-EXT-STS:vm_state"] != "active" || s["key_name"] != nil {
		t.Errorf("update at 2.75: %v", s)
	}
	hn := "db-1"
	cc90 := l.client()
	cc90.Microversion = "2.90"
	if got, err = servers.Update(ctx, cc90, srv.ID, servers.UpdateOpts{Hostname: &hn}).Extract(); err != nil || got.Hostname == nil || *got.Hostname != "db-1" {
		t.Fatalf("update hostname at 2.90: %+v %v", got, err)
	}
	for _, tc := range []struct {
		ver  string
		body map[string]any
		msg  string
	}{
		{"", map[string]any{"name": ""}, "field/attribute name"},
		{"", map[string]any{"name": " padded"}, "Can not start or end with whitespace"},
		{"", map[string]any{"name": strings.Repeat("n", 256)}, "field/attribute name"},
		{"", map[string]any{"name": 7}, "field/attribute name"},
		{"", map[string]any{"name": "x", "flavorRef": "gold"}, "'flavorRef' was unexpected"},
		{"", map[string]any{"description": "d"}, "'description' was unexpected"},
		{"2.19", map[string]any{"description": strings.Repeat("d", 256)}, "field/attribute description"},
		{"2.89", map[string]any{"hostname": "h1"}, "'hostname' was unexpected"},
		{"2.90", map[string]any{"hostname": "-bad"}, "field/attribute hostname"},
		{"", map[string]any{"accessIPv4": "::1"}, "is not a 'ipv4'"},
		{"", map[string]any{"OS-DCF:diskConfig": "SOMETIMES"}, "OS-DCF:diskConfig"},
	} {
		code, _, body := l.call("PUT", path, tc.ver, map[string]any{"server": tc.body})
		if code != 400 || !strings.Contains(faultMessage(body), tc.msg) {
			t.Errorf("update at %q with %v: %d %v, want 400 %q", tc.ver, tc.body, code, body, tc.msg)
		}
	}
	if code, _, _ := l.call("PUT", path, "", map[string]any{"name": "x"}); code != 400 {
		t.Errorf("update without a server object: %d, want 400", code)
	}
	if code, _, _ := l.call("PUT", "/compute/v2.1/servers/6e0cbe5e-8d2c-4c53-a1ed-30f4a1d6d5a2", "", map[string]any{"server": map[string]any{"name": "x"}}); code != 404 {
		t.Errorf("update of a missing server: %d, want 404", code)
	}
	_, _, body = l.call("GET", path, "2.90", nil)
	if s := body["server"].(map[string]any); s["name"] != "new" || s["description"] != nil || s["OS-EXT-SRV-ATTR:hostname"] != "db-1" || s["accessIPv4"] != "198.51.100.7" {
		t.Errorf("after refused updates: %v", s)
	}

	// Rebuild: description from 2.19, no personality from 2.57, the full
	// server in the answer from 2.75.
	action := path + "/action"
	for _, tc := range []struct {
		ver  string
		args map[string]any
		msg  string
	}{
		{"2.18", map[string]any{"description": "d"}, "'description' was unexpected"},
		{"2.57", map[string]any{"personality": []any{}}, "'personality' was unexpected"},
		{"2.56", map[string]any{"user_data": "eA=="}, "'user_data' was unexpected"},
		{"2.19", map[string]any{"name": " x"}, "Can not start or end with whitespace"},
	} {
		tc.args["imageRef"] = l.image
		code, _, body := l.call("POST", action, tc.ver, map[string]any{"rebuild": tc.args})
		if code != 400 || !strings.Contains(faultMessage(body), tc.msg) {
			t.Errorf("rebuild at %s with %v: %d %v, want 400 %q", tc.ver, tc.args, code, body, tc.msg)
		}
	}
	for _, ver := range []string{"2.19", "2.75"} {
		code, _, body := l.call("POST", action, ver, map[string]any{"rebuild": map[string]any{"imageRef": l.image, "description": "rebuilt at " + ver}})
		s, _ := body["server"].(map[string]any)
		if _, full := s["OS-EXT-STS:vm_state"]; code != 202 || s["description"] != "rebuilt at "+ver || full != (ver == "2.75") {
			t.Errorf("rebuild at %s: %d %v", ver, code, body)
		}
		if err := servers.WaitForStatus(ctx, cc, srv.ID, "ACTIVE"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPaging pages servers (newest first), flavors and key pairs (2.35)
// with limit and marker: gophercloud follows the next links through
// every page; a bad marker or limit is a 400.
func TestPaging(t *testing.T) {
	fl := []compute.Flavor{{ID: "f1", ResourceClass: "gold"}, {ID: "f2", ResourceClass: "gold"}, {ID: "f3", ResourceClass: "gold"}}
	c := harness.Start(t, service.Config{ComputeFlavors: fl})
	l := &lab{t: t, url: c.URL}
	l.setup(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cc := l.client()
	// Without nodes the servers end in ERROR (no valid host): they list.
	var ids []string
	for i := range 5 {
		srv, err := servers.Create(ctx, cc, servers.CreateOpts{Name: fmt.Sprintf("p%d", i), FlavorRef: "f1", ImageRef: l.image}, nil).Extract()
		if err != nil {
			t.Fatal(err)
		}
		ids = append([]string{srv.ID}, ids...) // newest first
	}

	for _, detail := range []bool{false, true} {
		var pages []string
		pager := servers.List(cc, servers.ListOpts{Limit: 2})
		if !detail {
			pager = servers.ListSimple(cc, servers.ListOpts{Limit: 2})
		}
		var seen []string
		err := pager.EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
			list, err := servers.ExtractServers(p)
			for _, s := range list {
				seen = append(seen, s.ID)
			}
			pages = append(pages, fmt.Sprint(len(list)))
			return true, err
		})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(seen, ",") != strings.Join(ids, ",") || strings.Join(pages, ",") != "2,2,1" {
			t.Errorf("detail %v: pages %v, servers %v, want 2,2,1 of %v", detail, pages, seen, ids)
		}
	}
	_, _, body := l.call("GET", "/compute/v2.1/servers/detail?limit=2&name=p", "", nil)
	links, _ := body["servers_links"].([]any)
	if len(links) != 1 {
		t.Fatalf("servers_links %v", body["servers_links"])
	}
	next, _ := url.Parse(links[0].(map[string]any)["href"].(string))
	if next.Path != "/compute/v2.1/servers/detail" || next.Query().Get("marker") != ids[1] || next.Query().Get("limit") != "2" || next.Query().Get("name") != "p" {
		t.Errorf("next link %s", next)
	}
	_, _, body = l.call("GET", "/compute/v2.1/servers?limit=5", "", nil)
	if len(body["servers"].([]any)) != 5 || body["servers_links"] == nil {
		t.Errorf("a full last page has a next link (as Nova): %v", body)
	}
	if _, _, body = l.call("GET", "/compute/v2.1/servers?marker="+ids[4], "", nil); len(body["servers"].([]any)) != 0 || body["servers_links"] != nil {
		t.Errorf("after the last: %v", body)
	}
	for _, tc := range []struct{ path, msg string }{
		{"/compute/v2.1/servers?marker=6e0cbe5e-8d2c-4c53-a1ed-30f4a1d6d5a2", "marker [6e0cbe5e-8d2c-4c53-a1ed-30f4a1d6d5a2] not found"},
		{"/compute/v2.1/servers/detail?limit=-1", "limit"},
		{"/compute/v2.1/servers?limit=x", "limit"},
		{"/compute/v2.1/flavors?marker=f9", "marker [f9] not found"},
	} {
		if code, _, body := l.call("GET", tc.path, "", nil); code != 400 || !strings.Contains(faultMessage(body), tc.msg) {
			t.Errorf("%s: %d %v, want 400 %q", tc.path, code, body, tc.msg)
		}
	}

	var fids []string
	err := flavors.ListDetail(cc, flavors.ListOpts{Limit: 2}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		list, err := flavors.ExtractFlavors(p)
		for _, f := range list {
			fids = append(fids, f.ID)
		}
		return true, err
	})
	if err != nil || strings.Join(fids, ",") != "f1,f2,f3" {
		t.Errorf("flavor pages: %v %v", fids, err)
	}

	for _, n := range []string{"ka", "kb", "kc"} {
		l.call("POST", "/compute/v2.1/os-keypairs", "2.35", map[string]any{"keypair": map[string]any{"name": n}})
	}
	_, _, body = l.call("GET", "/compute/v2.1/os-keypairs?limit=2", "2.35", nil)
	if kps := body["keypairs"].([]any); len(kps) != 2 || body["keypairs_links"] == nil {
		t.Errorf("keypairs at 2.35, limit 2: %v", body)
	}
	_, _, body = l.call("GET", "/compute/v2.1/os-keypairs?limit=2&marker=kb", "2.35", nil)
	if kps := body["keypairs"].([]any); len(kps) != 1 || kps[0].(map[string]any)["keypair"].(map[string]any)["name"] != "kc" {
		t.Errorf("keypairs after kb: %v", body)
	}
	if code, _, body := l.call("GET", "/compute/v2.1/os-keypairs?marker=zz", "2.35", nil); code != 400 || !strings.Contains(faultMessage(body), "Marker zz could not be found.") {
		t.Errorf("keypairs bad marker: %d %v", code, body)
	}
	// Before 2.35 key pairs do not page.
	if _, _, body = l.call("GET", "/compute/v2.1/os-keypairs?limit=2", "2.34", nil); len(body["keypairs"].([]any)) != 3 {
		t.Errorf("keypairs at 2.34 with limit: %v", body)
	}
}
