package driver

import (
	"context"
	"errors"
)

// ErrNotFound is returned when the BMC has no such resource (a volume, a
// subscription); the API answers 404.
var ErrNotFound = errors.New("no such resource on the BMC")

// RAIDController is a raid interface whose BMC builds hardware RAID
// volumes out of band (Ironic's redfish and idrac-redfish raid
// interfaces): it lists the drives and volumes of the machine's RAID
// controllers and creates and deletes volumes, each at once.
type RAIDController interface {
	// RAIDInventory reads the drives of the controllers that can build
	// RAID (a controller reporting no RAID types is left out) and the
	// volumes of every controller.
	RAIDInventory(ctx context.Context, n *Node) (RAIDInventory, error)
	// CreateVolume asks the controller for a volume; a BMC refusal is an
	// error carrying the BMC's message. With apply time OnReset the volume
	// comes back Pending (built at the next start), as deletions then.
	CreateVolume(ctx context.Context, n *Node, spec VolumeSpec) (LogicalDisk, error)
	// DeleteVolume removes a volume (as RAIDInventory listed it).
	DeleteVolume(ctx context.Context, n *Node, v LogicalDisk) error
}

// RAIDInventory is what a RAIDController reads.
type RAIDInventory struct {
	Disks   []PhysicalDisk
	Volumes []LogicalDisk
	// Controllers that can build RAID, by id, with the Redfish RAIDType
	// values they list (nil: they do not say).
	Controllers map[string][]string
	// ApplyOnReset is true when the controllers build and delete volumes
	// only when the machine next starts (Redfish apply time OnReset).
	ApplyOnReset bool
}

// PhysicalDisk is one drive behind a RAID controller.
type PhysicalDisk struct {
	// ID is the drive's identity (its Redfish Id), as target_raid_config
	// physical_disks names drives; Controller its storage's identity.
	ID, Controller string
	Name           string
	// MediaType (HDD, SSD) and Protocol (SATA, SAS, NVMe) as Redfish
	// reports them.
	MediaType, Protocol string
	SizeBytes           int64
	// Ref is the BMC's reference of the drive (its @odata.id).
	Ref string
}

// LogicalDisk is one volume on a RAID controller.
type LogicalDisk struct {
	ID, Name, Controller string
	// RAIDType is the Redfish RAID type (RAID0, RAID1, RAID10, ...).
	RAIDType  string
	SizeBytes int64
	// Ref is the BMC's reference of the volume (its @odata.id), or of the
	// task that builds it when Pending.
	Ref string
	// Pending is true for a volume the controller builds when the machine
	// next starts; deleting it cancels its task.
	Pending bool
}

// VolumeSpec asks for one volume.
type VolumeSpec struct {
	// Controller is the storage identity; Drives the drives' identities.
	Controller string
	Drives     []string
	// RAIDType is the Redfish RAID type.
	RAIDType string
	// SizeBytes is the capacity; 0 lets the controller use all the drives
	// give (size_gb MAX).
	SizeBytes int64
	Name      string
}
