package bmc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/stmcginnis/gofish/common"
	"github.com/stmcginnis/gofish/redfish"

	"github.com/ferric-metal/ferric/conductor/driver"
)

// The redfish raid interface's BMC side, as Ironic's: the system's
// Storage resources give the drives (of controllers that build RAID) and
// the volumes; a volume is created by a POST to a storage's Volumes
// collection and removed by a DELETE. gofish v0.20.0 reads Storage,
// Drives and Volumes, but has no call to create or delete a volume and
// keeps a storage's Volumes link private, so those three are written here
// over gofish's client (its authentication, TLS and error decoding). A
// controller that applies volume operations at the next reset answers
// 202 with a task; deleting a pending volume deletes (cancels) its task.

var _ driver.RAIDController = (*Redfish)(nil)

// RAIDInventory implements driver.RAIDController.
func (d *Redfish) RAIDInventory(ctx context.Context, n *driver.Node) (driver.RAIDInventory, error) {
	var inv driver.RAIDInventory
	err := d.withSystem(ctx, n, "reading RAID controllers", func(sys *redfish.ComputerSystem) error {
		storages, err := sys.Storage()
		if err != nil {
			return fmt.Errorf("bmc: reading the system's storage: %s", bmcMessage(err))
		}
		inv.Controllers = map[string][]string{}
		for _, st := range storages {
			vols, err := storageVolumes(st)
			if err != nil {
				return err
			}
			inv.Volumes = append(inv.Volumes, vols...)
			types, raid := raidTypes(st)
			if !raid {
				continue
			}
			inv.Controllers[st.ID] = types
			if link, err := volumesLink(st); err == nil && link != "" {
				times, _ := redfish.AllowedVolumesUpdateApplyTimes(st.GetClient(), link)
				if !slices.Contains(times, common.ImmediateOperationApplyTime) && slices.Contains(times, common.OnResetOperationApplyTime) {
					inv.ApplyOnReset = true
				}
			}
			drives, err := st.Drives()
			if err != nil {
				return fmt.Errorf("bmc: reading the drives of storage %s: %s", st.ID, bmcMessage(err))
			}
			for _, dr := range drives {
				inv.Disks = append(inv.Disks, driver.PhysicalDisk{ID: dr.ID, Controller: st.ID, Name: dr.Name,
					MediaType: string(dr.MediaType), Protocol: string(dr.Protocol), SizeBytes: dr.CapacityBytes, Ref: dr.ODataID})
			}
		}
		slices.SortStableFunc(inv.Disks, func(a, b driver.PhysicalDisk) int { return naturalCmp(a.Ref, b.Ref) })
		slices.SortStableFunc(inv.Volumes, func(a, b driver.LogicalDisk) int { return naturalCmp(a.Ref, b.Ref) })
		return nil
	})
	return inv, err
}

// naturalCmp orders references with numbers by value ("Drives/2" before
// "Drives/10"): gofish reads members concurrently, in no fixed order.
func naturalCmp(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

// raidTypes returns the RAID types of a storage's first controller;
// false when the controller says it builds none (Ironic skips those).
func raidTypes(st *redfish.Storage) ([]string, bool) {
	var types []redfish.RAIDType
	if len(st.StorageControllers) > 0 {
		types = st.StorageControllers[0].SupportedRAIDTypes
	} else if cs, err := st.Controllers(); err == nil && len(cs) > 0 {
		types = cs[0].SupportedRAIDTypes
	}
	if types != nil && len(types) == 0 {
		return nil, false
	}
	var out []string
	for _, t := range types {
		out = append(out, string(t))
	}
	return out, true
}

// volumesLink reads the storage's Volumes link, "" when it has none.
func volumesLink(st *redfish.Storage) (string, error) {
	resp, err := st.GetClient().Get(st.ODataID)
	if err != nil {
		return "", fmt.Errorf("bmc: reading storage %s: %s", st.ID, bmcMessage(err))
	}
	defer resp.Body.Close()
	var body struct {
		Volumes struct {
			ID string `json:"@odata.id"`
		}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&body); err != nil {
		return "", fmt.Errorf("bmc: reading storage %s: %w", st.ID, err)
	}
	return body.Volumes.ID, nil
}

func storageVolumes(st *redfish.Storage) ([]driver.LogicalDisk, error) {
	link, err := volumesLink(st)
	if err != nil || link == "" {
		return nil, err
	}
	vols, err := redfish.ListReferencedVolumes(st.GetClient(), link)
	if err != nil {
		return nil, fmt.Errorf("bmc: reading the volumes of storage %s: %s", st.ID, bmcMessage(err))
	}
	out := make([]driver.LogicalDisk, 0, len(vols))
	for _, v := range vols {
		out = append(out, driver.LogicalDisk{ID: v.ID, Name: v.Name, Controller: st.ID, RAIDType: string(v.RAIDType),
			SizeBytes: int64(v.CapacityBytes), Ref: v.ODataID})
	}
	return out, nil
}

// storageByID finds a storage of the system.
func storageByID(sys *redfish.ComputerSystem, id string) (*redfish.Storage, error) {
	storages, err := sys.Storage()
	if err != nil {
		return nil, fmt.Errorf("bmc: reading the system's storage: %s", bmcMessage(err))
	}
	for _, st := range storages {
		if st.ID == id {
			return st, nil
		}
	}
	return nil, fmt.Errorf("bmc: no storage controller %s on the system", id)
}

// CreateVolume implements driver.RAIDController: the payload Ironic
// sends (RAIDType, CapacityBytes unless the whole drives, the drives'
// links, Name), with apply time Immediate when the collection offers it.
func (d *Redfish) CreateVolume(ctx context.Context, n *driver.Node, spec driver.VolumeSpec) (driver.LogicalDisk, error) {
	var out driver.LogicalDisk
	err := d.withSystem(ctx, n, "creating a volume", func(sys *redfish.ComputerSystem) error {
		st, err := storageByID(sys, spec.Controller)
		if err != nil {
			return err
		}
		link, err := volumesLink(st)
		if err != nil {
			return err
		}
		if link == "" {
			return fmt.Errorf("bmc: storage %s has no Volumes collection: %w", st.ID, driver.ErrUnsupported)
		}
		drives, err := st.Drives()
		if err != nil {
			return fmt.Errorf("bmc: reading the drives of storage %s: %s", st.ID, bmcMessage(err))
		}
		var refs []map[string]string
		for _, id := range spec.Drives {
			i := slices.IndexFunc(drives, func(dr *redfish.Drive) bool { return dr.ID == id })
			if i < 0 {
				return fmt.Errorf("bmc: storage %s has no drive %s", st.ID, id)
			}
			refs = append(refs, map[string]string{"@odata.id": drives[i].ODataID})
		}
		payload := map[string]any{"RAIDType": spec.RAIDType}
		if spec.SizeBytes > 0 {
			payload["CapacityBytes"] = spec.SizeBytes
		}
		if len(refs) > 0 {
			payload["Links"] = map[string]any{"Drives": refs}
		}
		if spec.Name != "" {
			payload["Name"] = spec.Name
		}
		if times, err := redfish.AllowedVolumesUpdateApplyTimes(st.GetClient(), link); err == nil {
			// As Ironic: at once when the controller can, else at the
			// next reset.
			switch {
			case slices.Contains(times, common.ImmediateOperationApplyTime):
				payload["@Redfish.OperationApplyTime"] = common.ImmediateOperationApplyTime
			case slices.Contains(times, common.OnResetOperationApplyTime):
				payload["@Redfish.OperationApplyTime"] = common.OnResetOperationApplyTime
			}
		}
		resp, err := st.GetClient().Post(link, payload)
		if err != nil {
			return fmt.Errorf("bmc: the BMC refused the %s volume: %s", spec.RAIDType, bmcMessage(err))
		}
		defer resp.Body.Close()
		loc := resp.Header.Get("Location")
		if loc == "" {
			return fmt.Errorf("bmc: the BMC accepted the %s volume but gave no Location (HTTP %d)", spec.RAIDType, resp.StatusCode)
		}
		if resp.StatusCode == http.StatusAccepted {
			// A task builds it when the machine next starts.
			out = driver.LogicalDisk{Name: spec.Name, Controller: st.ID, RAIDType: spec.RAIDType, SizeBytes: spec.SizeBytes,
				Ref: pathOf(loc), Pending: true}
			return nil
		}
		v, err := redfish.GetVolume(st.GetClient(), pathOf(loc))
		if err != nil {
			return fmt.Errorf("bmc: reading the new volume %s: %s", loc, bmcMessage(err))
		}
		out = driver.LogicalDisk{ID: v.ID, Name: v.Name, Controller: st.ID, RAIDType: string(v.RAIDType),
			SizeBytes: int64(v.CapacityBytes), Ref: v.ODataID}
		return nil
	})
	return out, err
}

// DeleteVolume implements driver.RAIDController.
func (d *Redfish) DeleteVolume(ctx context.Context, n *driver.Node, v driver.LogicalDisk) error {
	return d.withSystem(ctx, n, "deleting a volume", func(sys *redfish.ComputerSystem) error {
		resp, err := sys.GetClient().Delete(v.Ref)
		if err != nil {
			return fmt.Errorf("bmc: the BMC refused to delete volume %s: %s", v.ID, bmcMessage(err))
		}
		resp.Body.Close()
		return nil
	})
}

// pathOf turns a Location (absolute or not) into the path gofish wants.
func pathOf(loc string) string {
	if i := strings.Index(loc, "://"); i >= 0 {
		rest := loc[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			return rest[j:]
		}
	}
	return loc
}

// bmcMessage is what the BMC said in a Redfish error (its extended
// messages, else its message), or the error itself.
func bmcMessage(err error) string {
	var re *common.Error
	if !errors.As(err, &re) {
		return cleanErr(err)
	}
	var msgs []string
	for _, x := range re.ExtendedInfos {
		if x.Message != "" && !slices.Contains(msgs, x.Message) {
			msgs = append(msgs, x.Message)
		}
	}
	if len(msgs) == 0 && re.Message != "" {
		msgs = append(msgs, re.Message)
	}
	if len(msgs) == 0 {
		return cleanErr(err)
	}
	s := strings.Join(msgs, " ")
	if re.HTTPReturnedStatusCode != 0 {
		s = fmt.Sprintf("HTTP %d: %s", re.HTTPReturnedStatusCode, s)
	}
	return s
}
