package api

import (
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/internal/python"
	"github.com/ferric-metal/ferric/conductor/store"
)

// nodeTable is every node field, one entry each (see nodeField): name,
// the version that introduced it, how it is shown, how it is set (for
// the fields create and PATCH take) and its line in node-fields.md. The
// settable fields are validated in this order, so an entry that checks
// another field stands after it.
var nodeTable = []nodeField{
	readOnly("uuid", 1, func(_ echo.Context, n *store.Node) any { return n.UUID }, "The node's UUID; may be given at create, never changed.").asCreateOnly().sortedBy(func(a, b *store.Node) int { return strings.Compare(a.UUID, b.UUID) }),
	strField("name", 5, 255, func(n *store.Node) **string { return &n.Name }, "A unique name that URLs may use instead of the UUID: a host name before 1.10, then up to 255 URL-safe characters.").then(checkName).sorted(),
	objField("driver_info", 1, func(n *store.Node) *store.Object { return &n.DriverInfo }, maskSecrets, "What the hardware type needs to reach the machine (BMC address, credentials, ramdisk images); secrets are shown masked."),
	objField("properties", 1, func(n *store.Node) *store.Object { return &n.Properties }, showObject, "The machine's properties (CPU, memory, disk, capabilities), as inspection finds them or an operator sets them."),
	objField("extra", 1, func(n *store.Node) *store.Object { return &n.Extra }, showObject, "Free-form metadata for the operator."),
	objField("instance_info", 1, func(n *store.Node) *store.Object { return &n.InstanceInfo }, maskInstance, "What a deployment writes (image source, checksum, root device size, config drive); config drives and secrets are masked."),
	objField("network_data", 66, func(n *store.Node) *store.Object { return &n.NetworkData }, showObject, "Static network configuration (OpenStack network_data.json) for the ramdisk and the instance."),
	strField("instance_uuid", 1, 36, func(n *store.Node) **string { return &n.InstanceUUID }, "The UUID of the instance deployed on the node.").then(checkInstanceUUID).asRemovableInMaintenance().sorted(),
	strField("instance_name", 104, 255, func(n *store.Node) **string { return &n.InstanceName }, "A readable name of the instance deployed on the node; set from instance_info's display_name by a PATCH of instance_info when unset, cleared at undeploy.").then(checkInstanceName),
	strField("chassis_uuid", 1, 36, func(n *store.Node) **string { return &n.ChassisUUID }, "The chassis the node belongs to; it must exist.").sorted(),
	strField("resource_class", 21, 80, func(n *store.Node) **string { return &n.ResourceClass }, "The class of machine the scheduler matches flavors against.").sorted(),
	strField("description", 51, 4096, func(n *store.Node) **string { return &n.Description }, "Free text for the operator."),
	strField("owner", 50, 255, func(n *store.Node) **string { return &n.Owner }, "The project that owns the node.").sorted(),
	strField("lessee", 65, 255, func(n *store.Node) **string { return &n.Lessee }, "The project the node is leased to.").sorted(),
	strField("protected_reason", 48, 255, func(n *store.Node) **string { return &n.ProtectedReason }, "Why the node is protected; only with protected."),
	strField("retired_reason", 61, 255, func(n *store.Node) **string { return &n.RetiredReason }, "Why the node is retired; only with retired."),
	strField("shard", 82, 255, func(n *store.Node) **string { return &n.Shard }, "The shard a client (such as one nova-compute) takes its nodes from."),
	strField("parent_node", 83, 36, func(n *store.Node) **string { return &n.ParentNode }, "The node this one is a child of (a name or UUID of a node of the same owner, stored as the UUID)."),
	nodeField{name: "conductor_group", min: 46, show: shown(conductorGroup), value: conductorGroup, set: setConductorGroup, help: "The group of conductors that may manage the node (lower-cased)."}.sortedBy(func(a, b *store.Node) int { return strings.Compare(a.ConductorGroup, b.ConductorGroup) }),
	boolField("maintenance", 1, func(n *store.Node) *bool { return &n.Maintenance }, "Whether the node is in maintenance: the conductor leaves it alone. Leaving maintenance clears maintenance_reason and fault.").then(leaveMaintenance).sorted(),
	boolField("disable_power_off", 95, func(n *store.Node) *bool { return &n.DisablePowerOff }, "Whether the machine must never be powered off (reboots only)."),
	boolField("protected", 48, func(n *store.Node) *bool { return &n.Protected }, "Whether the node is protected from undeploy, rebuild and deletion.").then(checkProtected),
	boolField("retired", 61, func(n *store.Node) *bool { return &n.Retired }, "Whether the node is retired: it is not offered for deployment again.").then(checkRetired),
	{name: "automated_clean", min: 47, show: shown(automatedClean), value: automatedClean, set: setAutomatedClean, help: "Whether the node is cleaned automatically (unset: the conductor's setting)."},
	nodeField{name: "driver", min: 1, show: shown(driverName), value: driverName, set: setDriver, help: "The hardware type; a live conductor of the node's group must offer it."}.sortedBy(func(a, b *store.Node) int { return strings.Compare(a.Driver, b.Driver) }),
	// The interfaces, in driver.InterfaceKinds' order.
	ifaceField("bios", 40),
	ifaceField("boot", 31),
	ifaceField("console", 31),
	ifaceField("deploy", 31),
	ifaceField("firmware", 86),
	ifaceField("inspect", 31),
	ifaceField("management", 31),
	ifaceField("network", 20),
	ifaceField("power", 31),
	ifaceField("raid", 31),
	ifaceField("rescue", 38),
	ifaceField("storage", 33),
	ifaceField("vendor", 31),
	// Read-only fields.
	readOnly("created_at", 1, func(_ echo.Context, n *store.Node) any { return ironicTime(n.CreatedAt) }, "When the node was enrolled.").sortedBy(func(a, b *store.Node) int { return a.CreatedAt.Compare(b.CreatedAt) }),
	readOnly("updated_at", 1, func(_ echo.Context, n *store.Node) any { return timePtr(n.UpdatedAt) }, "When the node was last changed.").sortedBy(func(a, b *store.Node) int { return cmpTime(a.UpdatedAt, b.UpdatedAt) }),
	readOnly("console_enabled", 1, func(_ echo.Context, n *store.Node) any { return n.ConsoleEnabled }, "Whether the serial console is enabled."),
	readOnly("driver_internal_info", 3, showInternalInfo, "The conductor's own bookkeeping for the node; secrets and step arguments are masked."),
	readOnly("last_error", 1, func(_ echo.Context, n *store.Node) any { return maskedStr(n.LastError) }, "The error of the last failed operation."),
	readOnly("maintenance_reason", 1, func(_ echo.Context, n *store.Node) any { return strPtr(n.MaintenanceReason) }, "Why the node is in maintenance (set through /maintenance)."),
	readOnly("power_state", 1, func(_ echo.Context, n *store.Node) any { return strPtr(n.PowerState) }, "The last power state read from the machine.").sortedBy(func(a, b *store.Node) int { return strings.Compare(deref(a.PowerState), deref(b.PowerState)) }),
	readOnly("target_power_state", 1, func(_ echo.Context, n *store.Node) any { return strPtr(n.TargetPowerState) }, "The power state being set, while a power action runs."),
	readOnly("provision_state", 1, func(c echo.Context, n *store.Node) any { return showState(ver(c), n.ProvisionState) }, "The provision state (\"inspect wait\" shows as \"inspecting\" before 1.39).").sortedBy(func(a, b *store.Node) int { return strings.Compare(a.ProvisionState, b.ProvisionState) }),
	readOnly("target_provision_state", 1, showTargetState, "The provision state a running transition heads for."),
	readOnly("provision_updated_at", 1, func(_ echo.Context, n *store.Node) any { return timePtr(n.ProvisionUpdatedAt) }, "When the provision state last changed.").sortedBy(func(a, b *store.Node) int { return cmpTime(a.ProvisionUpdatedAt, b.ProvisionUpdatedAt) }),
	readOnly("reservation", 1, func(_ echo.Context, n *store.Node) any { return strPtr(n.Reservation) }, "The conductor holding the node's lock, while a task runs."),
	readOnly("inspection_finished_at", 6, func(_ echo.Context, n *store.Node) any { return timePtr(n.InspectionFinishedAt) }, "When the last inspection finished."),
	readOnly("inspection_started_at", 6, func(_ echo.Context, n *store.Node) any { return timePtr(n.InspectionStartedAt) }, "When the running or last inspection started."),
	readOnly("clean_step", 7, func(_ echo.Context, n *store.Node) any { return maskStep(objOrEmpty(n.CleanStep)) }, "The cleaning step running now."),
	readOnly("raid_config", 12, func(_ echo.Context, n *store.Node) any { return objOrEmpty(n.RAIDConfig) }, "The RAID configuration last applied."),
	readOnly("target_raid_config", 12, func(_ echo.Context, n *store.Node) any { return objOrEmpty(n.TargetRAIDConfig) }, "The RAID configuration to apply (set through /states/raid)."),
	readOnly("traits", 37, showTraits, "The node's traits (set through /traits)."),
	readOnly("fault", 42, func(_ echo.Context, n *store.Node) any { return strPtr(n.Fault) }, "The fault that put the node in maintenance (such as power failure)."),
	readOnly("deploy_step", 44, func(_ echo.Context, n *store.Node) any { return maskStep(objOrEmpty(n.DeployStep)) }, "The deploy step running now."),
	readOnly("conductor", 49, showConductor, "The live conductor that manages the node."),
	readOnly("allocation_uuid", 52, func(_ echo.Context, n *store.Node) any { return strPtr(n.AllocationUUID) }, "The allocation that holds the node."),
	readOnly("boot_mode", 75, func(_ echo.Context, n *store.Node) any { return strPtr(n.BootMode) }, "The boot mode last read from the machine (set through /states/boot_mode)."),
	readOnly("secure_boot", 75, func(_ echo.Context, n *store.Node) any { return boolPtr(n.SecureBoot) }, "Whether secure boot is on, as last read (set through /states/secure_boot)."),
	readOnly("health", 109, func(_ echo.Context, n *store.Node) any { return strPtr(n.Health) }, "The machine's health as its BMC last reported it during power sync (OK, Warning, Critical; null when unknown or unsupported)."),
	readOnly("service_step", 87, func(_ echo.Context, n *store.Node) any { return objOrEmpty(n.ServiceStep) }, "The service step running now."),
	readOnly("links", 1, func(c echo.Context, n *store.Node) any { return nodeLinks(c, n.UUID, "") }, "Links to the node."),
	readOnly("ports", 1, func(c echo.Context, n *store.Node) any { return nodeLinks(c, n.UUID, "ports") }, "Links to the node's ports."),
	readOnly("states", 14, func(c echo.Context, n *store.Node) any { return nodeLinks(c, n.UUID, "states") }, "Links to the node's states."),
	readOnly("portgroups", 24, func(c echo.Context, n *store.Node) any { return nodeLinks(c, n.UUID, "portgroups") }, "Links to the node's port groups."),
	readOnly("volume", 32, func(c echo.Context, n *store.Node) any { return nodeLinks(c, n.UUID, "volume") }, "Links to the node's volume connectors and targets."),
}

// The checks and values of the entries above that take more than a line.

func checkName(n *store.Node, in fieldInput) *Error {
	if n.Name == nil {
		return nil
	}
	return validNodeName(in.v, *n.Name)
}

func checkInstanceUUID(n *store.Node, _ fieldInput) *Error {
	if n.InstanceUUID != nil && !store.IsUUID(*n.InstanceUUID) {
		return badRequest("Expected UUID for instance_uuid: %s", python.Cut(*n.InstanceUUID))
	}
	return nil
}

func checkInstanceName(n *store.Node, _ fieldInput) *Error {
	if n.InstanceName != nil && *n.InstanceName == "" {
		return badRequest("Schema error for node: '' is too short")
	}
	return nil
}

func leaveMaintenance(n *store.Node, _ fieldInput) *Error {
	if !n.Maintenance {
		n.MaintenanceReason = nil
		n.Fault = nil
	}
	return nil
}

func checkProtected(n *store.Node, _ fieldInput) *Error {
	if !n.Protected && n.ProtectedReason != nil {
		return badRequest("The protected_reason field can only be set when protected is True")
	}
	return nil
}

func checkRetired(n *store.Node, _ fieldInput) *Error {
	if !n.Retired && n.RetiredReason != nil {
		return badRequest("The retired_reason field can only be set when retired is True")
	}
	return nil
}

func conductorGroup(n *store.Node) any { return n.ConductorGroup }

func setConductorGroup(n *store.Node, val any, _ fieldInput) *Error {
	g, err := nodeString(val, 255)
	n.ConductorGroup = strings.ToLower(deref(g))
	return err
}

func automatedClean(n *store.Node) any { return boolPtr(n.AutomatedClean) }

func setAutomatedClean(n *store.Node, val any, _ fieldInput) *Error {
	n.AutomatedClean = nil
	if val == nil {
		return nil
	}
	b, ok := val.(bool)
	if !ok {
		return typeError(val, "boolean")
	}
	n.AutomatedClean = &b
	return nil
}

func driverName(n *store.Node) any { return n.Driver }

// setDriver takes a driver name; whether it is served is checked by
// create and PATCH before the fields are set.
func setDriver(n *store.Node, val any, _ fieldInput) *Error {
	if d, ok := val.(string); ok {
		n.Driver = d
	}
	return nil
}

func maskSecrets(o store.Object) any  { return maskObject(o, isSecretKey) }
func maskInstance(o store.Object) any { return maskObject(o, maskInstanceInfo) }
func showObject(o store.Object) any   { return objOrEmpty(o) }

func showInternalInfo(_ echo.Context, n *store.Node) any {
	return maskStepLists(maskObject(n.DriverInternalInfo, isSecretKey))
}

func showTargetState(c echo.Context, n *store.Node) any {
	if n.TargetProvisionState == nil {
		return nil
	}
	return showState(ver(c), *n.TargetProvisionState)
}

func showTraits(_ echo.Context, n *store.Node) any {
	if n.Traits == nil {
		return []string{}
	}
	return n.Traits
}

// ownerKey holds, in a request's context, what names a node's conductor
// (the Manager; set for every /v1 request by Server.v1).
const ownerKey = "ferric.owner"

func showConductor(c echo.Context, n *store.Node) any {
	if o, ok := c.Get(ownerKey).(interface{ Owner(*store.Node) string }); ok {
		if h := o.Owner(n); h != "" {
			return h
		}
	}
	return nil
}

func boolPtr(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}
