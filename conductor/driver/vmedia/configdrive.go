package vmedia

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/driver/bmc"
)

// The config drive of a ramdisk deploy (Ironic's ramdisk_boot_configdrive
// capability of redfish-virtual-media): beside the instance's ISO on the
// CD, the node's instance_info configdrive (base64 of a gzipped image, or
// a URL of one, gzipped and base64-encoded or raw, as Ironic accepts) is
// unpacked into a disk image that the conductor serves and the BMC
// attaches as a virtual USB stick, where the live OS finds it by its label
// (config-2). Tear down ejects the stick and withdraws the image.

// configDriveDevice is the publication key of a node's config drive image.
const configDriveDevice = "configdrive"

// maxConfigDrive bounds a config drive image (Ironic's agent writes at
// most 64 MiB).
const maxConfigDrive = 64 << 20

var _ driver.ConfigDriveBooter = (*Boot)(nil)

// AttachesConfigDrive implements driver.ConfigDriveBooter.
func (b *Boot) AttachesConfigDrive() {}

// attachConfigDrive attaches the node's instance_info configdrive as a
// virtual USB stick; nothing when it has none.
func (b *Boot) attachConfigDrive(ctx context.Context, n *driver.Node, media Media) error {
	value, _ := n.InstanceInfo["configdrive"].(string)
	if strings.TrimSpace(value) == "" {
		return nil
	}
	if err := media.EjectMedia(ctx, n, bmc.MediaDisk); err != nil {
		if errors.Is(err, bmc.ErrNoVirtualMedia) {
			return noUSBSlot(n)
		}
		return fmt.Errorf("vmedia: node %s: ejecting the USB stick before the config drive: %w", n.UUID, err)
	}
	data, err := unpackConfigDrive(ctx, value)
	if err != nil {
		return fmt.Errorf("vmedia: node %s: config drive: %w", n.UUID, err)
	}
	img := filepath.Join(b.cfg.Dir, "configdrive-"+n.UUID+".img")
	if err := os.WriteFile(img, data, 0o644); err != nil {
		return fmt.Errorf("vmedia: node %s: config drive: %w", n.UUID, err)
	}
	b.mu.Lock()
	b.own[img] = true
	b.mu.Unlock()
	url, err := b.publish(n.UUID+"/"+configDriveDevice, img)
	if err != nil {
		b.WithdrawImage(n.UUID, configDriveDevice)
		_ = os.Remove(img)
		return err
	}
	if err := media.InsertMedia(ctx, n, bmc.MediaDisk, url); err != nil {
		b.WithdrawImage(n.UUID, configDriveDevice)
		if errors.Is(err, bmc.ErrNoVirtualMedia) {
			return noUSBSlot(n)
		}
		if eerr := media.EjectMedia(ctx, n, bmc.MediaDisk); eerr != nil {
			b.cfg.Log.Warn("vmedia: eject after a failed insert", "node", n.UUID, "error", eerr)
		}
		return fmt.Errorf("vmedia: node %s: attaching the config drive: %w", n.UUID, err)
	}
	b.cfg.Log.Info("vmedia: config drive attached as a USB stick", "node", n.UUID, "bytes", len(data))
	return nil
}

// noUSBSlot is Ironic's error for a BMC without a virtual USB stick.
func noUSBSlot(n *driver.Node) error {
	//lint:ignore ST1005 Ironic's text
	return fmt.Errorf("Cannot attach configdrive for node %s: no suitable virtual USB slot has been found", n.UUID)
}

// detachConfigDrive ejects the USB stick (a BMC without one has nothing
// to eject) and withdraws the config drive's image.
func (b *Boot) detachConfigDrive(ctx context.Context, n *driver.Node, media Media) error {
	b.WithdrawImage(n.UUID, configDriveDevice)
	if err := media.EjectMedia(ctx, n, bmc.MediaDisk); err != nil && !errors.Is(err, bmc.ErrNoVirtualMedia) {
		return fmt.Errorf("vmedia: node %s: ejecting the config drive: %w", n.UUID, err)
	}
	return nil
}

// unpackConfigDrive turns a configdrive value into the image: a URL is
// downloaded (its body is base64 text or the image itself), base64 is
// decoded, and gzip is uncompressed.
func unpackConfigDrive(ctx context.Context, value string) ([]byte, error) {
	raw := []byte(strings.TrimSpace(value))
	if strings.Contains(value, "://") {
		if !strings.HasPrefix(value, "http://") && !strings.HasPrefix(value, "https://") {
			return nil, fmt.Errorf("the conductor downloads only http and https config drives, not %s", value)
		}
		tmp, err := os.CreateTemp("", "ferric-configdrive-*")
		if err != nil {
			return nil, err
		}
		tmp.Close()
		defer os.Remove(tmp.Name())
		if err := download(ctx, value, tmp.Name()); err != nil {
			return nil, fmt.Errorf("downloading %s: %w", value, err)
		}
		if raw, err = readLimited(tmp.Name()); err != nil {
			return nil, err
		}
	}
	if !bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) && isText(raw) {
		dec, err := base64.StdEncoding.DecodeString(string(bytes.Join(bytes.Fields(raw), nil)))
		if err != nil {
			return nil, fmt.Errorf("not base64: %w", err)
		}
		raw = dec
	}
	if bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if raw, err = io.ReadAll(io.LimitReader(zr, maxConfigDrive+1)); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
	}
	if len(raw) > maxConfigDrive {
		return nil, fmt.Errorf("larger than %d MiB", maxConfigDrive>>20)
	}
	if len(raw) == 0 {
		return nil, errors.New("empty")
	}
	return raw, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// base64 of a gzipped image of the limit is larger than the image.
	b, err := io.ReadAll(io.LimitReader(f, 2*maxConfigDrive))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// isText reports whether b is printable ASCII (base64 text).
func isText(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' || c > 0x7e {
			return false
		}
	}
	return true
}
