package compute_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ferric-metal/ferric/conductor/compute"
)

// call makes a request with a microversion header (none when ver is "")
// and returns the status, the response headers and the decoded body.
func (l *lab) call(method, path, ver string, body any) (int, http.Header, map[string]any) {
	l.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, l.url+path, rd)
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
	var out map[string]any
	_ = json.Unmarshal(rb, &out)
	return resp.StatusCode, resp.Header, out
}

// faultMessage is the message of a Nova fault body.
func faultMessage(body map[string]any) string {
	for _, v := range body {
		if m, ok := v.(map[string]any); ok {
			s, _ := m["message"].(string)
			return s
		}
	}
	return ""
}

// TestVersions checks version discovery and microversion negotiation:
// both headers, "latest", the answer's headers, and Nova's 400 and 406.
func TestVersions(t *testing.T) {
	l := startLab(t, 0)
	v := l.do("GET", "/compute/", nil, 200)["versions"].([]any)[0].(map[string]any)
	if v["id"] != "v2.1" || v["min_version"] != "2.1" || v["version"] != compute.MaxVersion ||
		!strings.HasSuffix(v["links"].([]any)[0].(map[string]any)["href"].(string), "/compute/v2.1/") {
		t.Fatalf("versions %v", v)
	}
	if v := l.do("GET", "/compute/v2.1/", nil, 200)["version"].(map[string]any); v["version"] != "2.96" {
		t.Fatalf("version %v, want max 2.96", v)
	}
	for _, tc := range []struct {
		hdr, val string
		code     int
		want     string // the answer's OpenStack-API-Version, or the fault message
	}{
		{"", "", 200, "compute 2.1"},
		{"OpenStack-API-Version", "compute 2.1", 200, "compute 2.1"},
		{"OpenStack-API-Version", "compute 2.47", 200, "compute 2.47"},
		{"OpenStack-API-Version", "identity 3.5, compute 2.73", 200, "compute 2.73"},
		{"OpenStack-API-Version", "compute latest", 200, "compute 2.96"},
		{"X-OpenStack-Nova-API-Version", "2.61", 200, "compute 2.61"},
		{"X-OpenStack-Nova-API-Version", "2.1", 200, "compute 2.1"},
		{"OpenStack-API-Version", "compute 2.97", 406, "Version 2.97 is not supported by the API. Minimum is 2.1 and maximum is 2.96."},
		{"OpenStack-API-Version", "compute 2.999", 406, "Version 2.999 is not supported by the API. Minimum is 2.1 and maximum is 2.96."},
		{"X-OpenStack-Nova-API-Version", "3.0", 406, "Version 3.0 is not supported by the API. Minimum is 2.1 and maximum is 2.96."},
		{"X-OpenStack-Nova-API-Version", "2.0", 406, "Version 2.0 is not supported by the API. Minimum is 2.1 and maximum is 2.96."},
		{"OpenStack-API-Version", "compute 2.01", 400, "API Version String 2.01 is of invalid format. Must be of format MajorNum.MinorNum."},
		{"OpenStack-API-Version", "compute two", 400, "API Version String two is of invalid format. Must be of format MajorNum.MinorNum."},
	} {
		req, _ := http.NewRequest("GET", l.url+"/compute/v2.1/flavors", nil)
		if tc.hdr != "" {
			req.Header.Set(tc.hdr, tc.val)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s: %s → %d, want %d", tc.hdr, tc.val, resp.StatusCode, tc.code)
			continue
		}
		if vary := strings.Join(resp.Header.Values("Vary"), ","); !strings.Contains(vary, "OpenStack-API-Version") || !strings.Contains(vary, "X-OpenStack-Nova-API-Version") {
			t.Errorf("%s: %s → Vary %q", tc.hdr, tc.val, vary)
		}
		if tc.code == 200 {
			if got := resp.Header.Get("OpenStack-API-Version"); got != tc.want {
				t.Errorf("%s: %s → OpenStack-API-Version %q, want %q", tc.hdr, tc.val, got, tc.want)
			}
			if got := resp.Header.Get("X-OpenStack-Nova-API-Version"); "compute "+got != tc.want {
				t.Errorf("%s: %s → X-OpenStack-Nova-API-Version %q", tc.hdr, tc.val, got)
			}
		} else if got := faultMessage(body); got != tc.want {
			t.Errorf("%s: %s → %q, want %q", tc.hdr, tc.val, got, tc.want)
		}
	}
}

// TestMicroversionBehaviour checks what changes with the microversion in
// the server views, the create's rules, the listing's query rules, key
// pairs and limits, each on both sides of its version.
func TestMicroversionBehaviour(t *testing.T) {
	l := startLab(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Create: description and tags need 2.19 / 2.52; networks is
	// required from 2.37; personality is gone from 2.57.
	create := map[string]any{"name": "v1", "flavorRef": "gold", "imageRef": l.image}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range create {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return map[string]any{"server": m}
	}
	for _, tc := range []struct {
		ver   string
		extra map[string]any
		msg   string
	}{
		{"2.1", map[string]any{"description": "d"}, "'description' was unexpected"},
		{"2.51", map[string]any{"tags": []string{"a"}, "networks": "none"}, "'tags' was unexpected"},
		{"2.37", nil, "'networks' is a required property"},
		{"2.1", map[string]any{"networks": "auto"}, "is not of type 'array'"},
		{"2.57", map[string]any{"networks": "auto", "personality": []any{}}, "'personality' was unexpected"},
		{"2.52", map[string]any{"networks": "auto", "tags": []string{"a/b"}}, "Tags are 1 to 60 characters"},
		{"2.19", map[string]any{"description": strings.Repeat("x", 256)}, "field/attribute description"},
		{"2.1", map[string]any{"name": " lead"}, "Can not start or end with whitespace"},
	} {
		code, _, body := l.call("POST", "/compute/v2.1/servers", tc.ver, with(tc.extra))
		if code != 400 || !strings.Contains(faultMessage(body), tc.msg) {
			t.Errorf("create at %s with %v: %d %v, want 400 %q", tc.ver, tc.extra, code, body, tc.msg)
		}
	}
	if _, _, body := l.call("GET", "/compute/v2.1/servers", "", nil); len(body["servers"].([]any)) != 0 {
		t.Fatalf("refused creates left servers: %v", body)
	}

	code, _, body := l.call("POST", "/compute/v2.1/servers", "2.96", with(map[string]any{"networks": "none",
		"description": "web tier", "tags": []string{"web", "prod"}}))
	if code != 202 {
		t.Fatalf("create at 2.96: %d %v", code, body)
	}
	id := body["server"].(map[string]any)["id"].(string)
	cc := l.client()
	if err := servers.WaitForStatus(ctx, cc, id, "ACTIVE"); err != nil {
		t.Fatal(err)
	}

	// Show: each member appears from its version on.
	members := []struct {
		key  string
		from string
	}{
		{"OS-EXT-SRV-ATTR:hostname", "2.3"}, {"OS-EXT-SRV-ATTR:reservation_id", "2.3"},
		{"locked", "2.9"}, {"host_status", "2.16"}, {"description", "2.19"}, {"tags", "2.26"},
		{"trusted_image_certificates", "2.63"}, {"server_groups", "2.71"}, {"locked_reason", "2.73"},
		{"pinned_availability_zone", "2.96"},
	}
	for _, ver := range []string{"2.1", "2.2", "2.3", "2.9", "2.16", "2.19", "2.26", "2.46", "2.47", "2.63", "2.71", "2.73", "2.95", "2.96"} {
		code, hdr, body := l.call("GET", "/compute/v2.1/servers/"+id, ver, nil)
		if code != 200 || hdr.Get("OpenStack-API-Version") != "compute "+ver {
			t.Fatalf("show at %s: %d %s", ver, code, hdr.Get("OpenStack-API-Version"))
		}
		s := body["server"].(map[string]any)
		rv, _ := parseVer(ver)
		for _, m := range members {
			from, _ := parseVer(m.from)
			if _, ok := s[m.key]; ok != (rv >= from) {
				t.Errorf("show at %s: %s present %v, want %v (from %s)", ver, m.key, ok, rv >= from, m.from)
			}
		}
		fl := s["flavor"].(map[string]any)
		if rv >= 2047 {
			if fl["original_name"] != "gold" || fl["id"] != nil || fl["extra_specs"].(map[string]any)["resources:CUSTOM_GOLD"] != "1" {
				t.Errorf("show at %s: flavor %v, want the embedded flavor", ver, fl)
			}
		} else if fl["id"] != "gold" {
			t.Errorf("show at %s: flavor %v, want its id and links", ver, fl)
		}
	}
	_, _, body = l.call("GET", "/compute/v2.1/servers/"+id, "2.96", nil)
	s := body["server"].(map[string]any)
	if s["description"] != "web tier" || s["locked"] != false || s["host_status"] != "UP" || s["OS-EXT-SRV-ATTR:hostname"] != "v1" ||
		strings.Join(toStrings(s["tags"]), ",") != "web,prod" {
		t.Errorf("show at 2.96: %v", s)
	}
	// gophercloud at 2.96 reads the same members.
	cc96 := l.client()
	cc96.Microversion = "2.96"
	got, err := servers.Get(ctx, cc96, id).Extract()
	if err != nil || got.Locked == nil || *got.Locked || got.Tags == nil || len(*got.Tags) != 2 || got.Flavor["original_name"] != "gold" {
		t.Fatalf("gophercloud at 2.96: %+v %v", got, err)
	}

	// Listing: an unknown status is refused from 2.38, an unknown query
	// parameter from 2.75; tags filter.
	for _, tc := range []struct {
		query, ver string
		code, n    int
	}{
		{"status=bogus", "2.37", 200, 0},
		{"status=bogus", "2.38", 400, 0},
		{"status=active", "2.38", 200, 1},
		{"frobnicate=1", "2.74", 200, 1},
		{"frobnicate=1", "2.75", 400, 0},
		{"tags=web,prod", "2.26", 200, 1},
		{"tags=web,db", "2.26", 200, 0},
		{"tags-any=db,prod", "2.26", 200, 1},
	} {
		code, _, body := l.call("GET", "/compute/v2.1/servers/detail?"+tc.query, tc.ver, nil)
		if code != tc.code {
			t.Errorf("list ?%s at %s: %d %v, want %d", tc.query, tc.ver, code, body, tc.code)
			continue
		}
		if list, _ := body["servers"].([]any); code == 200 && len(list) != tc.n {
			t.Errorf("list ?%s at %s: %d servers, want %d", tc.query, tc.ver, len(list), tc.n)
		}
	}

	// Key pairs: type and 201/204 from 2.2; generation refused from 2.92.
	code, _, body = l.call("POST", "/compute/v2.1/os-keypairs", "2.1", map[string]any{"keypair": map[string]any{"name": "k21"}})
	if kp, _ := body["keypair"].(map[string]any); code != 200 || kp["type"] != nil {
		t.Errorf("keypair create at 2.1: %d %v", code, body)
	}
	code, _, body = l.call("POST", "/compute/v2.1/os-keypairs", "2.2", map[string]any{"keypair": map[string]any{"name": "k22", "type": "ssh"}})
	if kp, _ := body["keypair"].(map[string]any); code != 201 || kp["type"] != "ssh" {
		t.Errorf("keypair create at 2.2: %d %v", code, body)
	}
	if code, _, body = l.call("POST", "/compute/v2.1/os-keypairs", "2.92", map[string]any{"keypair": map[string]any{"name": "k92"}}); code != 400 {
		t.Errorf("keypair generation at 2.92: %d %v, want 400", code, body)
	}
	if code, _, _ = l.call("DELETE", "/compute/v2.1/os-keypairs/k21", "2.1", nil); code != 202 {
		t.Errorf("keypair delete at 2.1: %d, want 202", code)
	}
	if code, _, _ = l.call("DELETE", "/compute/v2.1/os-keypairs/k22", "2.2", nil); code != 204 {
		t.Errorf("keypair delete at 2.2: %d, want 204", code)
	}

	// Limits: network quotas go at 2.36, personality at 2.57.
	for _, tc := range []struct {
		ver         string
		sg, persona bool
	}{{"2.35", true, true}, {"2.36", false, true}, {"2.57", false, false}} {
		_, _, body := l.call("GET", "/compute/v2.1/limits", tc.ver, nil)
		abs := body["limits"].(map[string]any)["absolute"].(map[string]any)
		if _, ok := abs["maxSecurityGroups"]; ok != tc.sg {
			t.Errorf("limits at %s: maxSecurityGroups present %v", tc.ver, ok)
		}
		if _, ok := abs["maxPersonality"]; ok != tc.persona {
			t.Errorf("limits at %s: maxPersonality present %v", tc.ver, ok)
		}
	}

	// Flavors: description from 2.55, extra_specs from 2.61.
	for _, tc := range []struct {
		ver         string
		desc, specs bool
	}{{"2.54", false, false}, {"2.55", true, false}, {"2.61", true, true}} {
		_, _, body := l.call("GET", "/compute/v2.1/flavors/gold", tc.ver, nil)
		fl := body["flavor"].(map[string]any)
		if _, ok := fl["description"]; ok != tc.desc {
			t.Errorf("flavor at %s: description present %v", tc.ver, ok)
		}
		if _, ok := fl["extra_specs"]; ok != tc.specs {
			t.Errorf("flavor at %s: extra_specs present %v", tc.ver, ok)
		}
	}
	if err := servers.Delete(ctx, cc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := gophercloud.WaitFor(ctx, func(ctx context.Context) (bool, error) {
		_, err := servers.Get(ctx, cc, id).Extract()
		return gophercloud.ResponseCodeIs(err, http.StatusNotFound), nil
	}); err != nil {
		t.Fatal(err)
	}
}

func parseVer(s string) (int, bool) {
	var a, b int
	for i, c := range s {
		if c == '.' {
			for _, d := range s[i+1:] {
				b = b*10 + int(d-'0')
			}
			return a*1000 + b, true
		}
		a = a*10 + int(c-'0')
	}
	return 0, false
}

func toStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
