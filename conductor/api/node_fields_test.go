package api

import (
	"flag"
	"os"
	"testing"

	"github.com/ferric-metal/ferric/conductor/driver"
)

var update = flag.Bool("update", false, "rewrite node-fields.md from the field table")

// TestNodeFieldTable checks the table's own rules: one entry a name, a
// help line each, a settable entry has a patchable value, a sortable one
// an order, and every
// interface kind a hardware type has is a field.
func TestNodeFieldTable(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range nodeTable {
		if seen[f.name] {
			t.Errorf("%s: twice in the table", f.name)
		}
		seen[f.name] = true
		if f.help == "" || f.show == nil || f.min < 1 {
			t.Errorf("%s: help, show and min are required", f.name)
		}
		if f.sortable && f.order == nil {
			t.Errorf("%s: sortable without an order", f.name)
		}
		if (f.set != nil) != (f.value != nil) {
			t.Errorf("%s: a settable field has a patchable value and the other way round", f.name)
		}
	}
	for _, k := range driver.InterfaceKinds {
		f, ok := nodeFieldNamed(k + "_interface")
		if !ok || !f.patchable() {
			t.Errorf("interface kind %s has no patchable %s_interface field", k, k)
		}
	}
	if f, _ := nodeFieldNamed("uuid"); !f.createOnly || f.patchable() {
		t.Errorf("uuid is taken by create only")
	}
}

// TestNodeFieldDocs keeps node-fields.md in step with the table (go test
// -run TestNodeFieldDocs -update rewrites it).
func TestNodeFieldDocs(t *testing.T) {
	want := nodeFieldDocs()
	if *update {
		if err := os.WriteFile("node-fields.md", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("node-fields.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("node-fields.md is not the table's; run go test -run TestNodeFieldDocs -update ./conductor/api")
	}
}
