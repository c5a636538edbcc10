package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadRefusesBadFiles(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"not yaml", "baremetal:node:get: [unclosed", "policy:"},
		{"not a map", "- role:admin\n", "want a map of rule names"},
		{"not a string", "baremetal:node:get: 3\n", `rule "baremetal:node:get": the check must be a string`},
		{"unbalanced", `baremetal:node:get: "(role:admin"`, "a ( is not closed"},
		{"dangling and", `baremetal:node:get: "role:admin and"`, "rule ends early"},
		{"bare word", `baremetal:node:get: "admin"`, `check "admin": want KIND:VALUE`},
		{"remote check", `baremetal:node:get: "http://example.com/check"`, "remote (http) checks are not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "policy.yaml")
			if err := os.WriteFile(f, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(f)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load(%q) = %v, want an error containing %q", tc.body, err, tc.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("Load(missing file) = nil error")
	}
}

func TestLoadOverridesAndKeepsScopes(t *testing.T) {
	f := filepath.Join(t.TempDir(), "policy.json")
	// JSON is YAML too; comments are allowed in the YAML form only.
	if err := os.WriteFile(f, []byte(`{"baremetal:node:update": "role:admin", "baremetal:conductor:get": "@"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(e.Overridden(), ","); got != "baremetal:conductor:get,baremetal:node:update" {
		t.Errorf("Overridden() = %s", got)
	}
	// The renamed field rules follow their older name.
	if r, _ := e.Rule("baremetal:node:update:name"); r != "role:admin" {
		t.Errorf("update:name = %q, want the override of baremetal:node:update", r)
	}
	proj := &Creds{ProjectID: "p", Roles: []string{"reader"}}
	if e.Check("baremetal:conductor:get", proj, nil) {
		t.Error("a system-only rule overridden with @ admits a project token; scopes stay the default's")
	}
	if !e.Check("baremetal:conductor:get", &Creds{System: true}, nil) {
		t.Error("@ refuses a system token")
	}
}
