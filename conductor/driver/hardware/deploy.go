package hardware

import (
	"context"

	"github.com/ferric-metal/ferric/conductor/driver"
)

// The ramdisk and custom-agent deploy interfaces, which every hardware
// type enables after direct, as Ironic's generic hardware types do.
var (
	ramdiskDeploy = driver.Named("ramdisk", ramdiskDeployImpl{})
	customAgent   = driver.Named("custom-agent", customAgentImpl{})
)

// ramdiskDeployImpl is Ironic's ramdisk deploy: the boot interface boots
// the instance's ramdisk or ISO (driver.InstanceBooter); cleaning still
// runs through the agent, as Ironic's ramdisk deploy inherits the agent's
// cleaning.
type ramdiskDeployImpl struct{}

func (ramdiskDeployImpl) UsesAgent() bool { return true }
func (ramdiskDeployImpl) DeploysRamdisk() {}

// customAgentImpl is Ironic's custom-agent deploy: the agent runs the
// deploy steps it offers; the conductor writes no image.
type customAgentImpl struct{}

func (customAgentImpl) UsesAgent() bool     { return true }
func (customAgentImpl) RunsAgentStepsOnly() {}

var (
	_ driver.RamdiskDeploy     = ramdiskDeployImpl{}
	_ driver.CustomAgentDeploy = customAgentImpl{}
	_ driver.InstanceBooter    = netBoot{}
)

// PrepareInstance implements driver.InstanceBooter for the network boot:
// the machine boots from the network, where the conductor's iPXE service
// answers an active node whose instance boot is recorded
// (driver.InstanceBootKey) with the instance's kernel and ramdisk, or its
// boot ISO. With Config.NetworkInstance (the conductor's copies of the
// images, as Ironic's http root) that prepares them first.
func (b netBoot) PrepareInstance(ctx context.Context, n *driver.Node) (string, error) {
	if b.instance != nil {
		if _, err := b.instance.PrepareInstance(ctx, n); err != nil {
			return "", err
		}
	}
	return driver.BootPXE, nil
}

// CleanUpInstance implements driver.InstanceBooter: Config.NetworkInstance
// withdraws its copies; the network boot stops serving the instance once
// the node leaves active.
func (b netBoot) CleanUpInstance(ctx context.Context, n *driver.Node) error {
	if b.instance != nil {
		return b.instance.CleanUpInstance(ctx, n)
	}
	return nil
}
