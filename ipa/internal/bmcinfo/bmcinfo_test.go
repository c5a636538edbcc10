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
	}
	return nil
}

func TestFirstLAN(t *testing.T) {
	tests := []struct {
		name    string
		bmc     channels
		want    LAN
		wantErr bool
	}{
		{"channel 1", channels{1: {"192.0.2.10", "52:54:00:aa:00:01"}}, LAN{1, "192.0.2.10", "52:54:00:aa:00:01"}, false},
		{"unconfigured channel 1, address on 2", channels{1: {"0.0.0.0", "00:00:00:00:00:00"}, 2: {"192.0.2.20", "52:54:00:aa:00:02"}}, LAN{2, "192.0.2.20", "52:54:00:aa:00:02"}, false},
		{"non-LAN channels skipped, zero MAC dropped", channels{8: {"10.1.2.3", "00:00:00:00:00:00"}}, LAN{8, "10.1.2.3", ""}, false},
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
	got, err := FirstLAN(ctx, c)
	if err != nil {
		t.Fatalf("FirstLAN: %v", err)
	}
	if want := (LAN{1, "192.0.2.41", "52:54:00:12:34:56"}); got != want {
		t.Errorf("FirstLAN = %+v, want %+v", got, want)
	}
}
