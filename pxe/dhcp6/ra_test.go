package dhcp6

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestBuildRA(t *testing.T) {
	hw := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	cases := []struct {
		name      string
		cfg       RAConfig
		flags     byte
		lifetime  uint16
		prefix    string
		prefFlags byte
	}{
		{"stateful", RAConfig{Prefix: netip.MustParsePrefix("fd00:78::1/64"), Managed: true, Other: true}, 0xc0, 0, "fd00:78::", 0x80},
		{"slaac router", RAConfig{Prefix: netip.MustParsePrefix("fd00:1::/48"), Autonomous: true, RouterLifetime: 30 * time.Minute}, 0, 1800, "fd00:1::", 0xc0},
		{"empty", RAConfig{}, 0, 0, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := BuildRA(tc.cfg, hw)
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != 134 || b[1] != 0 {
				t.Fatalf("type/code = %d/%d, want 134/0", b[0], b[1])
			}
			if b[5] != tc.flags || binary.BigEndian.Uint16(b[6:]) != tc.lifetime {
				t.Errorf("flags %#x lifetime %d, want %#x %d", b[5], binary.BigEndian.Uint16(b[6:]), tc.flags, tc.lifetime)
			}
			opts := b[16:]
			var gotLLA net.HardwareAddr
			var gotPrefix string
			var gotPF byte
			for len(opts) >= 8 {
				n := int(opts[1]) * 8
				switch opts[0] {
				case 1:
					gotLLA = net.HardwareAddr(opts[2:8])
				case 3:
					p := netip.PrefixFrom(netip.AddrFrom16([16]byte(opts[16:32])), int(opts[2]))
					gotPrefix, gotPF = p.Addr().String(), opts[3]
					if p.Bits() != tc.cfg.Prefix.Bits() {
						t.Errorf("prefix length %d, want %d", p.Bits(), tc.cfg.Prefix.Bits())
					}
				}
				opts = opts[n:]
			}
			if gotLLA.String() != hw.String() {
				t.Errorf("source link-layer address %v, want %v", gotLLA, hw)
			}
			if gotPrefix != tc.prefix || gotPF != tc.prefFlags {
				t.Errorf("prefix %q flags %#x, want %q %#x", gotPrefix, gotPF, tc.prefix, tc.prefFlags)
			}
		})
	}
	if _, err := BuildRA(RAConfig{Prefix: netip.MustParsePrefix("10.0.0.0/8")}, hw); err == nil {
		t.Error("BuildRA with an IPv4 prefix succeeded")
	}
	if _, err := BuildRA(RAConfig{RouterLifetime: 3 * time.Hour}, hw); err == nil {
		t.Error("BuildRA with a 3 h router lifetime succeeded")
	}
}

func TestParseSolicitation(t *testing.T) {
	ll := netip.MustParseAddr("fe80::1")
	cases := []struct {
		name    string
		b       []byte
		src     netip.Addr
		wantLLA string
		ok      bool
	}{
		{"bare", []byte{133, 0, 0, 0, 0, 0, 0, 0}, ll, "", true},
		{"with lla", []byte{133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 0, 0, 0, 9}, ll, "02:00:00:00:00:09", true},
		{"lla from ::", []byte{133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 0, 0, 0, 9}, netip.IPv6Unspecified(), "", false},
		{"short", []byte{133, 0, 0}, ll, "", false},
		{"wrong type", []byte{134, 0, 0, 0, 0, 0, 0, 0}, ll, "", false},
		{"wrong code", []byte{133, 1, 0, 0, 0, 0, 0, 0}, ll, "", false},
		{"zero-length option", []byte{133, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, ll, "", false},
		{"option past the end", []byte{133, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0}, ll, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lla, err := ParseSolicitation(tc.b, tc.src)
			if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrBadSolicitation) {
				t.Fatalf("ParseSolicitation = %v, want ok=%v", err, tc.ok)
			}
			got := ""
			if lla != nil {
				got = lla.String()
			}
			if got != tc.wantLLA {
				t.Errorf("lla = %q, want %q", got, tc.wantLLA)
			}
		})
	}
}
