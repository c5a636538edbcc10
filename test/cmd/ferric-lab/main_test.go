package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

func TestStaticAddr(t *testing.T) {
	for _, tc := range []struct {
		bridge, name, want, err string
	}{
		{"10.99.0.1/24", "vm0", "10.99.0.50", ""},
		{"10.99.0.1/24", "vm3", "10.99.0.53", ""},
		{"192.0.2.129/25", "vm1", "192.0.2.179", ""},
		{"10.99.0.1/24", "vm50", "", "vm0..vm49"},
		{"10.99.0.1/24", "node1", "", "vm0..vm49"},
	} {
		got, err := staticAddr(netip.MustParsePrefix(tc.bridge), tc.name)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("staticAddr(%s, %s) = %v, %v; want an error with %q", tc.bridge, tc.name, got, err, tc.err)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("staticAddr(%s, %s) = %v, %v; want %s", tc.bridge, tc.name, got, err, tc.want)
		}
	}
}

func TestNetworkData(t *testing.T) {
	nd := networkData("52:54:00:00:00:01", netip.MustParseAddr("10.99.0.50"), netip.MustParsePrefix("10.99.0.1/24"))
	b, err := json.Marshal(nd)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Links []struct {
			ID, Type string
			MAC      string `json:"ethernet_mac_address"`
		}
		Networks []struct {
			Type, Link, Netmask string
			IP                  string `json:"ip_address"`
		}
		Services []struct{ Type, Address string }
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Links) != 1 || got.Links[0].MAC != "52:54:00:00:00:01" || got.Links[0].Type != "phy" {
		t.Errorf("links %+v", got.Links)
	}
	if len(got.Networks) != 1 || got.Networks[0].Type != "ipv4" || got.Networks[0].Link != got.Links[0].ID ||
		got.Networks[0].IP != "10.99.0.50" || got.Networks[0].Netmask != "255.255.255.0" {
		t.Errorf("networks %+v", got.Networks)
	}
	if len(got.Services) != 1 || got.Services[0].Address != "10.99.0.1" {
		t.Errorf("services %+v", got.Services)
	}
}

// Bad -boot settings are refused before anything is started or called.
func TestBootFlagRefused(t *testing.T) {
	for _, args := range [][]string{
		{"enroll", "-api", "http://127.0.0.1:1", "-boot", "floppy"},
		{"enroll", "-api", "http://127.0.0.1:1", "-boot", "vmedia", "-driver", "ipmi"},
		{"enroll", "-api", "http://127.0.0.1:1", "-boot", "vmedia", "-driver", "redfish", "-addr", "fe80::1/64"},
	} {
		var out bytes.Buffer
		err := run(context.Background(), args, &out, &out)
		if err == nil || !strings.Contains(err.Error(), "-boot") && !strings.Contains(err.Error(), "-addr") {
			t.Errorf("ferric-lab %v: %v, want an error naming the flag", args, err)
		}
	}
}
