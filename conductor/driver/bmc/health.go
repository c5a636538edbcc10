package bmc

import (
	"context"

	"github.com/stmcginnis/gofish/common"
	"github.com/stmcginnis/gofish/redfish"

	"github.com/ferric-metal/ferric/conductor/driver"
)

var _ driver.HealthReader = (*Redfish)(nil)

// Health implements driver.HealthReader: the system's Status.Health, as
// Ironic's redfish management reads it; a value outside Redfish's three
// (or none) is "".
func (d *Redfish) Health(ctx context.Context, n *driver.Node) (health string, err error) {
	err = d.withSystem(ctx, n, "health", func(sys *redfish.ComputerSystem) error {
		switch sys.Status.Health {
		case common.OKHealth:
			health = driver.HealthOK
		case common.WarningHealth:
			health = driver.HealthWarning
		case common.CriticalHealth:
			health = driver.HealthCritical
		}
		return nil
	})
	return health, err
}
