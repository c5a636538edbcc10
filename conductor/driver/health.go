package driver

import "context"

// Node health as a BMC reports it (Ironic's health_states, API 1.109).
const (
	HealthOK       = "OK"
	HealthWarning  = "Warning"
	HealthCritical = "Critical"
)

// HealthReader is a management interface that reads the machine's overall
// health from its BMC (Ironic's get_node_health): one of HealthOK,
// HealthWarning or HealthCritical, or "" when the BMC reports none. The
// power sync caches it in the node's health field; a management
// interface without it leaves health unset, as Ironic's ipmitool.
type HealthReader interface {
	Health(ctx context.Context, n *Node) (string, error)
}
