package bmc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/stmcginnis/gofish/redfish"

	"github.com/ferric-metal/ferric/conductor/driver"
)

// Virtual media through Redfish, as Ironic's redfish boot and vmedia API
// do: the node's system's VirtualMedia collection (Redfish 1.9+), else its
// managers' (older BMCs). All of it is gofish's (VirtualMedia.InsertMedia,
// EjectMedia, PATCH through Update for BMCs without the actions); bmclib
// has no virtual media calls.

// Virtual media device types (Ironic's vmedia device_type and boot
// devices, lower case; disk is a USB stick, as Ironic maps it).
const (
	MediaDisk   = "disk"
	MediaCDROM  = "cdrom"
	MediaDVD    = "dvd"
	MediaFloppy = "floppy"
	MediaUSB    = "usb"
)

// mediaTypes maps a device type to the Redfish MediaTypes that serve it.
var mediaTypes = map[string][]redfish.VirtualMediaType{
	MediaCDROM:  {redfish.CDMediaType, redfish.DVDMediaType},
	MediaDVD:    {redfish.DVDMediaType, redfish.CDMediaType},
	MediaFloppy: {redfish.FloppyMediaType, redfish.USBStickMediaType},
	MediaUSB:    {redfish.USBStickMediaType, redfish.FloppyMediaType},
	MediaDisk:   {redfish.USBStickMediaType},
}

// ErrNoVirtualMedia is returned when the BMC has no virtual media device of
// the type asked.
var ErrNoVirtualMedia = errors.New("no virtual media")

// MediaState is one virtual media device of a node's BMC.
type MediaState = driver.MediaState

var _ driver.VirtualMedia = (*Redfish)(nil)

// virtualMedia lists the system's virtual media devices, or its managers'.
func virtualMedia(sys *redfish.ComputerSystem) ([]*redfish.VirtualMedia, error) {
	vms, err := sys.VirtualMedia()
	if err != nil {
		return nil, fmt.Errorf("bmc: reading the system's virtual media: %s", bmcMessage(err))
	}
	if len(vms) > 0 {
		return vms, nil
	}
	mgrs, err := sys.ManagedBy()
	if err != nil {
		return nil, fmt.Errorf("bmc: reading the system's managers: %s", bmcMessage(err))
	}
	for _, m := range mgrs {
		l, err := m.VirtualMedia()
		if err != nil {
			return nil, fmt.Errorf("bmc: reading manager %s's virtual media: %s", m.ID, bmcMessage(err))
		}
		vms = append(vms, l...)
	}
	slices.SortFunc(vms, func(a, b *redfish.VirtualMedia) int { return strings.Compare(a.ODataID, b.ODataID) })
	return vms, nil
}

// mediaFor returns the devices that serve deviceType, best first.
func mediaFor(sys *redfish.ComputerSystem, deviceType string) ([]*redfish.VirtualMedia, error) {
	want, ok := mediaTypes[deviceType]
	if !ok {
		return nil, fmt.Errorf("bmc: virtual media device type %q: want cdrom, dvd, floppy, usb or disk: %w", deviceType, ErrInvalidTarget)
	}
	vms, err := virtualMedia(sys)
	if err != nil {
		return nil, err
	}
	var out []*redfish.VirtualMedia
	for _, t := range want {
		for _, vm := range vms {
			if slices.Contains(vm.MediaTypes, t) && !slices.Contains(out, vm) {
				out = append(out, vm)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bmc: the BMC has no virtual media device for %s (%d devices): %w", deviceType, len(vms), ErrNoVirtualMedia)
	}
	return out, nil
}

// InsertMedia puts the image at url into the node's first virtual media
// device of deviceType, read-only. An image already there is kept when it
// is the same URL, else ejected first. A BMC that has no InsertMedia
// action gets a PATCH of Image and Inserted.
func (d *Redfish) InsertMedia(ctx context.Context, n *driver.Node, deviceType, url string) error {
	return d.withSystem(ctx, n, "virtual media insert", func(sys *redfish.ComputerSystem) error {
		vms, err := mediaFor(sys, deviceType)
		if err != nil {
			return err
		}
		vm := vms[0]
		if vm.Image != "" || vm.Inserted {
			if vm.Image == url && vm.Inserted {
				return nil
			}
			if err := ejectOne(vm); err != nil {
				return err
			}
		}
		if vm.SupportsMediaInsert {
			err = vm.InsertMediaConfig(redfish.VirtualMediaConfig{Image: url, Inserted: true, WriteProtected: true})
		} else {
			vm.Image, vm.Inserted, vm.WriteProtected = url, true, true
			err = vm.Update()
		}
		if err != nil {
			return fmt.Errorf("bmc: inserting %s into virtual media %s: the BMC answered: %s", url, vm.ID, bmcMessage(err))
		}
		return nil
	})
}

// EjectMedia empties the node's virtual media devices of deviceType (all
// types when deviceType is ""); empty devices are left alone.
func (d *Redfish) EjectMedia(ctx context.Context, n *driver.Node, deviceType string) error {
	return d.withSystem(ctx, n, "virtual media eject", func(sys *redfish.ComputerSystem) error {
		var vms []*redfish.VirtualMedia
		var err error
		if deviceType == "" {
			vms, err = virtualMedia(sys)
			if err == nil && len(vms) == 0 {
				err = fmt.Errorf("bmc: the BMC has no virtual media: %w", ErrNoVirtualMedia)
			}
		} else {
			vms, err = mediaFor(sys, deviceType)
		}
		if err != nil {
			return err
		}
		for _, vm := range vms {
			if vm.Image == "" && !vm.Inserted {
				continue
			}
			if err := ejectOne(vm); err != nil {
				return err
			}
		}
		return nil
	})
}

func ejectOne(vm *redfish.VirtualMedia) error {
	var err error
	if vm.SupportsMediaEject {
		err = vm.EjectMedia()
	} else {
		vm.Image, vm.Inserted = "", false
		err = vm.Update()
	}
	if err != nil {
		return fmt.Errorf("bmc: ejecting virtual media %s: the BMC answered: %s", vm.ID, bmcMessage(err))
	}
	return nil
}

// Media reads the state of the node's virtual media devices.
func (d *Redfish) Media(ctx context.Context, n *driver.Node) ([]MediaState, error) {
	var out []MediaState
	err := d.withSystem(ctx, n, "virtual media", func(sys *redfish.ComputerSystem) error {
		vms, err := virtualMedia(sys)
		if err != nil {
			return err
		}
		if len(vms) == 0 {
			return fmt.Errorf("bmc: the BMC has no virtual media: %w", ErrNoVirtualMedia)
		}
		for _, vm := range vms {
			st := MediaState{ID: vm.ID, Image: vm.Image, Inserted: vm.Inserted, WriteProtected: vm.WriteProtected, ConnectedVia: string(vm.ConnectedVia)}
			for _, t := range vm.MediaTypes {
				st.Types = append(st.Types, string(t))
			}
			out = append(out, st)
		}
		return nil
	})
	return out, err
}
