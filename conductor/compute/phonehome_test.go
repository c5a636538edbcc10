package compute

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/images/configdrive"
	imgstore "github.com/ferric-metal/ferric/images/store"
)

// fakeManager gives every allocation the one node and deploys at once,
// keeping the config drives it is handed.
type fakeManager struct {
	st     store.Store
	node   string
	mu     sync.Mutex
	drives []string
}

func (m *fakeManager) StartAllocation(id string) {
	_ = m.st.Update(context.Background(), func(tx store.Tx) error {
		a, err := tx.Allocation(id)
		if err != nil {
			return err
		}
		n, err := tx.Node(m.node)
		if err != nil {
			return err
		}
		a.State, a.NodeUUID, n.AllocationUUID = "active", &n.UUID, &a.UUID
		if err := tx.PutNode(n); err != nil {
			return err
		}
		return tx.PutAllocation(a)
	})
}

func (m *fakeManager) Provision(ctx context.Context, ident string, req manager.ProvisionRequest) error {
	var cd string
	_ = json.Unmarshal(req.ConfigDrive, &cd)
	m.mu.Lock()
	m.drives = append(m.drives, cd)
	m.mu.Unlock()
	return m.st.Update(ctx, func(tx store.Tx) error {
		n, err := tx.Node(ident)
		if err != nil {
			return err
		}
		on := "power on"
		n.ProvisionState, n.PowerState = "active", &on
		return tx.PutNode(n)
	})
}

func (m *fakeManager) SetPowerState(context.Context, string, string, int) error { return nil }

func (m *fakeManager) lastDrive(t *testing.T) string {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.drives) == 0 {
		t.Fatal("no deploy with a config drive")
	}
	return m.drives[len(m.drives)-1]
}

type oneImage struct{}

func (oneImage) List(imgstore.Filter) ([]*imgstore.Image, bool, error) { return nil, false, nil }
func (oneImage) Get(id string) (*imgstore.Image, error) {
	if id != "img" {
		return nil, imgstore.ErrNotFound
	}
	return &imgstore.Image{ID: "img", Status: "active"}, nil
}

// phoneLab is a compute handler on a bbolt store with one node, served
// with its phone-home on a real socket.
type phoneLab struct {
	t   *testing.T
	st  *store.Bolt
	mgr *fakeManager
	h   *Handler
	srv *httptest.Server
	// start starts a handler on the store (again).
	start func()
}

func newPhoneLab(t *testing.T) *phoneLab {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "ferric.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rc := "gold"
	off := "power off"
	node := &store.Node{UUID: "1be26c0b-03f2-4d2d-ae87-c02d7f33c781", Name: ptr("bm0"), Driver: "fake-hardware",
		ProvisionState: "available", PowerState: &off, ResourceClass: &rc,
		NetworkData: store.Object{"links": []any{}, "networks": []any{map[string]any{"id": "n0", "type": "ipv4",
			"ip_address": "192.0.2.50", "netmask": "255.255.255.0"}}, "services": []any{}}}
	if err := st.Update(context.Background(), func(tx store.Tx) error { return tx.PutNode(node) }); err != nil {
		t.Fatal(err)
	}
	l := &phoneLab{t: t, st: st, mgr: &fakeManager{st: st, node: node.UUID}}
	var cur struct {
		sync.Mutex
		h *Handler
	}
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur.Lock()
		h := cur.h
		cur.Unlock()
		if strings.HasPrefix(r.URL.Path, PhoneHomePath) {
			h.PhoneHome().ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(l.srv.Close)
	l.start = func() {
		h, err := New(Config{Store: st, Manager: l.mgr, Images: oneImage{}, PublicURL: l.srv.URL,
			Flavors: []Flavor{{ID: "gold", Name: "gold", ResourceClass: "gold"}}})
		if err != nil {
			t.Fatal(err)
		}
		cur.Lock()
		cur.h, l.h = h, h
		cur.Unlock()
	}
	l.start()
	t.Cleanup(func() { l.h.Close() })
	return l
}

func ptr[T any](v T) *T { return &v }

func (l *phoneLab) call(method, path, token string, body any, want int) map[string]any {
	l.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, l.srv.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		l.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, rb, want)
	}
	var out map[string]any
	_ = json.Unmarshal(rb, &out)
	return out
}

func (l *phoneLab) server(id string) map[string]any {
	l.t.Helper()
	return l.call("GET", "/compute/v2.1/servers/"+id, "", nil, 200)["server"].(map[string]any)
}

func (l *phoneLab) waitStatus(id, status string) map[string]any {
	l.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := l.server(id)
		if s["status"] == status {
			return s
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("server %s is %v (task %v), want %s", id, s["status"], s["OS-EXT-STS:task_state"], status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// driveFiles extracts the named files of a config drive with xorriso.
func driveFiles(t *testing.T, enc string, names ...string) map[string][]byte {
	t.Helper()
	iso, err := configdrive.Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	isoPath := filepath.Join(dir, "cd.iso")
	if err := os.WriteFile(isoPath, iso, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "x")
	if b, err := exec.Command("xorriso", "-osirrox", "on", "-indev", isoPath, "-extract", "/", out).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, b)
	}
	files := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(out, n))
		if err != nil {
			t.Fatal(err)
		}
		files[n] = b
	}
	return files
}

// phoneHomeOf reads the phone-home URL and token of the server's last
// config drive.
func (l *phoneLab) phoneHomeOf() (url, token string, networkData map[string]any) {
	l.t.Helper()
	f := driveFiles(l.t, l.mgr.lastDrive(l.t), "openstack/latest/vendor_data2.json", "openstack/latest/network_data.json")
	var vd struct {
		Ferric struct {
			PhoneHome struct {
				URL          string `json:"url"`
				Token        string `json:"token"`
				PollInterval int    `json:"poll_interval"`
			} `json:"phone_home"`
		} `json:"ferric"`
	}
	if err := json.Unmarshal(f["openstack/latest/vendor_data2.json"], &vd); err != nil || vd.Ferric.PhoneHome.Token == "" || vd.Ferric.PhoneHome.PollInterval <= 0 {
		l.t.Fatalf("vendor_data2.json %s: %v", f["openstack/latest/vendor_data2.json"], err)
	}
	_ = json.Unmarshal(f["openstack/latest/network_data.json"], &networkData)
	return vd.Ferric.PhoneHome.URL, vd.Ferric.PhoneHome.Token, networkData
}

// TestPhoneHome: the config drive carries the server's phone-home URL and
// token (and the node's network_data); what the agent posts there becomes
// the automation-status metadata, kept in the store; bad tokens and bad
// bodies change nothing; changePassword waits for the agent (PASSWORD),
// which fetches the password and confirms; an unconfirmed change times
// out and a restart drops it; a rebuild issues a new token.
func TestPhoneHome(t *testing.T) {
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Skip("xorriso not found: install Debian package xorriso")
	}
	l := newPhoneLab(t)
	created := l.call("POST", "/compute/v2.1/servers", "", map[string]any{"server": map[string]any{
		"name": "web1", "flavorRef": "gold", "imageRef": "img", "metadata": map[string]any{"role": "web"}}}, 202)
	id := created["server"].(map[string]any)["id"].(string)
	l.waitStatus(id, "ACTIVE")
	url, token, nd := l.phoneHomeOf()
	path := PhoneHomePath + id
	if url != l.srv.URL+path {
		t.Fatalf("phone-home url %q, want %q", url, l.srv.URL+path)
	}
	if nets, _ := nd["networks"].([]any); len(nets) != 1 {
		t.Errorf("network_data.json %v, want the node's network_data", nd)
	}
	bearer := "Bearer " + token

	// No agent has reported yet: changePassword cannot be passed on.
	l.call("POST", "/compute/v2.1/servers/"+id+"/action", "", map[string]any{"changePassword": map[string]any{"adminPass": "x"}}, 409)

	for _, tc := range []struct {
		name, path, auth string
		body             any
		code             int
		key, msg         string
	}{
		{"no token", path, "", map[string]any{"status": "DEPLOYED"}, 401, "unauthorized", "phone-home token"},
		{"wrong token", path, "Bearer nope", map[string]any{"status": "DEPLOYED"}, 403, "forbidden", "not valid"},
		{"API credentials", path, "Basic YWRtaW46cGFzc3dvcmQ=", map[string]any{"status": "DEPLOYED"}, 403, "forbidden", "not valid"},
		{"other server", PhoneHomePath + "0b6b5b8e-9f0e-4a3e-9d7c-2f1d8c1e6a11", bearer, map[string]any{"status": "DEPLOYED"}, 403, "forbidden", "not valid"},
		{"unknown status", path, bearer, map[string]any{"status": "DONE"}, 400, "badRequest", "'DONE' is not one of"},
		{"lower case status", path, bearer, map[string]any{"status": "deployed"}, 400, "badRequest", "is not one of"},
		{"unknown member", path, bearer, map[string]any{"status": "DEPLOYED", "bogus": 1}, 400, "badRequest", "bogus"},
		{"empty", path, bearer, map[string]any{}, 400, "badRequest", "status or actions"},
		{"not json", path, bearer, "DEPLOYED", 400, "badRequest", "Malformed"},
		{"detail too long", path, bearer, map[string]any{"status": "FAILED", "detail": strings.Repeat("x", 256)}, 400, "badRequest", "detail"},
		{"too large", path, bearer, `{"status":"DEPLOYED","detail":"` + strings.Repeat("x", 5000) + `"}`, 413, "overLimit", "larger than"},
		{"unknown action", path, bearer, map[string]any{"actions": []any{map[string]any{"id": "a1", "result": "done"}}}, 409, "conflictingRequest", "No action a1"},
		{"bad result", path, bearer, map[string]any{"actions": []any{map[string]any{"id": "a1", "result": "ok"}}}, 400, "badRequest", "'done' or 'failed'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := l.call("POST", tc.path, tc.auth, tc.body, tc.code)
			f, _ := out[tc.key].(map[string]any)
			if f == nil || f["code"] != float64(tc.code) || !strings.Contains(f["message"].(string), tc.msg) {
				t.Fatalf("answer %v, want Nova fault %s %d containing %q", out, tc.key, tc.code, tc.msg)
			}
			md := l.server(id)["metadata"].(map[string]any)
			if _, ok := md[AutomationStatusKey]; ok {
				t.Fatalf("a refused post changed the metadata: %v", md)
			}
		})
	}
	l.call("GET", path, "", nil, 401)
	l.call("GET", path, "Bearer nope", nil, 403)

	// The agent reports in.
	out := l.call("POST", path, bearer, map[string]any{"status": "DEPLOYING"}, 200)
	if out["automation_status"] != "DEPLOYING" || len(out["actions"].([]any)) != 0 {
		t.Fatalf("answer to DEPLOYING: %v", out)
	}
	if md := l.server(id)["metadata"].(map[string]any); md[AutomationStatusKey] != "DEPLOYING" || md["role"] != "web" {
		t.Fatalf("metadata after DEPLOYING: %v", md)
	}
	l.call("POST", path, bearer, map[string]any{"status": "DEPLOYED", "detail": "network and users configured"}, 200)
	md := l.call("GET", "/compute/v2.1/servers/"+id+"/metadata", "", nil, 200)["metadata"].(map[string]any)
	if md[AutomationStatusKey] != "DEPLOYED" || md[AutomationDetailKey] != "network and users configured" {
		t.Fatalf("metadata after DEPLOYED: %v", md)
	}

	// changePassword: bad input, then a change the agent confirms.
	action := "/compute/v2.1/servers/" + id + "/action"
	l.call("POST", action, "", map[string]any{"changePassword": map[string]any{}}, 400)
	l.call("POST", action, "", map[string]any{"changePassword": map[string]any{"adminPass": "x", "other": 1}}, 400)
	l.call("POST", action, "", map[string]any{"changePassword": map[string]any{"adminPass": "n3w-pass"}}, 202)
	s := l.server(id)
	if s["status"] != "PASSWORD" || s["OS-EXT-STS:task_state"] != "updating_password" {
		t.Fatalf("after changePassword: status %v task %v, want PASSWORD updating_password", s["status"], s["OS-EXT-STS:task_state"])
	}
	l.call("POST", action, "", map[string]any{"changePassword": map[string]any{"adminPass": "again"}}, 409)
	l.call("POST", action, "", map[string]any{"reboot": map[string]any{"type": "SOFT"}}, 409)
	out = l.call("GET", path, bearer, nil, 200)
	acts := out["actions"].([]any)
	if len(acts) != 1 {
		t.Fatalf("pending actions %v, want the password change", out)
	}
	act := acts[0].(map[string]any)
	if act["action"] != "changePassword" || act["adminPass"] != "n3w-pass" {
		t.Fatalf("pending action %v", act)
	}
	l.call("POST", path, bearer, map[string]any{"actions": []any{map[string]any{"id": act["id"], "result": "done"}}}, 200)
	l.waitStatus(id, "ACTIVE")
	if out := l.call("GET", path, bearer, nil, 200); len(out["actions"].([]any)) != 0 || out["automation_status"] != "DEPLOYED" {
		t.Fatalf("after the confirmation: %v", out)
	}
	l.call("POST", path, bearer, map[string]any{"actions": []any{map[string]any{"id": act["id"], "result": "done"}}}, 409)

	// A change nobody confirms times out.
	l.h.phone.timeout = 300 * time.Millisecond
	l.call("POST", action, "", map[string]any{"changePassword": map[string]any{"adminPass": "lost"}}, 202)
	l.waitStatus(id, "PASSWORD")
	l.waitStatus(id, "ACTIVE")
	if out := l.call("GET", path, bearer, nil, 200); len(out["actions"].([]any)) != 0 {
		t.Fatalf("a timed-out change is still offered: %v", out)
	}

	// A restart drops a change in flight; the status is kept.
	l.h.phone.timeout = time.Hour
	l.call("POST", action, "", map[string]any{"changePassword": map[string]any{"adminPass": "restart"}}, 202)
	l.waitStatus(id, "PASSWORD")
	l.h.Close()
	l.start()
	s = l.waitStatus(id, "ACTIVE")
	if s["metadata"].(map[string]any)[AutomationStatusKey] != "DEPLOYED" {
		t.Fatalf("metadata after a restart: %v", s["metadata"])
	}
	if out := l.call("GET", path, bearer, nil, 200); len(out["actions"].([]any)) != 0 {
		t.Fatalf("a change from before the restart is offered: %v", out)
	}

	// A rebuild is a new build: a new token, no status yet.
	l.call("POST", action, "", map[string]any{"rebuild": map[string]any{"imageRef": "img"}}, 202)
	l.waitStatus(id, "ACTIVE")
	_, token2, _ := l.phoneHomeOf()
	if token2 == token {
		t.Fatal("the rebuild kept the token")
	}
	l.call("GET", path, bearer, nil, 403)
	out = l.call("GET", path, "Bearer "+token2, nil, 200)
	if out["automation_status"] != nil {
		t.Fatalf("status after a rebuild: %v", out)
	}
	if md := l.server(id)["metadata"].(map[string]any); md[AutomationStatusKey] != nil || md["role"] != "web" {
		t.Fatalf("metadata after a rebuild: %v", md)
	}
}
