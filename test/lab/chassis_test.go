package lab

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestChassisBootDevice(t *testing.T) {
	q, err := NewQEMU(MachineConfig{Name: "vm0", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args    []string
		want    string // output of "get power boot" afterwards
		wantErr bool
	}{
		{args: []string{"get", "power", "boot"}, want: "power:0\nboot:default\n"},
		{args: []string{"set", "boot", "pxe"}, want: "power:0\nboot:pxe\n"},
		{args: []string{"set", "boot", `"default"`}, want: "power:0\nboot:default\n"},
		{args: []string{"set", "boot", "cdrom"}, want: "power:0\nboot:cdrom\n"},
		{args: []string{"set", "boot", "none"}, want: "power:0\nboot:default\n"},
		{args: []string{"set", "reset", "1"}, want: "power:0\nboot:default\n"},
		{args: []string{"set", "boot", "floppy"}, wantErr: true},
		{args: []string{"get", "fan"}, wantErr: true},
		{args: []string{"check"}, wantErr: true},
		{args: []string{"explode"}, wantErr: true},
	}
	for _, tc := range tests {
		var out bytes.Buffer
		err := Chassis(context.Background(), q, tc.args, &out)
		if (err != nil) != tc.wantErr {
			t.Fatalf("Chassis(%q) = %v, want error %v", tc.args, err, tc.wantErr)
		}
		if tc.wantErr {
			continue
		}
		out.Reset()
		if err := Chassis(context.Background(), q, []string{"get", "power", "boot"}, &out); err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.want {
			t.Errorf("after Chassis(%q): get = %q, want %q", tc.args, out.String(), tc.want)
		}
	}
}

func TestFirmwareBootOrder(t *testing.T) {
	log := "SeaBIOS\nboot order:\n1: /pci@i0cf8/scsi@2/disk@0,0\n2: /pci@i0cf8/ethernet@3/ethernet-phy@0\nPCI: x\n" +
		"SeaBIOS again\nboot order:\n1: /pci@i0cf8/ethernet@3/ethernet-phy@0\n2: /pci@i0cf8/scsi@2/disk@0,0\nBooting from ROM...\n"
	p := filepath.Join(t.TempDir(), "fw.log")
	if err := os.WriteFile(p, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	order, n, err := FirmwareBootOrder(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/pci@i0cf8/ethernet@3/ethernet-phy@0", "/pci@i0cf8/scsi@2/disk@0,0"}
	if n != 2 || !cmp.Equal(order, want) {
		t.Errorf("FirmwareBootOrder() = %q, %d, want %q, 2", order, n, want)
	}
	// A third boot being written: its half line and unended list are not
	// read yet (it once read "/" as the first entry).
	for _, partial := range []string{"SeaBIOS 3\nboot order:\n1: /", "SeaBIOS 3\nboot order:\n1: /pci@i0cf8/scsi@2/disk@0,0\n"} {
		if err := os.WriteFile(p, []byte(log+partial), 0o644); err != nil {
			t.Fatal(err)
		}
		if order, n, _ := FirmwareBootOrder(p); n != 2 || !cmp.Equal(order, want) {
			t.Errorf("with %q being written: %q, %d; want the second boot's", partial, order, n)
		}
	}
}

func TestQEMUArgs(t *testing.T) {
	tests := []struct {
		net, boot, wantNet, wantNIC string
	}{
		{"user", "disk", "user,id=n0,restrict=on", "bootindex=2"},
		{"slirp", "pxe", "user,id=n0,hostfwd=tcp:127.0.0.1:9998-:9999", "bootindex=1"},
		{"tap:tap3", "pxe", "tap,id=n0,ifname=tap3,script=no,downscript=no", "bootindex=1"},
	}
	for _, tc := range tests {
		q, err := NewQEMU(MachineConfig{Name: "vm0", Dir: t.TempDir(), Net: tc.net, HostFwd: []string{"tcp:127.0.0.1:9998-:9999"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := q.SetBootDevice(context.Background(), tc.boot); err != nil {
			t.Fatal(err)
		}
		args := q.Args()
		var netdev, nic string
		for i, a := range args {
			if a == "-netdev" {
				netdev = args[i+1]
			}
			if a == "-device" && bytes.HasPrefix([]byte(args[i+1]), []byte("virtio-net-pci")) {
				nic = args[i+1]
			}
		}
		if netdev != tc.wantNet || !bytes.Contains([]byte(nic), []byte(tc.wantNIC)) {
			t.Errorf("Args() net %q nic %q, want %q and %q", netdev, nic, tc.wantNet, tc.wantNIC)
		}
	}
}

func TestQEMUArgsBMCSerial(t *testing.T) {
	q, err := NewQEMU(MachineConfig{Name: "vm0", Dir: t.TempDir(), BMCSerial: "127.0.0.1:6330"})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(q.Args(), " ")
	for _, want := range []string{"-chardev socket,id=ipmi0,host=127.0.0.1,port=6330,reconnect=2",
		"-device ipmi-bmc-extern,id=bmc0,chardev=ipmi0", "-device isa-ipmi-kcs,bmc=bmc0"} {
		if !strings.Contains(got, want) {
			t.Errorf("Args() = %s\nwant %q in it", got, want)
		}
	}
	for _, bad := range []string{"6330", "127.0.0.1:", "a,b:1"} {
		if _, err := NewQEMU(MachineConfig{Name: "vm0", Dir: t.TempDir(), BMCSerial: bad}); err == nil {
			t.Errorf("NewQEMU with BMC serial %q: nil error", bad)
		}
	}
	if q, _ := NewQEMU(MachineConfig{Name: "vm0", Dir: t.TempDir()}); strings.Contains(strings.Join(q.Args(), " "), "ipmi") {
		t.Errorf("Args() without BMCSerial has an IPMI device: %v", q.Args())
	}
}

func TestIPMISimSerial(t *testing.T) {
	dir := t.TempDir()
	lanConf, _, err := WriteIPMISimConfig(IPMISimConfig{Name: "vm0", Dir: dir, Port: 6230, SerialPort: 6330, Username: "admin", Password: "password"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(lanConf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\n  serial 15 127.0.0.1 6330 codec VM\n") {
		t.Errorf("lan.conf has no VM serial interface:\n%s", b)
	}
}

// The serial-over-LAN wiring: QEMU serves ttyS0 on a TCP port and still
// logs it; ipmi_sim's sol line connects there.
func TestSOLWiring(t *testing.T) {
	dir := t.TempDir()
	q, err := NewQEMU(MachineConfig{Name: "vm0", Dir: dir, SOLListen: "127.0.0.1:6430"})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(q.Args(), " ")
	want := "-chardev socket,id=ser0,host=127.0.0.1,port=6430,server=on,wait=off,logfile=" + q.SerialLog() + ",logappend=on -serial chardev:ser0"
	if !strings.Contains(got, want) {
		t.Errorf("Args() = %s\nwant %q in it", got, want)
	}
	if q, _ := NewQEMU(MachineConfig{Name: "vm0", Dir: dir}); !strings.Contains(strings.Join(q.Args(), " "), "-chardev file,id=ser0,path="+q.SerialLog()) {
		t.Errorf("Args() without SOL does not log the serial port to a file: %v", q.Args())
	}
	for _, bad := range []string{"6430", "127.0.0.1:", "a,b:1"} {
		if _, err := NewQEMU(MachineConfig{Name: "vm0", Dir: dir, SOLListen: bad}); err == nil {
			t.Errorf("NewQEMU with SOL listen %q: nil error", bad)
		}
	}
	lanConf, _, err := WriteIPMISimConfig(IPMISimConfig{Name: "vm0", Dir: dir, Port: 6230, SOL: "tcp:127.0.0.1:6430", Username: "admin", Password: "password"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(lanConf)
	if !strings.Contains(string(b), "\n  sol \"tcp:127.0.0.1:6430\" 115200\n") {
		t.Errorf("lan.conf has no sol line:\n%s", b)
	}
	if _, _, err := WriteIPMISimConfig(IPMISimConfig{Name: "vm0", Dir: dir, SOL: "tcp:a b", Username: "admin", Password: "password"}); err == nil {
		t.Error("WriteIPMISimConfig with a SOL device holding a space: nil error")
	}
}
