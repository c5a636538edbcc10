package compute_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/test/harness"
)

// TestOpenstackCLI drives the servers API with Debian's openstack CLI:
// keypair create, server create --wait, list, show, reboot, set
// --property, rebuild, delete --wait.
func TestOpenstackCLI(t *testing.T) {
	harness.NeedOpenStackCLI(t)
	l := startLab(t, 1)
	home := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		return harness.OpenStack(t, l.url+"/compute/v2.1", []string{"HOME=" + home}, args...)
	}
	jsonOut := func(args ...string) map[string]any {
		t.Helper()
		out := run(append(args, "-f", "json")...)
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("%s: not JSON: %v\n%s", strings.Join(args, " "), err, out)
		}
		return m
	}
	pub := filepath.Join(home, "id.pub")
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc0GfG6cB0p3hHhH1r9y9eW3RxHqm8m2l8r6Yq8Pq0V cli@test"
	if err := os.WriteFile(pub, []byte(key+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if kp := jsonOut("keypair", "create", "--public-key", pub, "k1"); kp["name"] != "k1" || kp["fingerprint"] == "" {
		t.Fatalf("keypair create: %v", kp)
	}
	s := jsonOut("server", "create", "--flavor", "gold", "--image", l.image, "--key-name", "k1", "--property", "role=web", "--wait", "web1")
	id, _ := s["id"].(string)
	if s["status"] != "ACTIVE" || s["adminPass"] == "" || s["key_name"] != "k1" || id == "" {
		t.Fatalf("server create --wait: %v", s)
	}
	if out := run("server", "list", "-f", "json"); !strings.Contains(out, id) || !strings.Contains(out, "ACTIVE") {
		t.Fatalf("server list: %s", out)
	}
	show := jsonOut("server", "show", "web1")
	if show["id"] != id || show["adminPass"] != nil || !strings.Contains(fmt.Sprint(show["addresses"]), "192.0.2.10") {
		t.Fatalf("server show: %v", show)
	}
	run("server", "reboot", "--hard", "--wait", "web1")
	run("server", "set", "--property", "env=prod", "web1")
	show = jsonOut("server", "show", "web1")
	props, _ := show["properties"].(map[string]any)
	if show["status"] != "ACTIVE" || props["env"] != "prod" || props["role"] != "web" {
		t.Fatalf("after reboot and set: %v", show)
	}
	run("server", "rebuild", "--image", l.image, "--wait", "web1")
	if show = jsonOut("server", "show", "web1"); show["status"] != "ACTIVE" {
		t.Fatalf("after rebuild: %v", show)
	}
	run("server", "delete", "--wait", "web1")
	if out := run("server", "list", "-f", "json"); strings.Contains(out, id) {
		t.Fatalf("server list after delete: %s", out)
	}
	if n := l.do("GET", "/v1/nodes/bm0", nil, 200); n["provision_state"] != "available" || n["instance_uuid"] != nil {
		t.Fatalf("node after delete: %v %v", n["provision_state"], n["instance_uuid"])
	}
}
