package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/pxe/ipxe"
)

// instanceBoot is what the ipxe and pxe boot interfaces prepare of a
// ramdisk deploy's instance (hardware.Config.NetworkInstance), as Ironic
// caches the instance's kernel and ramdisk (or boot ISO) in its http root:
// the conductor downloads each image (one cached copy per URL, revalidated
// with its server: deployImages), stages a per-node copy that a later
// download of the same URL does not change, records its SHA-256 and serves
// it under an unguessable name at /boot/instance/; the iPXE script of the
// active node boots those URLs, not the user's. Tear down withdraws them.
// The copies live as long as the conductor: at start the directory is
// emptied, and the manager's takeover prepares active nodes again.
type instanceBoot struct {
	dir     string
	images  *deployImages
	log     *slog.Logger
	baseURL string // where the handler is served, e.g. http://h:6385/boot/instance

	mu      sync.Mutex
	byNode  map[string]*stagedInstance
	byToken map[string]*stagedInstance
}

// stagedInstance is one node's staged images.
type stagedInstance struct {
	token string
	files map[string]stagedFile // by label: boot_iso, kernel, ramdisk
}

type stagedFile struct {
	path, sha256 string
}

var _ driver.InstanceBooter = (*instanceBoot)(nil)

// newInstanceBoot returns an instanceBoot staging under dir, which it
// empties.
func newInstanceBoot(dir string, images *deployImages, log *slog.Logger) (*instanceBoot, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("conductor: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("conductor: %w", err)
	}
	return &instanceBoot{dir: dir, images: images, log: log, byNode: map[string]*stagedInstance{}, byToken: map[string]*stagedInstance{}}, nil
}

// setBaseURL sets the URL the handler is served at.
func (ib *instanceBoot) setBaseURL(u string) {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	ib.baseURL = strings.TrimRight(u, "/")
}

// PrepareInstance implements driver.InstanceBooter: the node's instance
// images are downloaded (or revalidated in the cache), staged and
// published, replacing what the node had.
func (ib *instanceBoot) PrepareInstance(ctx context.Context, n *driver.Node) (string, error) {
	im, err := driver.ReadInstanceImage(n)
	if err != nil {
		return "", err
	}
	labels := [][2]string{{"boot_iso", im.BootISO}}
	if im.BootISO == "" {
		labels = [][2]string{{"kernel", im.Kernel}, {"ramdisk", im.Ramdisk}}
	}
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return "", err
	}
	si := &stagedInstance{token: hex.EncodeToString(tok), files: map[string]stagedFile{}}
	nodeDir := filepath.Join(ib.dir, si.token)
	if err := os.MkdirAll(nodeDir, 0o750); err != nil {
		return "", fmt.Errorf("conductor: %w", err)
	}
	for _, l := range labels {
		f, err := ib.stage(ctx, l[1], filepath.Join(nodeDir, l[0]))
		if err != nil {
			_ = os.RemoveAll(nodeDir)
			return "", fmt.Errorf("node %s: instance_info %s: %w", n.UUID, l[0], err)
		}
		si.files[l[0]] = f
		ib.log.Info("conductor: instance image staged for the network boot", "node", n.UUID, "image", l[0], "url", redactURL(l[1]), "sha256", f.sha256)
	}
	ib.mu.Lock()
	old := ib.byNode[n.UUID]
	ib.byNode[n.UUID], ib.byToken[si.token] = si, si
	if old != nil {
		delete(ib.byToken, old.token)
	}
	ib.mu.Unlock()
	if old != nil {
		_ = os.RemoveAll(filepath.Join(ib.dir, old.token))
	}
	return driver.BootPXE, nil
}

// stage puts a copy of the image at url at path (a hard link to the
// cached copy when the file system allows, else a copy) and returns it
// with its SHA-256.
func (ib *instanceBoot) stage(ctx context.Context, url, path string) (stagedFile, error) {
	if !isFetchable(url) {
		return stagedFile{}, fmt.Errorf("%q: the network boot serves http(s) images only", url)
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	cached, err := ib.images.local(ctx, url)
	if err != nil {
		return stagedFile{}, err
	}
	if err := os.Link(cached, path); err != nil {
		if err := copyFile(cached, path); err != nil {
			return stagedFile{}, err
		}
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return stagedFile{}, err
	}
	return stagedFile{path: path, sha256: sum}, nil
}

// CleanUpInstance implements driver.InstanceBooter: the node's copies are
// withdrawn and removed.
func (ib *instanceBoot) CleanUpInstance(_ context.Context, n *driver.Node) error {
	ib.mu.Lock()
	si := ib.byNode[n.UUID]
	delete(ib.byNode, n.UUID)
	if si != nil {
		delete(ib.byToken, si.token)
	}
	ib.mu.Unlock()
	if si != nil {
		if err := os.RemoveAll(filepath.Join(ib.dir, si.token)); err != nil {
			return fmt.Errorf("conductor: %w", err)
		}
	}
	return nil
}

// instance returns the iPXE instance of node uuid from its staged copies;
// ok is false when none are staged here.
func (ib *instanceBoot) instance(uuid string) (in ipxe.Instance, ok bool) {
	ib.mu.Lock()
	defer ib.mu.Unlock()
	si := ib.byNode[uuid]
	if si == nil || ib.baseURL == "" {
		return in, false
	}
	u := func(label string) string {
		if _, ok := si.files[label]; !ok {
			return ""
		}
		return ib.baseURL + "/" + si.token + "/" + label
	}
	return ipxe.Instance{ISOURL: u("boot_iso"), KernelURL: u("kernel"), InitrdURL: u("ramdisk")}, true
}

// ServeHTTP serves the staged images, /TOKEN/LABEL (GET and HEAD, ranges),
// with their SHA-256 as the ETag.
func (ib *instanceBoot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	tok, label, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	ib.mu.Lock()
	var f stagedFile
	var ok bool
	if si := ib.byToken[tok]; si != nil {
		f, ok = si.files[label]
	}
	ib.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	fh, err := os.Open(f.path)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		http.Error(w, "cannot read the image", http.StatusInternalServerError)
		return
	}
	w.Header().Set("ETag", `"sha256:`+f.sha256+`"`)
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, label, fi.ModTime(), fh)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return errors.Join(err, os.Remove(to))
	}
	return out.Close()
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
