package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/harness"
)

// ramdiskLogs lists node's ramdisk log archives through the API
// (GET /v1/nodes/{node}/ramdisk_logs), waiting up to timeout for one
// labelled label, downloads it and returns its files by name.
func ramdiskLogs(t *testing.T, c client, node, label string, timeout time.Duration) (string, map[string][]byte) {
	t.Helper()
	var name string
	for deadline := time.Now().Add(timeout); name == ""; time.Sleep(200 * time.Millisecond) {
		list := c.do("GET", "/v1/nodes/"+node+"/ramdisk_logs", nil, 200)
		items, _ := list["ramdisk_logs"].([]any)
		for _, it := range items {
			e, _ := it.(map[string]any)
			if n, _ := e["name"].(string); strings.Contains(n, "_"+label+"_") {
				name = n
			}
		}
		if name == "" && time.Now().After(deadline) {
			t.Fatalf("no %s ramdisk logs of %s listed within %v: %v", label, node, timeout, list)
		}
	}
	res, err := http.Get(c.base + "/v1/nodes/" + node + "/ramdisk_logs/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("download %s: HTTP %d", name, res.StatusCode)
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatalf("%s is not gzip: %v", name, err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = b
	}
	return name, files
}

// checkDeployLogs checks that node's failed deploy left its ramdisk logs,
// with the agent's log, network state and block devices, and that they
// say why it failed (want).
func checkDeployLogs(t *testing.T, c client, node, want string) {
	t.Helper()
	name, files := ramdiskLogs(t, c, node, "deploy", 30*time.Second)
	var names []string
	for f := range files {
		names = append(names, f)
	}
	for _, f := range []string{"ferric-agent.log", "commands.json", "network.txt", "block-devices.txt", "proc/cmdline"} {
		if _, ok := files[f]; !ok {
			t.Errorf("ramdisk logs %s have no %s (files %v)", name, f, names)
		}
	}
	if !bytes.Contains(files["ferric-agent.log"], []byte(want)) || !bytes.Contains(files["commands.json"], []byte(want)) {
		t.Errorf("ramdisk logs %s do not say %q in the agent's log and commands: agent log tail %q", name, want, tail(files["ferric-agent.log"], 2000))
	}
	for _, l := range strings.Split(string(files["ferric-agent.log"]), "\n") {
		if strings.Contains(l, want) {
			t.Logf("ramdisk logs %s (%d files) say: %s", name, len(files), l)
			break
		}
	}
}

// TestRamdiskLogsAlways: with deploy_logs_collect always the conductor
// keeps the agent's logs at the end of a cleaning (label cleaning) and of
// a deploy (no label, as Ironic's), though nothing failed; the deploy's
// archive holds the agent's log of the image write.
func TestRamdiskLogsAlways(t *testing.T) {
	base := harness.Start(t, service.Config{Hostname: "e2e-logs", AutomatedClean: true, DeployLogsCollect: "always"}).URL
	c := client{t, base}
	image := make([]byte, 2<<20)
	writeMBR(image)
	sum := sha256.Sum256(image)
	imgURL := serveContent(t, "image.raw", time.Now(), image)
	disk := newDisk(t, nil, 64<<20)
	enrollAgentNode(t, c, base, disk, "52:54:00:12:34:7c", map[string]any{"name": "logs-always", "deploy_interface": "direct"})
	c.do("PUT", "/v1/nodes/logs-always/states/provision", map[string]any{"target": "provide"}, 202)
	c.waitState("logs-always", "available", 90*time.Second)
	_, files := ramdiskLogs(t, c, "logs-always", "cleaning", 10*time.Second)
	if !bytes.Contains(files["ferric-agent.log"], []byte("erased metadata")) {
		t.Errorf("cleaning logs without the metadata erasure in the agent's log: %q", tail(files["ferric-agent.log"], 1500))
	}
	c.do("PATCH", "/v1/nodes/logs-always", []map[string]any{
		{"op": "add", "path": "/instance_info/image_source", "value": imgURL + "/image.raw"},
		{"op": "add", "path": "/instance_info/image_os_hash_algo", "value": "sha256"},
		{"op": "add", "path": "/instance_info/image_os_hash_value", "value": hex.EncodeToString(sum[:])},
	}, 200)
	c.do("PUT", "/v1/nodes/logs-always/states/provision", map[string]any{"target": "active"}, 202)
	n := c.waitState("logs-always", "active", 90*time.Second)
	list := c.do("GET", "/v1/nodes/logs-always/ramdisk_logs", nil, 200)
	items, _ := list["ramdisk_logs"].([]any)
	if len(items) != 2 {
		t.Fatalf("after cleaning and deploy: %d archives listed, want 2: %v", len(items), list)
	}
	e, _ := items[1].(map[string]any)
	name, _ := e["name"].(string)
	if !strings.HasPrefix(name, fmt.Sprint(n["uuid"], "_logs-always_")) || strings.Contains(name, "_cleaning_") {
		t.Errorf("the deploy's archive is named %q, want <uuid>_logs-always_<instance>_<time>.tar.gz", name)
	}
}
