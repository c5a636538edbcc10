package store

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

// The image API's input rules are checked against Glance 25.1's recorded
// answers by test/ironicinput (TestImageInputRules); this file fuzzes the
// PATCH parser.

const (
	fuzzImage = "a1b2c3d4-0000-4000-8000-000000000001"
	patch21   = "application/openstack-images-v2.1-json-patch"
	patch20   = "application/openstack-images-v2.0-json-patch"
)

// FuzzPatchRequest: any PATCH body is parsed or refused with a Glance
// error, never a panic; what is accepted names one of Glance's three
// operations and a path of one token (locations aside).
func FuzzPatchRequest(f *testing.F) {
	for _, seed := range []struct {
		draft4 bool
		body   string
	}{
		{false, `[]`}, {false, `{"op": "add"}`}, {false, `["x"]`},
		{false, `[{"path": "/name", "value": "x"}]`},
		{false, `[{"op": "move", "path": "/name", "value": "x"}]`},
		{false, `[{"op": "add", "path": "/a//b", "value": "x"}]`},
		{false, `[{"op": "add", "path": "/a~2", "value": "x"}]`},
		{false, `[{"op": "replace", "path": "/extra", "value": "f"}, {"op": "remove", "path": "/d4"}]`},
		{true, `[{"add": "/a", "replace": "/b", "value": "x"}]`},
		{true, `[{"add": "/d4", "value": "x"}]`},
	} {
		f.Add(seed.draft4, seed.body)
	}
	f.Fuzz(func(t *testing.T, draft4 bool, body string) {
		ct := patch21
		if draft4 {
			ct = patch20
		}
		req := httptest.NewRequest("PATCH", "/v2/images/"+fuzzImage, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		changes, err := patchRequest(req)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.code < 400 {
				t.Fatalf("patchRequest(%q) = %v, not a Glance error", body, err)
			}
			return
		}
		for _, c := range changes {
			if (c.op != "add" && c.op != "remove" && c.op != "replace") || len(c.path) != 1 {
				t.Fatalf("patchRequest(%q) accepted %+v", body, c)
			}
		}
		img := &Image{Status: StatusQueued}
		_ = applyChanges(img, changes)
	})
}
