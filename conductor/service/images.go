package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/images/cache"
	"github.com/ferric-metal/ferric/images/checksum"
	imgstore "github.com/ferric-metal/ferric/images/store"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// imageResolver resolves instance_info.image_source: an id of the built-in
// image store (served at <public>/images/v2/images/<id>/file), or an
// http(s) URL, which agents download directly (Ironic's
// image_download_source=swift) or which the conductor downloads once into
// its cache and serves from there (http or local). The node's
// instance_info or driver_info image_download_source chooses, else the
// conductor's default.
type imageResolver struct {
	images         *imgstore.Store
	cache          *cache.Cache // nil: no cache, URLs always go to agents as they are
	cacheByDefault bool
	publicURL      string
	client         *http.Client
	// peers returns the API URLs of the other live conductors (several
	// conductors on one store): an image id unknown here is looked up in
	// their image stores, and the agent downloads it from there.
	peers func() []string
}

// downloadSources are the values of image_download_source.
var downloadSources = []string{"http", "local", "swift"}

// cached reports whether a node's URL image goes through the cache.
func (r *imageResolver) cached(n *store.Node) (bool, error) {
	v, ok := n.InstanceInfo["image_download_source"]
	if !ok || v == nil {
		v, ok = n.DriverInfo["image_download_source"]
	}
	if !ok || v == nil {
		return r.cacheByDefault && r.cache != nil, nil
	}
	s, _ := v.(string)
	if !slices.Contains(downloadSources, s) {
		return false, fmt.Errorf("image_download_source %v of node %s is invalid: valid values are %s", v, n.UUID, strings.Join(downloadSources, ", "))
	}
	if s != "swift" && r.cache == nil {
		return false, fmt.Errorf("image_download_source %s of node %s needs the conductor's image cache, which is off", s, n.UUID)
	}
	return s != "swift", nil
}

// Check validates a node's image without downloading it (deploy
// validation answers at once; the cache fills when the deploy runs).
func (r *imageResolver) Check(ctx context.Context, n *store.Node) error {
	if _, err := (manager.URLImages{Store: r.fromStore}).Resolve(ctx, n); err != nil {
		return err
	}
	_, err := r.cached(n)
	return err
}

func (r *imageResolver) fromStore(ctx context.Context, id string) (*protocol.ImageInfo, error) {
	img, err := r.images.Get(id)
	if errors.Is(err, imgstore.ErrNotFound) && r.peers != nil {
		for _, peer := range r.peers() {
			if info, perr := r.fromPeer(ctx, peer, id); perr == nil {
				return info, nil
			} else if !errors.Is(perr, imgstore.ErrNotFound) {
				err = perr
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", id, err)
	}
	if img.Status != "active" {
		return nil, fmt.Errorf("image %s is %s, not active", id, img.Status)
	}
	return imageInfo(img, strings.TrimRight(r.publicURL, "/")+"/images"), nil
}

// imageInfo is what the agent gets for an image of a store whose Glance API
// is at base.
func imageInfo(img *imgstore.Image, base string) *protocol.ImageInfo {
	id := img.ID
	info := &protocol.ImageInfo{ID: id, URLs: []string{base + "/v2/images/" + id + "/file"}}
	if img.OSHashAlgo != nil && img.OSHashValue != nil {
		info.OSHashAlgo, info.OSHashValue = *img.OSHashAlgo, *img.OSHashValue
	}
	if img.Checksum != nil {
		info.Checksum = *img.Checksum
	}
	if img.DiskFormat != nil {
		info.DiskFormat = *img.DiskFormat
	}
	if img.ContainerFormat != nil {
		info.ContainerFormat = *img.ContainerFormat
	}
	return info
}

// fromPeer looks image id up in another conductor's image store (its Glance
// API under <api>/images); imgstore.ErrNotFound when it has none.
func (r *imageResolver) fromPeer(ctx context.Context, api, id string) (*protocol.ImageInfo, error) {
	base := strings.TrimRight(api, "/") + "/images"
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, base+"/v2/images/"+url.PathEscape(id), nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("image store of %s: %w", api, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, imgstore.ErrNotFound
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("image store of %s answered %s", api, resp.Status)
	}
	var shown struct { // the fields of Glance's image document used here
		ID              string  `json:"id"`
		Status          string  `json:"status"`
		DiskFormat      *string `json:"disk_format"`
		ContainerFormat *string `json:"container_format"`
		Checksum        *string `json:"checksum"`
		OSHashAlgo      *string `json:"os_hash_algo"`
		OSHashValue     *string `json:"os_hash_value"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&shown); err != nil {
		return nil, fmt.Errorf("image store of %s: %w", api, err)
	}
	img := &imgstore.Image{ID: shown.ID, Status: shown.Status, DiskFormat: shown.DiskFormat, ContainerFormat: shown.ContainerFormat,
		Checksum: shown.Checksum, OSHashAlgo: shown.OSHashAlgo, OSHashValue: shown.OSHashValue}
	if img.ID != id {
		return nil, fmt.Errorf("image store of %s answered image %q for %s", api, img.ID, id)
	}
	if img.Status != "active" {
		return nil, fmt.Errorf("image %s (on %s) is %s, not active", id, api, img.Status)
	}
	return imageInfo(img, base), nil
}

// Resolve implements manager.ImageResolver.
func (r *imageResolver) Resolve(ctx context.Context, n *store.Node) (*protocol.ImageInfo, error) {
	base := manager.URLImages{Store: r.fromStore}
	info, err := base.Resolve(ctx, n)
	if err != nil || len(info.URLs) != 1 || strings.HasPrefix(info.URLs[0], r.publicURL) {
		return info, err
	}
	if use, err := r.cached(n); err != nil || !use {
		return info, err
	}
	src := info.URLs[0]
	want, err := checksum.Resolve(ctx, r.client, checksum.Spec{OSHashAlgo: info.OSHashAlgo, OSHashValue: info.OSHashValue,
		Checksum: info.Checksum, ImageURL: src})
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", src, err)
	}
	if _, err := r.cache.Get(ctx, src, want); err != nil {
		return nil, fmt.Errorf("caching image %s: %w", src, err)
	}
	info.URLs = []string{strings.TrimRight(r.publicURL, "/") + "/images/cache/" + cache.Key(src)}
	return info, nil
}
