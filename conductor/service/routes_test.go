package service

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
)

// routeTable lists every route of every listener under --auth http_basic
// with the status expected without and with credentials:
//
//	listener METHOD pattern anonymous authenticated
//
// Requests go to the pattern with each :param replaced by paramValues and
// * by "nowhere"; the API's carry X-OpenStack-Ironic-API-Version: latest
// and no body. A route a listener serves that has no line here fails
// TestEveryRouteAuthenticated: a new route must say whether it is public.
// (Print the observed table with FERRIC_ROUTE_TABLE=print.)
const routeTable = `
# listener method   pattern   anonymous authenticated
api       CONNECT  /*                                               401 404
api       CONNECT  /boot/*                                          401 405
api       CONNECT  /boot/instance/*                                 401 405
api       CONNECT  /boot/vmedia/*                                   401 405
api       CONNECT  /images/cache/*                                  401 405
api       CONNECT  /v1/*                                            401 404
api       CONNECT  /v1/drivers/:name/vendor_passthru                401 404
api       CONNECT  /v1/nodes/:node/vendor_passthru                  401 400
api       DELETE   /*                                               401 404
api       DELETE   /boot/*                                          401 405
api       DELETE   /boot/instance/*                                 401 405
api       DELETE   /boot/vmedia/*                                   401 405
api       DELETE   /images/cache/*                                  401 405
api       DELETE   /images/v2/images/:id                            401 204
api       DELETE   /v1/*                                            401 404
api       DELETE   /v1/allocations/:id                              401 404
api       DELETE   /v1/chassis/:ch                                  401 400
api       DELETE   /v1/deploy_templates/:template                   401 404
api       DELETE   /v1/runbooks/:runbook                            401 404
api       DELETE   /v1/drivers/:name/vendor_passthru                401 404
api       DELETE   /v1/inspection_rules                             401 204
api       DELETE   /v1/inspection_rules/:rule                       401 404
api       DELETE   /v1/nodes                                        401 400
api       DELETE   /v1/nodes/:node                                  401 204
api       DELETE   /v1/nodes/:node/allocation                       401 404
api       DELETE   /v1/nodes/:node/maintenance                      401 202
api       DELETE   /v1/nodes/:node/traits                           401 204
api       DELETE   /v1/nodes/:node/traits/:trait                    401 404
api       DELETE   /v1/nodes/:node/vendor_passthru                  401 400
api       DELETE   /v1/nodes/:node/vifs/:vif                        401 204
api       DELETE   /v1/nodes/:node/vmedia                           401 400
api       DELETE   /v1/portgroups/:pg                               401 404
api       DELETE   /v1/ports/:port                                  401 400
api       DELETE   /v1/volume/connectors/:id                        401 404
api       DELETE   /v1/volume/targets/:id                           401 404
api       GET      /                                                200 200
api       GET      /*                                               401 404
api       GET      /boot/*                                          404 404
api       GET      /boot/instance/*                                 404 404
api       GET      /boot/vmedia/*                                   404 404
api       GET      /images                                          401 300
api       GET      /images/                                         401 300
api       GET      /images/cache/*                                  404 404
api       GET      /images/v2                                       401 200
api       GET      /images/v2/images                                401 200
api       GET      /images/v2/images/:id                            200 200
api       GET      /images/v2/images/:id/file                       204 204
api       GET      /images/v2/schemas/image                         401 200
api       GET      /images/versions                                 401 300
api       GET      /metrics                                         401 200
api       GET      /v1                                              200 200
api       GET      /v1/                                             200 200
api       GET      /v1/*                                            401 404
api       GET      /v1/allocations                                  401 200
api       GET      /v1/allocations/                                 401 200
api       GET      /v1/allocations/:id                              401 404
api       GET      /v1/chassis                                      401 200
api       GET      /v1/chassis/                                     401 200
api       GET      /v1/chassis/:ch                                  401 400
api       GET      /v1/chassis/:ch/nodes                            401 400
api       GET      /v1/chassis/:ch/nodes/detail                     401 400
api       GET      /v1/chassis/detail                               401 200
api       GET      /v1/conductors                                   401 200
api       GET      /v1/conductors/                                  401 200
api       GET      /v1/conductors/:host                             401 404
api       GET      /v1/deploy_templates                             401 200
api       GET      /v1/deploy_templates/                            401 200
api       GET      /v1/deploy_templates/:template                   401 404
api       GET      /v1/runbooks                                     401 200
api       GET      /v1/runbooks/                                    401 200
api       GET      /v1/runbooks/:runbook                            401 404
api       GET      /v1/drivers                                      401 200
api       GET      /v1/drivers/                                     401 200
api       GET      /v1/drivers/:name                                401 404
api       GET      /v1/drivers/:name/properties                     401 404
api       GET      /v1/drivers/:name/raid/logical_disk_properties   401 404
api       GET      /v1/drivers/:name/vendor_passthru                401 404
api       GET      /v1/drivers/:name/vendor_passthru/methods        401 404
api       GET      /v1/inspection_rules                             401 200
api       GET      /v1/inspection_rules/:rule                       401 404
api       GET      /v1/lookup                                       400 400
api       GET      /v1/nodes                                        401 200
api       GET      /v1/nodes/                                       401 200
api       GET      /v1/nodes/:node                                  401 200
api       GET      /v1/nodes/:node/allocation                       401 404
api       GET      /v1/nodes/:node/bios                             401 200
api       GET      /v1/nodes/:node/bios/:setting                    401 404
api       GET      /v1/nodes/:node/children                         401 200
api       GET      /v1/nodes/:node/firmware                         401 200
api       GET      /v1/nodes/:node/history                          401 200
api       GET      /v1/nodes/:node/history/:event                   401 404
api       GET      /v1/nodes/:node/ramdisk_logs                     401 200
api       GET      /v1/nodes/:node/ramdisk_logs/:name               401 404
api       GET      /v1/nodes/:node/inventory                        401 404
api       GET      /v1/nodes/:node/management/boot_device           401 200
api       GET      /v1/nodes/:node/management/boot_device/supported 401 200
api       GET      /v1/nodes/:node/management/indicators            401 200
api       GET      /v1/nodes/:node/management/indicators/:indicator 401 400
api       GET      /v1/nodes/:node/portgroups                       401 200
api       GET      /v1/nodes/:node/portgroups/detail                401 200
api       GET      /v1/nodes/:node/ports                            401 200
api       GET      /v1/nodes/:node/ports/detail                     401 200
api       GET      /v1/nodes/:node/states                           401 200
api       GET      /v1/nodes/:node/states/console                   401 200
api       GET      /v1/nodes/:node/traits                           401 200
api       GET      /v1/nodes/:node/validate                         401 200
api       GET      /v1/nodes/:node/vendor_passthru                  401 400
api       GET      /v1/nodes/:node/vendor_passthru/methods          401 200
api       GET      /v1/nodes/:node/vifs                             401 200
api       GET      /v1/nodes/:node/volume                           401 200
api       GET      /v1/nodes/:node/volume/connectors                401 200
api       GET      /v1/nodes/:node/volume/targets                   401 200
api       GET      /v1/nodes/:node/vmedia                           401 400
api       GET      /v1/nodes/detail                                 401 200
api       GET      /v1/portgroups                                   401 200
api       GET      /v1/portgroups/                                  401 200
api       GET      /v1/portgroups/:pg                               401 404
api       GET      /v1/portgroups/:pg/ports                         401 404
api       GET      /v1/portgroups/:pg/ports/detail                  401 404
api       GET      /v1/portgroups/detail                            401 200
api       GET      /v1/ports                                        401 200
api       GET      /v1/ports/                                       401 200
api       GET      /v1/ports/:port                                  401 400
api       GET      /v1/ports/detail                                 401 200
api       GET      /v1/shards                                       401 200
api       GET      /v1/volume                                       401 200
api       GET      /v1/volume/                                      401 200
api       GET      /v1/volume/connectors                            401 200
api       GET      /v1/volume/connectors/                           401 200
api       GET      /v1/volume/connectors/:id                        401 404
api       GET      /v1/volume/targets                               401 200
api       GET      /v1/volume/targets/                              401 200
api       GET      /v1/volume/targets/:id                           401 404
api       HEAD     /*                                               401 404
api       HEAD     /boot/*                                          404 404
api       HEAD     /boot/instance/*                                 404 404
api       HEAD     /boot/vmedia/*                                   404 404
api       HEAD     /images/cache/*                                  404 404
api       HEAD     /images/v2/images/:id/file                       204 204
api       HEAD     /v1/*                                            401 404
api       HEAD     /v1/drivers/:name/vendor_passthru                401 404
api       HEAD     /v1/nodes/:node/vendor_passthru                  401 400
api       OPTIONS  /*                                               401 404
api       OPTIONS  /boot/*                                          401 405
api       OPTIONS  /boot/instance/*                                 401 405
api       OPTIONS  /boot/vmedia/*                                   401 405
api       OPTIONS  /images/cache/*                                  401 405
api       OPTIONS  /v1/*                                            401 404
api       OPTIONS  /v1/drivers/:name/vendor_passthru                401 404
api       OPTIONS  /v1/nodes/:node/vendor_passthru                  401 400
api       PATCH    /*                                               401 404
api       PATCH    /boot/*                                          401 405
api       PATCH    /boot/instance/*                                 401 405
api       PATCH    /boot/vmedia/*                                   401 405
api       PATCH    /images/cache/*                                  401 405
api       PATCH    /images/v2/images/:id                            401 415
api       PATCH    /v1/*                                            401 404
api       PATCH    /v1/allocations/:id                              401 404
api       PATCH    /v1/chassis/:ch                                  401 400
api       PATCH    /v1/deploy_templates/:template                   401 404
api       PATCH    /v1/runbooks/:runbook                            401 404
api       PATCH    /v1/drivers/:name/vendor_passthru                401 404
api       PATCH    /v1/inspection_rules/:rule                       401 400
api       PATCH    /v1/nodes/:node                                  401 400
api       PATCH    /v1/nodes/:node/vendor_passthru                  401 400
api       PATCH    /v1/portgroups/:pg                               401 404
api       PATCH    /v1/ports/:port                                  401 400
api       PATCH    /v1/volume/connectors/:id                        401 404
api       PATCH    /v1/volume/targets/:id                           401 404
api       POST     /*                                               401 404
api       POST     /boot/*                                          401 405
api       POST     /boot/instance/*                                 401 405
api       POST     /boot/vmedia/*                                   401 405
api       POST     /images/cache/*                                  401 405
api       POST     /images/v2/images                                401 400
api       POST     /v1/*                                            401 404
api       POST     /v1/allocations                                  401 400
api       POST     /v1/allocations/                                 401 400
api       POST     /v1/chassis                                      401 400
api       POST     /v1/continue_inspection                          404 404
api       POST     /v1/deploy_templates                             401 400
api       POST     /v1/runbooks                                     401 400
api       POST     /v1/drivers/:name/vendor_passthru                401 404
api       POST     /v1/events                                       401 400
api       POST     /v1/heartbeat/:node                              400 400
api       POST     /v1/inspection_rules                             401 400
api       POST     /v1/nodes                                        401 400
api       POST     /v1/nodes/                                       401 400
api       POST     /v1/nodes/:node/vendor_passthru                  401 400
api       POST     /v1/nodes/:node/vifs                             401 400
api       POST     /v1/nodes/:node/volume/connectors                401 400
api       POST     /v1/nodes/:node/volume/targets                   401 400
api       POST     /v1/nodes/:node/vmedia                           401 400
api       POST     /v1/portgroups                                   401 400
api       POST     /v1/ports                                        401 400
api       POST     /v1/ports/                                       401 400
api       POST     /v1/volume/connectors                            401 400
api       POST     /v1/volume/connectors/                           401 400
api       POST     /v1/volume/targets                               401 400
api       POST     /v1/volume/targets/                              401 400
api       PROPFIND /*                                               401 404
api       PROPFIND /boot/*                                          401 405
api       PROPFIND /boot/instance/*                                 401 405
api       PROPFIND /boot/vmedia/*                                   401 405
api       PROPFIND /images/cache/*                                  401 405
api       PROPFIND /v1/*                                            401 404
api       PROPFIND /v1/drivers/:name/vendor_passthru                401 404
api       PROPFIND /v1/nodes/:node/vendor_passthru                  401 400
api       PUT      /*                                               401 404
api       PUT      /boot/*                                          401 405
api       PUT      /boot/instance/*                                 401 405
api       PUT      /boot/vmedia/*                                   401 405
api       PUT      /images/cache/*                                  401 405
api       PUT      /images/v2/images/:id/file                       401 204
api       PUT      /v1/*                                            401 404
api       PUT      /v1/drivers/:name/vendor_passthru                401 404
api       PUT      /v1/nodes/:node/maintenance                      401 202
api       PUT      /v1/nodes/:node/management/boot_device           401 400
api       PUT      /v1/nodes/:node/management/indicators/:indicator 401 400
api       PUT      /v1/nodes/:node/management/inject_nmi            401 204
api       PUT      /v1/nodes/:node/states/boot_mode                 401 400
api       PUT      /v1/nodes/:node/states/console                   401 400
api       PUT      /v1/nodes/:node/states/power                     401 400
api       PUT      /v1/nodes/:node/states/provision                 401 400
api       PUT      /v1/nodes/:node/states/raid                      401 400
api       PUT      /v1/nodes/:node/states/secure_boot               401 400
api       PUT      /v1/nodes/:node/traits                           401 400
api       PUT      /v1/nodes/:node/traits/:trait                    401 400
api       PUT      /v1/nodes/:node/vendor_passthru                  401 400
api       REPORT   /*                                               401 404
api       REPORT   /boot/*                                          401 405
api       REPORT   /boot/instance/*                                 401 405
api       REPORT   /boot/vmedia/*                                   401 405
api       REPORT   /images/cache/*                                  401 405
api       REPORT   /v1/*                                            401 404
api       REPORT   /v1/drivers/:name/vendor_passthru                401 404
api       REPORT   /v1/nodes/:node/vendor_passthru                  401 400
api       TRACE    /*                                               401 404
api       TRACE    /boot/*                                          401 405
api       TRACE    /boot/instance/*                                 401 405
api       TRACE    /boot/vmedia/*                                   401 405
api       TRACE    /images/cache/*                                  401 405
api       TRACE    /v1/*                                            401 404
api       TRACE    /v1/drivers/:name/vendor_passthru                401 404
api       TRACE    /v1/nodes/:node/vendor_passthru                  401 400

inspector DELETE   /v1/rules                                        401 204
inspector DELETE   /v1/rules/:rule                                  401 404
inspector GET      /                                                200 200
inspector GET      /v1                                              200 200
inspector GET      /v1/                                             200 200
inspector GET      /v1/introspection                                401 200
inspector GET      /v1/introspection/:node                          401 404
inspector GET      /v1/introspection/:node/data                     401 404
inspector GET      /v1/introspection/:node/data/unprocessed         401 404
inspector GET      /v1/rules                                        401 200
inspector GET      /v1/rules/:rule                                  401 404
inspector POST     /v1/continue                                     400 400
inspector POST     /v1/introspection/:node                          401 404
inspector POST     /v1/introspection/:node/abort                    401 404
inspector POST     /v1/introspection/:node/data/unprocessed         401 400
inspector POST     /v1/rules                                        401 400

metrics   GET      /metrics                                         401 200
# the web console (its page for any path under /ui/) and the change feed
api       CONNECT  /ui                                              401 405
api       CONNECT  /ui/*                                            401 405
api       DELETE   /ui                                              401 405
api       DELETE   /ui/*                                            401 405
api       GET      /ui                                              401 200
api       GET      /ui/*                                            401 200
api       GET      /v1/events/stream                                401 200
api       HEAD     /ui                                              401 200
api       HEAD     /ui/*                                            401 200
api       OPTIONS  /ui                                              401 405
api       OPTIONS  /ui/*                                            401 405
api       PATCH    /ui                                              401 405
api       PATCH    /ui/*                                            401 405
api       POST     /ui                                              401 405
api       POST     /ui/*                                            401 405
api       PROPFIND /ui                                              401 405
api       PROPFIND /ui/*                                            401 405
api       PUT      /ui                                              401 405
api       PUT      /ui/*                                            401 405
api       REPORT   /ui                                              401 405
api       REPORT   /ui/*                                            401 405
api       TRACE    /ui                                              401 405
api       TRACE    /ui/*                                            401 405
# The Compute servers API (issue 22).
api       DELETE   /compute/v2.1/os-keypairs/:name                  401 404
api       DELETE   /compute/v2.1/servers/:id                        401 404
api       DELETE   /compute/v2.1/servers/:id/metadata/:key          401 404
api       GET      /compute                                         401 200
api       GET      /compute/                                        401 200
api       GET      /compute/v2.1                                    401 200
api       GET      /compute/v2.1/                                   401 200
api       GET      /compute/v2.1/flavors                            401 200
api       GET      /compute/v2.1/flavors/:id                        401 404
api       GET      /compute/v2.1/flavors/:id/os-extra_specs         401 404
api       GET      /compute/v2.1/flavors/detail                     401 200
api       GET      /compute/v2.1/images                             401 200
api       GET      /compute/v2.1/images/:id                         401 200
api       GET      /compute/v2.1/images/detail                      401 200
api       GET      /compute/v2.1/limits                             401 200
api       GET      /compute/v2.1/os-keypairs                        401 200
api       GET      /compute/v2.1/os-keypairs/:name                  401 404
api       GET      /compute/v2.1/servers                            401 200
api       GET      /compute/v2.1/servers/:id                        401 404
api       GET      /compute/v2.1/servers/:id/metadata               401 404
api       GET      /compute/v2.1/servers/:id/metadata/:key          401 404
api       GET      /compute/v2.1/servers/detail                     401 200
api       POST     /compute/v2.1/os-keypairs                        401 400
api       POST     /compute/v2.1/servers                            401 400
api       POST     /compute/v2.1/servers/:id/action                 401 404
api       POST     /compute/v2.1/servers/:id/metadata               401 404
api       PUT      /compute/v2.1/servers/:id                        401 404
api       PUT      /compute/v2.1/servers/:id/metadata               401 404
api       PUT      /compute/v2.1/servers/:id/metadata/:key          401 404
# The deployed servers' phone-home: public, behind the server's own token.
api       GET      /compute/phone-home/:id                          401 403
api       POST     /compute/phone-home/:id                          401 403
`

var paramValues = map[string]string{}

// routeRow is one line of routeTable.
type routeRow struct {
	listener, method, path string
	anon, authed           int
}

func parseRouteTable(t *testing.T) map[string]routeRow {
	rows := map[string]routeRow{}
	for _, line := range strings.Split(routeTable, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 5 {
			t.Fatalf("route table line %q: want 5 fields", line)
		}
		a, err1 := strconv.Atoi(f[3])
		b, err2 := strconv.Atoi(f[4])
		if err1 != nil || err2 != nil {
			t.Fatalf("route table line %q: bad status", line)
		}
		r := routeRow{f[0], f[1], f[2], a, b}
		k := r.listener + " " + r.method + " " + r.path
		if _, dup := rows[k]; dup {
			t.Fatalf("route table: %s twice", k)
		}
		rows[k] = r
	}
	return rows
}

// concrete fills a route pattern's parameters.
func concrete(pattern string) string {
	parts := strings.Split(pattern, "/")
	for i, p := range parts {
		switch {
		case strings.HasPrefix(p, ":"):
			v := paramValues[p[1:]]
			if v == "" {
				v = "no-such-" + p[1:]
			}
			parts[i] = v
		case p == "*":
			parts[i] = "nowhere"
		}
	}
	return strings.Join(parts, "/")
}

// TestEveryRouteAuthenticated (issue 17): every route of the API, the
// inspector and the metrics listener, taken from their routers, answers
// as the table says without and with credentials, over real sockets.
func TestEveryRouteAuthenticated(t *testing.T) {
	var mu sync.Mutex
	served := map[string][]ironichttp.Route{}
	onRoutes = func(l string, rs []ironichttp.Route) {
		mu.Lock()
		served[l] = append(served[l], rs...)
		mu.Unlock()
	}
	defer func() { onRoutes = nil }()
	e := startConductor(t, bcrypt.MinCost, func(c *Config) { c.MetricsListen = freeAddr(t) })
	base := map[string]string{"api": e.api, "inspector": e.inspector, "metrics": e.metrics}
	// A node and an image to address (DELETE routes run last).
	v := []string{"X-OpenStack-Ironic-API-Version", "latest"}
	code, _, b := e.do(t, "POST", e.api+"/v1/nodes", "good", `{"driver":"fake-hardware","name":"table-node"}`, v...)
	var created struct {
		UUID string `json:"uuid"`
		ID   string `json:"id"`
	}
	if code != http.StatusCreated || json.Unmarshal(b, &created) != nil {
		t.Fatalf("create node: %d %s", code, b)
	}
	paramValues = map[string]string{"node": created.UUID}
	code, _, b = e.do(t, "POST", e.api+"/images/v2/images", "good", `{"name":"table","disk_format":"raw","container_format":"bare"}`)
	if code != http.StatusCreated || json.Unmarshal(b, &created) != nil {
		t.Fatalf("create image: %d %s", code, b)
	}
	paramValues["id"] = created.ID
	defer func() { paramValues = nil }()
	rows := parseRouteTable(t)
	print := os.Getenv("FERRIC_ROUTE_TABLE") == "print"
	var out []string
	seen := map[string]bool{}
	for _, l := range []string{"api", "inspector", "metrics"} {
		if len(served[l]) == 0 {
			t.Errorf("listener %s reported no routes", l)
		}
		rs := served[l]
		// A fixed order (echo lists routes from a map): deletions last,
		// sub-resources before their resource.
		sort.Slice(rs, func(i, j int) bool {
			di, dj := rs[i].Method == http.MethodDelete, rs[j].Method == http.MethodDelete
			switch {
			case di != dj:
				return dj
			case rs[i].Path != rs[j].Path:
				return (rs[i].Path < rs[j].Path) != di
			}
			return rs[i].Method < rs[j].Method
		})
		for _, r := range rs {
			k := l + " " + r.Method + " " + r.Path
			if seen[k] {
				continue
			}
			seen[k] = true
			row, listed := rows[k]
			if !listed && !print {
				t.Errorf("route %s is not in the route table: add it with its expected answers", k)
				continue
			}
			url := base[l] + concrete(r.Path)
			hdr := []string{"X-OpenStack-Ironic-API-Version", "latest"}
			anon, _, ab := e.do(t, r.Method, url, "", "", hdr...)
			authed, _, bb := e.do(t, r.Method, url, "good", "", hdr...)
			if print {
				out = append(out, fmt.Sprintf("%s %s %s %d %d", l, r.Method, r.Path, anon, authed))
				continue
			}
			if anon != row.anon {
				t.Errorf("%s without credentials: %d %.200s, want %d", k, anon, ab, row.anon)
			}
			if authed != row.authed {
				t.Errorf("%s with credentials: %d %.200s, want %d", k, authed, bb, row.authed)
			}
			if authed == http.StatusUnauthorized {
				t.Errorf("%s refuses good credentials", k)
			}
		}
	}
	for k := range rows {
		if !seen[k] && !print {
			t.Errorf("route table lists %s, which no listener serves", k)
		}
	}
	if print {
		sort.Strings(out)
		fmt.Println(strings.Join(out, "\n"))
	}
}
