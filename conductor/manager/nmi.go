package manager

import (
	"context"

	"github.com/ferric-metal/ferric/conductor/driver"
)

// InjectNMI sends the node's machine a non-maskable interrupt through its
// management interface, with the node locked, as Ironic's inject_nmi
// (API 1.29). The fake management interface accepts it and does nothing.
func (m *Manager) InjectNMI(ctx context.Context, uuid string) error {
	n, mg, err := m.nodeManagement(uuid)
	if err != nil {
		return err
	}
	inj, ok := capability[driver.NMIInjector](m, n, "management")
	if !ok {
		return userErr(ErrInvalidInput, "%v", unsupportedExt(n, "inject_nmi"))
	}
	if err := mg.Validate(driverNode(n)); err != nil {
		return userErr(ErrInvalidInput, "%v", err)
	}
	if err := m.acquire(ctx, uuid, nil); err != nil {
		return err
	}
	defer m.unlock(context.WithoutCancel(ctx), uuid)
	if err := inj.InjectNMI(ctx, driverNode(n)); err != nil {
		return err
	}
	m.log.Info("manager: NMI injected", "node", uuid)
	return nil
}
