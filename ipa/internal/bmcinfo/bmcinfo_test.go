package bmcinfo

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"

	"github.com/ferric-metal/ferric/test/lab"
)

// channels is a fake BMC: channel number -> IP and MAC (nil: not a LAN
// channel, the parameter read fails).
type channels map[uint8][2]string

func (c channels) GetLanConfigParamFor(_ context.Context, ch uint8, p types.LanConfigParameter) error {
	v, ok := c[ch]
	if !ok {
		return errors.New("invalid data field in request")
	}
	switch p := p.(type) {
	case *types.LanConfigParam_IP:
		p.IP = net.ParseIP(v[0])
	case *types.LanConfigParam_MAC:
		m, err := net.ParseMAC(v[1])
		if err != nil {
			return err
		}
		p.MAC = m
	default:
		return errors.New("parameter not supported")
	}
	return nil
}

// v6slot is one IPv6 address slot of a fake BMC.
type v6slot struct {
	addr    string
	enabled bool
	status  types.LanIPv6AddressStatus
}

// v6chan is a fake BMC channel's IPv6 configuration.
type v6chan struct {
	mode            types.LanIPv6EnableMode
	static, dynamic []v6slot
}

// dualBMC is a fake BMC with IPv4 channels and IPv6 channels.
type dualBMC struct {
	v4 channels
	v6 map[uint8]v6chan
}

func (b dualBMC) GetLanConfigParamFor(ctx context.Context, ch uint8, p types.LanConfigParameter) error {
	c, ok := b.v6[ch]
	slot := func(slots []v6slot, i uint8) (v6slot, error) {
		if int(i) >= len(slots) {
			return v6slot{}, errors.New("parameter out of range")
		}
		return slots[i], nil
	}
	switch p := p.(type) {
	case *types.LanConfigParam_IPv6Enables:
		if !ok {
			return errors.New("parameter not supported")
		}
		p.EnableMode = c.mode
	case *types.LanConfigParam_IPv6Status:
		if !ok {
			return errors.New("parameter not supported")
		}
		p.StaticAddressMax, p.DynamicAddressMax = uint8(len(c.static)), uint8(len(c.dynamic))
	case *types.LanConfigParam_IPv6StaticAddress:
		s, err := slot(c.static, p.SetSelector)
		if err != nil {
			return err
		}
		p.Enabled, p.Status, p.IPv6 = s.enabled, s.status, net.ParseIP(s.addr)
	case *types.LanConfigParam_IPv6DynamicAddress:
		s, err := slot(c.dynamic, p.SetSelector)
		if err != nil {
			return err
		}
		p.Enabled, p.Status, p.IPv6 = s.enabled, s.status, net.ParseIP(s.addr)
	case *types.LanConfigParam_MAC:
		if _, v4 := b.v4[ch]; !v4 && ok {
			p.MAC, _ = net.ParseMAC("52:54:00:66:00:01")
			return nil
		}
		return b.v4.GetLanConfigParamFor(ctx, ch, p)
	default:
		return b.v4.GetLanConfigParamFor(ctx, ch, p)
	}
	return nil
}

func TestRead(t *testing.T) {
	const (
		active   = types.LanIPv6AddressStatus_Active
		disabled = types.LanIPv6AddressStatus_Disabled
		both     = types.LanIPv6EnableMode_IPv4AndIPv6
	)
	v4 := channels{1: {"192.0.2.10", "52:54:00:aa:00:01"}}
	tests := []struct {
		name    string
		bmc     dualBMC
		want    LAN
		wantErr bool
	}{
		{"IPv4 only (no IPv6 parameters)", dualBMC{v4: v4}, LAN{Channel: 1, Address: "192.0.2.10", MAC: "52:54:00:aa:00:01"}, false},
		{"static IPv6 on the same channel", dualBMC{v4: v4, v6: map[uint8]v6chan{1: {mode: both, static: []v6slot{{"2001:db8::10", true, active}}}}},
			LAN{Channel: 1, Address: "192.0.2.10", MAC: "52:54:00:aa:00:01", V6Address: "2001:db8::10"}, false},
		{"link-local, disabled, pending and unset slots skipped; SLAAC address taken", dualBMC{v4: v4, v6: map[uint8]v6chan{1: {mode: both,
			static:  []v6slot{{"::", true, active}, {"2001:db8::1", false, active}, {"2001:db8::2", true, types.LanIPv6AddressStatus_Pending}},
			dynamic: []v6slot{{"fe80::5054:ff:feaa:1", true, active}, {"2001:db8::5054:ff:feaa:1", true, active}}}}},
			LAN{Channel: 1, Address: "192.0.2.10", MAC: "52:54:00:aa:00:01", V6Address: "2001:db8::5054:ff:feaa:1"}, false},
		{"IPv6 disabled on the channel", dualBMC{v4: v4, v6: map[uint8]v6chan{1: {mode: types.LanIPv6EnableMode_IPv6Disabled,
			static: []v6slot{{"2001:db8::10", true, active}}}}}, LAN{Channel: 1, Address: "192.0.2.10", MAC: "52:54:00:aa:00:01"}, false},
		{"IPv6-only BMC", dualBMC{v6: map[uint8]v6chan{3: {mode: types.LanIPv6EnableMode_IPv6Only,
			static: []v6slot{{"2001:db8::3", true, disabled}, {"2001:db8::33", true, active}}}}},
			LAN{Channel: 3, MAC: "52:54:00:66:00:01", V6Address: "2001:db8::33"}, false},
		{"neither", dualBMC{v4: channels{1: {"0.0.0.0", "00:00:00:00:00:00"}}, v6: map[uint8]v6chan{1: {mode: both}}}, LAN{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Read(context.Background(), tc.bmc)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("Read = %+v, %v; want %+v (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestFirstLAN(t *testing.T) {
	tests := []struct {
		name    string
		bmc     channels
		want    LAN
		wantErr bool
	}{
		{"channel 1", channels{1: {"192.0.2.10", "52:54:00:aa:00:01"}}, LAN{Channel: 1, Address: "192.0.2.10", MAC: "52:54:00:aa:00:01"}, false},
		{"unconfigured channel 1, address on 2", channels{1: {"0.0.0.0", "00:00:00:00:00:00"}, 2: {"192.0.2.20", "52:54:00:aa:00:02"}}, LAN{Channel: 2, Address: "192.0.2.20", MAC: "52:54:00:aa:00:02"}, false},
		{"non-LAN channels skipped, zero MAC dropped", channels{8: {"10.1.2.3", "00:00:00:00:00:00"}}, LAN{Channel: 8, Address: "10.1.2.3"}, false},
		{"no address anywhere", channels{1: {"0.0.0.0", "00:00:00:00:00:00"}}, LAN{}, true},
		{"no LAN channel", channels{}, LAN{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FirstLAN(context.Background(), tc.bmc)
			if (err != nil) != tc.wantErr {
				t.Fatalf("FirstLAN = %+v, %v; want error %v", got, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("FirstLAN = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestReadLANNoDevice(t *testing.T) {
	old := Devices
	Devices = []string{filepath.Join(t.TempDir(), "ipmi0")}
	defer func() { Devices = old }()
	if _, err := (InBand{}).ReadLAN(context.Background()); !errors.Is(err, ErrNoDevice) {
		t.Fatalf("ReadLAN without a device = %v, want ErrNoDevice", err)
	}
}

// TestFirstLANIPMISim asks OpenIPMI's ipmi_sim, over RMCP+ on loopback, the
// same LAN parameter questions the agent asks in-band through /dev/ipmi0
// (the QEMU end-to-end test covers the in-band path itself).
func TestFirstLANIPMISim(t *testing.T) {
	for _, tool := range []string{"ipmi_sim", "ipmitool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian openipmi, ipmitool)", tool)
		}
	}
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.LocalAddr().(*net.UDPAddr).Port
	l.Close()
	sim, err := lab.StartIPMISim(context.Background(), lab.IPMISimConfig{Name: "bmcinfo", Dir: t.TempDir(), Port: port,
		Username: "admin", Password: "password"})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Stop()
	if err := sim.SetLAN(context.Background(), "192.0.2.41", "52:54:00:12:34:56"); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.NewClient("127.0.0.1", port, "admin", "password")
	if err != nil {
		t.Fatal(err)
	}
	c.WithInterface(client.InterfaceLanplus).WithCipherSuiteID(types.CipherSuiteID3).WithTimeout(2 * time.Second)
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect to ipmi_sim: %v", err)
	}
	defer c.Close(ctx)
	// ipmi_sim has no IPv6 LAN parameters: Read must skip them (each
	// answered with an error, no timeout) and report the IPv4 address.
	start := time.Now()
	got, err := Read(ctx, c)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if want := (LAN{Channel: 1, Address: "192.0.2.41", MAC: "52:54:00:12:34:56"}); got != want {
		t.Errorf("Read = %+v, want %+v", got, want)
	}
	t.Logf("Read took %v", time.Since(start))
}
