package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/internal/python"
	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
)

// updateAllowed are the states in which a node in transition may be patched.
var updateAllowed = map[string]bool{"deploy failed": true, "inspecting": true, "inspect failed": true,
	"inspect wait": true, "clean failed": true, "error": true, "verifying": true, "adopt failed": true,
	"rescue failed": true, "unrescue failed": true, "service": true, "service hold": true, "service failed": true}

// nodePatch is one PATCH of a node, read and checked.
type nodePatch struct {
	ident string
	ops   []patchOp
	v     Version
	// resetIfaces: a change of driver resets the interfaces the patch
	// does not set (?reset_interfaces=true, 1.45).
	resetIfaces bool
}

func (s *Server) patchNode(c echo.Context) error {
	p, err := s.readNodePatch(c)
	if err != nil {
		return err
	}
	out, err := s.applyNodePatch(c.Request().Context(), p)
	if err != nil {
		if out != nil {
			return s.nodeWriteError(err, out)
		}
		return err
	}
	return c.JSON(http.StatusOK, render(c, nodeFields, out, p.v, nil))
}

// readNodePatch reads the request: JSON Patch ops on fields PATCH takes
// at the version, an existing node, and ?reset_interfaces.
func (s *Server) readNodePatch(c echo.Context) (*nodePatch, error) {
	p := &nodePatch{ident: c.Param("node"), v: ver(c)}
	patchable := onlyFields(patchableNode)
	ops, err := readPatchOps(c, func(op patchOp) *Error {
		if err := patchable(op); err != nil {
			return err
		}
		if min, _ := nodeFieldMin(op.Root()); min > p.v {
			return notAcceptable("Field %s is not supported by version %s.", op.Root(), p.v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.ops = ops
	for _, op := range ops {
		var val any
		if op.Op == "remove" || json.Unmarshal(op.Value, &val) != nil {
			continue
		}
		if d, ok := val.(string); ok && op.Path == "/description" && utf8.RuneCountInString(d) > 4096 {
			return nil, badRequest("Cannot update node with description exceeding 4096 characters")
		}
	}
	for _, op := range ops {
		var val any
		if op.Op == "remove" || op.Path != "/network_data" || json.Unmarshal(op.Value, &val) != nil {
			continue
		}
		if err := validNetworkData(val); err != nil {
			return nil, err
		}
	}
	for _, op := range ops {
		var val any
		if op.Op == "remove" || op.Path != "/name" || json.Unmarshal(op.Value, &val) != nil {
			continue
		}
		if name, ok := val.(string); ok && !acceptableNodeName(p.v, name) {
			return nil, badRequest("Node %s: Cannot change name to invalid name '%s'", p.ident, python.Cut(name))
		}
	}
	if _, err := s.findNode(c, p.ident); err != nil {
		return nil, err
	}
	if !c.QueryParams().Has("reset_interfaces") {
		return p, nil
	}
	if p.v < 45 {
		return nil, notAcceptable("The reset_interfaces parameter is not supported by version %s.", p.v)
	}
	var ok bool
	if p.resetIfaces, ok = ironichttp.ParseBool(c.QueryParam("reset_interfaces")); !ok {
		return nil, badRequest("Invalid value for reset_interfaces: %s", c.QueryParam("reset_interfaces"))
	}
	return p, nil
}

// applyNodePatch patches the node in one transaction. A node locked by a
// task is tried again a few times before the 409, as Ironic's conductor
// retries taking the lock (the store itself re-runs a transaction that
// loses a race). The node is returned with a store error too, to name a
// duplicate.
func (s *Server) applyNodePatch(ctx context.Context, p *nodePatch) (*store.Node, error) {
	for waits := 0; ; waits++ {
		var out *store.Node
		locked := false
		err := s.st.Update(ctx, func(tx store.Tx) error {
			var err error
			out, locked, err = s.patchTx(tx, p)
			return err
		})
		if !locked || waits >= manager.LockRetries {
			return out, err
		}
		select {
		case <-time.After(manager.LockRetryWait):
		case <-ctx.Done():
			return out, err
		}
	}
}

// patchTx is one try of a patch: locked when a task holds the node.
func (s *Server) patchTx(tx store.Tx, p *nodePatch) (n *store.Node, locked bool, err error) {
	n, err = tx.Node(p.ident)
	if err != nil {
		return nil, false, notFound("Node %s could not be found.", p.ident)
	}
	if locked, err := p.refused(n); err != nil {
		return nil, locked, err
	}
	old := *n
	doc := nodeDoc(n)
	if perr := applyPatch(doc, p.ops); perr != nil {
		return nil, false, perr
	}
	if e := validateNode("patch", doc); e != nil {
		return nil, false, e
	}
	ht, err := s.patchedHardware(doc, p, old.Driver)
	if err != nil {
		return nil, false, err
	}
	if aerr := applyNodeFields(n, doc, p.v, ht); aerr != nil {
		return nil, false, aerr
	}
	if n.Maintenance && !old.Maintenance {
		n.MaintenanceReason = nil
	}
	syncInstanceName(n, p)
	if err := p.relate(tx, n, &old); err != nil {
		return nil, false, err
	}
	return n, false, tx.PutNode(n)
}

// refused is the 409 for a node in a state transition (but in the states
// that allow updates, or when the patch only removes a field a node in
// maintenance may drop) or locked by a task (here or on another
// conductor; locked: worth waiting for).
func (p *nodePatch) refused(n *store.Node) (locked bool, err error) {
	free := false
	if n.Maintenance && len(p.ops) == 1 && p.ops[0].Op == "remove" {
		f, _ := nodeFieldNamed(p.ops[0].Root())
		free = f.removableInMaintenance && p.ops[0].Path == "/"+f.name
	}
	inTransition := n.TargetProvisionState != nil && !updateAllowed[n.ProvisionState] ||
		p.v >= 39 && n.ProvisionState == "inspecting"
	if inTransition && !free {
		return false, conflict("Node %s can not be updated while a state transition is in progress.", n.UUID)
	}
	if n.Reservation != nil {
		return true, conflict("Node %s is locked by host %s, please retry after the current operation is completed.", n.UUID, *n.Reservation)
	}
	return false, nil
}

// patchedHardware is the hardware type of the patched view, which a live
// conductor of its group must serve. On a change of driver the interfaces
// the patch does not set fall back to the new type's defaults when it
// does not take them or when the request resets them.
func (s *Server) patchedHardware(doc map[string]any, p *nodePatch, oldDriver string) (*driver.HardwareType, error) {
	newDriver, _ := doc["driver"].(string)
	ht := s.mgr.Drivers().Lookup(newDriver)
	newGroup, _ := doc["conductor_group"].(string)
	if ht == nil || !s.mgr.Serves(newGroup, newDriver) {
		return nil, noValidHost(newDriver, strings.ToLower(newGroup))
	}
	if newDriver == oldDriver {
		return ht, nil
	}
	for _, kind := range driver.InterfaceKinds {
		key := kind + "_interface"
		impl, _ := doc[key].(string)
		if !p.sets(key) && (p.resetIfaces || !ht.Accepts(kind, impl)) {
			doc[key] = nil
		}
	}
	return ht, nil
}

// syncInstanceName names the instance from instance_info's display_name
// (as Nova sets it) when a patch of instance_info leaves instance_name
// unset, as Ironic does for clients older than 1.104.
func syncInstanceName(n *store.Node, p *nodePatch) {
	if !p.sets("instance_info") || n.InstanceName != nil && *n.InstanceName != "" {
		return
	}
	if dn, _ := n.InstanceInfo["display_name"].(string); dn != "" {
		n.InstanceName = &dn
	}
}

// sets reports whether an op of the patch touches the field.
func (p *nodePatch) sets(name string) bool {
	return slices.ContainsFunc(p.ops, func(op patchOp) bool { return op.Root() == name })
}

// relate checks the patched node against the rest of the store: a new
// instance may not replace another, dropping the instance frees its
// allocation, the chassis must exist and the parent must resolve.
func (p *nodePatch) relate(tx store.Tx, n, old *store.Node) error {
	oldInstance, newInstance := deref(old.InstanceUUID), deref(n.InstanceUUID)
	if oldInstance != "" && newInstance != "" && newInstance != oldInstance {
		return conflict("Node %s is associated with instance %s.", n.UUID, oldInstance)
	}
	if oldInstance != "" && newInstance == "" && n.AllocationUUID != nil {
		drop := *n.AllocationUUID
		n.AllocationUUID = nil
		if err := tx.DeleteAllocation(drop); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if err := checkChassis(tx, n); err != nil {
		return err
	}
	if p.sets("parent_node") {
		return resolveParent(tx, n, old.Owner)
	}
	return nil
}

// checkChassis refuses a node whose chassis does not exist.
func checkChassis(tx store.Tx, n *store.Node) error {
	if n.ChassisUUID == nil {
		return nil
	}
	if _, err := tx.Chassis(*n.ChassisUUID); err != nil {
		return badRequest("Chassis %s could not be found.", *n.ChassisUUID)
	}
	return nil
}

// resolveParent replaces n's parent_node (a name or UUID) with the UUID of
// that node, which must exist and have the same owner as owner (the node's
// owner before the change); otherwise the request is refused with one
// message for both cases, as Ironic does, so that the answer does not tell
// whether another project's node exists.
func resolveParent(tx store.Tx, n *store.Node, owner *string) error {
	if n.ParentNode == nil || *n.ParentNode == "" {
		return nil
	}
	refused := badRequest("Unable to apply the requested parent_node '%s'. Requested value was invalid.", *n.ParentNode)
	p, err := tx.Node(*n.ParentNode)
	if errors.Is(err, store.ErrNotFound) {
		return refused
	}
	if err != nil {
		return err
	}
	if deref(p.Owner) != deref(owner) {
		return refused
	}
	n.ParentNode = &p.UUID
	return nil
}
