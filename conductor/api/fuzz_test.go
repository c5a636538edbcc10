package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// FuzzPatch checks that parsePatch and applyPatch never panic, that every
// rejection is a 400, and that an accepted patch leaves a document that
// still encodes as JSON.
func FuzzPatch(f *testing.F) {
	seeds := []struct{ doc, patch string }{
		{`{"extra":{}}`, `[{"op":"add","path":"/extra/a","value":1}]`},
		{`{"extra":{"a":1}}`, `[{"op":"remove","path":"/extra/a"}]`},
		{`{"extra":{"a":1}}`, `[{"op":"replace","path":"/extra/a","value":{"b":[1,2]}}]`},
		{`{"extra":{"k":[1,2,3]}}`, `[{"op":"add","path":"/extra/k/-","value":4},{"op":"remove","path":"/extra/k/0"}]`},
		{`{"extra":{"k":[[1],[2]]}}`, `[{"op":"replace","path":"/extra/k/1/0","value":9}]`},
		{`{"extra":{"k":[]}}`, `[{"op":"add","path":"/extra/k/0","value":null}]`},
		{`{"extra":{"k":[]}}`, `[{"op":"remove","path":"/extra/k/-"}]`},
		{`{"name":null}`, `[{"op":"add","path":"/name/x","value":1}]`},
		{`{}`, `{"op":"add"}`},
		{`{}`, `[{"op":"move","path":"/a","from":"/b"}]`},
		{`{}`, `[{"op":"add","path":"/","value":1}]`},
		{`{}`, `[{"op":"add","path":"/a//b","value":1}]`},
		{`{}`, `[1, "x", null]`},
		{`{}`, `[{`},
		{`{"a":"s"}`, `[{"op":"add","path":"/a/b","value":1}]`},
		{`{"a":[{"b":{}}]}`, `[{"op":"add","path":"/a/0/b/c","value":"d"}]`},
	}
	for _, s := range seeds {
		f.Add([]byte(s.doc), []byte(s.patch))
	}
	f.Fuzz(func(t *testing.T, docJSON, patchJSON []byte) {
		ops, perr := parsePatch(patchJSON)
		if perr != nil {
			if perr.Code != http.StatusBadRequest {
				t.Fatalf("parsePatch error code %d", perr.Code)
			}
			return
		}
		for _, op := range ops {
			if !strings.HasPrefix(op.Path, "/") || op.Root() == "" {
				t.Fatalf("accepted bad path %q", op.Path)
			}
		}
		var doc map[string]any
		if json.Unmarshal(docJSON, &doc) != nil || doc == nil {
			return
		}
		if aerr := applyPatch(doc, ops); aerr != nil {
			if aerr.Code != http.StatusBadRequest {
				t.Fatalf("applyPatch error code %d", aerr.Code)
			}
			return
		}
		if _, err := json.Marshal(doc); err != nil {
			t.Fatalf("patched doc does not encode: %v", err)
		}
	})
}

// FuzzParseVersion checks that version negotiation never panics, accepts
// only versions in range and answers everything else with 406.
func FuzzParseVersion(f *testing.F) {
	for _, s := range [][2]string{
		{"", ""}, {"1.1", ""}, {"1.89", ""}, {"1.90", ""}, {"latest", ""}, {"LATEST", ""},
		{"banana", ""}, {"1.", ""}, {".1", ""}, {"1.2.3", ""}, {"-1.5", ""}, {"1.-5", ""}, {"1.+5", ""},
		{"01.05", ""}, {"1.99999999999999999999", ""}, {" 1.5 ", ""},
		{"", "baremetal 1.40"}, {"1.10", "baremetal 1.40"}, {"1.10", "compute 2.1, baremetal 1.2"},
		{"", "baremetal latest"}, {"", "baremetal"}, {"", "baremetal x.y"}, {"", ","},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, legacy, modern string) {
		h := http.Header{}
		if legacy != "" {
			h.Set(hdrLegacyVersion, legacy)
		}
		if modern != "" {
			h.Set(hdrVersion, modern)
		}
		v, err := parseVersion(h)
		if err != nil {
			if err.Code != http.StatusNotAcceptable || !err.Plain {
				t.Fatalf("error %d plain=%v", err.Code, err.Plain)
			}
			return
		}
		if v < MinMinor || v > MaxMinor {
			t.Fatalf("negotiated out of range: %d from %q / %q", v, legacy, modern)
		}
		rh := http.Header{}
		rh.Set(hdrLegacyVersion, v.String())
		if back, err2 := parseVersion(rh); err2 != nil || back != v {
			t.Fatalf("round trip of %s: %v %v", v, back, err2)
		}
	})
}
