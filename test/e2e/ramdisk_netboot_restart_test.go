package e2e

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
)

// TestRamdiskDeployNetworkBootRestart: a restarted conductor serves none
// of the instance copies it staged for a network-booted ramdisk deploy;
// its takeover (or the first iPXE script asked before it) stages them
// again under new names (revalidated with the image server), so the
// active node's script keeps booting the conductor's copies.
func TestRamdiskDeployNetworkBootRestart(t *testing.T) {
	iso := []byte("LIVE ISO " + strings.Repeat("y", 5000))
	imgURL := serveContent(t, "live.iso", time.Time{}, iso)
	state := t.TempDir()
	cfg := service.Config{APIListen: "127.0.0.1:0", StateDir: state, Hostname: "e2e"}
	base, stop := runConductor(t, cfg)
	c := client{t, base}
	const mac = "52:54:00:12:34:78"
	node := c.do("POST", "/v1/nodes", map[string]any{
		"driver": "fake-hardware", "name": "live", "deploy_interface": "ramdisk", "boot_interface": "ipxe",
		"driver_info":   map[string]any{"deploy_kernel": "http://example.invalid/k", "deploy_ramdisk": "http://example.invalid/r"},
		"instance_info": map[string]any{"boot_iso": imgURL + "/live.iso"},
	}, 201)
	c.do("POST", "/v1/ports", map[string]any{"address": mac, "node_uuid": node["uuid"]}, 201)
	for _, st := range [][2]string{{"manage", "manageable"}, {"provide", "available"}, {"active", "active"}} {
		c.do("PUT", "/v1/nodes/live/states/provision", map[string]any{"target": st[0]}, 202)
		c.waitState("live", st[1], 30*time.Second)
	}
	isoURL := func(base string) string {
		t.Helper()
		resp, err := http.Get(base + "/boot/nodes/" + mac + ".ipxe")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, f := range strings.Fields(string(b)) {
			if strings.HasPrefix(f, base+"/boot/instance/") {
				return f
			}
		}
		t.Fatalf("iPXE script boots no copy of the conductor's:\n%s", b)
		return ""
	}
	get := func(u string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	before := isoURL(base)
	if code, b := get(before); code != 200 || !bytes.Equal(b, iso) {
		t.Fatalf("GET %s = %d (%d bytes)", before, code, len(b))
	}
	stop()
	base, _ = runConductor(t, cfg)
	c = client{t, base}
	deadline := time.Now().Add(30 * time.Second)
	for {
		after := isoURL(base)
		if code, b := get(after); code == 200 && bytes.Equal(b, iso) && after != strings.Replace(before, before[:strings.Index(before, "/boot/")], base, 1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart the script's copy %s is not served", after)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := c.do("GET", "/v1/nodes/live", nil, 200); n["provision_state"] != "active" || n["last_error"] != nil {
		t.Errorf("after the restart: %v, last_error %v", n["provision_state"], n["last_error"])
	}
}
