package store

import (
	"encoding/json"
	"time"
)

// Object is a free-form JSON object (driver_info, properties, extra, ...).
type Object = map[string]any

// Node is a bare-metal machine as Ironic models it. JSON names are Ironic's.
type Node struct {
	ID       int64 `json:"id"`
	Revision int64 `json:"revision"`

	UUID                 string     `json:"uuid"`
	Name                 *string    `json:"name"`
	Driver               string     `json:"driver"`
	DriverInfo           Object     `json:"driver_info"`
	DriverInternalInfo   Object     `json:"driver_internal_info"`
	Properties           Object     `json:"properties"`
	Extra                Object     `json:"extra"`
	InstanceInfo         Object     `json:"instance_info"`
	InstanceUUID         *string    `json:"instance_uuid"`
	AllocationUUID       *string    `json:"allocation_uuid"`
	ChassisUUID          *string    `json:"chassis_uuid"`
	PowerState           *string    `json:"power_state"`
	TargetPowerState     *string    `json:"target_power_state"`
	ProvisionState       string     `json:"provision_state"`
	TargetProvisionState *string    `json:"target_provision_state"`
	ProvisionUpdatedAt   *time.Time `json:"provision_updated_at"`
	LastError            *string    `json:"last_error"`
	Maintenance          bool       `json:"maintenance"`
	MaintenanceReason    *string    `json:"maintenance_reason"`
	Fault                *string    `json:"fault"`
	Reservation          *string    `json:"reservation"`
	ConsoleEnabled       bool       `json:"console_enabled"`
	ResourceClass        *string    `json:"resource_class"`
	ConductorGroup       string     `json:"conductor_group"`
	Traits               []string   `json:"traits"`
	CleanStep            Object     `json:"clean_step"`
	DeployStep           Object     `json:"deploy_step"`
	ServiceStep          Object     `json:"service_step"`
	RAIDConfig           Object     `json:"raid_config"`
	TargetRAIDConfig     Object     `json:"target_raid_config"`
	Owner                *string    `json:"owner"`
	Lessee               *string    `json:"lessee"`
	Description          *string    `json:"description"`
	Protected            bool       `json:"protected"`
	ProtectedReason      *string    `json:"protected_reason"`
	Retired              bool       `json:"retired"`
	RetiredReason        *string    `json:"retired_reason"`
	AutomatedClean       *bool      `json:"automated_clean"`
	NetworkData          Object     `json:"network_data"`
	Shard                *string    `json:"shard"`
	ParentNode           *string    `json:"parent_node"`
	DisablePowerOff      bool       `json:"disable_power_off"`
	InstanceName         *string    `json:"instance_name"`
	// Health is the machine's health as its BMC last reported it (OK,
	// Warning, Critical), nil when unknown (API 1.109).
	Health               *string    `json:"health"`
	BootMode             *string    `json:"boot_mode"`
	SecureBoot           *bool      `json:"secure_boot"`
	InspectionStartedAt  *time.Time `json:"inspection_started_at"`
	InspectionFinishedAt *time.Time `json:"inspection_finished_at"`
	// Interfaces: hardware interface names keyed by kind (boot, deploy,
	// power, ...), resolved to the driver's defaults at create time.
	Interfaces map[string]string `json:"interfaces"`
	// VIFs attached to the node (ids), in attach order.
	VIFs []string `json:"vifs"`
	// Inventory and plugin data from inspection, when any.
	Inventory  json.RawMessage `json:"inventory,omitempty"`
	PluginData json.RawMessage `json:"plugin_data,omitempty"`

	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt *time.Time `json:"updated_at"`
}

// Port is a NIC of a node.
type Port struct {
	ID       int64 `json:"id"`
	Revision int64 `json:"revision"`

	UUID                string  `json:"uuid"`
	Address             string  `json:"address"`
	NodeUUID            string  `json:"node_uuid"`
	PortgroupUUID       *string `json:"portgroup_uuid"`
	LocalLinkConnection Object  `json:"local_link_connection"`
	PXEEnabled          bool    `json:"pxe_enabled"`
	PhysicalNetwork     *string `json:"physical_network"`
	InternalInfo        Object  `json:"internal_info"`
	Extra               Object  `json:"extra"`
	IsSmartNIC          bool    `json:"is_smartnic"`
	Name                *string `json:"name"`
	Description         *string `json:"description"`
	Vendor              *string `json:"vendor"`
	Category            *string `json:"category"`

	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt *time.Time `json:"updated_at"`
}

// Portgroup is a bond of ports.
type Portgroup struct {
	ID       int64 `json:"id"`
	Revision int64 `json:"revision"`

	UUID                     string  `json:"uuid"`
	Name                     *string `json:"name"`
	Address                  *string `json:"address"`
	NodeUUID                 string  `json:"node_uuid"`
	Mode                     *string `json:"mode"`
	Properties               Object  `json:"properties"`
	StandalonePortsSupported bool    `json:"standalone_ports_supported"`
	InternalInfo             Object  `json:"internal_info"`
	Extra                    Object  `json:"extra"`
	PhysicalNetwork          *string `json:"physical_network"`
	Category                 *string `json:"category"`

	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt *time.Time `json:"updated_at"`
}

// Chassis groups nodes.
type Chassis struct {
	ID       int64 `json:"id"`
	Revision int64 `json:"revision"`

	UUID        string  `json:"uuid"`
	Description *string `json:"description"`
	Extra       Object  `json:"extra"`

	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt *time.Time `json:"updated_at"`
}

// VolumeConnector is a node's connector to a storage network for boot
// from volume (API 1.32): type (iqn, ip, mac, wwnn, wwpn, port, portgroup)
// and connector_id, unique together.
type VolumeConnector struct {
	ID       int64 `json:"id"`
	Revision int64 `json:"revision"`

	UUID        string `json:"uuid"`
	NodeUUID    string `json:"node_uuid"`
	Type        string `json:"type"`
	ConnectorID string `json:"connector_id"`
	Extra       Object `json:"extra"`

	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt *time.Time `json:"updated_at"`
}

// VolumeTarget is a volume a node boots from or attaches (API 1.32): boot
// index unique per node.
type VolumeTarget struct {
	ID       int64 `json:"id"`
	Revision int64 `json:"revision"`

	UUID       string `json:"uuid"`
	NodeUUID   string `json:"node_uuid"`
	VolumeType string `json:"volume_type"`
	VolumeID   string `json:"volume_id"`
	BootIndex  int64  `json:"boot_index"`
	Properties Object `json:"properties"`
	Extra      Object `json:"extra"`

	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt *time.Time `json:"updated_at"`
}

// DeployTemplate is a named set of deploy steps (API 1.55): a deploy runs
// the steps of the templates whose names are among the instance's traits.
type DeployTemplate struct {
	ID       int64 `json:"id"`
	Revision int64 `json:"revision"`

	UUID        string           `json:"uuid"`
	Name        string           `json:"name"`
	Description *string          `json:"description"`
	Steps       []map[string]any `json:"steps"`
	Extra       Object           `json:"extra"`

	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt *time.Time `json:"updated_at"`
}

// Runbook is a named list of clean or service steps (API 1.92) that a
// manual cleaning or a servicing runs in place of its own steps, on the
// nodes having a trait equal to its name.
type Runbook struct {
	ID       int64 `json:"id"`
	Revision int64 `json:"revision"`

	UUID           string           `json:"uuid"`
	Name           string           `json:"name"`
	Steps          []map[string]any `json:"steps"`
	DisableRamdisk bool             `json:"disable_ramdisk"`
	Extra          Object           `json:"extra"`
	Public         bool             `json:"public"`
	Owner          *string          `json:"owner"`

	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt *time.Time `json:"updated_at"`
}

// Allocation is a scheduler's request for a node.
type Allocation struct {
	ID       int64 `json:"id"`
	Revision int64 `json:"revision"`

	UUID           string   `json:"uuid"`
	Name           *string  `json:"name"`
	NodeUUID       *string  `json:"node_uuid"`
	State          string   `json:"state"`
	LastError      *string  `json:"last_error"`
	ResourceClass  *string  `json:"resource_class"`
	Traits         []string `json:"traits"`
	CandidateNodes []string `json:"candidate_nodes"`
	Extra          Object   `json:"extra"`
	Owner          *string  `json:"owner"`

	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt *time.Time `json:"updated_at"`
}

// Conductor is a registered conductor process.
type Conductor struct {
	ID       int64 `json:"id"`
	Revision int64 `json:"revision"`

	Hostname       string    `json:"hostname"`
	ConductorGroup string    `json:"conductor_group"`
	Drivers        []string  `json:"drivers"`
	HeartbeatAt    time.Time `json:"heartbeat_at"`
	// APIURL is where the other conductors reach this one's API.
	APIURL string `json:"api_url,omitempty"`

	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt *time.Time `json:"updated_at"`
}

// Record is a JSON blob stored under a key in a named table; used for data
// other components own (inspection rules, DHCP leases, history).
type Record struct {
	ID       int64           `json:"id"`
	Revision int64           `json:"revision"`
	Key      string          `json:"key"`
	Data     json.RawMessage `json:"data"`
}

// BIOSSetting is one BIOS setting of a node as its bios interface last
// read it (Ironic's bios_settings, API 1.40; the registry fields of 1.74
// are set when the BMC describes the setting).
type BIOSSetting struct {
	Name            string     `json:"name"`
	Value           *string    `json:"value"`
	AttributeType   *string    `json:"attribute_type,omitempty"`
	AllowableValues []string   `json:"allowable_values,omitempty"`
	LowerBound      *int64     `json:"lower_bound,omitempty"`
	UpperBound      *int64     `json:"upper_bound,omitempty"`
	MinLength       *int64     `json:"min_length,omitempty"`
	MaxLength       *int64     `json:"max_length,omitempty"`
	ReadOnly        *bool      `json:"read_only,omitempty"`
	ResetRequired   *bool      `json:"reset_required,omitempty"`
	Unique          *bool      `json:"unique,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       *time.Time `json:"updated_at,omitempty"`
}

// FirmwareComponent is one firmware component of a node as its firmware
// interface last read it (Ironic's firmware_information, API 1.86).
type FirmwareComponent struct {
	Component          string     `json:"component"`
	InitialVersion     string     `json:"initial_version"`
	CurrentVersion     string     `json:"current_version"`
	LastVersionFlashed *string    `json:"last_version_flashed,omitempty"`
	CreatedAt          time.Time  `json:"created_at"`
	UpdatedAt          *time.Time `json:"updated_at,omitempty"`
}

// MaxHistory is how many history events a node keeps (Ironic's
// [conductor]node_history_max_entries default): older ones are dropped.
const MaxHistory = 300

// HistoryEvent is one entry of a node's history (Ironic's node history,
// API 1.78): written whenever the node's last_error is set, in the same
// transaction.
type HistoryEvent struct {
	ID        int64     `json:"id"`
	UUID      string    `json:"uuid"`
	CreatedAt time.Time `json:"created_at"`
	Severity  string    `json:"severity"` // ERROR or INFO
	EventType string    `json:"event_type"`
	Event     string    `json:"event"`
	Conductor string    `json:"conductor"`
	User      *string   `json:"user"`
}

// HistoryEventType names the activity a last_error comes from, with
// Ironic's event types, from the provision state the node was in (from)
// and the one the failure put it in (to).
func HistoryEventType(from, to string) string {
	for _, st := range []string{from, to} {
		switch st {
		case "deploying", "wait call-back", "deploy failed", "deploy hold", "rebuild":
			return "deploying"
		case "cleaning", "clean wait", "clean failed", "clean hold":
			return "cleaning"
		case "inspecting", "inspect wait", "inspect failed":
			return "introspection"
		case "verifying":
			return "verify"
		case "rescuing", "rescue wait", "rescue failed", "unrescuing", "unrescue failed":
			return "rescue"
		case "deleting", "error":
			return "unprovision"
		case "adopting", "adopt failed":
			return "adoption"
		case "servicing", "service wait", "service failed", "service hold":
			return "servicing"
		}
	}
	// A failure outside provisioning (power changes, power state sync).
	return "monitoring"
}
