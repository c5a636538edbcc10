// Package ironiccompat checks ferric-agent against the real OpenStack Ironic
// conductor (Debian packages ironic-api, ironic-conductor): a node with
// fake-hardware power/boot/management and the real `direct` deploy
// interface is cleaned and deployed to active while ferric-agent, running
// as a process with a file as its disk, plays the ramdisk.
//
// The test skips when Ironic is not installed, unless FERRIC_IRONIC_INSTALL=1
// (then ironic.sh installs it with apt-get; about a minute).
package ironiccompat

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/artifacts"
	"github.com/ferric-metal/ferric/test/harness"
)

const (
	apiPort = "16385"
	rpcPort = "18089"
	api     = "http://127.0.0.1:" + apiPort
	mac     = "52:54:00:fe:11:01"
)

func portBusy(p string) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+p, 200*time.Millisecond)
	if err == nil {
		c.Close()
		return true
	}
	return false
}

func script(t *testing.T, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"ironic.sh"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ironic.sh %v: %v\n%s", args, err, out)
	}
}

type client struct {
	t *testing.T
}

func (c client) do(method, path string, body any, want ...int) []byte {
	c.t.Helper()
	code, _, out := harness.API{Base: api, Header: map[string]string{"X-OpenStack-Ironic-API-Version": "1.78"}}.Call(c.t, method, path, body)
	for _, w := range want {
		if code == w {
			return out
		}
	}
	c.t.Fatalf("%s %s: HTTP %d: %s", method, path, code, out)
	return nil
}

type nodeState struct {
	ProvisionState string  `json:"provision_state"`
	Target         *string `json:"target_provision_state"`
	LastError      *string `json:"last_error"`
}

func (c client) waitFor(uuid, want string, timeout time.Duration, logs func() string) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		var n nodeState
		json.Unmarshal(c.do("GET", "/v1/nodes/"+uuid+"?fields=provision_state,target_provision_state,last_error", nil, 200), &n)
		if s := n.ProvisionState; s != last {
			c.t.Logf("node %s: %s", uuid[:8], s)
			last = s
		}
		if n.ProvisionState == want && n.Target == nil {
			return
		}
		if strings.HasSuffix(n.ProvisionState, "failed") || n.ProvisionState == "error" {
			le := ""
			if n.LastError != nil {
				le = *n.LastError
			}
			c.t.Fatalf("node went to %s: %s\nagent log:\n%s", n.ProvisionState, le, logs())
		}
		time.Sleep(250 * time.Millisecond)
	}
	c.t.Fatalf("timeout waiting for %s (last %s)\nagent log:\n%s", want, last, logs())
}

// diskImage is an MBR disk image with random content.
func diskImage(size int) []byte {
	img := make([]byte, size)
	rand.Read(img)
	clear(img[440:512])
	binary.LittleEndian.PutUint32(img[440:], 0x0fe11c0d)
	e := img[446:]
	e[4] = 0x83
	binary.LittleEndian.PutUint32(e[8:], 2048)
	binary.LittleEndian.PutUint32(e[12:], uint32(size/512-2048))
	img[510], img[511] = 0x55, 0xAA
	return img
}

func TestDeployWithRealIronic(t *testing.T) {
	for _, tc := range []struct {
		name    string
		autoTLS bool
		clean   bool
	}{
		{"plain http, automated cleaning", false, true},
		{"auto-tls", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) { deploy(t, tc.autoTLS, tc.clean) })
	}
}

func deploy(t *testing.T, autoTLS, clean bool) {
	if _, err := exec.LookPath("ironic-conductor"); err != nil {
		if os.Getenv("FERRIC_IRONIC_INSTALL") != "1" {
			t.Skip("ironic-conductor not installed (Debian ironic-api ironic-conductor); set FERRIC_IRONIC_INSTALL=1 to install")
		}
		script(t, nil, "install")
	}
	for i := 0; i < 120 && (portBusy(apiPort) || portBusy(rpcPort)); i++ {
		time.Sleep(250 * time.Millisecond) // a previous Ironic still shutting down
	}
	if portBusy(apiPort) || portBusy(rpcPort) {
		t.Skipf("127.0.0.1:%s or :%s already in use", apiPort, rpcPort)
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "ironic")
	env := []string{"IRONIC_API_PORT=" + apiPort, "IRONIC_RPC_PORT=" + rpcPort, "AUTOMATED_CLEAN=0"}
	if clean {
		env[2] = "AUTOMATED_CLEAN=1"
	}
	t.Cleanup(func() {
		script(t, env, "stop", state)
		if t.Failed() {
			for _, f := range []string{"conductor.log"} {
				b, _ := os.ReadFile(filepath.Join(state, f))
				if i := bytes.LastIndex(b, []byte("ERROR")); i >= 0 {
					t.Logf("%s (last error):\n%s", f, b[i:min(len(b), i+3000)])
				}
			}
		}
	})
	script(t, env, "start", state)

	// Image server.
	img := diskImage(24 << 20)
	sum := sha256.Sum256(img)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "disk.raw", time.Time{}, bytes.NewReader(img))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	imgURL := "http://" + ln.Addr().String() + "/disk.raw"

	// The agent, as a process with a file as its disk.
	bin, err := artifacts.Agent() // built once per run
	if err != nil {
		t.Fatal(err)
	}
	diskPath := filepath.Join(dir, "disk.img")
	f, _ := os.Create(diskPath)
	f.Truncate(128 << 20)
	f.WriteAt(bytes.Repeat([]byte{0xAB}, 1<<20), 0) // stale data the cleaning must wipe
	f.Close()
	port := harness.FreePort(t)
	args := []string{"--api-url", api, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--advertise-host", "127.0.0.1",
		"--advertise-port", fmt.Sprint(port), "--mac", mac, "--disk", diskPath, "--min-root-size", "1",
		"--lookup-min", "200ms", "--lookup-max", "2s", "--forced-heartbeat-gap", "1s", "--debug"}
	if autoTLS {
		args = append(args, "--auto-tls")
	}
	var agentLog bytes.Buffer
	agent := exec.Command(bin, args...)
	agent.Stdout, agent.Stderr = &agentLog, &agentLog
	agent.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		agent.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { agent.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			agent.Process.Kill()
			<-done
		}
	})
	logs := func() string {
		s := agentLog.String()
		if len(s) > 6000 {
			s = s[len(s)-6000:]
		}
		return s
	}

	c := client{t}
	var node struct{ UUID string }
	json.Unmarshal(c.do("POST", "/v1/nodes", map[string]any{
		"name": "compat-" + hex.EncodeToString(sum[:3]), "driver": "fake-hardware",
		"deploy_interface": "direct", "boot_interface": "fake", "power_interface": "fake",
		"management_interface": "fake", "network_interface": "noop",
		// vendor=lenovo: fake management cannot set boot device "disk"; the
		// Lenovo UEFI workaround makes prepare_instance_boot skip it.
		"properties": map[string]any{"cpus": 1, "memory_mb": 1024, "local_gb": 1, "cpu_arch": "x86_64", "vendor": "lenovo"},
	}, 201), &node)
	c.do("POST", "/v1/ports", map[string]any{"node_uuid": node.UUID, "address": mac}, 201)
	c.do("PATCH", "/v1/nodes/"+node.UUID, []map[string]any{
		{"op": "add", "path": "/instance_info/image_source", "value": imgURL},
		{"op": "add", "path": "/instance_info/image_disk_format", "value": "raw"},
		{"op": "add", "path": "/instance_info/image_os_hash_algo", "value": "sha256"},
		{"op": "add", "path": "/instance_info/image_os_hash_value", "value": hex.EncodeToString(sum[:])},
	}, 200)
	c.do("PUT", "/v1/nodes/"+node.UUID+"/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitFor(node.UUID, "manageable", 60*time.Second, logs)
	c.do("PUT", "/v1/nodes/"+node.UUID+"/states/provision", map[string]any{"target": "provide"}, 202)
	c.waitFor(node.UUID, "available", 180*time.Second, logs)
	if clean {
		b := make([]byte, 1<<20)
		rf, _ := os.Open(diskPath)
		rf.ReadAt(b, 0)
		rf.Close()
		if !bytes.Equal(b, make([]byte, 1<<20)) {
			t.Errorf("automated cleaning (erase_devices_metadata) left data in the first MiB")
		}
	}

	cdISO := bytes.Repeat([]byte("ferric configdrive\n"), 4000)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(cdISO)
	zw.Close()
	t0 := time.Now()
	c.do("PUT", "/v1/nodes/"+node.UUID+"/states/provision", map[string]any{"target": "active",
		"configdrive": base64.StdEncoding.EncodeToString(gz.Bytes())}, 202)
	c.waitFor(node.UUID, "active", 180*time.Second, logs)
	t.Logf("deploy to active took %.1fs", time.Since(t0).Seconds())

	got, err := os.ReadFile(diskPath)
	if err != nil {
		t.Fatal(err)
	}
	// The configdrive partition entry changed the MBR's table (bytes
	// 446-509); everything else must be the image.
	if !bytes.Equal(got[:446], img[:446]) || !bytes.Equal(got[510:len(img)], img[510:]) {
		t.Errorf("disk file does not hold the image")
	}
	// configdrive in the last 64 MiB
	if !bytes.Contains(got[len(got)-64<<20:], cdISO[:4000]) {
		t.Errorf("configdrive not found in the last 64 MiB of the disk")
	}
	var full map[string]any
	json.Unmarshal(c.do("GET", "/v1/nodes/"+node.UUID, nil, 200), &full)
	dii, _ := full["driver_internal_info"].(map[string]any)
	if autoTLS {
		// Ironic wipes agent_url/agent_verify_ca when the deploy ends; its
		// log shows it used our https callback URL.
		clog, _ := os.ReadFile(filepath.Join(state, "conductor.log"))
		if want := fmt.Sprintf("https://127.0.0.1:%d", port); !bytes.Contains(clog, []byte(want)) {
			t.Errorf("conductor.log never mentions the TLS callback URL %s", want)
		}
	}
	if v, _ := dii["agent_version"].(string); !strings.HasPrefix(v, "ferric-agent") {
		t.Errorf("agent_version = %q", v)
	}
	c.do("PUT", "/v1/nodes/"+node.UUID+"/states/provision", map[string]any{"target": "deleted"}, 202)
	c.waitFor(node.UUID, "available", 180*time.Second, logs)
	c.do("DELETE", "/v1/nodes/"+node.UUID, nil, 204)
}
