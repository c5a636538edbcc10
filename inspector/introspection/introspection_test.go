package introspection_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetalintrospection/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetalintrospection/v1/introspection"

	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
	inspapi "github.com/ferric-metal/ferric/inspector/introspection"
	"github.com/ferric-metal/ferric/inspector/process"
)

const nodeUUID = "6d2b8f4e-2c37-4f3a-9f0c-0a3a1b8f9e11"

type env struct {
	st     *store.Bolt
	url    string
	client *gophercloud.ServiceClient
}

func setup(t *testing.T) *env {
	t.Helper()
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "ferric.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rs := process.NewRuleStore(st)
	mgr := manager.New(manager.Config{Store: st, Hostname: "test", Inspect: process.New(process.Config{Store: st, Rules: rs})})
	n := &store.Node{UUID: nodeUUID, Driver: "fake-hardware", ProvisionState: "manageable",
		DriverInfo: store.Object{}, DriverInternalInfo: store.Object{}, Properties: store.Object{}, Extra: store.Object{},
		InstanceInfo: store.Object{}, Traits: []string{},
		Interfaces: map[string]string{"boot": "fake", "deploy": "fake", "inspect": "agent", "management": "fake", "power": "fake"}}
	p := &store.Port{UUID: "0f1d2c3b-4a59-4687-a7b8-c9d0e1f2a3b4", NodeUUID: nodeUUID, Address: "52:54:00:12:34:56"}
	if err := st.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.PutNode(n); err != nil {
			return err
		}
		return tx.PutPort(p)
	}); err != nil {
		t.Fatal(err)
	}
	srv := inspapi.New(inspapi.Config{Store: st, Conductor: mgr, Rules: rs})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve() = %v", err)
		}
	})
	base := "http://" + ln.Addr().String()
	client, err := noauth.NewBareMetalIntrospectionNoAuth(noauth.EndpointOpts{IronicInspectorEndpoint: base + "/v1"})
	if err != nil {
		t.Fatal(err)
	}
	return &env{st: st, url: base, client: client}
}

func (e *env) waitState(t *testing.T, state string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _ := e.st.Node(nodeUUID)
		if n.ProvisionState == state && n.Reservation == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node in %q, want %q", n.ProvisionState, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) do(t *testing.T, method, path, version string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if version != "" {
		req.Header.Set("X-OpenStack-Ironic-Inspector-API-Version", version)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func fixture(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "qemu.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVersions(t *testing.T) {
	e := setup(t)
	for _, tc := range []struct {
		path, version string
		code          int
		negotiated    string
	}{
		{"/", "", 200, "1.18"}, // main._get_version: no header is CURRENT_API_VERSION
		{"/v1", "1.18", 200, "1.18"},
		{"/v1/introspection", "latest", 200, "1.18"},
		{"/v1/introspection", "1.19", 406, ""},
		{"/v1/introspection", "2.0", 406, ""},
	} {
		resp, body := e.do(t, "GET", tc.path, tc.version, nil)
		if resp.StatusCode != tc.code {
			t.Errorf("GET %s (version %q) = %d %s, want %d", tc.path, tc.version, resp.StatusCode, body, tc.code)
		}
		h := resp.Header
		if h.Get("X-OpenStack-Ironic-Inspector-API-Minimum-Version") != "1.0" || h.Get("X-OpenStack-Ironic-Inspector-API-Maximum-Version") != "1.18" {
			t.Errorf("GET %s: version range headers %v", tc.path, h)
		}
		if tc.negotiated != "" && h.Get("X-OpenStack-Ironic-Inspector-API-Version") != tc.negotiated {
			t.Errorf("GET %s: negotiated %q, want %q", tc.path, h.Get("X-OpenStack-Ironic-Inspector-API-Version"), tc.negotiated)
		}
	}
}

func TestIntrospectionWithGophercloud(t *testing.T) {
	ctx := context.Background()
	e := setup(t)

	// Never inspected: 404.
	if _, err := introspection.GetIntrospectionStatus(ctx, e.client, nodeUUID).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Errorf("GetIntrospectionStatus() before any = %v, want 404", err)
	}
	if err := introspection.StartIntrospection(ctx, e.client, nodeUUID, introspection.StartOpts{}).ExtractErr(); err != nil {
		t.Fatalf("StartIntrospection() = %v", err)
	}
	e.waitState(t, "inspect wait")
	st, err := introspection.GetIntrospectionStatus(ctx, e.client, nodeUUID).Extract()
	if err != nil {
		t.Fatalf("GetIntrospectionStatus() = %v", err)
	}
	if st.State != "waiting" || st.Finished || st.UUID != nodeUUID || st.StartedAt.IsZero() {
		t.Errorf("status while waiting = %+v", st)
	}
	// Starting again while waiting is refused by the state machine.
	if err := introspection.StartIntrospection(ctx, e.client, nodeUUID, introspection.StartOpts{}).ExtractErr(); err == nil {
		t.Error("StartIntrospection() while waiting = nil, want an error")
	}

	// The ramdisk posts its data to /v1/continue.
	resp, body := e.do(t, "POST", "/v1/continue", "", fixture(t))
	if resp.StatusCode != 200 || !strings.Contains(string(body), nodeUUID) {
		t.Fatalf("POST /v1/continue = %d %s, want 200 with the node's uuid", resp.StatusCode, body)
	}
	e.waitState(t, "manageable")
	st, err = introspection.GetIntrospectionStatus(ctx, e.client, nodeUUID).Extract()
	if err != nil {
		t.Fatalf("GetIntrospectionStatus() = %v", err)
	}
	if st.State != "finished" || !st.Finished || st.Error != "" || st.FinishedAt.IsZero() {
		t.Errorf("status after continue = %+v", st)
	}

	pages, err := introspection.ListIntrospections(e.client, introspection.ListIntrospectionsOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatalf("ListIntrospections() = %v", err)
	}
	list, err := introspection.ExtractIntrospections(pages)
	if err != nil || len(list) != 1 || list[0].UUID != nodeUUID || list[0].State != "finished" {
		t.Errorf("ListIntrospections() = %+v, %v", list, err)
	}

	data, err := introspection.GetIntrospectionData(ctx, e.client, nodeUUID).Extract()
	if err != nil {
		t.Fatalf("GetIntrospectionData() = %v", err)
	}
	if data.CPUs != 2 || data.MemoryMB != 4096 || data.LocalGB != 19 || data.CPUArch != "x86_64" {
		t.Errorf("data: cpus %d memory_mb %d local_gb %d cpu_arch %q", data.CPUs, data.MemoryMB, data.LocalGB, data.CPUArch)
	}
	if data.Inventory.CPU.Count != 2 || len(data.Inventory.Interfaces) != 1 || data.Inventory.SystemVendor.Manufacturer != "QEMU" {
		t.Errorf("data.inventory = %+v", data.Inventory)
	}
	if iface, ok := data.Interfaces["ens3"]; !ok || iface.MAC != "52:54:00:12:34:56" || !iface.PXE {
		t.Errorf("data.interfaces = %+v", data.Interfaces)
	}
	if len(data.MACs) != 1 || data.RootDisk.Name != "/dev/vda" || data.BootInterface != "52:54:00:12:34:56" {
		t.Errorf("data: macs %v root_disk %+v boot_interface %q", data.MACs, data.RootDisk, data.BootInterface)
	}

	// Abort a second introspection.
	if err := introspection.StartIntrospection(ctx, e.client, nodeUUID, introspection.StartOpts{}).ExtractErr(); err != nil {
		t.Fatalf("StartIntrospection() again = %v", err)
	}
	e.waitState(t, "inspect wait")
	if err := introspection.AbortIntrospection(ctx, e.client, nodeUUID).ExtractErr(); err != nil {
		t.Fatalf("AbortIntrospection() = %v", err)
	}
	e.waitState(t, "inspect failed")
	st, err = introspection.GetIntrospectionStatus(ctx, e.client, nodeUUID).Extract()
	if err != nil || st.State != "error" || !st.Finished || st.Error == "" {
		t.Errorf("status after abort = %+v, %v; want finished with an error", st, err)
	}
	if err := introspection.AbortIntrospection(ctx, e.client, nodeUUID).ExtractErr(); !gophercloud.ResponseCodeIs(err, 400) {
		t.Errorf("AbortIntrospection() when not running = %v, want 400", err)
	}
	if _, err := introspection.GetIntrospectionStatus(ctx, e.client, "no-such-node").Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Errorf("GetIntrospectionStatus(unknown) = %v, want 404", err)
	}
}

func TestContinueErrors(t *testing.T) {
	e := setup(t)
	// The node is not being inspected: no match.
	resp, body := e.do(t, "POST", "/v1/continue", "", fixture(t))
	if resp.StatusCode != 404 {
		t.Errorf("POST /v1/continue for an idle node = %d %s, want 404", resp.StatusCode, body)
	}
	var e1 map[string]map[string]string
	if json.Unmarshal(body, &e1) != nil || e1["error"]["message"] == "" {
		t.Errorf("error body %s, want {\"error\": {\"message\": ...}}", body)
	}
}

func TestLegacyRules(t *testing.T) {
	e := setup(t)
	rule := `{"description": "big memory", "conditions": [{"op": "ge", "field": "memory_mb", "value": 1024}],
	  "actions": [{"action": "set-attribute", "path": "/extra/big", "value": true}, {"action": "fail", "message": "nope"}]}`
	resp, body := e.do(t, "POST", "/v1/rules", "1.6", []byte(rule))
	if resp.StatusCode != 201 {
		t.Fatalf("POST /v1/rules = %d %s, want 201", resp.StatusCode, body)
	}
	var created map[string]any
	_ = json.Unmarshal(body, &created)
	id, _ := created["uuid"].(string)
	if id == "" {
		t.Fatalf("created rule has no uuid: %s", body)
	}
	acts, _ := created["actions"].([]any)
	if len(acts) != 2 || acts[1].(map[string]any)["message"] != "nope" || acts[0].(map[string]any)["action"] != "set-attribute" {
		t.Errorf("created actions = %v, want them in the legacy shape", created["actions"])
	}
	conds, _ := created["conditions"].([]any)
	if len(conds) != 1 || conds[0].(map[string]any)["field"] != "memory_mb" || conds[0].(map[string]any)["value"] != 1024.0 {
		t.Errorf("created conditions = %v", created["conditions"])
	}
	if resp, body := e.do(t, "POST", "/v1/rules", "1.0", []byte(`{"conditions": [], "actions": [{"action": "nope"}]}`)); resp.StatusCode != 400 {
		t.Errorf("POST invalid rule = %d %s, want 400", resp.StatusCode, body)
	}
	resp, body = e.do(t, "GET", "/v1/rules", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), id) {
		t.Errorf("GET /v1/rules = %d %s", resp.StatusCode, body)
	}
	if resp, body := e.do(t, "GET", "/v1/rules/"+id, "", nil); resp.StatusCode != 200 || !strings.Contains(string(body), "big memory") {
		t.Errorf("GET /v1/rules/%s = %d %s", id, resp.StatusCode, body)
	}
	if resp, _ := e.do(t, "DELETE", "/v1/rules/"+id, "", nil); resp.StatusCode != 204 {
		t.Errorf("DELETE rule = %d, want 204", resp.StatusCode)
	}
	if resp, _ := e.do(t, "GET", "/v1/rules/"+id, "", nil); resp.StatusCode != 404 {
		t.Errorf("GET deleted rule = %d, want 404", resp.StatusCode)
	}
}
