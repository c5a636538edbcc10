package compute_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/test/harness"
)

// TestOpenstackCLIMicroversion drives the servers API with Debian's
// openstack CLI at microversion 2.92 (--os-compute-api-version; the highest python-novaclient 18.1 knows): create
// with --nic none, --description and --tag, rename and describe with
// server set, show (description, tags, embedded flavor), list paged with
// --limit and --marker; and flavor list, which openstacksdk negotiates
// (2.61 against this API's 2.96).
func TestOpenstackCLIMicroversion(t *testing.T) {
	harness.NeedOpenStackCLI(t)
	l := startLab(t, 1)
	home := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		return harness.OpenStack(t, l.url+"/compute/v2.1", []string{"HOME=" + home}, append([]string{"--os-compute-api-version", "2.92"}, args...)...)
	}
	jsonOut := func(v any, args ...string) {
		t.Helper()
		out := run(append(args, "-f", "json")...)
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("%s: not JSON: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	var s map[string]any
	jsonOut(&s, "server", "create", "--flavor", "gold", "--image", l.image, "--nic", "none", "--description", "web tier",
		"--tag", "web", "--wait", "m1")
	id, _ := s["id"].(string)
	if s["status"] != "ACTIVE" || id == "" {
		t.Fatalf("server create --wait: %v", s)
	}
	run("server", "set", "--name", "m2", "--description", "db tier", "m1")
	jsonOut(&s, "server", "show", "m2")
	if s["id"] != id || s["description"] != "db tier" || !strings.Contains(fmt.Sprint(s["tags"]), "web") ||
		!strings.Contains(fmt.Sprint(s["flavor"]), "gold") || s["locked"] != false {
		t.Fatalf("server show at 2.92: %v", s)
	}
	// A second server (no node left: ERROR) to page over.
	jsonOut(&s, "server", "create", "--flavor", "gold", "--image", l.image, "--nic", "none", "m3")
	second, _ := s["id"].(string)
	var list []map[string]any
	jsonOut(&list, "server", "list", "--limit", "1")
	if len(list) != 1 || list[0]["ID"] != second {
		t.Fatalf("server list --limit 1: %v, want the newest, %s", list, second)
	}
	jsonOut(&list, "server", "list", "--limit", "1", "--marker", second)
	if len(list) != 1 || list[0]["ID"] != id {
		t.Fatalf("server list --marker: %v, want %s", list, id)
	}
	jsonOut(&list, "flavor", "list")
	if len(list) != 1 || list[0]["ID"] != "gold" {
		t.Fatalf("flavor list: %v", list)
	}
}
