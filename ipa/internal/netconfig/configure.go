package netconfig

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Configure is the ramdisk's step before lookup: it reads network_data.json
// from the config-2 medium (retrying for up to wait, for a CD drive whose
// driver is still probing), applies it and writes the DNS servers to
// resolvConf. ErrNotFound (wrapped) means there is no such medium: the
// caller keeps to DHCP on every link.
func Configure(ctx context.Context, log *slog.Logger, f Finder, wait time.Duration, resolvConf string) (*Result, error) {
	deadline := time.Now().Add(wait)
	var (
		b   []byte
		dev string
		err error
	)
	for {
		b, dev, err = f.Read(ctx)
		if err == nil || !errors.Is(err, ErrNotFound) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	if err != nil {
		return nil, err
	}
	log.Info("netconfig: network data found", "device", dev, "bytes", len(b))
	p, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", DataPath, dev, err)
	}
	res, err := Apply(ctx, p, Options{Log: log})
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", DataPath, dev, err)
	}
	if err := WriteResolvConf(resolvConf, res.DNS); err != nil {
		return res, err
	}
	return res, nil
}
