// Package store keeps the conductor's state: nodes, ports, portgroups,
// chassis, allocations, conductors and free-form records owned by other
// components (inspection rules, DHCP leases).
//
// The Store interface is what the rest of the conductor uses. Both
// implementations keep the tables in a key-value backend (kv.go): Bolt in
// one bbolt file (the embedded default, one conductor), Etcd in an etcd
// cluster that several conductors share. Every write is one transaction
// in which records and their unique indexes (node name, instance_uuid, port
// MAC, ...) change together, and every update is a compare-and-swap on the
// record's revision, so two writers never lose each other's changes.
//
// Reads that do not need a transaction (API GETs and listings) are served
// from an in-memory copy of the committed records, kept in id order, so
// listing 10,000 nodes never decodes the database. Records returned by those
// reads are shared and must not be modified; use the Tx methods to get a
// private copy to change.
package store

import (
	"context"
	"errors"
	"fmt"
)

// Sentinel errors, matched with errors.Is.
var (
	ErrNotFound  = errors.New("not found")
	ErrConflict  = errors.New("revision conflict")
	ErrDuplicate = errors.New("duplicate")
)

// DuplicateError reports a unique index violation.
type DuplicateError struct {
	Table, Field, Value string
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("store: %s with %s %s already exists", e.Table, e.Field, e.Value)
}

// Unwrap makes errors.Is(err, ErrDuplicate) true.
func (e *DuplicateError) Unwrap() error { return ErrDuplicate }

// Store is the conductor's state store.
type Store interface {
	// Update runs fn in one atomic read-write transaction. If fn returns an
	// error nothing is written. fn may be run more than once.
	Update(ctx context.Context, fn func(Tx) error) error

	// Committed-state reads (shared, read-only values).
	Node(ident string) (*Node, error)
	Nodes(filter func(*Node) bool) []*Node
	Port(uuid string) (*Port, error)
	PortByAddress(mac string) (*Port, error)
	Ports(filter func(*Port) bool) []*Port
	Portgroup(ident string) (*Portgroup, error)
	Portgroups(filter func(*Portgroup) bool) []*Portgroup
	Chassis(uuid string) (*Chassis, error)
	ChassisList(filter func(*Chassis) bool) []*Chassis
	Allocation(ident string) (*Allocation, error)
	Allocations(filter func(*Allocation) bool) []*Allocation
	DeployTemplate(ident string) (*DeployTemplate, error)
	DeployTemplates(filter func(*DeployTemplate) bool) []*DeployTemplate
	Runbook(ident string) (*Runbook, error)
	Runbooks(filter func(*Runbook) bool) []*Runbook
	VolumeConnector(uuid string) (*VolumeConnector, error)
	VolumeConnectors(filter func(*VolumeConnector) bool) []*VolumeConnector
	VolumeTarget(uuid string) (*VolumeTarget, error)
	VolumeTargets(filter func(*VolumeTarget) bool) []*VolumeTarget
	Conductor(hostname string) (*Conductor, error)
	Conductors() []*Conductor
	Records(table string) ([]*Record, error)
	// NodeHistory returns the node's history events, oldest first.
	NodeHistory(node string) ([]*HistoryEvent, error)
	// BIOSSettings returns the node's cached BIOS settings by name (none
	// when nothing was cached).
	BIOSSettings(node string) ([]BIOSSetting, error)
	// FirmwareComponents returns the node's cached firmware components.
	FirmwareComponents(node string) ([]FirmwareComponent, error)

	Close() error
}

// Tx is a read-write transaction. Values it returns are private copies that
// the caller may change and Put back; Put fails with ErrConflict when the
// stored revision moved since the copy was read.
type Tx interface {
	Node(ident string) (*Node, error)
	PutNode(n *Node) error
	// UpdateNodeInfo writes node ident with the driver_internal_info fn
	// leaves in info (a copy of the node's, whose top-level keys fn may
	// set and delete; the values under them are the node's and are not
	// changed in place). n is the node as committed, which fn reads and
	// never changes: an agent's heartbeat, written without copying the
	// node.
	UpdateNodeInfo(ident string, fn func(n *Node, info Object) error) error
	DeleteNode(uuid string) error
	// AddHistory journals an event in the node's history (ID, UUID, time
	// and conductor are set).
	AddHistory(node string, ev HistoryEvent) error

	Port(ident string) (*Port, error)
	PutPort(p *Port) error
	DeletePort(uuid string) error

	Portgroup(ident string) (*Portgroup, error)
	PutPortgroup(p *Portgroup) error
	DeletePortgroup(uuid string) error

	Chassis(uuid string) (*Chassis, error)
	PutChassis(c *Chassis) error
	DeleteChassis(uuid string) error

	Allocation(ident string) (*Allocation, error)
	PutAllocation(a *Allocation) error
	DeleteAllocation(uuid string) error

	DeployTemplate(ident string) (*DeployTemplate, error)
	PutDeployTemplate(d *DeployTemplate) error
	DeleteDeployTemplate(uuid string) error

	Runbook(ident string) (*Runbook, error)
	PutRunbook(r *Runbook) error
	DeleteRunbook(uuid string) error

	VolumeConnector(uuid string) (*VolumeConnector, error)
	PutVolumeConnector(v *VolumeConnector) error
	DeleteVolumeConnector(uuid string) error
	VolumeTarget(uuid string) (*VolumeTarget, error)
	PutVolumeTarget(v *VolumeTarget) error
	DeleteVolumeTarget(uuid string) error

	Conductor(hostname string) (*Conductor, error)
	PutConductor(c *Conductor) error
	DeleteConductor(hostname string) error

	Record(table, key string) (*Record, error)
	PutRecord(table string, r *Record) error
	DeleteRecord(table, key string) error

	// SyncBIOSSettings replaces the node's cached BIOS settings with
	// settings, keeping the creation time of those already known and
	// stamping the update time of those whose value or description
	// changed. It returns how many were created, updated and deleted.
	SyncBIOSSettings(node string, settings []BIOSSetting) (created, updated, deleted int, err error)
	// SyncFirmwareComponents records the versions read now (component ->
	// version): a new component's initial version is its current one, a
	// known component keeps its initial version and gets an update time
	// when its version changed. Components not read are kept, as Ironic
	// keeps them.
	SyncFirmwareComponents(node string, versions map[string]string) error
}
