// Package bmcinfo reads the machine's own BMC network settings in-band,
// through the Linux IPMI device (/dev/ipmi0, from the ipmi_si and
// ipmi_devintf drivers), for the inventory's bmc_address, bmc_v6address
// and bmc_mac: what ironic-python-agent gets from `ipmitool lan print` and
// `ipmitool lan6 print`, without ipmitool in the ramdisk. IPMI messages go through github.com/bougou/go-ipmi's open
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

// LAN is a BMC's addresses on one LAN channel.
type LAN struct {
	Channel   uint8
	Address   string // IPv4, never 0.0.0.0; empty on an IPv6-only BMC
	MAC       string // empty when the BMC reports none
	V6Address string // IPv6 (active, not link-local); empty when none
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

// ReadLAN returns the BMC's addresses (see Read). ErrNoDevice when there is
// no IPMI device.
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
	return Read(ctx, c)
}

// Read returns the first LAN channel (1 to 11, as IPA probes them) with an
// IPv4 address, with the first IPv6 address of any channel; on an
// IPv6-only BMC, the channel of that IPv6 address. It fails only when the
// BMC has neither.
func Read(ctx context.Context, p LANParams) (LAN, error) {
	lan, err := FirstLAN(ctx, p)
	ch6, v6 := FirstV6(ctx, p)
	switch {
	case err == nil:
		lan.V6Address = v6
	case v6 != "":
		lan = LAN{Channel: ch6, MAC: macOf(ctx, p, ch6), V6Address: v6}
	default:
		return LAN{}, err
	}
	return lan, nil
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
		return LAN{Channel: ch, Address: v4.String(), MAC: macOf(ctx, p, ch)}, nil
	}
	if lastErr != nil {
		return LAN{}, fmt.Errorf("bmcinfo: no LAN channel with an IPv4 address (last error: %w)", lastErr)
	}
	return LAN{}, errors.New("bmcinfo: no LAN channel with an IPv4 address")
}

// maxV6 bounds the address slots asked per kind and channel.
const maxV6 = 16

// FirstV6 returns the first channel (1 to 11) with IPv6 enabled that has
// an enabled, active IPv6 address that is neither unspecified nor
// link-local, static addresses first, then SLAAC/DHCPv6 ones; "" when
// none. BMCs without IPv6 support answer the parameters with errors:
// those channels are skipped.
func FirstV6(ctx context.Context, p LANParams) (uint8, string) {
	for ch := uint8(1); ch <= 11; ch++ {
		if ctx.Err() != nil {
			return 0, ""
		}
		en := &types.LanConfigParam_IPv6Enables{}
		if err := p.GetLanConfigParamFor(ctx, ch, en); err != nil || en.EnableMode == types.LanIPv6EnableMode_IPv6Disabled {
			continue
		}
		st := &types.LanConfigParam_IPv6Status{}
		if err := p.GetLanConfigParamFor(ctx, ch, st); err != nil {
			continue
		}
		for i := uint8(0); i < min(st.StaticAddressMax, maxV6); i++ {
			a := &types.LanConfigParam_IPv6StaticAddress{SetSelector: i}
			if err := p.GetLanConfigParamFor(ctx, ch, a); err == nil && usableV6(a.Enabled, a.Status, a.IPv6) {
				return ch, a.IPv6.String()
			}
		}
		for i := uint8(0); i < min(st.DynamicAddressMax, maxV6); i++ {
			a := &types.LanConfigParam_IPv6DynamicAddress{SetSelector: i}
			if err := p.GetLanConfigParamFor(ctx, ch, a); err == nil && usableV6(a.Enabled, a.Status, a.IPv6) {
				return ch, a.IPv6.String()
			}
		}
	}
	return 0, ""
}

func usableV6(enabled bool, status types.LanIPv6AddressStatus, ip net.IP) bool {
	return enabled && status == types.LanIPv6AddressStatus_Active && len(ip) == net.IPv6len && ip.To4() == nil &&
		!ip.IsUnspecified() && !ip.IsLinkLocalUnicast() && !ip.IsLoopback()
}

// macOf returns channel ch's MAC address, "" when unknown or all zeroes.
func macOf(ctx context.Context, p LANParams, ch uint8) string {
	mac := &types.LanConfigParam_MAC{}
	if err := p.GetLanConfigParamFor(ctx, ch, mac); err != nil || zeroMAC(mac.MAC) {
		return ""
	}
	return mac.MAC.String()
}

func zeroMAC(m net.HardwareAddr) bool {
	for _, b := range m {
		if b != 0 {
			return false
		}
	}
	return true
}
