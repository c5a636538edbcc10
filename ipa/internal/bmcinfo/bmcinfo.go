// Package bmcinfo reads the machine's own BMC network settings in-band,
// through the Linux IPMI device (/dev/ipmi0, from the ipmi_si and
// ipmi_devintf drivers), for the inventory's bmc_address and bmc_mac: what
// ironic-python-agent gets from `ipmitool lan print`, without ipmitool in
// the ramdisk. IPMI messages go through github.com/bougou/go-ipmi's open
// interface.
package bmcinfo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
)

// ErrNoDevice means the machine has no in-band IPMI device (no BMC, or a
// kernel without its drivers): there is nothing to read.
var ErrNoDevice = errors.New("bmcinfo: no IPMI device")

// Devices are the paths the IPMI device may have, first one found wins.
var Devices = []string{"/dev/ipmi0", "/dev/ipmi/0", "/dev/ipmidev/0"}

// LAN is a BMC's address on one LAN channel.
type LAN struct {
	Channel uint8
	Address string // IPv4, never 0.0.0.0
	MAC     string // empty when the BMC reports none
}

// LANParams reads one LAN configuration parameter of a channel; it is the
// part of an IPMI client this package needs (fakes in tests).
type LANParams interface {
	GetLanConfigParamFor(ctx context.Context, channel uint8, param types.LanConfigParameter) error
}

// InBand reads the BMC through the local IPMI device.
type InBand struct {
	// Timeout bounds the whole read (default 10 s).
	Timeout time.Duration
}

// ReadLAN returns the first LAN channel (1 to 11, as IPA probes them) with
// an IPv4 address. ErrNoDevice when there is no IPMI device.
func (r InBand) ReadLAN(ctx context.Context) (LAN, error) {
	found := false
	for _, d := range Devices {
		if _, err := os.Stat(d); err == nil {
			found = true
			break
		}
	}
	if !found {
		return LAN{}, ErrNoDevice
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := client.NewOpenClient()
	if err != nil {
		return LAN{}, fmt.Errorf("bmcinfo: %w", err)
	}
	c.WithTimeout(2 * time.Second) // per command: a silent BMC costs Timeout plus one command at most
	if err := c.Connect(ctx); err != nil {
		return LAN{}, fmt.Errorf("bmcinfo: %w", err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	return FirstLAN(ctx, c)
}

// FirstLAN asks channels 1 to 11 for their IP address and returns the
// first one that has one, with its MAC. Channels that are not LAN channels
// answer with an error and are skipped.
func FirstLAN(ctx context.Context, p LANParams) (LAN, error) {
	var lastErr error
	for ch := uint8(1); ch <= 11; ch++ {
		if err := ctx.Err(); err != nil {
			return LAN{}, fmt.Errorf("bmcinfo: %w", err)
		}
		ip := &types.LanConfigParam_IP{}
		if err := p.GetLanConfigParamFor(ctx, ch, ip); err != nil {
			lastErr = err
			continue
		}
		v4 := ip.IP.To4()
		if v4 == nil || v4.IsUnspecified() {
			continue
		}
		lan := LAN{Channel: ch, Address: v4.String()}
		mac := &types.LanConfigParam_MAC{}
		if err := p.GetLanConfigParamFor(ctx, ch, mac); err == nil && !zeroMAC(mac.MAC) {
			lan.MAC = mac.MAC.String()
		}
		return lan, nil
	}
	if lastErr != nil {
		return LAN{}, fmt.Errorf("bmcinfo: no LAN channel with an IPv4 address (last error: %w)", lastErr)
	}
	return LAN{}, errors.New("bmcinfo: no LAN channel with an IPv4 address")
}

func zeroMAC(m net.HardwareAddr) bool {
	for _, b := range m {
		if b != 0 {
			return false
		}
	}
	return true
}
