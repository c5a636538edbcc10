package conformance

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/harness"
)

func TestOpenstackCLI(t *testing.T) {
	harness.NeedOpenStackCLI(t)
	run := func(args ...string) string {
		t.Helper()
		return harness.OpenStack(t, baseURL, nil, append([]string{"baremetal"}, args...)...)
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
	n := jsonOut("node", "create", "--driver", "fake-hardware", "--name", "cli-node", "--resource-class", "cli",
		"--driver-info", "ipmi_password=cli-secret")
	id, _ := n["uuid"].(string)
	if id == "" || n["provision_state"] != "enroll" {
		t.Fatalf("node create: %v", n)
	}
	if out := run("node", "list", "-f", "json"); !strings.Contains(out, id) {
		t.Errorf("node list lacks %s: %s", id, out)
	}
	if out := run("node", "list", "--long", "-f", "json"); !strings.Contains(out, "fake-hardware") || strings.Contains(out, "cli-secret") {
		t.Errorf("node list --long: %s", out)
	}
	show := jsonOut("node", "show", "cli-node")
	if show["uuid"] != id || strings.Contains(run("node", "show", "cli-node", "-f", "json"), "cli-secret") {
		t.Errorf("node show: %v", show)
	}
	run("node", "set", "cli-node", "--property", "memory_mb=16384")
	if p, _ := jsonOut("node", "show", "cli-node")["properties"].(map[string]any); p["memory_mb"] != float64(16384) {
		t.Errorf("node set --property: %v", p)
	}
	run("node", "unset", "cli-node", "--property", "memory_mb")
	run("node", "validate", "cli-node")
	if c := jsonOut("node", "console", "show", "cli-node"); c["console_enabled"] != false {
		t.Errorf("node console show: %v", c)
	}
	run("node", "console", "enable", "cli-node")
	if c := jsonOut("node", "console", "show", "cli-node"); c["console_enabled"] != true {
		t.Errorf("node console show after enable: %v", c)
	}
	run("node", "console", "disable", "cli-node")
	run("node", "passthru", "list", "cli-node")
	run("node", "inject", "nmi", "cli-node")
	// fake management cannot change boot modes: accepted, then last_error.
	run("node", "boot", "mode", "set", "cli-node", "uefi")
	run("node", "secure", "boot", "on", "cli-node")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(fmt.Sprint(jsonOut("node", "show", "cli-node")["last_error"]), "set_secure_boot_state") {
		if time.Now().After(deadline) {
			t.Fatal("cli-node: no last_error after secure boot on")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out := run("node", "bios", "setting", "list", "cli-node", "-f", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("node bios setting list: %s", out)
	}
	run("port", "create", "--node", id, "52:54:00:c1:1c:01")
	if out := run("port", "list", "--node", id, "-f", "json"); !strings.Contains(out, "52:54:00:c1:1c:01") {
		t.Errorf("port list --node: %s", out)
	}
	run("node", "manage", "cli-node", "--wait", "60")
	// Manual cleaning comes back to manageable.
	run("node", "clean", "cli-node", "--clean-steps", `[{"interface": "deploy", "step": "erase_devices_metadata"}]`, "--wait", "60")
	if s := jsonOut("node", "show", "cli-node"); s["provision_state"] != "manageable" {
		t.Errorf("after node clean: %v", s["provision_state"])
	}
	run("node", "provide", "cli-node", "--wait", "60")
	run("node", "power", "off", "cli-node")
	// Volume connectors and targets (boot from volume records).
	vc := jsonOut("volume", "connector", "create", "--node", id, "--type", "iqn", "--connector-id", "iqn.2010-10.org.openstack:cli")
	vt := jsonOut("volume", "target", "create", "--node", id, "--type", "iscsi", "--boot-index", "0", "--volume-id", "vol-cli")
	if vc["type"] != "iqn" || vt["boot_index"] != float64(0) {
		t.Errorf("volume create: %v %v", vc, vt)
	}
	if out := run("volume", "connector", "list", "--node", id, "-f", "json"); !strings.Contains(out, "iqn.2010-10.org.openstack:cli") {
		t.Errorf("volume connector list: %s", out)
	}
	run("volume", "target", "set", vt["uuid"].(string), "--extra", "tier=gold")
	if got := jsonOut("volume", "target", "show", vt["uuid"].(string)); fmt.Sprint(got["extra"]) != "map[tier:gold]" {
		t.Errorf("volume target show after set: %v", got)
	}
	if out := run("volume", "target", "list", "--node", id, "--long", "-f", "json"); !strings.Contains(out, "vol-cli") {
		t.Errorf("volume target list: %s", out)
	}
	run("volume", "connector", "delete", vc["uuid"].(string))
	run("volume", "target", "delete", vt["uuid"].(string))
	run("node", "maintenance", "set", "cli-node", "--reason", "testing")
	run("node", "maintenance", "unset", "cli-node")
	a := jsonOut("allocation", "create", "--resource-class", "cli", "--wait", "60")
	if a["state"] != "active" || a["node_uuid"] != id {
		t.Errorf("allocation create: %v", a)
	}
	if out := run("allocation", "list", "-f", "json"); !strings.Contains(out, a["uuid"].(string)) {
		t.Errorf("allocation list: %s", out)
	}
	run("node", "deploy", "cli-node", "--wait", "60")
	if s := jsonOut("node", "show", "cli-node"); s["provision_state"] != "active" {
		t.Errorf("after deploy: %v", s["provision_state"])
	}
	run("node", "undeploy", "cli-node", "--wait", "60")
	// Node history: an IPMI node without a BMC address fails verification.
	h := jsonOut("node", "create", "--driver", "ipmi", "--name", "cli-hist")
	run("node", "manage", "cli-hist")
	deadline = time.Now().Add(30 * time.Second)
	for jsonOut("node", "show", "cli-hist")["last_error"] == nil {
		if time.Now().After(deadline) {
			t.Fatal("cli-hist: no last_error after manage")
		}
		time.Sleep(200 * time.Millisecond)
	}
	var events []map[string]any
	if err := json.Unmarshal([]byte(run("node", "history", "list", "cli-hist", "-f", "json")), &events); err != nil || len(events) != 1 {
		t.Fatalf("node history list: %v %v", events, err)
	}
	evID, _ := events[0]["UUID"].(string)
	ev := jsonOut("node", "history", "get", "cli-hist", evID)
	if ev["event_type"] != "verify" || ev["severity"] != "ERROR" || !strings.Contains(fmt.Sprint(ev["event"]), "Failed to get power state") {
		t.Errorf("node history get: %v (list: %v)", ev, events[0])
	}
	run("node", "delete", h["uuid"].(string))
	// Deploy templates.
	dt := jsonOut("deploy", "template", "create", "CUSTOM_CLI_WIPE", "--steps",
		`[{"interface": "deploy", "step": "erase_devices_metadata", "args": {}, "priority": 10}]`)
	if dt["name"] != "CUSTOM_CLI_WIPE" {
		t.Errorf("deploy template create: %v", dt)
	}
	if out := run("deploy", "template", "list", "-f", "json"); !strings.Contains(out, "CUSTOM_CLI_WIPE") {
		t.Errorf("deploy template list: %s", out)
	}
	if s := jsonOut("deploy", "template", "show", "CUSTOM_CLI_WIPE"); !strings.Contains(fmt.Sprint(s["steps"]), "erase_devices_metadata") {
		t.Errorf("deploy template show: %v", s)
	}
	run("deploy", "template", "delete", "CUSTOM_CLI_WIPE")
	run("driver", "list")
	run("driver", "show", "fake-hardware")
	run("conductor", "list")
	run("node", "delete", "cli-node")
	if out := run("node", "list", "-f", "json"); strings.Contains(out, id) {
		t.Errorf("node still listed after delete: %s", out)
	}
}
