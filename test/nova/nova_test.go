// Package nova runs Nova's ironic virt driver (Debian's python3-nova,
// unchanged) against a ferric conductor: nova_driver.py walks
// nova-compute's sequence (init_host, node listing with and without a
// partition key, the resource provider tree, claim and a lost claim race,
// VIF attach, spawn with a config drive, power, reboot, rescue, rebuild,
// destroy, a validation failure, maintenance) and checks at each step
// what Nova sees. TestKeystone runs a real Keystone and the conductor
// with --auth keystone (keystone_test.go).
package nova

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/harness"
)

// novaDriver is Debian's python3-nova's ironic driver.
const novaDriver = "/usr/lib/python3/dist-packages/nova/virt/ironic/driver.py"

// python is Debian's interpreter, which sees python3-nova.
const python = "/usr/bin/python3"

// group is the conductor group of the conductor and its nodes (Nova's
// partition_key).
const group = "rack1"

func TestNovaIronicDriver(t *testing.T) {
	if _, err := os.Stat(novaDriver); err != nil {
		t.Skip("skipping: Nova's ironic driver not installed (apt-get install -y python3-nova)")
	}
	if testing.Short() {
		t.Skip("skipping Nova driver test in -short mode")
	}
	c := harness.Start(t, service.Config{Hostname: "nova-test", ConductorGroup: group, Log: harness.Logger()})
	runNovaDriver(t, c.URL, "")
}

// runNovaDriver enrolls the nodes nova_driver.py expects on the conductor
// at base and runs it, with env added to its environment; token, when set,
// authenticates the test's own requests.
func runNovaDriver(t *testing.T, base, token string, env ...string) {
	t.Helper()
	nodes := map[string]string{"group": group}
	for i, spec := range []struct {
		name, network string
		ports         int
	}{{"flat", "flat", 2}, {"noop", "noop", 1}, {"spare", "noop", 1}} {
		nodes[spec.name] = enroll(t, base, token, "nova-"+spec.name, spec.network, i, spec.ports)
	}
	nodesJSON, _ := json.Marshal(nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "nova_driver.py")
	cmd.Env = append(append(os.Environ(), "FERRIC_URL="+base, "FERRIC_NODES="+string(nodesJSON),
		"FERRIC_TOKEN="+token, "PYTHONWARNINGS=ignore"), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var steps, fails []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "INFO "):
			t.Log(strings.TrimPrefix(line, "INFO "))
		case strings.HasPrefix(line, "STEP "):
			steps = append(steps, strings.TrimPrefix(line, "STEP "))
		case strings.HasPrefix(line, "FAIL "):
			fails = append(fails, strings.TrimPrefix(line, "FAIL "))
		}
	}
	t.Logf("Nova ironic driver against ferric, seconds per step:\n  %s", strings.Join(steps, "\n  "))
	for _, f := range fails {
		t.Error(f)
	}
	if err != nil {
		t.Fatalf("nova_driver.py: %v\n%s\n%s", err, out, harness.LastLines(stderr.String(), 60))
	}
	want := []string{"init_host", "get_available_nodes", "get_available_nodes_partition_key", "update_provider_tree",
		"claim", "vif_attach", "spawn", "get_info", "reboot_soft", "reboot_hard", "power_off", "power_on",
		"rescue", "unrescue", "rebuild", "destroy", "validation_failure", "maintenance_before_claim", "maintenance_after_claim"}
	if len(steps) != len(want) {
		t.Errorf("%d steps ran, want %d (%s)", len(steps), len(want), strings.Join(want, ", "))
	}
}

// enroll creates an available fake-hardware node (fake deploy and rescue,
// the given network interface) with ports, in the conductor group.
func enroll(t *testing.T, base, token, name, network string, i, ports int) string {
	t.Helper()
	n := call(t, base, token, "POST", "/v1/nodes", map[string]any{
		"name": name, "driver": "fake-hardware", "resource_class": "baremetal-gold",
		"conductor_group": group, "network_interface": network,
		"deploy_interface": "fake", "rescue_interface": "fake",
		"properties": map[string]any{"cpus": 2, "memory_mb": 4096, "local_gb": 10, "cpu_arch": "x86_64"},
	}, 201)
	uuid, _ := n["uuid"].(string)
	call(t, base, token, "PUT", "/v1/nodes/"+uuid+"/traits", map[string]any{"traits": []string{"CUSTOM_GOLD", "HW_CPU_X86_AVX2"}}, 204)
	for p := range ports {
		call(t, base, token, "POST", "/v1/ports", map[string]any{"node_uuid": uuid,
			"address": fmt.Sprintf("52:54:00:19:%02x:%02x", i, p), "pxe_enabled": p == 0}, 201)
	}
	for _, target := range []string{"manage", "provide"} {
		call(t, base, token, "PUT", "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": target}, 202)
		want := map[string]string{"manage": "manageable", "provide": "available"}[target]
		deadline := time.Now().Add(60 * time.Second)
		for {
			st := call(t, base, token, "GET", "/v1/nodes/"+uuid, nil, 200)["provision_state"]
			if st == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s: %v, want %s", name, st, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return uuid
}

// call sends a JSON request at API 1.78 (with token, when set) and wants
// status code.
func call(t *testing.T, base, token, method, path string, body any, code int) map[string]any {
	t.Helper()
	hdr := map[string]string{"X-OpenStack-Ironic-API-Version": "1.78"}
	if token != "" {
		hdr["X-Auth-Token"] = token
	}
	return harness.API{Base: base, Header: hdr}.Do(t, method, path, body, code)
}
