package compute

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/images/configdrive"
)

// callV is a request at a microversion ("" for none) that must answer
// want.
func (l *phoneLab) callV(method, path, ver string, body any, want int) map[string]any {
	l.t.Helper()
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, l.srv.URL+path, bytes.NewReader(j))
	req.Header.Set("Content-Type", "application/json")
	if ver != "" {
		req.Header.Set("OpenStack-API-Version", "compute "+ver)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		l.t.Fatalf("%s %s at %s with %v: %d %s, want %d", method, path, ver, body, resp.StatusCode, rb, want)
	}
	var out map[string]any
	_ = json.Unmarshal(rb, &out)
	return out
}

// driveOf reads the last config drive's meta_data.json and its user data
// ("" when the drive has none), extracted with xorriso.
func (l *phoneLab) driveOf() (md map[string]any, userData string) {
	l.t.Helper()
	iso, err := configdrive.Decode(l.mgr.lastDrive(l.t))
	if err != nil {
		l.t.Fatal(err)
	}
	dir := l.t.TempDir()
	isoPath := filepath.Join(dir, "cd.iso")
	if err := os.WriteFile(isoPath, iso, 0o600); err != nil {
		l.t.Fatal(err)
	}
	out := filepath.Join(dir, "x")
	if b, err := exec.Command("xorriso", "-osirrox", "on", "-indev", isoPath, "-extract", "/", out).CombinedOutput(); err != nil {
		l.t.Fatalf("xorriso: %v\n%s", err, b)
	}
	b, err := os.ReadFile(filepath.Join(out, "openstack/latest/meta_data.json"))
	if err != nil {
		l.t.Fatal(err)
	}
	if err := json.Unmarshal(b, &md); err != nil {
		l.t.Fatal(err)
	}
	ud, err := os.ReadFile(filepath.Join(out, "openstack/latest/user_data"))
	if err != nil && !os.IsNotExist(err) {
		l.t.Fatal(err)
	}
	return md, string(ud)
}

// faultOf is the message of a Nova fault body.
func faultOf(body map[string]any) string {
	for _, v := range body {
		if m, ok := v.(map[string]any); ok {
			s, _ := m["message"].(string)
			return s
		}
	}
	return ""
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestRebuildKeyUserDataHostname: a create at 2.90 puts its hostname,
// key and user data in the config drive, and the server's views show
// them (user data at 2.3+); rebuilds change the key (2.54: set or null),
// the user data (2.57: set or null; kept when not given), the trusted
// certificates (2.63) and the hostname (2.90), into the new config drive
// and the views; bad or too-early members are refused with Nova's faults
// and change nothing.
func TestRebuildKeyUserDataHostname(t *testing.T) {
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Skip("xorriso not found: install Debian package xorriso")
	}
	l := newPhoneLab(t)
	keys := map[string]string{}
	for _, k := range []string{"k1", "k2"} {
		kp := l.callV("POST", "/compute/v2.1/os-keypairs", "2.2", map[string]any{"keypair": map[string]any{"name": k}}, 201)
		keys[k], _ = kp["keypair"].(map[string]any)["public_key"].(string)
	}
	// Too early: hostname before 2.90, certificates before 2.63.
	for ver, member := range map[string]map[string]any{"2.89": {"hostname": "db-1"}, "2.62": {"trusted_image_certificates": []any{"c"}}} {
		body := map[string]any{"name": "web1", "flavorRef": "gold", "imageRef": "img", "networks": "none"}
		for k, v := range member {
			body[k] = v
		}
		out := l.callV("POST", "/compute/v2.1/servers", ver, map[string]any{"server": body}, 400)
		if !strings.Contains(faultOf(out), "was unexpected") {
			t.Errorf("create at %s with %v: %v", ver, member, out)
		}
	}
	l.callV("POST", "/compute/v2.1/servers", "2.90", map[string]any{"server": map[string]any{"name": "web1", "flavorRef": "gold",
		"imageRef": "img", "networks": "none", "hostname": "bad_host"}}, 400)
	created := l.callV("POST", "/compute/v2.1/servers", "2.90", map[string]any{"server": map[string]any{"name": "Web One",
		"flavorRef": "gold", "imageRef": "img", "networks": "none", "hostname": "db-1", "key_name": "k1", "user_data": b64("one\n")}}, 202)
	id := created["server"].(map[string]any)["id"].(string)
	l.waitStatus(id, "ACTIVE")
	md, ud := l.driveOf()
	if md["hostname"] != "db-1" || md["name"] != "Web One" || !reflect.DeepEqual(md["public_keys"], map[string]any{"k1": keys["k1"]}) || ud != "one\n" {
		t.Fatalf("create's config drive: meta_data %v, user_data %q", md, ud)
	}
	path := "/compute/v2.1/servers/" + id
	show := func(ver string) map[string]any {
		return l.callV("GET", path, ver, nil, 200)["server"].(map[string]any)
	}
	if s := show("2.3"); s["OS-EXT-SRV-ATTR:user_data"] != b64("one\n") || s["OS-EXT-SRV-ATTR:hostname"] != "db-1" || s["key_name"] != "k1" {
		t.Fatalf("show at 2.3: %v", s)
	}
	if s := show("2.1"); s["OS-EXT-SRV-ATTR:user_data"] != nil {
		t.Fatalf("user data shown at 2.1: %v", s)
	}
	list := l.callV("GET", "/compute/v2.1/servers/detail", "2.3", nil, 200)["servers"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["OS-EXT-SRV-ATTR:user_data"] != b64("one\n") {
		t.Fatalf("detail list at 2.3: %v", list)
	}

	// Refused rebuilds change nothing (no new deploy either).
	action := path + "/action"
	drives := len(l.mgr.drives)
	for _, tc := range []struct {
		ver  string
		args map[string]any
		msg  string
	}{
		{"2.53", map[string]any{"key_name": "k2"}, "'key_name' was unexpected"},
		{"2.54", map[string]any{"key_name": "nope", "description": "x"}, "Invalid key_name provided."},
		{"2.54", map[string]any{"key_name": ""}, "key_name"},
		{"2.56", map[string]any{"user_data": b64("x")}, "'user_data' was unexpected"},
		{"2.57", map[string]any{"user_data": "not base64!", "key_name": "k2"}, "user_data"},
		{"2.62", map[string]any{"trusted_image_certificates": []any{"c"}}, "'trusted_image_certificates' was unexpected"},
		{"2.63", map[string]any{"trusted_image_certificates": []any{}}, "trusted_image_certificates"},
		{"2.63", map[string]any{"trusted_image_certificates": []any{"c", "c"}}, "trusted_image_certificates"},
		{"2.89", map[string]any{"hostname": "h2"}, "'hostname' was unexpected"},
		{"2.90", map[string]any{"hostname": "-h2"}, "hostname"},
		{"2.90", map[string]any{"key_name": "k2", "imageRef": "missing"}, "Can not find requested image"},
	} {
		if _, ok := tc.args["imageRef"]; !ok {
			tc.args["imageRef"] = "img"
		}
		out := l.callV("POST", action, tc.ver, map[string]any{"rebuild": tc.args}, 400)
		if !strings.Contains(faultOf(out), tc.msg) {
			t.Errorf("rebuild at %s with %v: %v, want %q", tc.ver, tc.args, out, tc.msg)
		}
	}
	if s := show("2.90"); s["key_name"] != "k1" || s["OS-EXT-SRV-ATTR:user_data"] != b64("one\n") || s["OS-EXT-SRV-ATTR:hostname"] != "db-1" ||
		s["description"] != nil || s["status"] != "ACTIVE" || len(l.mgr.drives) != drives {
		t.Fatalf("after refused rebuilds: %v (%d deploys, want %d)", s, len(l.mgr.drives), drives)
	}

	// A new key and certificates; the user data, not given, stays. The
	// short answer (before 2.75) shows the key (2.54), the user data
	// (2.57) and the new admin password.
	out := l.callV("POST", action, "2.63", map[string]any{"rebuild": map[string]any{"imageRef": "img", "key_name": "k2",
		"trusted_image_certificates": []any{"c1", "c2"}}}, 202)["server"].(map[string]any)
	if out["key_name"] != "k2" || out["user_data"] != b64("one\n") || out["adminPass"] == "" || out["adminPass"] == nil ||
		!reflect.DeepEqual(out["trusted_image_certificates"], []any{"c1", "c2"}) || out["OS-EXT-STS:vm_state"] != nil {
		t.Fatalf("rebuild answer at 2.63: %v", out)
	}
	l.waitStatus(id, "ACTIVE")
	md, ud = l.driveOf()
	if !reflect.DeepEqual(md["public_keys"], map[string]any{"k2": keys["k2"]}) || ud != "one\n" || md["hostname"] != "db-1" || md["admin_pass"] != out["adminPass"] {
		t.Fatalf("config drive after a new key: meta_data %v, user_data %q", md, ud)
	}
	if s := show("2.63"); s["key_name"] != "k2" || !reflect.DeepEqual(s["trusted_image_certificates"], []any{"c1", "c2"}) {
		t.Fatalf("show after a new key: %v", s)
	}

	// Unset the key, the user data and the certificates; a new hostname.
	out = l.callV("POST", action, "2.90", map[string]any{"rebuild": map[string]any{"imageRef": "img", "key_name": nil,
		"user_data": nil, "trusted_image_certificates": nil, "hostname": "web-2"}}, 202)["server"].(map[string]any)
	if out["key_name"] != nil || out["user_data"] != nil || out["OS-EXT-SRV-ATTR:hostname"] != "web-2" {
		t.Fatalf("rebuild answer at 2.90: %v", out)
	}
	l.waitStatus(id, "ACTIVE")
	md, ud = l.driveOf()
	if md["public_keys"] != nil || ud != "" || md["hostname"] != "web-2" {
		t.Fatalf("config drive after unsetting: meta_data %v, user_data %q", md, ud)
	}
	if s := show("2.90"); s["key_name"] != nil || s["OS-EXT-SRV-ATTR:user_data"] != nil || s["trusted_image_certificates"] != nil || s["OS-EXT-SRV-ATTR:hostname"] != "web-2" {
		t.Fatalf("show after unsetting: %v", s)
	}

	// New user data (2.57), shown in full from 2.75; a FQDN hostname from
	// 2.94.
	out = l.callV("POST", action, "2.94", map[string]any{"rebuild": map[string]any{"imageRef": "img", "user_data": b64("two"),
		"hostname": "web-3.example.org"}}, 202)["server"].(map[string]any)
	if out["user_data"] != b64("two") || out["OS-EXT-SRV-ATTR:user_data"] != b64("two") || out["OS-EXT-SRV-ATTR:hostname"] != "web-3.example.org" {
		t.Fatalf("rebuild answer at 2.94: %v", out)
	}
	l.waitStatus(id, "ACTIVE")
	if md, ud = l.driveOf(); ud != "two" || md["hostname"] != "web-3.example.org" {
		t.Fatalf("config drive after new user data: meta_data %v, user_data %q", md, ud)
	}

}
