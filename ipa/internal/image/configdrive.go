package image

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"

	"github.com/ferric-metal/ferric/ipa/internal/disk"
	"github.com/ferric-metal/ferric/ipa/internal/fetch"
)

// MaxConfigdriveSize is the largest configdrive accepted for whole-disk
// images (as Ironic's agent: 64 MiB), also the size of its partition.
const MaxConfigdriveSize = 64 * disk.MiB

// ConfigdriveLabel is the filesystem label cloud-init looks for.
const ConfigdriveLabel = "config-2"

// DecodeConfigdrive turns the configdrive value Ironic sends into the image
// bytes: an http(s) URL is downloaded, otherwise base64 is decoded (a value
// that is not base64 is used as is) and gzip is uncompressed.
func DecodeConfigdrive(ctx context.Context, f fetch.Fetcher, value string) ([]byte, error) {
	var raw []byte
	if strings.HasPrefix(value, "http://") || strings.HasPrefix(value, "https://") {
		if f == nil {
			f = &fetch.HTTP{}
		}
		r := fetch.NewReader(ctx, f, []string{value})
		defer r.Close()
		b, err := io.ReadAll(io.LimitReader(r, MaxConfigdriveSize+1))
		if err != nil {
			return nil, fmt.Errorf("configdrive: download: %w", err)
		}
		raw = b
	} else if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value)); err == nil {
		raw = b
	} else {
		raw = []byte(value)
	}
	if bytes.HasPrefix(raw, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("configdrive: gzip: %w", err)
		}
		b, err := io.ReadAll(io.LimitReader(zr, MaxConfigdriveSize+1))
		if err != nil {
			return nil, fmt.Errorf("configdrive: gzip: %w", err)
		}
		raw = b
	}
	if len(raw) > MaxConfigdriveSize {
		return nil, fmt.Errorf("configdrive: larger than %d MiB", MaxConfigdriveSize/disk.MiB)
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("configdrive: empty")
	}
	return raw, nil
}

// WriteConfigdrive writes data into the partition labelled config-2 if the
// disk has one, else into a new 64 MiB partition at the end of the disk
// (GPT or MBR). It returns the partition.
func WriteConfigdrive(dev disk.BlockDevice, data []byte) (disk.Partition, error) {
	t, err := disk.ReadTable(dev)
	if err != nil {
		return disk.Partition{}, fmt.Errorf("configdrive: %s: %w", dev.Name(), err)
	}
	var part *disk.Partition
	for i, p := range t.Partitions {
		if strings.EqualFold(disk.ProbeISOLabel(dev, p.Start), ConfigdriveLabel) {
			part = &t.Partitions[i]
			break
		}
	}
	if part == nil {
		p, err := disk.AddPartitionAtEnd(dev, MaxConfigdriveSize, ConfigdriveLabel)
		if err != nil {
			return disk.Partition{}, fmt.Errorf("configdrive: %w", err)
		}
		part = &p
	}
	if int64(len(data)) > part.Size {
		return disk.Partition{}, fmt.Errorf("configdrive: %d bytes do not fit partition %d (%d bytes)", len(data), part.Number, part.Size)
	}
	if err := writeDirect(dev, data, part.Start); err != nil {
		return disk.Partition{}, fmt.Errorf("configdrive: %w", err)
	}
	if err := dev.Sync(); err != nil {
		return disk.Partition{}, fmt.Errorf("configdrive: %w", err)
	}
	return *part, nil
}

// writeDirect writes data at off on dev, through a disk stream (O_DIRECT)
// when dev has one, so that it does not wait in the page cache for the
// sync.
func writeDirect(dev disk.BlockDevice, data []byte, off int64) error {
	f, ok := dev.(*disk.File)
	if !ok {
		_, err := dev.WriteAt(data, off)
		return err
	}
	s := f.NewStream()
	_, err := s.WriteAt(data, off)
	return errors.Join(err, s.Close())
}
