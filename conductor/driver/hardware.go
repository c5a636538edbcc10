package driver

import (
	"fmt"
	"slices"
)

// InterfaceKinds are the interface kinds of a hardware type, as Ironic
// names them.
var InterfaceKinds = []string{
	"bios", "boot", "console", "deploy", "firmware", "inspect", "management",
	"network", "power", "raid", "rescue", "storage", "vendor",
}

// Impl is one implementation of an interface kind: the name a node's
// <kind>_interface field gives and the object the conductor calls. The
// conductor asks the object for capabilities (Power, BIOS, Boot, ...) by
// type assertion. Object is nil for the implementations that offer
// nothing (no-bios, no-console, ...).
type Impl struct {
	Name   string
	Object any
}

// Named returns the implementation name backed by obj.
func Named(name string, obj any) Impl { return Impl{Name: name, Object: obj} }

// Iface is what a hardware type offers for one interface kind: the
// enabled implementations in the order Ironic lists them, and the
// default (the first given to Use).
type Iface struct {
	Default string
	Enabled []string
	objects map[string]any
}

// Use enables def, the default, and more for an interface kind.
func Use(def Impl, more ...Impl) Iface {
	i := Iface{Default: def.Name, objects: map[string]any{}}
	for _, im := range append([]Impl{def}, more...) {
		i = i.With(im.Name, im.Object)
	}
	return i
}

// With returns a copy of i with the implementation name (backed by obj)
// enabled, replacing the object of an enabled one of that name.
func (i Iface) With(name string, obj any) Iface {
	out := Iface{Default: i.Default, Enabled: slices.Clone(i.Enabled), objects: make(map[string]any, len(i.objects)+1)}
	for k, v := range i.objects {
		out.objects[k] = v
	}
	if !slices.Contains(out.Enabled, name) {
		out.Enabled = append(out.Enabled, name)
	}
	out.objects[name] = obj
	return out
}

// Object returns the object of the enabled implementation name; ok is
// false when name is not enabled.
func (i Iface) Object(name string) (obj any, ok bool) {
	obj, ok = i.objects[name]
	return obj, ok
}

// HardwareType is an Ironic hardware type ("driver" in the API): for each
// interface kind, its enabled implementations and the default one.
type HardwareType struct {
	Name       string
	Interfaces map[string]Iface
	// Properties documents the driver_info keys (key -> help text).
	Properties map[string]string
}

// Accepts reports whether impl is enabled for kind.
func (h *HardwareType) Accepts(kind, impl string) bool {
	_, ok := h.Interfaces[kind].Object(impl)
	return ok
}

// Defaults returns the default implementation of each interface kind.
func (h *HardwareType) Defaults() map[string]string {
	out := make(map[string]string, len(h.Interfaces))
	for kind, i := range h.Interfaces {
		out[kind] = i.Default
	}
	return out
}

// Registry holds the hardware types a conductor serves. The API reads it
// to validate a node's interfaces and to list drivers; the manager reads
// it to find the object behind a node's interface.
type Registry struct {
	types []*HardwareType
}

// NewRegistry checks the hardware types (unique names; every interface
// kind given, with a default it enables) and returns their registry.
func NewRegistry(types ...*HardwareType) (*Registry, error) {
	seen := map[string]bool{}
	for _, h := range types {
		if h.Name == "" || seen[h.Name] {
			return nil, fmt.Errorf("driver: hardware type name %q empty or given twice", h.Name)
		}
		seen[h.Name] = true
		for _, kind := range InterfaceKinds {
			i, ok := h.Interfaces[kind]
			if !ok {
				return nil, fmt.Errorf("driver: hardware type %s has no %s interface", h.Name, kind)
			}
			if !h.Accepts(kind, i.Default) {
				return nil, fmt.Errorf("driver: hardware type %s: default %s interface %q is not enabled", h.Name, kind, i.Default)
			}
		}
		for kind := range h.Interfaces {
			if !slices.Contains(InterfaceKinds, kind) {
				return nil, fmt.Errorf("driver: hardware type %s: unknown interface kind %q", h.Name, kind)
			}
		}
	}
	return &Registry{types: slices.Clone(types)}, nil
}

// MustRegistry is NewRegistry for hardware types built by code; it panics
// on an error.
func MustRegistry(types ...*HardwareType) *Registry {
	r, err := NewRegistry(types...)
	if err != nil {
		panic(err)
	}
	return r
}

// Types returns the hardware types in registration order.
func (r *Registry) Types() []*HardwareType { return r.types }

// Names returns the hardware type names in registration order.
func (r *Registry) Names() []string {
	out := make([]string, len(r.types))
	for i, h := range r.types {
		out[i] = h.Name
	}
	return out
}

// Lookup returns the named hardware type or nil.
func (r *Registry) Lookup(name string) *HardwareType {
	for _, h := range r.types {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Object returns the object behind implementation impl of kind on
// hardware type hw (nil for an implementation that offers nothing); ok is
// false when hw is unknown or does not enable impl.
func (r *Registry) Object(hw, kind, impl string) (obj any, ok bool) {
	h := r.Lookup(hw)
	if h == nil {
		return nil, false
	}
	return h.Interfaces[kind].Object(impl)
}
