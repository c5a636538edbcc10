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
	body, err := readBody(c)
	if err != nil {
		return nil, err
	}
	ops, perr := parsePatch(body)
	if perr != nil {
		return nil, perr
	}
	for _, op := range ops {
		if !slices.Contains(patchable, op.Root()) {
			return nil, badRequest("Cannot patch %s. Only the following can be updated: %s", op.Path, strings.Join(patchable, ", "))
		}
	}
	return ops, nil
}

// applyPatch applies ops in order to doc (a JSON object decoded into
// maps), returning Ironic's "Couldn't apply patch" error on failure.
func applyPatch(doc map[string]any, ops []patchOp) *Error { return ironichttp.ApplyPatch(doc, ops) }
