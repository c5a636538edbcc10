// Package vmedia is Ironic's redfish-virtual-media boot interface: the
// conductor boots a node's deploy ramdisk from a virtual CD instead of the
// network. PrepareRamdisk builds a bootable ISO of the node's deploy kernel
// and initramfs with the kernel parameters the network boot would give
// (images/iso, cached by content), publishes it over HTTP under an
// unguessable name (Boot is the http.Handler, mounted by the service on
// the API port), inserts it through the BMC's virtual media and answers
// the CD as the boot device; CleanUpRamdisk ejects the media and withdraws
// the name. A node with network_data (static networking, for networks
// without DHCP) gets its own ISO carrying it at
// openstack/latest/network_data.json and labelled config-2, which the
// agent reads before it looks up (removed at clean-up). Boot implements driver.Boot's Validate and
// driver.RamdiskBooter.
//
// PublishImage and WithdrawImage do the same for an image an operator
// attaches (the vmedia API with image_download_source local): the conductor
// downloads it and serves it to the BMC.
//
// The images and names live as long as the conductor: New empties the
// image directory, since a restarted conductor serves no earlier name.
package vmedia

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/images/iso"
)

// Media inserts and ejects virtual media through a node's BMC
// (bmc.Redfish).
type Media interface {
	InsertMedia(ctx context.Context, n *driver.Node, deviceType, url string) error
	EjectMedia(ctx context.Context, n *driver.Node, deviceType string) error
}

// Ramdisk is what a node's ramdisk ISO holds: the kernel and initramfs
// files and the kernel command line.
type Ramdisk struct {
	Kernel, Initrd, Params string
}

// Config configures a Boot.
type Config struct {
	// Media is the BMC driver (or set later with SetMedia).
	Media Media
	// Dir holds the built images.
	Dir string
	// Ramdisk returns the node's ramdisk (files and kernel parameters),
	// as the network boot would boot it; inspection adds the inspection
	// callback.
	Ramdisk func(n *driver.Node, inspection bool) (Ramdisk, error)
	// BaseURL is the URL the Boot handler is served at, as the BMC
	// reaches it (e.g. http://10.99.0.1:6385/boot/vmedia); settable later
	// with SetBaseURL.
	BaseURL string
	Log     *slog.Logger
}

// Boot is the redfish-virtual-media boot interface.
type Boot struct {
	cfg     Config
	builder *iso.Builder

	mu      sync.Mutex
	baseURL string
	byName  map[string]string // published name -> image path
	byNode  map[string]string // node UUID (ramdisk) or UUID/device -> published name
	// own holds the ISOs carrying a node's network data: removed once no
	// name publishes them, not kept in the cache.
	own map[string]bool
}

var (
	_ driver.RamdiskBooter = (*Boot)(nil)
	_ http.Handler         = (*Boot)(nil)
)

// New returns a Boot; it removes the images an earlier run left in
// cfg.Dir.
func New(cfg Config) (*Boot, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if err := os.RemoveAll(cfg.Dir); err != nil {
		return nil, fmt.Errorf("vmedia: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("vmedia: %w", err)
	}
	return &Boot{cfg: cfg, builder: &iso.Builder{Dir: cfg.Dir}, baseURL: strings.TrimRight(cfg.BaseURL, "/"),
		byName: map[string]string{}, byNode: map[string]string{}, own: map[string]bool{}}, nil
}

// SetMedia sets the virtual media the Boot inserts into (the Redfish
// driver), when Config.Media was not given.
func (b *Boot) SetMedia(m Media) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cfg.Media = m
}

func (b *Boot) media() Media {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cfg.Media
}

// SetBaseURL sets the URL the handler is reachable at.
func (b *Boot) SetBaseURL(u string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.baseURL = strings.TrimRight(u, "/")
}

// Validate reports missing driver_info for booting the ramdisk.
func (b *Boot) Validate(n *driver.Node) error {
	var missing []string
	for _, k := range []string{"deploy_kernel", "deploy_ramdisk"} {
		if v, _ := n.DriverInfo[k].(string); v == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("vmedia: node %s: driver_info lacks %s, which virtual media boot needs", n.UUID, strings.Join(missing, " and "))
	}
	return nil
}

// Builds reports how many ISO images were built (not cache hits).
func (b *Boot) Builds() int { return b.builder.Builds() }

// PrepareRamdisk implements driver.RamdiskBooter: the ISO is built (or
// found in the cache), published and inserted; the boot device is the CD.
// On an error nothing stays inserted or published.
func (b *Boot) PrepareRamdisk(ctx context.Context, n *driver.Node, inspection bool) (string, error) {
	if err := b.Validate(n); err != nil {
		return "", err
	}
	media := b.media()
	if b.cfg.Ramdisk == nil || media == nil {
		return "", errors.New("vmedia: not configured")
	}
	img, err := b.ramdiskISO(ctx, n, inspection)
	if err != nil {
		return "", err
	}
	url, err := b.publish(n.UUID, img)
	if err != nil {
		return "", err
	}
	if err := media.InsertMedia(ctx, n, "cdrom", url); err != nil {
		b.withdraw(n.UUID)
		// The BMC may have half-inserted it: leave nothing behind.
		if eerr := media.EjectMedia(ctx, n, "cdrom"); eerr != nil {
			b.cfg.Log.Warn("vmedia: eject after a failed insert", "node", n.UUID, "error", eerr)
		}
		return "", fmt.Errorf("vmedia: node %s: %w", n.UUID, err)
	}
	b.cfg.Log.Info("vmedia: boot ISO inserted", "node", n.UUID, "image", filepath.Base(img))
	return driver.BootCDROM, nil
}

// ramdiskISO builds (or finds in the cache) the node's ramdisk ISO: its
// deploy kernel and initramfs with the network boot's parameters, and its
// network_data when it has some.
func (b *Boot) ramdiskISO(ctx context.Context, n *driver.Node, inspection bool) (string, error) {
	if b.cfg.Ramdisk == nil {
		return "", errors.New("vmedia: not configured")
	}
	rd, err := b.cfg.Ramdisk(n, inspection)
	if err != nil {
		return "", fmt.Errorf("vmedia: node %s: %w", n.UUID, err)
	}
	in := iso.Input{Kernel: rd.Kernel, Ramdisk: rd.Initrd, Params: rd.Params}
	if len(n.NetworkData) > 0 {
		// As Ironic does for DHCP-less boots: the node's static network
		// configuration goes on the ISO, which is then a config drive
		// (labelled config-2) the ramdisk reads before it looks up.
		nd, err := json.Marshal(n.NetworkData)
		if err != nil {
			return "", fmt.Errorf("vmedia: node %s: network_data: %w", n.UUID, err)
		}
		in.Files = map[string][]byte{iso.NetworkDataPath: nd}
		in.Label = iso.ConfigDriveLabel
	}
	img, err := b.builder.Build(ctx, in)
	if err != nil {
		return "", fmt.Errorf("vmedia: building the boot ISO of node %s: %w", n.UUID, err)
	}
	if in.Files != nil {
		b.mu.Lock()
		b.own[img] = true
		b.mu.Unlock()
	}
	return img, nil
}

// CleanUpRamdisk implements driver.RamdiskBooter: the CD is ejected and the
// image's name withdrawn.
func (b *Boot) CleanUpRamdisk(ctx context.Context, n *driver.Node) error {
	b.withdraw(n.UUID)
	media := b.media()
	if media == nil {
		return errors.New("vmedia: not configured")
	}
	if err := media.EjectMedia(ctx, n, "cdrom"); err != nil {
		return fmt.Errorf("vmedia: node %s: %w", n.UUID, err)
	}
	b.cfg.Log.Info("vmedia: boot ISO ejected", "node", n.UUID)
	return nil
}

// publish gives img a new random name for node (replacing the node's
// earlier one) and returns its URL.
func (b *Boot) publish(node, img string) (string, error) {
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return "", fmt.Errorf("vmedia: %w", err)
	}
	name := hex.EncodeToString(tok) + ".iso"
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.baseURL == "" {
		return "", errors.New("vmedia: the conductor's URL for the BMC is not known yet")
	}
	if old, ok := b.byNode[node]; ok {
		delete(b.byName, old)
	}
	b.byNode[node], b.byName[name] = name, img
	return b.baseURL + "/" + name, nil
}

func (b *Boot) withdraw(node string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if name, ok := b.byNode[node]; ok {
		img := b.byName[name]
		delete(b.byName, name)
		delete(b.byNode, node)
		if (b.own[img] || strings.HasPrefix(filepath.Base(img), "attached-")) && !slices.Contains(slices.Collect(maps.Values(b.byName)), img) {
			_ = os.Remove(img)
			delete(b.own, img)
		}
	}
}

// PublishImage downloads the image at url (http or https) into the image
// directory and publishes it for the node's device deviceType, replacing
// what that device had; it returns the URL for the BMC.
func (b *Boot) PublishImage(ctx context.Context, node, deviceType, url string) (string, error) {
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return "", fmt.Errorf("vmedia: the conductor downloads only http and https images, not %s", url)
	}
	sum := sha256.Sum256([]byte(url))
	img := filepath.Join(b.cfg.Dir, "attached-"+hex.EncodeToString(sum[:])+".img")
	if err := download(ctx, url, img); err != nil {
		return "", fmt.Errorf("vmedia: downloading %s: %w", url, err)
	}
	return b.publish(node+"/"+deviceType, img)
}

// WithdrawImage withdraws the image published for the node's device.
func (b *Boot) WithdrawImage(node, deviceType string) { b.withdraw(node + "/" + deviceType) }

// download fetches url into file through a temporary file.
func download(ctx context.Context, url, file string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".download-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, resp.Body); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

// ServeHTTP serves the published images (GET and HEAD, ranges): /NAME.iso.
func (b *Boot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	b.mu.Lock()
	img, ok := b.byName[name]
	b.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(img)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		http.Error(w, "cannot read the image", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-iso9660-image")
	http.ServeContent(w, r, name, fi.ModTime(), f)
}
