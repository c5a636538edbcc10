package nova

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"

	"github.com/ferric-metal/ferric/conductor/auth"
	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/harness"
)

// keystoneManage is Debian's keystone package.
const keystoneManage = "/usr/bin/keystone-manage"

// openstackCLI is Debian's openstack client (python3-openstackclient,
// python3-ironicclient).
const openstackCLI = "/usr/bin/openstack"

// keystone is a Keystone server the test runs: Debian's keystone, its
// WSGI application served by keystone-wsgi-public (Python's wsgiref),
// sqlite and fernet keys in a temporary directory, on loopback.
type keystone struct {
	URL      string // identity v3 endpoint
	adminPW  string
	adminTok string
}

func startKeystone(t *testing.T) *keystone {
	t.Helper()
	dir := t.TempDir()
	port := harness.FreePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/v3", port)
	conf := filepath.Join(dir, "keystone.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`[DEFAULT]
use_stderr = true
[database]
connection = sqlite:///%s/keystone.db
[fernet_tokens]
key_repository = %s/fernet-keys
[credential]
key_repository = %s/credential-keys
[token]
provider = fernet
`, dir, dir, dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	ks := &keystone{URL: url, adminPW: "admin-secret-19"}
	// Bounded, generously: on a loaded machine Keystone's set-up and start
	// have taken 4 minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	start := time.Now()
	for _, args := range [][]string{
		{"db_sync"},
		{"fernet_setup", "--keystone-user", "root", "--keystone-group", "root"},
		{"credential_setup", "--keystone-user", "root", "--keystone-group", "root"},
		{"bootstrap", "--bootstrap-password", ks.adminPW, "--bootstrap-region-id", "RegionOne",
			"--bootstrap-admin-url", url, "--bootstrap-public-url", url, "--bootstrap-internal-url", url},
		// The service user and an operator, made by bootstrap too: with
		// sqlite, Keystone's API deadlocks creating users.
		{"bootstrap", "--bootstrap-username", "ferric", "--bootstrap-password", "ferric-service-pw",
			"--bootstrap-project-name", "service", "--bootstrap-role-name", "admin"},
		// bootstrap also grants its role on the system: the operator is a
		// system admin (system-scoped tokens) and an admin of project demo.
		{"bootstrap", "--bootstrap-username", "operator", "--bootstrap-password", "operator-pw",
			"--bootstrap-project-name", "demo", "--bootstrap-role-name", "admin"},
		// Users and a project for Ironic's project-scoped rules: bootstrap
		// makes its role imply member, so it makes them admins of projects
		// of their own; their roles on tenant-a are granted by the API.
		{"bootstrap", "--bootstrap-username", "tenant-member", "--bootstrap-password", "tenant-pw",
			"--bootstrap-project-name", "tenant-a", "--bootstrap-role-name", "admin"},
		{"bootstrap", "--bootstrap-username", "tenant-reader", "--bootstrap-password", "tenant-pw",
			"--bootstrap-project-name", "tenant-reader-home", "--bootstrap-role-name", "admin"},
	} {
		cmd := exec.CommandContext(ctx, keystoneManage, append([]string{"--config-file", conf}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("keystone-manage %s: %v\n%s", args[0], err, harness.LastLines(string(out), 30))
		}
	}
	// Write-ahead logging, so that a transaction Keystone leaves open for
	// reading does not lock out its own writes ("database is locked").
	wal := exec.CommandContext(ctx, python, "-c", "import sqlite3,sys; sqlite3.connect(sys.argv[1]).execute('PRAGMA journal_mode=WAL')",
		filepath.Join(dir, "keystone.db"))
	if out, err := wal.CombinedOutput(); err != nil {
		t.Fatalf("sqlite WAL: %v\n%s", err, out)
	}
	var logBuf bytes.Buffer
	cmd := exec.Command("/usr/bin/keystone-wsgi-public", "--host", "127.0.0.1", "--port", fmt.Sprint(port))
	cmd.Env = append(os.Environ(), "OS_KEYSTONE_CONFIG_FILES="+conf)
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("keystone log:\n%s", harness.LastLines(logBuf.String(), 40))
		}
	})
	harness.WaitOK(t, url, 3*time.Minute, func() string { return harness.LastLines(logBuf.String(), 30) })
	t.Logf("keystone ready at %s in %.1fs", url, time.Since(start).Seconds())
	ks.adminTok = ks.token(t, "admin", ks.adminPW, "admin")
	return ks
}

// token issues a project-scoped token by password.
func (ks *keystone) token(t *testing.T, user, password, project string) string {
	t.Helper()
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": user, "password": password, "domain": map[string]any{"id": "default"}}}},
		"scope": map[string]any{"project": map[string]any{"name": project, "domain": map[string]any{"id": "default"}}}}}
	h, _ := ks.call(t, "", "POST", "/auth/tokens?nocatalog", body, 201)
	return h.Get("X-Subject-Token")
}

// systemToken issues a system-scoped token by password.
func (ks *keystone) systemToken(t *testing.T, user, password string) string {
	t.Helper()
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": user, "password": password, "domain": map[string]any{"id": "default"}}}},
		"scope": map[string]any{"system": map[string]any{"all": true}}}}
	h, _ := ks.call(t, "", "POST", "/auth/tokens?nocatalog", body, 201)
	return h.Get("X-Subject-Token")
}

// call is a request to Keystone with token (the admin's when empty).
func (ks *keystone) call(t *testing.T, token, method, path string, body any, code int) (http.Header, map[string]any) {
	t.Helper()
	if token == "" {
		token = ks.adminTok
	}
	hdr := map[string]string{}
	if token != "" {
		hdr["X-Auth-Token"] = token
	}
	got, h, raw := harness.API{Base: ks.URL, Header: hdr}.Call(t, method, path, body)
	if got != code {
		t.Fatalf("keystone %s %s: %d, want %d: %s", method, path, got, code, raw)
	}
	return h, harness.Object(raw)
}

// TestKeystone runs ferric with --auth keystone against a real Keystone:
// refusals without or with a bad token, the openstack CLI and gophercloud
// with password auth finding ferric in the catalog, Nova's ironic driver
// with a Keystone session, and token validations per second with and
// without the validation cache.
func TestKeystone(t *testing.T) {
	if _, err := os.Stat(keystoneManage); err != nil {
		t.Skip("skipping: keystone not installed (apt-get install -y keystone)")
	}
	if testing.Short() {
		t.Skip("skipping Keystone test in -short mode")
	}
	ks := startKeystone(t)
	ksCfg := auth.KeystoneConfig{URL: ks.URL, Username: "ferric", Password: "ferric-service-pw", ProjectName: "service"}
	c := harness.Start(t, service.Config{Hostname: "keystone-test", ConductorGroup: group, Auth: "keystone",
		Keystone: ksCfg, Log: harness.Logger()})
	// The catalog entry clients look ferric up by (docs: conductor README).
	_, svc := ks.call(t, "", "POST", "/services", map[string]any{"service": map[string]any{"type": "baremetal", "name": "ironic"}}, 201)
	svcID := svc["service"].(map[string]any)["id"].(string)
	for _, iface := range []string{"public", "internal"} {
		ks.call(t, "", "POST", "/endpoints", map[string]any{"endpoint": map[string]any{"service_id": svcID,
			"interface": iface, "url": c.URL, "region_id": "RegionOne"}}, 201)
	}
	// Ironic's access rules apply: the operator works with a
	// system-scoped token (system admin), as Ironic's operators do.
	operator := ks.systemToken(t, "operator", "operator-pw")

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name, path, token string
			code              int
		}{
			{"root is public", "/", "", 200},
			{"v1 is public", "/v1", "", 200},
			{"no token", "/v1/nodes", "", 401},
			{"bad token", "/v1/nodes", "gAAAAAnot-a-token", 401},
			{"valid token", "/v1/nodes", operator, 200},
		} {
			req, _ := http.NewRequest("GET", c.URL+tc.path, nil)
			if tc.token != "" {
				req.Header.Set("X-Auth-Token", tc.token)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.code {
				t.Errorf("%s: %d, want %d: %s", tc.name, res.StatusCode, tc.code, raw)
			}
			if tc.code == 401 {
				if h := res.Header.Get("WWW-Authenticate"); h != `Keystone uri="`+ks.URL+`"` {
					t.Errorf("%s: WWW-Authenticate %q", tc.name, h)
				}
				if !strings.Contains(string(raw), auth.MsgTokenRequired) {
					t.Errorf("%s: body %s", tc.name, raw)
				}
			}
		}
	})

	t.Run("openstack CLI password auth", func(t *testing.T) {
		if _, err := os.Stat(openstackCLI); err != nil {
			t.Skip("no openstack CLI")
		}
		env := append(os.Environ(), "OS_AUTH_URL="+ks.URL, "OS_IDENTITY_API_VERSION=3", "OS_AUTH_TYPE=password",
			"OS_USERNAME=operator", "OS_PASSWORD=operator-pw", "OS_SYSTEM_SCOPE=all",
			"OS_USER_DOMAIN_NAME=Default", "OS_REGION_NAME=RegionOne", "PYTHONWARNINGS=ignore")
		run := func(args ...string) string {
			t.Helper()
			cmd := exec.Command(openstackCLI, append([]string{"baremetal"}, args...)...)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("openstack baremetal %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			return string(out)
		}
		var n map[string]any
		if err := json.Unmarshal([]byte(run("node", "create", "--driver", "fake-hardware", "--name", "ks-cli",
			"--conductor-group", group, "-f", "json")), &n); err != nil || n["name"] != "ks-cli" {
			t.Fatalf("node create: %v %v", err, n)
		}
		if out := run("node", "list", "-f", "json"); !strings.Contains(out, "ks-cli") {
			t.Errorf("node list: %s", out)
		}
		run("node", "delete", "ks-cli")
		// A wrong password never reaches ferric: Keystone refuses it.
		cmd := exec.Command(openstackCLI, "baremetal", "node", "list")
		cmd.Env = append(env, "OS_PASSWORD=wrong")
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "401") {
			t.Errorf("wrong password: %v %s", err, out)
		}
	})

	t.Run("gophercloud", func(t *testing.T) {
		ctx := context.Background()
		provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{IdentityEndpoint: ks.URL,
			Username: "operator", Password: "operator-pw", DomainName: "Default", Scope: &gophercloud.AuthScope{System: true}})
		if err != nil {
			t.Fatal(err)
		}
		bm, err := openstack.NewBareMetalV1(provider, gophercloud.EndpointOpts{Region: "RegionOne"})
		if err != nil {
			t.Fatal(err)
		}
		bm.Microversion = "1.78"
		n, err := nodes.Create(ctx, bm, nodes.CreateOpts{Driver: "fake-hardware", Name: "ks-gopher", ConductorGroup: group}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		pages, err := nodes.List(bm, nodes.ListOpts{}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		all, _ := nodes.ExtractNodes(pages)
		found := false
		for _, x := range all {
			found = found || x.UUID == n.UUID
		}
		if !found {
			t.Errorf("gophercloud list lacks %s", n.UUID)
		}
		if err := nodes.Delete(ctx, bm, n.UUID).ExtractErr(); err != nil {
			t.Errorf("gophercloud delete: %v", err)
		}
	})

	t.Run("nova driver keystone session", func(t *testing.T) {
		if _, err := os.Stat(novaDriver); err != nil {
			t.Skip("no python3-nova")
		}
		conf := filepath.Join(t.TempDir(), "nova.conf")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf(`[ironic]
auth_type = password
auth_url = %s
username = ferric
password = ferric-service-pw
system_scope = all
user_domain_name = Default
region_name = RegionOne
valid_interfaces = internal,public
`, ks.URL)), 0o600); err != nil {
			t.Fatal(err)
		}
		runNovaDriver(t, c.URL, operator, "FERRIC_NOVA_CONF="+conf)
	})

	t.Run("project scope", func(t *testing.T) {
		projectID := func(name string) string {
			_, m := ks.call(t, "", "GET", "/projects?name="+name, nil, 200)
			list, _ := m["projects"].([]any)
			if len(list) != 1 {
				t.Fatalf("project %s: %v", name, m)
			}
			return list[0].(map[string]any)["id"].(string)
		}
		tenant, demo := projectID("tenant-a"), projectID("demo")
		lookup := func(kind, name string) string {
			_, m := ks.call(t, "", "GET", "/"+kind+"?name="+name, nil, 200)
			list, _ := m[kind].([]any)
			if len(list) != 1 {
				t.Fatalf("%s %s: %v", kind, name, m)
			}
			return list[0].(map[string]any)["id"].(string)
		}
		// tenant-member: member (not admin) of tenant-a; tenant-reader:
		// reader of tenant-a.
		memberUser, readerUser := lookup("users", "tenant-member"), lookup("users", "tenant-reader")
		ks.call(t, "", "DELETE", "/projects/"+tenant+"/users/"+memberUser+"/roles/"+lookup("roles", "admin"), nil, 204)
		ks.call(t, "", "PUT", "/projects/"+tenant+"/users/"+memberUser+"/roles/"+lookup("roles", "member"), nil, 204)
		ks.call(t, "", "PUT", "/projects/"+tenant+"/users/"+readerUser+"/roles/"+lookup("roles", "reader"), nil, 204)
		mine := call(t, c.URL, operator, "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware",
			"name": "ks-tenant-node", "conductor_group": group, "owner": tenant}, 201)["uuid"].(string)
		theirs := call(t, c.URL, operator, "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware",
			"name": "ks-demo-node", "conductor_group": group, "owner": demo}, 201)["uuid"].(string)
		member := ks.token(t, "tenant-member", "tenant-pw", "tenant-a")
		reader := ks.token(t, "tenant-reader", "tenant-pw", "tenant-a")
		fault := func(m map[string]any) string {
			var inner map[string]any
			_ = json.Unmarshal([]byte(fmt.Sprint(m["error_message"])), &inner)
			return fmt.Sprint(inner["faultstring"])
		}
		// The listing holds the project's node only.
		list := call(t, c.URL, member, "GET", "/v1/nodes", nil, 200)["nodes"].([]any)
		if len(list) != 1 || list[0].(map[string]any)["uuid"] != mine {
			t.Errorf("tenant member lists %v, want only %s", list, mine)
		}
		// Another project's node does not exist for it (Ironic's 404).
		if m := call(t, c.URL, member, "GET", "/v1/nodes/"+theirs, nil, 404); fault(m) != "Node "+theirs+" could not be found." {
			t.Errorf("404 says %q", fault(m))
		}
		call(t, c.URL, member, "PATCH", "/v1/nodes/"+theirs, []map[string]any{{"op": "add", "path": "/extra/x", "value": "y"}}, 404)
		// Its own node: readers read, members act, deleting needs a
		// project admin (403 with Ironic's message).
		call(t, c.URL, reader, "GET", "/v1/nodes/"+mine, nil, 200)
		if m := call(t, c.URL, reader, "PUT", "/v1/nodes/"+mine+"/states/power", map[string]any{"target": "power off"}, 403); fault(m) != "Access was denied to the following resource: baremetal:node:set_power_state" {
			t.Errorf("403 says %q", fault(m))
		}
		call(t, c.URL, member, "PATCH", "/v1/nodes/"+mine, []map[string]any{{"op": "add", "path": "/extra/x", "value": "y"}}, 200)
		if m := call(t, c.URL, member, "DELETE", "/v1/nodes/"+mine, nil, 403); fault(m) != "Access was denied to the following resource: baremetal:node:delete:self_owned_node" {
			t.Errorf("403 says %q", fault(m))
		}
		// An allocation a project's member creates is its project's.
		al := call(t, c.URL, member, "POST", "/v1/allocations", map[string]any{"resource_class": "ks-none"}, 201)
		if al["owner"] != tenant {
			t.Errorf("allocation owner %v, want %s", al["owner"], tenant)
		}
		call(t, c.URL, operator, "DELETE", "/v1/allocations/"+al["uuid"].(string), nil, 204)
		call(t, c.URL, operator, "DELETE", "/v1/nodes/"+mine, nil, 204)
		call(t, c.URL, operator, "DELETE", "/v1/nodes/"+theirs, nil, 204)
	})

	t.Run("validations per second", func(t *testing.T) {
		uncached := harness.Start(t, service.Config{Hostname: "keystone-nocache", Auth: "keystone",
			Keystone: auth.KeystoneConfig{URL: ks.URL, Username: "ferric", Password: "ferric-service-pw",
				ProjectName: "service", CacheTTL: -1}, Log: harness.Logger()})
		rate := func(base string, d time.Duration) (float64, int) {
			n := 0
			start := time.Now()
			for time.Since(start) < d {
				req, _ := http.NewRequest("GET", base+"/v1/drivers", nil)
				req.Header.Set("X-Auth-Token", operator)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					t.Fatalf("GET /v1/drivers: %d", res.StatusCode)
				}
				n++
			}
			return float64(n) / time.Since(start).Seconds(), n
		}
		withCache, n1 := rate(c.URL, 3*time.Second)
		without, n2 := rate(uncached.URL, 5*time.Second)
		t.Logf("authenticated requests/s: %.0f with the validation cache (%d requests, one Keystone validation), %.1f without (%d requests, each validated by Keystone)",
			withCache, n1, without, n2)
		if withCache < 2*without {
			t.Errorf("the cache does not pay: %.1f/s with, %.1f/s without", withCache, without)
		}
	})
}
