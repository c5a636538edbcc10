package service

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"golang.org/x/sync/errgroup"
)

func TestDHCP6ConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no interface", Config{DHCP6Range: "fd00::10-fd00::20"}, "needs --dhcp-interface"},
		{"empty RA as well", Config{DHCP6Range: "fd00::10-fd00::20", DHCPInterface: "x", RouterAdvertisements: true}, "--dhcp-router-advertisements"},
		{"IPv4 range", Config{DHCP6Range: "10.0.0.1-10.0.0.9", DHCPInterface: "x"}, "IPv6 addresses"},
		{"one address", Config{DHCP6Range: "fd00::10", DHCPInterface: "x"}, "FIRST-LAST"},
		{"mapped IPv4", Config{DHCP6Range: "::ffff:10.0.0.1-::ffff:10.0.0.9", DHCPInterface: "x"}, "IPv6 addresses"},
		{"no such interface", Config{DHCP6Range: "fd00::10-fd00::20", DHCPInterface: "no-such-if0"}, "no-such-if0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Log = slog.New(slog.DiscardHandler)
			var g errgroup.Group
			err := startDHCP6(context.Background(), &g, tc.cfg, nil, &bootHosts{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("startDHCP6() = %v, want an error naming %q", err, tc.want)
			}
		})
	}
	var g errgroup.Group
	if err := startDHCP6(context.Background(), &g, Config{}, nil, &bootHosts{}); err != nil {
		t.Errorf("startDHCP6 without a range = %v, want nil (off)", err)
	}
}
