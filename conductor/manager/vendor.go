package manager

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/ferric-metal/ferric/conductor/driver"
)

// VendorMethods lists the node's vendor passthru methods.
func (m *Manager) VendorMethods(uuid string) (map[string]driver.VendorMethod, error) {
	n, err := m.st.Node(uuid)
	if err != nil {
		return nil, userErr(ErrNotFound, "Node %s could not be found.", uuid)
	}
	if v := m.vendor(n); v != nil {
		return v.Methods(), nil
	}
	return map[string]driver.VendorMethod{}, nil
}

// VendorPassthru calls a vendor method: a synchronous one answers with
// its result; an asynchronous one is checked, then runs on a worker with
// the node locked (its outcome goes to the log, as in Ironic) and async
// is true.
func (m *Manager) VendorPassthru(ctx context.Context, uuid, method, httpMethod string, args map[string]any) (ret any, async bool, err error) {
	n, err := m.st.Node(uuid)
	if err != nil {
		return nil, false, userErr(ErrNotFound, "Node %s could not be found.", uuid)
	}
	v := m.vendor(n)
	var meta driver.VendorMethod
	ok := false
	if v != nil {
		meta, ok = v.Methods()[method]
	}
	if !ok {
		return nil, false, userErr(ErrInvalidInput, "No handler for method %s", method)
	}
	httpMethod = strings.ToUpper(httpMethod)
	if !slices.Contains(meta.HTTPMethods, httpMethod) {
		return nil, false, userErr(ErrInvalidInput, "The method %s does not support HTTP %s", method, httpMethod)
	}
	dn := driverNode(n)
	if err := v.ValidateCall(dn, method, args); err != nil {
		return nil, false, userErr(ErrInvalidInput, "%v", err)
	}
	if !meta.Async {
		ret, err := v.Call(ctx, dn, method, args)
		if err != nil {
			kind := ErrInvalidInput
			if errors.Is(err, driver.ErrNotFound) {
				kind = ErrNotFound
			}
			return nil, false, userErr(kind, "%v", err)
		}
		return ret, false, nil
	}
	if err := m.slot(); err != nil {
		return nil, false, err
	}
	if err := m.acquire(ctx, uuid, nil); err != nil {
		m.release()
		return nil, false, err
	}
	m.spawn(uuid, func(ctx context.Context) error {
		if _, err := v.Call(ctx, dn, method, args); err != nil {
			m.log.Error("manager: vendor passthru failed", "node", uuid, "method", method, "err", err)
		}
		return nil
	})
	return nil, true, nil
}
