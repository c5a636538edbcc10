package compute_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
)

// TestBadInput checks that bad create requests get Nova's faults and
// create nothing, and that a request no node fits ends in ERROR with
// "No valid host was found".
func TestBadInput(t *testing.T) {
	l := startLab(t, 1)
	long := strings.Repeat("a", 256)
	many := map[string]any{}
	for i := range 129 {
		many[strings.Repeat("k", 1+i%200)+string(rune('A'+i%26))+string(rune('a'+i/26))] = "v"
	}
	files := []any{}
	for range 6 {
		files = append(files, map[string]any{"path": "/etc/x", "contents": base64.StdEncoding.EncodeToString([]byte("x"))})
	}
	big := []any{map[string]any{"path": "/etc/big", "contents": base64.StdEncoding.EncodeToString(make([]byte, 10241))}}
	ok := func(m map[string]any) map[string]any {
		s := map[string]any{"name": "s", "flavorRef": "gold", "imageRef": l.image}
		for k, v := range m {
			s[k] = v
		}
		return map[string]any{"server": s}
	}
	for _, tc := range []struct {
		name string
		body any
		code int
		key  string
		msg  string
	}{
		{"unknown flavor", ok(map[string]any{"flavorRef": "silver"}), 400, "badRequest", "Flavor silver could not be found."},
		{"unknown image", ok(map[string]any{"imageRef": "6e0cbe5e-8d2c-4c53-a1ed-30f4a1d6d5a2"}), 400, "badRequest", "Can not find requested image"},
		{"long metadata value", ok(map[string]any{"metadata": map[string]any{"k": long}}), 400, "badRequest", "metadata"},
		{"long metadata key", ok(map[string]any{"metadata": map[string]any{long: "v"}}), 400, "badRequest", "metadata"},
		{"too many metadata items", ok(map[string]any{"metadata": many}), 403, "forbidden", "metadata_items"},
		{"too many files", ok(map[string]any{"personality": files}), 403, "forbidden", "Personality file limit exceeded"},
		{"file too large", ok(map[string]any{"personality": big}), 403, "forbidden", "exceeds maximum 10240"},
		{"unknown key", ok(map[string]any{"key_name": "nope"}), 400, "badRequest", "Invalid key_name provided."},
		{"no name", map[string]any{"server": map[string]any{"flavorRef": "gold", "imageRef": l.image}}, 400, "badRequest", "name"},
		{"unknown member", ok(map[string]any{"bogus": 1}), 400, "badRequest", "'bogus' was unexpected"},
		{"not an object", map[string]any{"servers": 1}, 400, "badRequest", "server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := l.do("POST", "/compute/v2.1/servers", tc.body, tc.code)
			f, _ := out[tc.key].(map[string]any)
			if f == nil || f["code"] != float64(tc.code) || !strings.Contains(f["message"].(string), tc.msg) {
				t.Fatalf("fault %v, want %s %d containing %q", out, tc.key, tc.code, tc.msg)
			}
		})
	}
	if list := l.do("GET", "/compute/v2.1/servers", nil, 200)["servers"].([]any); len(list) != 0 {
		t.Fatalf("bad requests created servers: %v", list)
	}
	if a := l.do("GET", "/v1/allocations", nil, 200)["allocations"].([]any); len(a) != 0 {
		t.Fatalf("bad requests created allocations: %v", a)
	}
	nf := l.do("GET", "/compute/v2.1/servers/6e0cbe5e-8d2c-4c53-a1ed-30f4a1d6d5a2", nil, 404)
	if _, ok := nf["itemNotFound"]; !ok {
		t.Fatalf("unknown server: %v", nf)
	}

	// Two servers for one node: the second finds no valid host.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cc := l.client()
	first, err := servers.Create(ctx, cc, servers.CreateOpts{Name: "a", FlavorRef: "gold", ImageRef: l.image}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := servers.WaitForStatus(ctx, cc, first.ID, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	second, err := servers.Create(ctx, cc, servers.CreateOpts{Name: "b", FlavorRef: "gold", ImageRef: l.image}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := servers.WaitForStatus(ctx, cc, second.ID, "ERROR"); err != nil {
		t.Fatalf("second server: %v, want it in ERROR", err)
	}
	doc := l.do("GET", "/compute/v2.1/servers/"+second.ID, nil, 200)["server"].(map[string]any)
	fault, _ := doc["fault"].(map[string]any)
	if doc["status"] != "ERROR" || fault == nil || !strings.HasPrefix(fault["message"].(string), "No valid host was found.") {
		b, _ := json.Marshal(doc)
		t.Fatalf("second server %s", b)
	}
	// Actions in the wrong state: 409.
	out := l.do("POST", "/compute/v2.1/servers/"+first.ID+"/action", map[string]any{"os-start": nil}, 409)
	if _, ok := out["conflictingRequest"]; !ok {
		t.Fatalf("os-start of an active server: %v", out)
	}
	if err := servers.Delete(ctx, cc, second.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
}
