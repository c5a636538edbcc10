package api

import (
	"encoding/json"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/internal/python"
	"github.com/ferric-metal/ferric/conductor/store"
)

// nodeField is everything the API knows about one node field. The table
// of them, nodeTable, drives the rendering of nodes (with its microversion
// gate), the fields create and PATCH accept, the patchable view a JSON
// Patch is applied to, the validation of a new value with Ironic's
// messages, and the field reference (node-fields.md). Adding a node field
// is adding its entry.
type nodeField struct {
	name string
	// min is the first microversion that shows the field and accepts it
	// in create and PATCH (406 below it).
	min Version
	// show renders the field (secrets masked).
	show func(c echo.Context, n *store.Node) any
	// value is the field in the patchable view: the real value, secrets
	// included. nil: read-only (a PATCH of it is refused).
	value func(n *store.Node) any
	// set validates a value (nil when the body or the patched view has
	// none) and stores it in n. Create and PATCH run the sets in table
	// order, so a set may check fields set before it.
	set func(n *store.Node, val any, in fieldInput) *Error
	// createOnly: accepted by create (and handled there), not by PATCH.
	createOnly bool
	// removableInMaintenance: a PATCH that only removes this field is
	// allowed on a node in maintenance even while a state transition is
	// in progress (Ironic's way to free an instance of a stuck node).
	removableInMaintenance bool
	// order compares two nodes by the field (strField and boolField set
	// it); sortable: listings take the field as sort_key.
	order    func(a, b *store.Node) int
	sortable bool
	// help is the field's line in the reference.
	help string
}

// fieldInput is what a set may need besides the value.
type fieldInput struct {
	v  Version
	ht *driver.HardwareType
}

// patchable reports whether PATCH may change the field.
func (f nodeField) patchable() bool { return f.value != nil && !f.createOnly }

// then runs check after the field's set succeeded.
func (f nodeField) then(check func(n *store.Node, in fieldInput) *Error) nodeField {
	set := f.set
	f.set = func(n *store.Node, val any, in fieldInput) *Error {
		if err := set(n, val, in); err != nil {
			return err
		}
		return check(n, in)
	}
	return f
}

// asCreateOnly marks a field that create takes and PATCH refuses.
func (f nodeField) asCreateOnly() nodeField { f.createOnly = true; return f }

// asRemovableInMaintenance marks a field whose removal alone PATCH allows
// on a node in maintenance during a transition.
func (f nodeField) asRemovableInMaintenance() nodeField { f.removableInMaintenance = true; return f }

// sorted lets listings sort by the field in its order.
func (f nodeField) sorted() nodeField { f.sortable = true; return f }

// sortedBy lets listings sort by the field in the order cmp gives.
func (f nodeField) sortedBy(cmp func(a, b *store.Node) int) nodeField {
	f.order, f.sortable = cmp, true
	return f
}

// readOnly is a field the API shows and never takes.
func readOnly(name string, min Version, show func(echo.Context, *store.Node) any, help string) nodeField {
	return nodeField{name: name, min: min, show: show, help: help}
}

// shown is a field's value as it is shown.
func shown(value func(*store.Node) any) func(echo.Context, *store.Node) any {
	return func(_ echo.Context, n *store.Node) any { return value(n) }
}

// strField is an optional string of at most maxLen bytes.
func strField(name string, min Version, maxLen int, p func(*store.Node) **string, help string) nodeField {
	get := func(n *store.Node) any { return strPtr(*p(n)) }
	return nodeField{name: name, min: min, help: help,
		order: func(a, b *store.Node) int { return strings.Compare(deref(*p(a)), deref(*p(b))) },
		show:  shown(get),
		value: get,
		set: func(n *store.Node, val any, _ fieldInput) *Error {
			s, err := nodeString(val, maxLen)
			*p(n) = s
			return err
		}}
}

// objField is a JSON object ({} when unset); show masks what it must.
func objField(name string, min Version, p func(*store.Node) *store.Object, show func(store.Object) any, help string) nodeField {
	return nodeField{name: name, min: min, help: help,
		show:  func(_ echo.Context, n *store.Node) any { return show(*p(n)) },
		value: func(n *store.Node) any { return cloneAny(objOrEmpty(*p(n))) },
		set: func(n *store.Node, val any, _ fieldInput) *Error {
			if val == nil {
				*p(n) = store.Object{}
				return nil
			}
			m, ok := val.(map[string]any)
			if !ok {
				return typeError(val, "object")
			}
			*p(n) = m
			return nil
		}}
}

// boolField is a boolean, false when unset.
func boolField(name string, min Version, p func(*store.Node) *bool, help string) nodeField {
	get := func(n *store.Node) any { return *p(n) }
	return nodeField{name: name, min: min, help: help,
		order: func(a, b *store.Node) int { return cmpBool(*p(a), *p(b)) },
		show:  shown(get),
		value: get,
		set: func(n *store.Node, val any, _ fieldInput) *Error {
			if val == nil {
				*p(n) = false
				return nil
			}
			b, ok := val.(bool)
			if !ok {
				return typeError(val, "boolean")
			}
			*p(n) = b
			return nil
		}}
}

// ifaceField is a <kind>_interface field: the hardware type's default
// when unset, else one of the implementations it enables.
func ifaceField(kind string, min Version) nodeField {
	name := kind + "_interface"
	get := func(n *store.Node) any {
		if v, ok := n.Interfaces[kind]; ok {
			return v
		}
		return nil
	}
	return nodeField{name: name, min: min,
		help:  "The " + kind + " interface implementation; unset, the hardware type's default.",
		show:  shown(get),
		value: get,
		set: func(n *store.Node, val any, in fieldInput) *Error {
			if val == nil {
				n.Interfaces[kind] = in.ht.Interfaces[kind].Default
				return nil
			}
			impl, ok := val.(string)
			if !ok {
				return typeError(val, "string")
			}
			if !in.ht.Accepts(kind, impl) {
				return badRequest("Could not find the following interface in the 'ironic.hardware.interfaces.%s' entrypoint: %s. Valid interfaces are %s.", kind, python.Cut(impl), pyList(in.ht.Interfaces[kind].Enabled))
			}
			n.Interfaces[kind] = impl
			return nil
		}}
}

func typeError(val any, typ string) *Error {
	return badRequest("Schema error for node: %s is not of type '%s'", python.Repr(val), typ)
}

// nodeString checks an optional string value of at most maxLen bytes.
func nodeString(val any, maxLen int) (*string, *Error) {
	if val == nil {
		return nil, nil
	}
	s, ok := val.(string)
	if !ok {
		return nil, typeError(val, "string")
	}
	if maxLen > 0 && len(s) > maxLen {
		return nil, badRequest("Schema error for node: %s is too long", python.Repr(s))
	}
	return &s, nil
}

func cloneAny[T any](v T) T {
	b, _ := json.Marshal(v)
	var out T
	_ = json.Unmarshal(b, &out)
	return out
}

// showState rewrites state names for old microversions.
func showState(v Version, s string) any {
	switch {
	case s == "available" && v < 2:
		return nil
	case s == "inspect wait" && v < 39:
		return "inspecting"
	}
	return s
}

var (
	// nodeFields are the rendered fields of nodeTable; nodeFieldsSorted
	// the same in name order, for the list encoder.
	nodeFields, nodeFieldsSorted []field[*store.Node]
	// nodeSortKeys are the sort keys of node listings: id and the
	// sortable fields.
	nodeSortKeys = map[string]func(a, b *store.Node) int{"id": func(a, b *store.Node) int { return cmpInt(a.ID, b.ID) }}
	// patchableNode are the fields PATCH takes, in name order (Ironic's
	// "Only the following can be updated" list); creatableNode are
	// those create takes besides them.
	patchableNode, creatableNode []string
)

func init() {
	for _, f := range nodeTable {
		nodeFields = append(nodeFields, field[*store.Node]{f.name, f.min, guardField(f.name, f.show)}) // masked per caller: access.go
		if f.sortable {
			nodeSortKeys[f.name] = f.order
		}
		switch {
		case f.createOnly:
			creatableNode = append(creatableNode, f.name)
		case f.patchable():
			patchableNode = append(patchableNode, f.name)
		}
	}
	sort.Strings(patchableNode)
	nodeFieldsSorted = sortedFields(nodeFields)
}

// nodeFieldNamed is the table entry of a field.
func nodeFieldNamed(name string) (nodeField, bool) {
	i := slices.IndexFunc(nodeTable, func(f nodeField) bool { return f.name == name })
	if i < 0 {
		return nodeField{}, false
	}
	return nodeTable[i], true
}

func nodeFieldMin(name string) (Version, bool) {
	f, ok := nodeFieldNamed(name)
	return f.min, ok
}

// applyNodeFields copies the user-settable fields from a decoded body
// (create, or the patched view) into n, validating them in table order.
func applyNodeFields(n *store.Node, body map[string]any, v Version, ht *driver.HardwareType) *Error {
	n.Interfaces = map[string]string{}
	in := fieldInput{v: v, ht: ht}
	for _, f := range nodeTable {
		if f.set == nil {
			continue
		}
		if err := f.set(n, body[f.name], in); err != nil {
			return err
		}
	}
	return nil
}

// nodeDoc is the patchable view of a node (real values, secrets included).
func nodeDoc(n *store.Node) map[string]any {
	doc := map[string]any{}
	for _, f := range nodeTable {
		if f.patchable() {
			doc[f.name] = f.value(n)
		}
	}
	return doc
}

// nodeFieldDocs is the field reference in Markdown (node-fields.md).
func nodeFieldDocs() string {
	var b strings.Builder
	states := slices.Sorted(maps.Keys(updateAllowed))
	var free []string
	for _, f := range nodeTable {
		if f.removableInMaintenance {
			free = append(free, f.name)
		}
	}
	b.WriteString("# Node fields\n\nGenerated from the field table in `node_table.go` " +
		"(`go test -run TestNodeFieldDocs -update ./conductor/api`).\n" +
		"*since*: the microversion that shows the field and accepts it; " +
		"*write*: `patch` (create and PATCH), `create` (create only) or `-` (read-only); " +
		"*sort*: whether listings take it as sort_key (besides id).\n\n" +
		"PATCH is refused (409) while a state transition is in progress, but in the states " +
		strings.Join(states, ", ") + " (from 1.39 not in inspecting), and while a task holds the node's lock " +
		"(after a few waits). A PATCH that only removes " + strings.Join(free, " or ") +
		" is taken from a node in maintenance in any state.\n\n" +
		"| field | since | write | sort | meaning |\n|---|---|---|---|---|\n")
	for _, f := range nodeTable {
		w := "-"
		switch {
		case f.createOnly:
			w = "create"
		case f.patchable():
			w = "patch"
		}
		sortKey := ""
		if f.sortable {
			sortKey = "yes"
		}
		b.WriteString("| `" + f.name + "` | " + f.min.String() + " | " + w + " | " + sortKey + " | " + f.help + " |\n")
	}
	return b.String()
}
