package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/harness"
)

// basicClient sends API requests with HTTP basic credentials.
type basicClient struct {
	t                *testing.T
	base, user, pass string
}

func (c basicClient) send(method, path, ctype string, body io.Reader, creds bool) (int, []byte) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, body)
	req.Header.Set("X-OpenStack-Ironic-API-Version", "1.78")
	req.Header.Set("Content-Type", ctype)
	if creds {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

func (c basicClient) do(method, path string, body any, want int) map[string]any {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	code, raw := c.send(method, path, "application/json", rd, true)
	if code != want {
		c.t.Fatalf("%s %s = %d %s, want %d", method, path, code, raw, want)
	}
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out
}

func (c basicClient) waitState(node, state string, timeout time.Duration) map[string]any {
	c.t.Helper()
	return waitNodeState(c.t, c.do, node, state, timeout)
}

// TestDeployThroughAgentHTTPBasic: under --auth http_basic (bcrypt cost
// 10) the operator's calls carry credentials, while the agent looks its
// node up, heartbeats and downloads the image from the conductor's image
// store without any: a deploy of an uploaded image completes, and the
// image store refuses anonymous writes.
func TestDeployThroughAgentHTTPBasic(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("operator-pw"), 10)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("operator:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := harness.Start(t, service.Config{StateDir: filepath.Join(dir, "state"),
		Hostname: "e2e-basic", Auth: "http_basic", Htpasswd: htpasswd}).URL
	c := basicClient{t, base, "operator", "operator-pw"}

	image := make([]byte, 3<<20+777)
	rand.Read(image)
	writeMBR(image)
	if code, raw := c.send("POST", "/images/v2/images", "application/json",
		strings.NewReader(`{"name":"anon","disk_format":"raw","container_format":"bare"}`), false); code != http.StatusUnauthorized {
		t.Fatalf("anonymous image create: %d %s", code, raw)
	}
	img := c.do("POST", "/images/v2/images", map[string]any{"name": "basic-image", "disk_format": "raw", "container_format": "bare"}, 201)
	id := img["id"].(string)
	if code, _ := c.send("PUT", "/images/v2/images/"+id+"/file", "application/octet-stream", bytes.NewReader(image), false); code != http.StatusUnauthorized {
		t.Fatalf("anonymous image upload: %d", code)
	}
	if code, raw := c.send("PUT", "/images/v2/images/"+id+"/file", "application/octet-stream", bytes.NewReader(image), true); code != http.StatusNoContent {
		t.Fatalf("image upload: %d %s", code, raw)
	}

	disk := filepath.Join(dir, "disk.img")
	writeDisk(t, disk, nil, 64<<20)
	enrollAgentNode(t, c, base, disk, "52:54:00:12:34:77", map[string]any{"name": "basic-node", "deploy_interface": "direct", "automated_clean": false})
	c.do("PUT", "/v1/nodes/basic-node/states/provision", map[string]any{"target": "provide"}, 202)
	c.waitState("basic-node", "available", 60*time.Second)
	c.do("PATCH", "/v1/nodes/basic-node", []map[string]any{{"op": "add", "path": "/instance_info/image_source", "value": id}}, 200)
	c.do("PUT", "/v1/nodes/basic-node/states/provision", map[string]any{"target": "active"}, 202)
	c.waitState("basic-node", "active", 120*time.Second)
	got := make([]byte, len(image))
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.ReadAt(got, 0)
	f.Close()
	if err != nil || !bytes.Equal(got, image) {
		t.Fatalf("disk does not hold the uploaded image after deploy (read err %v)", err)
	}
}
