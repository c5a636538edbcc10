package manager

import (
	"context"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/store"
)

// powerResulter and bootResulter are implemented by drivers that can say
// which provider (ipmitool, gofish, ...) did the work.
type powerResulter interface {
	SetPowerStateResult(ctx context.Context, n *driver.Node, target string, timeout time.Duration) (driver.Result, error)
}

type bootResulter interface {
	SetBootDeviceResult(ctx context.Context, n *driver.Node, device string, persistent bool) (driver.Result, error)
}

// recorded wraps a driver so that the provider that acted is stored in the
// node's driver_internal_info ("power_provider", "management_provider").
type recorded struct {
	driver.Power
	mg driver.Management
	m  *Manager
}

func (r recorded) note(ctx context.Context, uuid, key string, res driver.Result) {
	if res.Provider == "" {
		return
	}
	_ = r.m.update(ctx, uuid, func(n *store.Node) error {
		if n.DriverInternalInfo == nil {
			n.DriverInternalInfo = store.Object{}
		}
		if n.DriverInternalInfo[key] == res.Provider {
			return errUnchanged
		}
		n.DriverInternalInfo[key] = res.Provider
		return nil
	})
}

func (r recorded) SetPowerState(ctx context.Context, n *driver.Node, target string, timeout time.Duration) error {
	pr, ok := r.Power.(powerResulter)
	if !ok {
		return r.Power.SetPowerState(ctx, n, target, timeout)
	}
	res, err := pr.SetPowerStateResult(ctx, n, target, timeout)
	if err == nil {
		r.note(ctx, n.UUID, "power_provider", res)
	}
	return err
}

func (r recorded) Validate(n *driver.Node) error {
	if r.Power != nil {
		return r.Power.Validate(n)
	}
	return r.mg.Validate(n)
}

func (r recorded) SetBootDevice(ctx context.Context, n *driver.Node, device string, persistent bool) error {
	br, ok := r.mg.(bootResulter)
	if !ok {
		return r.mg.SetBootDevice(ctx, n, device, persistent)
	}
	res, err := br.SetBootDeviceResult(ctx, n, device, persistent)
	if err == nil {
		r.note(ctx, n.UUID, "management_provider", res)
	}
	return err
}

func (r recorded) SupportedBootDevices() []string { return r.mg.SupportedBootDevices() }
