package vmedia

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ferric-metal/ferric/conductor/driver"
)

// HTTPSBoot is Ironic's redfish-https boot interface (UEFI HTTP boot): the
// same ISOs as the virtual media boot (the deploy ramdisk's, a ramdisk
// deploy's instance), published by the same handler, but instead of
// inserting them the conductor tells the BMC the ISO's URL as the UEFI
// HTTP boot URI (driver.HTTPBooter: Boot.HttpBootUri with the UefiHttp
// override), once for the ramdisk and persistently for an instance. The
// boot device is then set: PrepareRamdisk and PrepareInstance answer ""
// (nothing more to set).
type HTTPSBoot struct {
	b *Boot

	mu     sync.Mutex
	booter driver.HTTPBooter
}

var (
	_ driver.RamdiskBooter  = (*HTTPSBoot)(nil)
	_ driver.InstanceBooter = (*HTTPSBoot)(nil)
	_ driver.Boot           = (*HTTPSBoot)(nil)
)

// NewHTTPS returns the UEFI HTTP boot over b's ISOs and handler; SetBooter
// gives it the BMC driver.
func NewHTTPS(b *Boot) *HTTPSBoot { return &HTTPSBoot{b: b} }

// SetBooter sets the BMC driver that sets the HTTP boot URI.
func (h *HTTPSBoot) SetBooter(hb driver.HTTPBooter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.booter = hb
}

func (h *HTTPSBoot) httpBooter() (driver.HTTPBooter, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.booter == nil {
		return nil, errors.New("vmedia: UEFI HTTP boot not configured")
	}
	return h.booter, nil
}

// httpsKey is the publication key of a node's HTTP boot ramdisk.
func httpsKey(node string) string { return node + "/https" }

// Validate reports missing driver_info for booting the ramdisk.
func (h *HTTPSBoot) Validate(n *driver.Node) error { return h.b.Validate(n) }

// PrepareRamdisk implements driver.RamdiskBooter: the ramdisk ISO is built
// (or found in the cache), published, and the BMC told to boot it once
// over UEFI HTTP.
func (h *HTTPSBoot) PrepareRamdisk(ctx context.Context, n *driver.Node, inspection bool) (string, error) {
	if err := h.Validate(n); err != nil {
		return "", err
	}
	hb, err := h.httpBooter()
	if err != nil {
		return "", err
	}
	img, err := h.b.ramdiskISO(ctx, n, inspection)
	if err != nil {
		return "", err
	}
	url, err := h.b.publish(httpsKey(n.UUID), img)
	if err != nil {
		return "", err
	}
	if err := hb.SetHTTPBoot(ctx, n, url, false); err != nil {
		h.b.withdraw(httpsKey(n.UUID))
		return "", fmt.Errorf("vmedia: node %s: %w", n.UUID, err)
	}
	h.b.cfg.Log.Info("vmedia: UEFI HTTP boot of the ramdisk set", "node", n.UUID)
	return "", nil
}

// CleanUpRamdisk implements driver.RamdiskBooter: the ISO's name is
// withdrawn (the BMC's one-time override is spent).
func (h *HTTPSBoot) CleanUpRamdisk(_ context.Context, n *driver.Node) error {
	h.b.withdraw(httpsKey(n.UUID))
	return nil
}

// PrepareInstance implements driver.InstanceBooter: the instance's ISO
// (its boot_iso, or one built from its kernel and ramdisk) is published
// (or given as is with ramdisk_image_download_source http) and the BMC
// told to boot it over UEFI HTTP from now on.
func (h *HTTPSBoot) PrepareInstance(ctx context.Context, n *driver.Node) (string, error) {
	im, err := driver.ReadInstanceImage(n)
	if err != nil {
		return "", fmt.Errorf("vmedia: node %s: %w", n.UUID, err)
	}
	hb, err := h.httpBooter()
	if err != nil {
		return "", err
	}
	url, err := h.b.instanceURL(ctx, n, im)
	if err != nil {
		h.b.WithdrawImage(n.UUID, instanceDevice)
		return "", err
	}
	if err := hb.SetHTTPBoot(ctx, n, url, true); err != nil {
		h.b.WithdrawImage(n.UUID, instanceDevice)
		return "", fmt.Errorf("vmedia: node %s: %w", n.UUID, err)
	}
	h.b.cfg.Log.Info("vmedia: UEFI HTTP boot of the instance set", "node", n.UUID, "download_source", im.DownloadSource)
	return "", nil
}

// CleanUpInstance implements driver.InstanceBooter: the instance image is
// withdrawn.
func (h *HTTPSBoot) CleanUpInstance(_ context.Context, n *driver.Node) error {
	h.b.WithdrawImage(n.UUID, instanceDevice)
	return nil
}
