package vmedia

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/driver/bmc"
	"github.com/ferric-metal/ferric/images/iso"
)

// The instance of a ramdisk deploy (driver.InstanceBooter): as Ironic's
// redfish-virtual-media prepare_instance, the CD gets the node's
// instance_info boot_iso, or an ISO built from its instance_info kernel
// and ramdisk with kernel_append_params, and the machine boots from it
// from now on. With ramdisk_image_download_source "local" (Ironic's
// default) the conductor downloads the image and serves it itself; with
// "http" the BMC gets the URL as given. The instance's config drive goes
// on a virtual USB stick (configdrive.go).

// instanceDevice is the publication key of a node's instance image.
const instanceDevice = "instance"

var _ driver.InstanceBooter = (*Boot)(nil)

// PrepareInstance implements driver.InstanceBooter: the instance's ISO is
// inserted into the CD (after ejecting what was there) and the CD is the
// boot device. On an error nothing stays inserted or published.
func (b *Boot) PrepareInstance(ctx context.Context, n *driver.Node) (string, error) {
	im, err := driver.ReadInstanceImage(n)
	if err != nil {
		return "", fmt.Errorf("vmedia: node %s: %w", n.UUID, err)
	}
	media := b.media()
	if media == nil {
		return "", errors.New("vmedia: not configured")
	}
	if err := media.EjectMedia(ctx, n, "cdrom"); err != nil {
		return "", fmt.Errorf("vmedia: node %s: ejecting before the instance's ISO: %w", n.UUID, err)
	}
	url, err := b.instanceURL(ctx, n, im)
	if err != nil {
		b.WithdrawImage(n.UUID, instanceDevice)
		return "", err
	}
	if err := media.InsertMedia(ctx, n, "cdrom", url); err != nil {
		b.WithdrawImage(n.UUID, instanceDevice)
		if eerr := media.EjectMedia(ctx, n, "cdrom"); eerr != nil {
			b.cfg.Log.Warn("vmedia: eject after a failed insert", "node", n.UUID, "error", eerr)
		}
		return "", fmt.Errorf("vmedia: node %s: %w", n.UUID, err)
	}
	if err := b.attachConfigDrive(ctx, n, media); err != nil {
		b.WithdrawImage(n.UUID, instanceDevice)
		if eerr := media.EjectMedia(ctx, n, "cdrom"); eerr != nil {
			b.cfg.Log.Warn("vmedia: eject after a failed config drive", "node", n.UUID, "error", eerr)
		}
		return "", err
	}
	b.cfg.Log.Info("vmedia: instance ISO inserted", "node", n.UUID, "download_source", im.DownloadSource)
	return driver.BootCDROM, nil
}

// instanceURL returns the URL the BMC inserts for the instance.
func (b *Boot) instanceURL(ctx context.Context, n *driver.Node, im driver.InstanceImage) (string, error) {
	if im.BootISO != "" {
		if im.DownloadSource == "http" {
			return im.BootISO, nil
		}
		u, err := b.PublishImage(ctx, n.UUID, instanceDevice, im.BootISO)
		if err != nil {
			return "", fmt.Errorf("vmedia: node %s: boot_iso: %w", n.UUID, err)
		}
		return u, nil
	}
	// A kernel and ramdisk: the conductor builds their ISO (cached by
	// content) whatever the download source, as Ironic does.
	var files [2]string
	for i, u := range []string{im.Kernel, im.Ramdisk} {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return "", fmt.Errorf("vmedia: node %s: instance_info kernel and ramdisk must be http(s) URLs, not %q", n.UUID, u)
		}
		sum := sha256.Sum256([]byte(u))
		files[i] = filepath.Join(b.cfg.Dir, "instance-"+hex.EncodeToString(sum[:])+".bin")
		if err := download(ctx, u, files[i]); err != nil {
			return "", fmt.Errorf("vmedia: node %s: downloading %s: %w", n.UUID, u, err)
		}
	}
	img, err := b.builder.Build(ctx, iso.Input{Kernel: files[0], Ramdisk: files[1], Params: im.Params})
	if err != nil {
		return "", fmt.Errorf("vmedia: building the instance ISO of node %s: %w", n.UUID, err)
	}
	return b.publish(n.UUID+"/"+instanceDevice, img)
}

// CleanUpInstance implements driver.InstanceBooter: the CD (and the
// config drive's USB stick) is ejected and the images withdrawn.
func (b *Boot) CleanUpInstance(ctx context.Context, n *driver.Node) error {
	b.WithdrawImage(n.UUID, instanceDevice)
	media := b.media()
	if media == nil {
		return errors.New("vmedia: not configured")
	}
	if err := b.detachConfigDrive(ctx, n, media); err != nil {
		return err
	}
	// A BMC without virtual media has nothing inserted: a deploy that
	// failed on it must still tear down.
	if err := media.EjectMedia(ctx, n, "cdrom"); err != nil && !errors.Is(err, bmc.ErrNoVirtualMedia) {
		return fmt.Errorf("vmedia: node %s: %w", n.UUID, err)
	}
	b.cfg.Log.Info("vmedia: instance ISO ejected", "node", n.UUID)
	return nil
}
