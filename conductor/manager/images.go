package manager

import (
	"context"
	"fmt"
	"strings"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// URLImages resolves instance_info whose image_source is an HTTP(S) URL,
// with image_os_hash_algo/image_os_hash_value or image_checksum.
type URLImages struct {
	// Store resolves image ids of the image store (nil: URLs only).
	Store func(ctx context.Context, id string) (*protocol.ImageInfo, error)
}

// Resolve builds the agent's image_info from the node's instance_info.
func (u URLImages) Resolve(ctx context.Context, n *store.Node) (*protocol.ImageInfo, error) {
	ii := n.InstanceInfo
	src, _ := ii["image_source"].(string)
	if src == "" {
		return nil, fmt.Errorf("image_source is missing from instance_info of node %s", n.UUID)
	}
	var info *protocol.ImageInfo
	switch {
	case strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://"):
		info = &protocol.ImageInfo{ID: src, URLs: []string{src}}
	case u.Store != nil:
		var err error
		if info, err = u.Store(ctx, src); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("image_source %q of node %s is not an http(s) URL and no image store is configured", src, n.UUID)
	}
	str := func(k string) string { s, _ := ii[k].(string); return s }
	if v := str("image_os_hash_algo"); v != "" {
		info.OSHashAlgo, info.OSHashValue = v, str("image_os_hash_value")
	}
	if v := str("image_checksum"); v != "" {
		info.Checksum = v
	}
	if info.OSHashValue == "" && info.Checksum == "" {
		return nil, fmt.Errorf("instance_info of node %s needs image_os_hash_algo and image_os_hash_value, or image_checksum, for image %s", n.UUID, src)
	}
	if v := str("image_disk_format"); v != "" {
		info.DiskFormat = v
	}
	if info.DiskFormat == "" {
		info.DiskFormat = "raw"
	}
	info.ImageType = "whole-disk"
	if v := str("image_type"); v != "" {
		info.ImageType = v
	}
	return info, nil
}
