package manager

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/store"
)

// The vmedia API (Ironic 1.89 attach and detach, 1.93 read): an operator
// inserts an image into the node's BMC's virtual media device, ejects it,
// or reads the devices.

// VMediaDevices are the device types the vmedia API takes (Ironic's
// VMEDIA_DEVICES).
var VMediaDevices = []string{"disk", "cdrom", "floppy"}

// MediaPublisher downloads an image and serves it to the node's BMC from
// the conductor (image_download_source local).
type MediaPublisher interface {
	PublishImage(ctx context.Context, node, deviceType, url string) (string, error)
	WithdrawImage(node, deviceType string)
}

// VirtualMediaAttach is the request of POST /v1/nodes/{node}/vmedia.
type VirtualMediaAttach struct {
	DeviceType, ImageURL string
	// DownloadSource is "local" (the conductor downloads the image and
	// serves it to the BMC, Ironic's default) or "http" (the BMC gets
	// ImageURL).
	DownloadSource string
}

// virtualMedia returns the node's management interface as
// driver.VirtualMedia, checked, or a 400 naming the missing extension.
func (m *Manager) virtualMedia(uuid, ext string) (driver.VirtualMedia, *driver.Node, error) {
	n, mg, err := m.nodeManagement(uuid)
	if err != nil {
		return nil, nil, err
	}
	vm, ok := capability[driver.VirtualMedia](m, n, "management")
	if !ok {
		return nil, nil, userErr(ErrInvalidInput, "%v", unsupportedExt(n, ext))
	}
	if err := mg.Validate(driverNode(n)); err != nil {
		return nil, nil, userErr(ErrInvalidInput, "%v", err)
	}
	return vm, driverNode(n), nil
}

// AttachVirtualMedia inserts the image on a worker under the node's lock;
// a failure lands in last_error ("Could not attach device ..."), as
// Ironic's.
func (m *Manager) AttachVirtualMedia(ctx context.Context, uuid string, req VirtualMediaAttach) error {
	if !slices.Contains(VMediaDevices, req.DeviceType) {
		return userErr(ErrInvalidInput, "Invalid device type %s (valid are %s)", req.DeviceType, strings.Join(VMediaDevices, ", "))
	}
	switch req.DownloadSource {
	case "", "local":
		if m.cfg.MediaPublisher == nil {
			return userErr(ErrInvalidInput, "image_download_source local is not available on conductor %s: use http", m.host)
		}
		if !strings.HasPrefix(req.ImageURL, "http://") && !strings.HasPrefix(req.ImageURL, "https://") {
			return userErr(ErrInvalidInput, "image_download_source local needs an http or https image_url, not %s", req.ImageURL)
		}
	case "http":
	default:
		return userErr(ErrInvalidInput, "image_download_source %s is not supported (no Swift here): use local or http", req.DownloadSource)
	}
	vm, dn, err := m.virtualMedia(uuid, "attach_virtual_media")
	if err != nil {
		return err
	}
	return m.mediaTask(ctx, uuid, func(ctx context.Context) error {
		url := req.ImageURL
		if req.DownloadSource != "http" {
			if url, err = m.cfg.MediaPublisher.PublishImage(ctx, uuid, req.DeviceType, req.ImageURL); err != nil {
				//lint:ignore ST1005 Ironic's text, word for word
				return fmt.Errorf("Could not attach device %s to node %s: %w", req.DeviceType, uuid, err)
			}
		}
		if err := vm.InsertMedia(ctx, dn, req.DeviceType, url); err != nil {
			if m.cfg.MediaPublisher != nil {
				m.cfg.MediaPublisher.WithdrawImage(uuid, req.DeviceType)
			}
			//lint:ignore ST1005 Ironic's text, word for word
			return fmt.Errorf("Could not attach device %s to node %s: %w", req.DeviceType, uuid, err)
		}
		m.log.Info("manager: virtual media attached", "node", uuid, "device_type", req.DeviceType)
		return nil
	})
}

// DetachVirtualMedia ejects the devices of the types given (all when
// none) on a worker under the node's lock.
func (m *Manager) DetachVirtualMedia(ctx context.Context, uuid string, deviceTypes []string) error {
	var bad []string
	for _, t := range deviceTypes {
		if !slices.Contains(VMediaDevices, t) {
			bad = append(bad, t)
		}
	}
	if len(bad) > 0 {
		return userErr(ErrInvalidInput, "Invalid device type(s) %s (valid are %s)", strings.Join(bad, ", "), strings.Join(VMediaDevices, ", "))
	}
	vm, dn, err := m.virtualMedia(uuid, "detach_virtual_media")
	if err != nil {
		return err
	}
	return m.mediaTask(ctx, uuid, func(ctx context.Context) error {
		types := deviceTypes
		if len(types) == 0 {
			types = []string{""}
		}
		for _, t := range types {
			if err := vm.EjectMedia(ctx, dn, t); err != nil {
				//lint:ignore ST1005 Ironic's text, word for word
				return fmt.Errorf("Could not detach device(s) %s from node %s: %w", strings.Join(deviceTypes, ", "), uuid, err)
			}
		}
		if m.cfg.MediaPublisher != nil {
			for _, t := range VMediaDevices {
				if len(deviceTypes) == 0 || slices.Contains(deviceTypes, t) {
					m.cfg.MediaPublisher.WithdrawImage(uuid, t)
				}
			}
		}
		m.log.Info("manager: virtual media detached", "node", uuid, "device_types", deviceTypes)
		return nil
	})
}

// VirtualMedia reads the node's virtual media devices (no lock, as
// Ironic's shared task).
func (m *Manager) VirtualMedia(ctx context.Context, uuid string) ([]driver.MediaState, error) {
	vm, dn, err := m.virtualMedia(uuid, "get_virtual_media")
	if err != nil {
		return nil, err
	}
	st, err := vm.Media(ctx, dn)
	if err != nil {
		return nil, userErr(ErrInvalidInput, "%v", err)
	}
	return st, nil
}

// mediaTask takes the node's lock, clears last_error and runs fn on a
// worker; its error lands in last_error.
func (m *Manager) mediaTask(ctx context.Context, uuid string, fn func(context.Context) error) error {
	if err := m.slot(); err != nil {
		return err
	}
	if err := m.acquire(ctx, uuid, nil); err != nil {
		m.release()
		return err
	}
	if err := m.update(ctx, uuid, func(n *store.Node) error { n.LastError = nil; return nil }); err != nil && !errors.Is(err, errUnchanged) {
		m.log.Warn("manager: clearing last_error", "node", uuid, "err", err)
	}
	m.spawn(uuid, func(ctx context.Context) error {
		if err := fn(ctx); err != nil {
			m.log.Warn("manager: virtual media", "node", uuid, "err", err)
			msg := err.Error()
			_ = m.update(ctx, uuid, func(n *store.Node) error { n.LastError = &msg; return nil })
		}
		return nil
	})
	return nil
}
