package service

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/images/cache"
	"github.com/ferric-metal/ferric/images/checksum"
	imgstore "github.com/ferric-metal/ferric/images/store"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// imageResolver resolves instance_info.image_source: an id of the built-in
// image store (served at <public>/images/v2/images/<id>/file), or an
// http(s) URL, optionally downloaded once into the conductor's cache and
// served to agents from there (Ironic's image_download_source=http).
type imageResolver struct {
	images    *imgstore.Store
	cache     *cache.Cache // nil: agents download URLs directly
	publicURL string
	client    *http.Client
}

func (r *imageResolver) fromStore(_ context.Context, id string) (*protocol.ImageInfo, error) {
	img, err := r.images.Get(id)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", id, err)
	}
	if img.Status != "active" {
		return nil, fmt.Errorf("image %s is %s, not active", id, img.Status)
	}
	info := &protocol.ImageInfo{ID: id, URLs: []string{strings.TrimRight(r.publicURL, "/") + "/images/v2/images/" + id + "/file"}}
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
	return info, nil
}

// Resolve implements manager.ImageResolver.
func (r *imageResolver) Resolve(ctx context.Context, n *store.Node) (*protocol.ImageInfo, error) {
	base := manager.URLImages{Store: r.fromStore}
	info, err := base.Resolve(ctx, n)
	if err != nil || r.cache == nil || len(info.URLs) != 1 || strings.HasPrefix(info.URLs[0], r.publicURL) {
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
