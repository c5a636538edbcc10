package lab

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// NetConfig describes the lab network: a namespace with no link to the
// host's network, holding a bridge and one tap per machine.
type NetConfig struct {
	Namespace string // default "ferriclab"
	Bridge    string // default "br0"
	Addr      string // bridge address, default "10.99.0.1/24"
	Taps      int    // tap0..tapN-1
	// IPv6Only makes the lab network IPv6-only: the bridge gets Addr6
	// (default "fd00:99::1/64") and no IPv4 address, for a conductor
	// started with --dhcp6-range.
	IPv6Only bool
	Addr6    string
}

func (c NetConfig) withDefaults() NetConfig {
	if c.Namespace == "" {
		c.Namespace = "ferriclab"
	}
	if c.Bridge == "" {
		c.Bridge = "br0"
	}
	if c.Addr == "" {
		c.Addr = "10.99.0.1/24"
	}
	if c.Addr6 == "" {
		c.Addr6 = "fd00:99::1/64"
	}
	return c
}

func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("lab: ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// NetUp creates the namespace, the bridge and the taps (needs root). On
// error it removes what it made.
func NetUp(ctx context.Context, cfg NetConfig) (err error) {
	c := cfg.withDefaults()
	if NetExists(ctx, c.Namespace) {
		return fmt.Errorf("lab: network namespace %s exists already (ferric-lab down, or ip netns del %s)", c.Namespace, c.Namespace)
	}
	if err := ip(ctx, "netns", "add", c.Namespace); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = NetDown(context.Background(), c.Namespace)
		}
	}()
	n := []string{"-n", c.Namespace}
	steps := [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", c.Bridge, "type", "bridge"},
		{"link", "set", c.Bridge, "type", "bridge", "forward_delay", "0", "stp_state", "0"},
		{"addr", "add", c.Addr, "dev", c.Bridge},
		{"link", "set", c.Bridge, "up"},
	}
	for i := range c.Taps {
		tap := fmt.Sprintf("tap%d", i)
		steps = append(steps,
			[]string{"tuntap", "add", "dev", tap, "mode", "tap"},
			[]string{"link", "set", tap, "master", c.Bridge},
			[]string{"link", "set", tap, "up"})
	}
	for _, s := range steps {
		if err := ip(ctx, append(n, s...)...); err != nil {
			return err
		}
	}
	if c.IPv6Only {
		return SetIPv6Only(ctx, c.Namespace, c.Bridge, c.Addr6)
	}
	return nil
}

// SetIPv6Only makes the bridge of namespace ns (empty: the calling
// process's namespace) IPv6-only: its IPv4 addresses go, cidr6 is added
// without duplicate address detection (a server binds it at once), and
// multicast snooping is off, so that DHCPv6 multicast (ff02::1:2)
// reaches the host whatever the bridge learnt of MLD.
func SetIPv6Only(ctx context.Context, ns, bridge, cidr6 string) error {
	var n []string
	if ns != "" {
		n = []string{"-n", ns}
	}
	for _, s := range [][]string{
		{"-4", "addr", "flush", "dev", bridge},
		{"link", "set", bridge, "type", "bridge", "mcast_snooping", "0"},
		{"addr", "add", cidr6, "dev", bridge, "nodad"},
	} {
		if err := ip(ctx, append(n, s...)...); err != nil {
			return err
		}
	}
	return nil
}

// NetExists reports whether the namespace exists.
func NetExists(ctx context.Context, ns string) bool {
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == ns {
			return true
		}
	}
	return false
}

// NetDown deletes the namespace (its bridge and taps go with it).
func NetDown(ctx context.Context, ns string) error {
	if !NetExists(ctx, ns) {
		return nil
	}
	return ip(ctx, "netns", "del", ns)
}
