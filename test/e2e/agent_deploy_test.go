// Package e2e holds end-to-end tests: the real conductor driving the real
// ramdisk agent (as a process, with a file as its disk), and, where QEMU
// and ipmi_sim are installed, virtual machines in a network namespace.
package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/artifacts"
	"github.com/ferric-metal/ferric/test/harness"
)

// startConductor runs a conductor in-process (automated cleaning on) until
// the test ends and returns its API URL.
func startConductor(t *testing.T) string {
	t.Helper()
	return harness.Start(t, service.Config{Hostname: "e2e", AutomatedClean: true}).URL
}

type client struct {
	t    *testing.T
	base string
}

func (c client) do(method, path string, body any, want int) map[string]any {
	c.t.Helper()
	return c.doVersion("1.78", method, path, body, want)
}

// doVersion is do with API microversion ver.
func (c client) doVersion(ver, method, path string, body any, want int) map[string]any {
	c.t.Helper()
	return harness.API{Base: c.base, Header: map[string]string{"X-OpenStack-Ironic-API-Version": ver}}.Do(c.t, method, path, body, want)
}

// waitState polls a node until it reaches state with no target.
func (c client) waitState(node, state string, timeout time.Duration) map[string]any {
	c.t.Helper()
	return waitNodeState(c.t, c.do, node, state, timeout)
}

// nodeAPI is the Ironic API as the tests drive it: client, or
// basicClient with credentials.
type nodeAPI interface {
	do(method, path string, body any, want int) map[string]any
	waitState(node, state string, timeout time.Duration) map[string]any
}

// waitNodeState polls a node with do until it reaches state with no
// target; a failed or error state fails the test at once.
func waitNodeState(t *testing.T, do func(method, path string, body any, want int) map[string]any,
	node, state string, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var n map[string]any
	for time.Now().Before(deadline) {
		n = do("GET", "/v1/nodes/"+node, nil, 200)
		if n["provision_state"] == state && n["target_provision_state"] == nil && n["reservation"] == nil {
			return n
		}
		if s, _ := n["provision_state"].(string); strings.HasSuffix(s, "failed") || s == "error" {
			t.Fatalf("node %s went to %q: %v", node, s, n["last_error"])
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("node %s did not reach %q in %s: state %v target %v last_error %v", node, state, timeout,
		n["provision_state"], n["target_provision_state"], n["last_error"])
	return nil
}

// buildAgent is the agent binary test/artifacts builds once per run.
func buildAgent(t *testing.T) string {
	t.Helper()
	bin, err := artifacts.Agent()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// startAgent runs the agent binary with args and returns a function that
// kills it (also called when the test ends); the agent's log is shown when
// the test failed.
func startAgent(t *testing.T, bin string, args ...string) (stop func()) {
	t.Helper()
	agent := exec.Command(bin, args...)
	var agentLog bytes.Buffer
	agent.Stdout, agent.Stderr = &agentLog, &agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			agent.Process.Kill()
			agent.Wait()
			if t.Failed() {
				t.Logf("agent log:\n%s", agentLog.String())
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// startMachineAgent runs the agent as the machine with MAC mac whose
// disk is the file disk, talking to the conductor at base, with short
// lookup and heartbeat intervals.
func startMachineAgent(t *testing.T, base, disk, mac string) (stop func()) {
	t.Helper()
	port := harness.FreePort(t)
	return startAgent(t, buildAgent(t), "--api-url", base, "--disk", disk, "--mac", mac,
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--advertise-host", "127.0.0.1",
		"--advertise-port", fmt.Sprint(port), "--heartbeat-interval", "1s", "--lookup-max", "1s",
		"--forced-heartbeat-gap", "100ms", "--min-root-size", "1048576")
}

// writeDisk makes path an agent's disk of size bytes (sparse) that
// starts with head.
func writeDisk(t *testing.T, path string, head []byte, size int64) {
	t.Helper()
	if err := os.WriteFile(path, head, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// newDisk is writeDisk on a new file of the test's.
func newDisk(t *testing.T, head []byte, size int64) string {
	t.Helper()
	disk := filepath.Join(t.TempDir(), "disk.img")
	writeDisk(t, disk, head, size)
	return disk
}

// agentDeployImages is the driver_info of a node whose "machine" is an
// agent process: deploy images the conductor never fetches.
func agentDeployImages() map[string]any {
	return map[string]any{"deploy_kernel": "http://example.invalid/k", "deploy_ramdisk": "http://example.invalid/r"}
}

// enrollAgentNode enrolls a fake-hardware node with fields (its name and
// interfaces among them) and a port of mac through c, starts its machine
// (an agent with disk, calling the conductor at base) and brings it to
// manageable. It returns the node.
func enrollAgentNode(t *testing.T, c nodeAPI, base, disk, mac string, fields map[string]any) map[string]any {
	t.Helper()
	body := map[string]any{"driver": "fake-hardware", "driver_info": agentDeployImages()}
	maps.Copy(body, fields)
	node := c.do("POST", "/v1/nodes", body, 201)
	c.do("POST", "/v1/ports", map[string]any{"address": mac, "node_uuid": node["uuid"]}, 201)
	startMachineAgent(t, base, disk, mac)
	name := fmt.Sprint(fields["name"])
	c.do("PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState(name, "manageable", 30*time.Second)
	return node
}

// serveContent serves content as name (with modtime, none if zero) until
// the test ends, and returns the server's URL.
func serveContent(t *testing.T, name string, modtime time.Time, content []byte) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, name, modtime, bytes.NewReader(content))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestDeployThroughAgent enrolls a node whose "machine" is a ferric-agent
// process with a file as its disk, and takes it through manage, provide
// (automated cleaning by the agent), deploy with a checksummed image from
// an HTTP server, a deploy with a wrong checksum, and undeploy.
func TestDeployThroughAgent(t *testing.T) {
	base := startConductor(t)
	c := client{t, base}

	image := make([]byte, 6<<20+12345)
	rand.Read(image[:1<<20])
	rand.Read(image[4<<20:])
	writeMBR(image)
	sum := sha256.Sum256(image)
	imgURL := serveContent(t, "image.raw", time.Now(), image)

	// The start of the disk pre-filled, so a written image is visible.
	disk := newDisk(t, bytes.Repeat([]byte{0xAA}, 1<<20), 128<<20)

	const mac = "52:54:00:12:34:56"
	enrollAgentNode(t, c, base, disk, mac, map[string]any{"name": "agent-node", "deploy_interface": "direct"})
	c.do("PUT", "/v1/nodes/agent-node/states/provision", map[string]any{"target": "provide"}, 202)
	c.waitState("agent-node", "available", 90*time.Second)

	// Cleaning erased the metadata we planted at the start of the disk.
	head := make([]byte, 4096)
	f, _ := os.Open(disk)
	f.ReadAt(head, 0)
	f.Close()
	if bytes.Contains(head, []byte{0xAA, 0xAA, 0xAA, 0xAA}) {
		t.Fatalf("automated cleaning did not erase the disk's first blocks")
	}

	// A wrong checksum fails the deploy and leaves the disk unbootable.
	c.do("PATCH", "/v1/nodes/agent-node", []map[string]any{
		{"op": "add", "path": "/instance_info/image_source", "value": imgURL + "/image.raw"},
		{"op": "add", "path": "/instance_info/image_os_hash_algo", "value": "sha256"},
		{"op": "add", "path": "/instance_info/image_os_hash_value", "value": strings.Repeat("0", 64)},
	}, 200)
	c.do("PUT", "/v1/nodes/agent-node/states/provision", map[string]any{"target": "active"}, 202)
	deadline := time.Now().Add(90 * time.Second)
	var n map[string]any
	for time.Now().Before(deadline) {
		n = c.do("GET", "/v1/nodes/agent-node", nil, 200)
		if n["provision_state"] == "deploy failed" {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n["provision_state"] != "deploy failed" || !strings.Contains(fmt.Sprint(n["last_error"]), "checksum") {
		t.Fatalf("wrong checksum: state %v last_error %v, want deploy failed naming the checksum", n["provision_state"], n["last_error"])
	}
	checkDeployLogs(t, c, "agent-node", "checksum mismatch") // deploy_logs_collect on_failure, the default

	// The right checksum deploys.
	c.do("PATCH", "/v1/nodes/agent-node", []map[string]any{
		{"op": "replace", "path": "/instance_info/image_os_hash_value", "value": hex.EncodeToString(sum[:])},
	}, 200)
	c.do("PUT", "/v1/nodes/agent-node/states/provision", map[string]any{"target": "active",
		"configdrive": map[string]any{"meta_data": map[string]any{"hostname": "deployed-host"}, "user_data": "#!/bin/sh\necho hi\n"}}, 202)
	n = c.waitState("agent-node", "active", 120*time.Second)
	if n["power_state"] != "power on" {
		t.Errorf("deployed node power_state = %v, want power on", n["power_state"])
	}
	got := make([]byte, len(image))
	f, _ = os.Open(disk)
	_, err := f.ReadAt(got, 0)
	f.Close()
	// The config drive adds a second entry to the MBR's partition table;
	// everything else must be the image's bytes.
	if err != nil || !bytes.Equal(got[:462], image[:462]) || !bytes.Equal(got[512:], image[512:]) {
		t.Fatalf("disk does not hold the image after deploy (read err %v)", err)
	}
	whole, _ := os.ReadFile(disk)
	if !bytes.Contains(whole[len(image):], []byte("config-2")) || !bytes.Contains(whole[len(image):], []byte("deployed-host")) {
		t.Errorf("no config drive (label config-2 with the hostname) written after the image")
	}
	if dii, _ := n["driver_internal_info"].(map[string]any); dii["agent_secret_token"] != nil {
		t.Errorf("agent token left on the node after deploy: %v", dii["agent_secret_token"])
	}

	c.do("PUT", "/v1/nodes/agent-node/states/provision", map[string]any{"target": "deleted"}, 202)
	n = c.waitState("agent-node", "available", 120*time.Second)
	if n["instance_info"] != nil && len(n["instance_info"].(map[string]any)) != 0 {
		t.Errorf("instance_info not cleared on undeploy: %v", n["instance_info"])
	}

	// Deploy again, this time with an image uploaded to the conductor's
	// image store (Glance API) and referenced by id.
	img := c.do("POST", "/images/v2/images", map[string]any{"name": "test-image", "disk_format": "raw", "container_format": "bare"}, 201)
	id := img["id"].(string)
	req, _ := http.NewRequest("PUT", base+"/images/v2/images/"+id+"/file", bytes.NewReader(image))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("image upload: %v %v", err, resp.Status)
	}
	resp.Body.Close()
	writeDisk(t, disk, make([]byte, 1<<20), 128<<20) // wipe the head
	c.do("PATCH", "/v1/nodes/agent-node", []map[string]any{{"op": "add", "path": "/instance_info/image_source", "value": id}}, 200)
	// User deploy steps: a step nothing offers fails the deploy
	// with Ironic's message; a malformed one is refused at once.
	step := func(iface, name string, prio int) map[string]any {
		return map[string]any{"interface": iface, "step": name, "args": map[string]any{}, "priority": prio}
	}
	c.do("PUT", "/v1/nodes/agent-node/states/provision", map[string]any{"target": "active",
		"deploy_steps": []any{map[string]any{"interface": "deploy", "step": "erase_devices_metadata"}}}, 400)
	c.do("PUT", "/v1/nodes/agent-node/states/provision", map[string]any{"target": "active",
		"deploy_steps": []any{step("deploy", "no_such_step", 90)}}, 202)
	n = c.waitFailed("agent-node", 90*time.Second)
	if !strings.Contains(fmt.Sprint(n["last_error"]), "node does not support this deploy step") {
		t.Fatalf("unknown deploy step: last_error %v", n["last_error"])
	}
	// erase_devices_metadata before the image write (priority 90 > 80): the
	// image is whole afterwards.
	c.do("PUT", "/v1/nodes/agent-node/states/provision", map[string]any{"target": "active",
		"deploy_steps": []any{step("deploy", "erase_devices_metadata", 90)}}, 202)
	c.waitState("agent-node", "active", 120*time.Second)
	readDisk := func() {
		f, _ := os.Open(disk)
		f.ReadAt(got, 0)
		f.Close()
	}
	readDisk()
	if !bytes.Equal(got[512:], image[512:]) || !bytes.Equal(got[:446], image[:446]) {
		t.Fatalf("disk does not hold the image-store image after deploy")
	}
	// The same step after the write (priority 10 < 80) runs after it: it
	// wipes the partition table the image just wrote.
	c.do("PUT", "/v1/nodes/agent-node/states/provision", map[string]any{"target": "rebuild",
		"deploy_steps": []any{step("deploy", "erase_devices_metadata", 10)}}, 202)
	c.waitState("agent-node", "active", 120*time.Second)
	readDisk()
	if got[510] == 0x55 && got[511] == 0xAA {
		t.Errorf("MBR signature still there: erase_devices_metadata did not run after write_image")
	}
	if !bytes.Equal(got[1<<20:], image[1<<20:]) {
		t.Errorf("the image's data beyond the metadata is gone")
	}

	// The same through a deploy template named by the instance's traits.
	c.do("PUT", "/v1/nodes/agent-node/states/provision", map[string]any{"target": "rebuild"}, 202)
	c.waitState("agent-node", "active", 120*time.Second)
	if readDisk(); got[510] != 0x55 || got[511] != 0xAA {
		t.Fatalf("plain rebuild did not restore the image's MBR")
	}
	c.doVersion("1.55", "POST", "/v1/deploy_templates", map[string]any{"name": "CUSTOM_WIPE_AFTER",
		"steps": []any{step("deploy", "erase_devices_metadata", 10)}}, 201)
	c.doVersion("1.55", "PUT", "/v1/nodes/agent-node/traits/CUSTOM_WIPE_AFTER", nil, 204)
	c.do("PATCH", "/v1/nodes/agent-node", []map[string]any{{"op": "add", "path": "/instance_info/traits", "value": []string{"CUSTOM_WIPE_AFTER"}}}, 200)
	c.do("PUT", "/v1/nodes/agent-node/states/provision", map[string]any{"target": "rebuild"}, 202)
	c.waitState("agent-node", "active", 120*time.Second)
	if readDisk(); got[510] == 0x55 && got[511] == 0xAA {
		t.Errorf("MBR signature still there: the deploy template's step did not run")
	}
}

// waitFailed waits for a node's provision state to end in "failed".
func (c client) waitFailed(node string, timeout time.Duration) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := c.do("GET", "/v1/nodes/"+node, nil, 200)
		if s, _ := n["provision_state"].(string); strings.HasSuffix(s, "failed") && n["reservation"] == nil {
			return n
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not failed after %s: %v", node, timeout, n["provision_state"])
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// writeMBR gives a whole-disk image an MBR with one Linux partition, as a
// real OS image has.
func writeMBR(img []byte) {
	for i := 440; i < 512; i++ {
		img[i] = 0
	}
	copy(img[440:444], []byte{0x12, 0x34, 0x56, 0x78}) // disk signature
	e := img[446:462]
	e[4] = 0x83                                 // Linux
	binary.LittleEndian.PutUint32(e[8:], 2048)  // first LBA
	binary.LittleEndian.PutUint32(e[12:], 8192) // sectors (4 MiB)
	img[510], img[511] = 0x55, 0xAA
}
