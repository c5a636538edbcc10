package api

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
)

// updateAllowed are the states in which a node in transition may be patched.
var updateAllowed = map[string]bool{"deploy failed": true, "inspecting": true, "inspect failed": true,
	"inspect wait": true, "clean failed": true, "error": true, "verifying": true, "adopt failed": true,
	"rescue failed": true, "unrescue failed": true, "service": true, "service hold": true, "service failed": true}

func (s *Server) patchNode(c echo.Context) error {
	v := ver(c)
	body, err := readBody(c)
	if err != nil {
		return err
	}
	ops, perr := parsePatch(body)
	if perr != nil {
		return perr
	}
	for _, op := range ops {
		r := op.Root()
		if !slices.Contains(patchableNode, r) {
			return badRequest("Cannot patch %s. Only the following can be updated: %s", op.Path, strings.Join(patchableNode, ", "))
		}
		if min, ok := nodeFieldMin(r); ok && min > v {
			return notAcceptable("Field %s is not supported by version %s.", r, v)
		}
	}
	if _, err := s.findNode(c, c.Param("node")); err != nil {
		return err
	}
	resetIfaces := false
	if c.QueryParams().Has("reset_interfaces") {
		if v < 45 {
			return notAcceptable("The reset_interfaces parameter is not supported by version %s.", v)
		}
		var ok bool
		if resetIfaces, ok = ironichttp.ParseBool(c.QueryParam("reset_interfaces")); !ok {
			return badRequest("Invalid value for reset_interfaces: %s", c.QueryParam("reset_interfaces"))
		}
	}
	var out *store.Node
	var dropAlloc string
	for lockWaits := 0; ; {
		dropAlloc = ""
		locked := false
		err = s.st.Update(c.Request().Context(), func(tx store.Tx) error {
			n, err := tx.Node(c.Param("node"))
			if err != nil {
				return notFound("Node %s could not be found.", c.Param("node"))
			}
			onlyRemoveInstance := n.Maintenance && len(ops) == 1 && ops[0].Op == "remove" && ops[0].Path == "/instance_uuid"
			if !onlyRemoveInstance && n.TargetProvisionState != nil && !updateAllowed[n.ProvisionState] {
				return conflict("Node %s can not be updated while a state transition is in progress.", n.UUID)
			}
			if v >= 39 && n.ProvisionState == "inspecting" && !onlyRemoveInstance {
				return conflict("Node %s can not be updated while a state transition is in progress.", n.UUID)
			}
			if n.Reservation != nil { // a task holds the node (here or on another conductor)
				locked = true
				return conflict("Node %s is locked by host %s, please retry after the current operation is completed.", n.UUID, *n.Reservation)
			}
			oldInstance := deref(n.InstanceUUID)
			oldDriver := n.Driver
			oldOwner := n.Owner
			doc := nodeDoc(n)
			if perr := applyPatch(doc, ops); perr != nil {
				return perr
			}
			newDriver, _ := doc["driver"].(string)
			ht := s.mgr.Drivers().Lookup(newDriver)
			newGroup, _ := doc["conductor_group"].(string)
			if ht == nil || !s.mgr.Serves(newGroup, newDriver) {
				return noValidHost(newDriver, strings.ToLower(newGroup))
			}
			if newDriver != oldDriver {
				for _, kind := range driver.InterfaceKinds {
					key := kind + "_interface"
					impl, _ := doc[key].(string)
					explicitlySet := false
					for _, op := range ops {
						if op.Root() == key {
							explicitlySet = true
						}
					}
					if !explicitlySet && (resetIfaces || !ht.Accepts(kind, impl)) {
						doc[key] = nil
					}
				}
			}
			wasMaint := n.Maintenance
			if aerr := applyNodeFields(n, doc, v, ht); aerr != nil {
				return aerr
			}
			if n.Maintenance && !wasMaint {
				n.MaintenanceReason = nil
			}
			newInstance := deref(n.InstanceUUID)
			if oldInstance != "" && newInstance != "" && newInstance != oldInstance {
				return conflict("Node %s is associated with instance %s.", n.UUID, oldInstance)
			}
			if oldInstance != "" && newInstance == "" && n.AllocationUUID != nil {
				dropAlloc = *n.AllocationUUID
				n.AllocationUUID = nil
				if err := tx.DeleteAllocation(dropAlloc); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
			}
			if n.ChassisUUID != nil {
				if _, err := tx.Chassis(*n.ChassisUUID); err != nil {
					return badRequest("Chassis %s could not be found.", *n.ChassisUUID)
				}
			}
			if slices.ContainsFunc(ops, func(op patchOp) bool { return op.Root() == "parent_node" }) {
				if err := resolveParent(tx, n, oldOwner); err != nil {
					return err
				}
			}
			out = n
			return tx.PutNode(n)
		})
		// A locked node is retried a few times before the 409, as
		// Ironic's conductor retries taking the lock (the store itself
		// re-runs a transaction that loses a race).
		if locked && lockWaits < manager.LockRetries {
			lockWaits++
			select {
			case <-time.After(manager.LockRetryWait):
				continue
			case <-c.Request().Context().Done():
			}
		}
		break
	}
	if err != nil {
		if out != nil {
			return s.nodeWriteError(err, out)
		}
		return err
	}
	return c.JSON(http.StatusOK, render(c, nodeFields, out, v, nil))
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
