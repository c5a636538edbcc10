package bmc

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/test/lab"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// chassisFlag makes the test binary act as ipmi_sim's chassis_control program.
const chassisFlag = "-ferric-lab-chassis"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == chassisFlag {
		os.Exit(lab.ChassisMain(os.Args[2:], os.Stdout))
	}
	os.Exit(m.Run())
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s is not installed (Debian packages ipmitool, openipmi, qemu-system-x86)", tool)
		}
	}
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// firstBootEntry waits for the machine's firmware to print its boot order and
// returns the first entry of the last one printed.
func firstBootEntry(t *testing.T, q *lab.QEMU, starts int) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		order, n, err := lab.FirmwareBootOrder(q.FirmwareLog())
		if err == nil && n >= starts && len(order) > 0 {
			return order[0]
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("firmware did not print boot order #%d in %s", starts, q.FirmwareLog())
	return ""
}

// TestIPMIAgainstIPMISim drives a QEMU machine through ipmitool, an ipmi_sim
// virtual BMC and the lab's chassis_control program.
func TestIPMIAgainstIPMISim(t *testing.T) {
	needTools(t, "ipmitool", "ipmi_sim", "qemu-system-x86_64")
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ferric-ipmi-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	q, err := lab.NewQEMU(lab.MachineConfig{Name: "vm0", Dir: dir, DiskSizeMiB: 8, MemMiB: 128})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Save(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.PowerOff(context.Background()) })
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	port := freeUDPPort(t)
	sim, err := lab.StartIPMISim(ctx, lab.IPMISimConfig{
		Name: "vm0", Dir: dir, Port: port, Username: "admin", Password: "password",
		ChassisControl: []string{self, chassisFlag, dir, "vm0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Stop() })

	cfg := testConfig()
	cfg.PollInterval = 100 * time.Millisecond
	cfg.PowerTimeout = 20 * time.Second
	// ipmi_sim answers "power on" once chassis_control has started QEMU,
	// which a loaded machine (or a -race build) can take well over
	// testConfig's 5 s to do.
	cfg.CallTimeout = 30 * time.Second
	d := NewIPMI(cfg)
	n := &driver.Node{UUID: "node-ipmi", DriverInfo: map[string]any{
		KeyIPMIAddress: "127.0.0.1", KeyIPMIPort: float64(port), KeyIPMIUsername: "admin",
		KeyIPMIPassword: "password", KeyIPMICipherSuite: "3",
	}, Properties: map[string]any{}}

	// The vendor, from `ipmitool mc info` (Ironic's detect_vendor).
	if v, err := d.DetectVendor(ctx, n); err != nil || v == "" || v != strings.ToLower(v) {
		t.Errorf("DetectVendor = %q, %v; want ipmi_sim's manufacturer, lower-cased", v, err)
	} else {
		t.Logf("vendor %q", v)
	}

	starts := 0 // firmware boots seen so far
	lastPid := 0
	steps := []struct {
		name       string
		bootDevice string // set this boot device instead of a power action
		target     string
		wantState  string
		newBoot    bool   // the machine (re)started: a new firmware boot
		wantFirst  string // substring of the first firmware boot entry
		wantNewPid bool
	}{
		{name: "initially off", wantState: driver.PowerOff},
		{name: "bootdev pxe while off", bootDevice: driver.BootPXE, wantState: driver.PowerOff},
		{name: "power on", target: driver.TargetPowerOn, wantState: driver.PowerOn, newBoot: true, wantFirst: "ethernet", wantNewPid: true},
		{name: "power on again", target: driver.TargetPowerOn, wantState: driver.PowerOn},
		{name: "bootdev disk while on", bootDevice: driver.BootDisk, wantState: driver.PowerOn},
		{name: "reboot", target: driver.TargetReboot, wantState: driver.PowerOn, newBoot: true, wantFirst: "disk", wantNewPid: true},
		{name: "power off", target: driver.TargetPowerOff, wantState: driver.PowerOff},
		{name: "soft off when off", target: driver.TargetSoftPowerOff, wantState: driver.PowerOff},
		{name: "bootdev pxe persistent uefi flag", bootDevice: driver.BootPXE, wantState: driver.PowerOff},
		{name: "reboot when off", target: driver.TargetReboot, wantState: driver.PowerOn, newBoot: true, wantFirst: "ethernet", wantNewPid: true},
		{name: "final power off", target: driver.TargetPowerOff, wantState: driver.PowerOff},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			var res driver.Result
			var err error
			switch {
			case st.bootDevice != "":
				if strings.Contains(st.name, "uefi") {
					n.Properties["capabilities"] = "boot_mode:uefi"
				}
				res, err = d.SetBootDeviceResult(ctx, n, st.bootDevice, strings.Contains(st.name, "persistent"))
				if err == nil && q.BootDevice() != st.bootDevice {
					t.Errorf("machine boot device = %q, want %q", q.BootDevice(), st.bootDevice)
				}
			case st.target != "":
				res, err = d.SetPowerStateResult(ctx, n, st.target, 0)
			}
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if (st.bootDevice != "" || st.target != "") && res.Provider != ProviderIPMITool {
				t.Errorf("provider = %q, want %q", res.Provider, ProviderIPMITool)
			}
			got, err := d.PowerState(ctx, n)
			if err != nil || got != st.wantState {
				t.Fatalf("PowerState() = %q, %v, want %q", got, err, st.wantState)
			}
			pid, running := q.Pid()
			if running != (st.wantState == driver.PowerOn) {
				t.Errorf("QEMU process running = %v, want %v", running, st.wantState == driver.PowerOn)
			}
			if st.wantNewPid && pid == lastPid {
				t.Errorf("QEMU pid %d unchanged, want a new process", pid)
			}
			if running {
				lastPid = pid
			}
			if st.newBoot {
				starts++
				if first := firstBootEntry(t, q, starts); !strings.Contains(first, st.wantFirst) {
					t.Errorf("first firmware boot entry = %q, want one containing %q", first, st.wantFirst)
				}
			}
			if st.name == "bootdev disk while on" {
				if idx, err := q.BootIndex(ctx, "disk0"); err != nil || idx != 1 {
					t.Errorf("live disk bootindex = %d, %v, want 1", idx, err)
				}
			}
		})
	}
}

// TestIPMIDeadBMC checks that a BMC that does not answer (nothing listens on
// the UDP port) gives a clear error within the call timeout, not a hang.
func TestIPMIDeadBMC(t *testing.T) {
	needTools(t, "ipmitool")
	cfg := testConfig()
	cfg.CallTimeout = 2 * time.Second
	d := NewIPMI(cfg)
	n := &driver.Node{DriverInfo: map[string]any{
		KeyIPMIAddress: "127.0.0.1", KeyIPMIPort: freeUDPPort(t), KeyIPMIUsername: "admin", KeyIPMIPassword: "password",
	}}
	_, err := d.PowerState(context.Background(), n)
	if err == nil {
		t.Fatal("PowerState() of a dead BMC = nil error")
	}
	if !strings.Contains(err.Error(), "127.0.0.1:") {
		t.Errorf("error %q does not name the BMC", err)
	}
	t.Logf("error: %v (ErrNoAnswer: %v)", err, errors.Is(err, ErrNoAnswer))
}

// TestRedfishAgainstQEMU drives a QEMU machine through the Redfish emulator:
// a one-time PXE override is used by the next start only.
func TestRedfishAgainstQEMU(t *testing.T) {
	needTools(t, "qemu-system-x86_64")
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ferric-rf-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	q, err := lab.NewQEMU(lab.MachineConfig{Name: "vm0", Dir: dir, DiskSizeMiB: 8, MemMiB: 128})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.PowerOff(context.Background()) })
	srv := redfish.New(redfish.Config{Username: "admin", Password: "pw", Machines: map[string]redfish.Machine{"vm0": q}, Logger: quietLogger()})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)

	cfg := testConfig()
	cfg.PollInterval = 100 * time.Millisecond
	cfg.PowerTimeout = 20 * time.Second
	d := NewRedfish(cfg)
	n := &driver.Node{UUID: "node-rf", DriverInfo: map[string]any{
		KeyRedfishAddress: hs.URL, KeyRedfishUsername: "admin", KeyRedfishPassword: "pw", KeyRedfishSystemID: "/redfish/v1/Systems/vm0",
	}}
	if err := d.SetBootDevice(ctx, n, driver.BootPXE, false); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		target    string
		wantFirst string
	}{
		{driver.TargetPowerOn, "ethernet"}, // the one-time PXE override
		{driver.TargetReboot, "disk"},      // ForceRestart: override consumed
	}
	for i, st := range steps {
		if err := d.SetPowerState(ctx, n, st.target, 0); err != nil {
			t.Fatalf("SetPowerState(%q) = %v", st.target, err)
		}
		if first := firstBootEntry(t, q, i+1); !strings.Contains(first, st.wantFirst) {
			t.Errorf("after %q: first firmware boot entry = %q, want one containing %q", st.target, first, st.wantFirst)
		}
	}
	// NMI: Redfish Reset Nmi -> QMP inject-nmi into the running machine.
	if err := d.InjectNMI(ctx, n); err != nil || q.NMIs() != 1 {
		t.Errorf("InjectNMI = %v, QEMU got %d NMIs, want 1", err, q.NMIs())
	}
	if err := d.SetPowerState(ctx, n, driver.TargetPowerOff, 0); err != nil {
		t.Fatal(err)
	}
	if on, _ := q.Running(ctx); on {
		t.Error("QEMU still runs after power off")
	}
}
