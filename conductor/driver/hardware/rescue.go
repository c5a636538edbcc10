package hardware

import (
	"maps"

	"github.com/ferric-metal/ferric/conductor/driver"
)

// agentRescue is Ironic's agent rescue interface, enabled (not the
// default: no-rescue is) on the generic hardware types: the conductor
// boots the rescue ramdisk (driver_info rescue_kernel/rescue_ramdisk) and
// its agent sets the rescue user's password (rescue.finalize_rescue).
var agentRescue = driver.Named("agent", agentRescueImpl{})

type agentRescueImpl struct{}

// RescuesWithAgent marks the rescue done by the ramdisk's agent.
func (agentRescueImpl) RescuesWithAgent() {}

// rescueProps are the driver_info keys of the rescue ramdisk.
var rescueProps = map[string]string{
	"rescue_kernel":  "UUID (from the image store) or URL of the rescue kernel. Required for rescue mode.",
	"rescue_ramdisk": "UUID (from the image store) or URL of the rescue ramdisk with the agent. Required for rescue mode.",
}

// The boot interfaces take the rescue ramdisk's keys too (Ironic's
// driver properties list them).
func init() { maps.Copy(deployProps, rescueProps) }
