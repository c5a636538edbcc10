package api

import "testing"

// A node whose conductor group no live conductor serves is refused as
// Ironic refuses it (NoValidHost, 400), on create and on update, and the
// refused update changes nothing.
func TestConductorGroupWithoutConductor(t *testing.T) {
	e := newTestEnv(t, nil)
	e.version = "1.87"
	r := e.must(400, e.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "g1", "conductor_group": "Rack9"}), "create in rack9")
	want := `No valid host was found. Reason: No conductor service registered which supports driver fake-hardware for conductor group "rack9".`
	if r.fault() != want {
		t.Fatalf("fault %q, want %q", r.fault(), want)
	}
	e.must(201, e.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "g1"}), "create in the default group")
	r = e.must(400, e.do("PATCH", "/v1/nodes/g1", []map[string]any{{"op": "replace", "path": "/conductor_group", "value": "rack9"}}), "move to rack9")
	if r.fault() != want {
		t.Fatalf("fault %q, want %q", r.fault(), want)
	}
	if got := e.must(200, e.do("GET", "/v1/nodes/g1", nil), "get").j["conductor_group"]; got != "" {
		t.Fatalf("conductor_group after the refused patch = %v", got)
	}
}
