package driver

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCapabilities(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want map[string]string
	}{
		{"string", "boot_mode:uefi, cpu_vt:true", map[string]string{"boot_mode": "uefi", "cpu_vt": "true"}},
		{"map", map[string]any{"boot_mode": "bios"}, map[string]string{"boot_mode": "bios"}},
		{"junk", "nocolon,:x", map[string]string{}},
		{"nil", nil, map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Capabilities(tc.in)); diff != "" {
				t.Errorf("Capabilities(%v) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestRegistry(t *testing.T) {
	all := func(kinds map[string]Iface) map[string]Iface {
		out := map[string]Iface{}
		for _, k := range InterfaceKinds {
			out[k] = Use(Named("no-"+k, nil))
		}
		for k, v := range kinds {
			out[k] = v
		}
		return out
	}
	power := struct{ name string }{"p"}
	good := &HardwareType{Name: "good", Interfaces: all(map[string]Iface{"power": Use(Named("p", power), Named("q", nil))})}
	tests := []struct {
		name  string
		types []*HardwareType
		err   string
	}{
		{"ok", []*HardwareType{good}, ""},
		{"twice", []*HardwareType{good, good}, `driver: hardware type name "good" empty or given twice`},
		{"kind missing", []*HardwareType{{Name: "x", Interfaces: map[string]Iface{}}}, "driver: hardware type x has no bios interface"},
		{"default not enabled", []*HardwareType{{Name: "x", Interfaces: all(map[string]Iface{"raid": {Default: "r"}})}},
			`driver: hardware type x: default raid interface "r" is not enabled`},
		{"unknown kind", []*HardwareType{{Name: "x", Interfaces: all(map[string]Iface{"disco": Use(Named("d", nil))})}},
			`driver: hardware type x: unknown interface kind "disco"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewRegistry(tc.types...)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.err {
				t.Errorf("NewRegistry() error = %q, want %q", got, tc.err)
			}
		})
	}
	r := MustRegistry(good)
	if o, ok := r.Object("good", "power", "p"); !ok || o != power {
		t.Errorf("Object(good, power, p) = %v, %v, want the power object", o, ok)
	}
	if o, ok := r.Object("good", "power", "q"); !ok || o != nil {
		t.Errorf("Object(good, power, q) = %v, %v, want nil, true", o, ok)
	}
	for _, c := range [][3]string{{"good", "power", "z"}, {"bad", "power", "p"}, {"good", "bios", "p"}} {
		if _, ok := r.Object(c[0], c[1], c[2]); ok {
			t.Errorf("Object%v enabled, want not", c)
		}
	}
	// With copies: the registered type keeps its implementations.
	i := good.Interfaces["power"].With("z", power)
	if diff := cmp.Diff([]string{"p", "q", "z"}, i.Enabled); diff != "" || i.Default != "p" {
		t.Errorf("With(z) enabled (-want +got):\n%s default %s", diff, i.Default)
	}
	if good.Accepts("power", "z") {
		t.Error("With changed the hardware type it was called on")
	}
	if diff := cmp.Diff(map[string]string{"power": "p"}, map[string]string{"power": good.Defaults()["power"]}); diff != "" {
		t.Error(diff)
	}
}
