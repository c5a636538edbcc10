package api

import (
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
)

// patchOp is one JSON Patch operation, parsed as Ironic's schema says.
type patchOp = ironichttp.PatchOp

func parsePatch(body []byte) ([]patchOp, *Error) { return ironichttp.ParsePatch(body) }

// readPatch reads a PATCH body and checks that every op touches one of
// the patchable top-level fields.
func readPatch(c echo.Context, patchable []string) ([]patchOp, error) {
	return readPatchOps(c, onlyFields(patchable))
}

// onlyFields refuses an op on a field not in patchable, with Ironic's
// message.
func onlyFields(patchable []string) func(patchOp) *Error {
	return func(op patchOp) *Error {
		if !slices.Contains(patchable, op.Root()) {
			return badRequest("Cannot patch %s. Only the following can be updated: %s", op.Path, strings.Join(patchable, ", "))
		}
		return nil
	}
}

// readPatchOps reads a PATCH body and checks each op in order.
func readPatchOps(c echo.Context, check func(patchOp) *Error) ([]patchOp, error) {
	body, err := readBody(c)
	if err != nil {
		return nil, err
	}
	ops, perr := parsePatch(body)
	if perr != nil {
		return nil, perr
	}
	for _, op := range ops {
		if err := check(op); err != nil {
			return nil, err
		}
	}
	return ops, nil
}

// applyPatch applies ops in order to doc (a JSON object decoded into
// maps), returning Ironic's "Couldn't apply patch" error on failure.
func applyPatch(doc map[string]any, ops []patchOp) *Error { return ironichttp.ApplyPatch(doc, ops) }
