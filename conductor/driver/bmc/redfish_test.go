package bmc

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// fakeMachine is a Machine that records what the emulator asked of it.
// softOff says whether an ACPI shutdown request turns it off (an OS that
// listens) or is ignored (no OS).
type fakeMachine struct {
	mu      sync.Mutex
	on      bool
	softOff bool
	boot    string
	starts  []string // boot device at each start or reset
	calls   []string
}

func (f *fakeMachine) Running(context.Context) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.on, nil
}

func (f *fakeMachine) record(c string) { f.calls = append(f.calls, c) }

func (f *fakeMachine) PowerOn(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("on")
	if !f.on {
		f.on = true
		f.starts = append(f.starts, f.boot)
	}
	return nil
}

func (f *fakeMachine) PowerOff(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("off")
	f.on = false
	return nil
}

func (f *fakeMachine) Shutdown(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("shutdown")
	if f.softOff {
		f.on = false
	}
	return nil
}

func (f *fakeMachine) Reset(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("reset")
	f.starts = append(f.starts, f.boot)
	return nil
}

func (f *fakeMachine) InjectNMI(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("nmi")
	return nil
}

func (f *fakeMachine) SetBootDevice(_ context.Context, dev string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.boot = dev
	return nil
}

func (f *fakeMachine) state() (bool, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.on, append([]string(nil), f.starts...)
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig() Config {
	return Config{CallTimeout: 5 * time.Second, PollInterval: 20 * time.Millisecond, PowerTimeout: 5 * time.Second, Logger: quietLogger()}
}

type emulator struct {
	srv      *redfish.Server
	http     *httptest.Server
	machines map[string]*fakeMachine
}

func startEmulator(t *testing.T, tls bool, ids ...string) *emulator {
	t.Helper()
	return startEmulatorHW(t, tls, nil, ids...)
}

// startEmulatorHW starts the emulator with hardware descriptions by system id.
func startEmulatorHW(t *testing.T, tls bool, hw map[string]redfish.Hardware, ids ...string) *emulator {
	t.Helper()
	e := &emulator{machines: map[string]*fakeMachine{}}
	ms := map[string]redfish.Machine{}
	for _, id := range ids {
		f := &fakeMachine{boot: "disk", softOff: true}
		e.machines[id] = f
		ms[id] = f
	}
	e.srv = redfish.New(redfish.Config{Username: "admin", Password: "s3cret", Machines: ms, Hardware: hw, Logger: quietLogger()})
	e.http = httptest.NewUnstartedServer(e.srv)
	e.http.Config.ErrorLog = log.New(io.Discard, "", 0) // refused TLS handshakes are expected
	if tls {
		e.http.StartTLS()
	} else {
		e.http.Start()
	}
	t.Cleanup(e.http.Close)
	return e
}

func (e *emulator) node(extra map[string]any) *driver.Node {
	di := map[string]any{
		KeyRedfishAddress:  e.http.URL,
		KeyRedfishUsername: "admin",
		KeyRedfishPassword: "s3cret",
	}
	for k, v := range extra {
		di[k] = v
	}
	return &driver.Node{UUID: "6a1f5e2c-0000-4000-8000-000000000001", DriverInfo: di, Properties: map[string]any{}}
}

func TestRedfishPower(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		startOn  bool
		softOff  bool
		target   string
		wantOn   bool
		wantErr  error
		wantBoot int // number of starts/resets the machine saw
	}{
		{name: "on from off", target: driver.TargetPowerOn, wantOn: true, wantBoot: 1},
		{name: "on when on", startOn: true, target: driver.TargetPowerOn, wantOn: true},
		{name: "off", startOn: true, target: driver.TargetPowerOff},
		{name: "off when off", target: driver.TargetPowerOff},
		{name: "soft off", startOn: true, softOff: true, target: driver.TargetSoftPowerOff},
		{name: "soft off ignored by the OS", startOn: true, target: driver.TargetSoftPowerOff, wantOn: true, wantErr: ErrPowerTimeout},
		{name: "reboot when on", startOn: true, target: driver.TargetReboot, wantOn: true, wantBoot: 1},
		{name: "reboot when off", target: driver.TargetReboot, wantOn: true, wantBoot: 1},
		{name: "soft reboot", startOn: true, softOff: true, target: driver.TargetSoftReboot, wantOn: true, wantBoot: 1},
		{name: "bad target", target: "sideways", wantErr: ErrInvalidTarget},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := startEmulator(t, false, "1")
			m := e.machines["1"]
			m.on, m.softOff = tc.startOn, tc.softOff
			cfg := testConfig()
			d := NewRedfish(cfg)
			res, err := d.SetPowerStateResult(ctx, e.node(nil), tc.target, 300*time.Millisecond)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("SetPowerStateResult(%q) = %v, want %v", tc.target, err, tc.wantErr)
			}
			if err == nil && res.Provider != ProviderGofish {
				t.Errorf("provider = %q, want %q", res.Provider, ProviderGofish)
			}
			on, starts := m.state()
			if on != tc.wantOn {
				t.Errorf("machine on = %v, want %v", on, tc.wantOn)
			}
			if len(starts) != tc.wantBoot {
				t.Errorf("machine starts = %v, want %d", starts, tc.wantBoot)
			}
			if tc.wantErr == nil {
				want := driver.PowerOff
				if tc.wantOn {
					want = driver.PowerOn
				}
				got, err := d.PowerState(ctx, e.node(nil))
				if err != nil || got != want {
					t.Errorf("PowerState() = %q, %v, want %q", got, err, want)
				}
			}
		})
	}
}

// NMI: a Reset with ResetType Nmi reaches the running machine; a machine
// that is off refuses it with the BMC's error.
func TestRedfishInjectNMI(t *testing.T) {
	ctx := context.Background()
	e := startEmulator(t, false, "1")
	d := NewRedfish(testConfig())
	if err := d.InjectNMI(ctx, e.node(nil)); err == nil {
		t.Errorf("NMI to a machine that is off accepted")
	}
	if err := d.SetPowerState(ctx, e.node(nil), driver.TargetPowerOn, 0); err != nil {
		t.Fatal(err)
	}
	if err := d.InjectNMI(ctx, e.node(nil)); err != nil {
		t.Fatalf("InjectNMI: %v", err)
	}
	m := e.machines["1"]
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.Contains(m.calls, "nmi") {
		t.Errorf("machine calls %v, want an nmi", m.calls)
	}
}

func TestRedfishBootDevice(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		device     string
		persistent bool
		caps       any
		want       redfish.Boot
		wantStarts []string // boot device at the next two power-ons
	}{
		{name: "pxe once", device: driver.BootPXE, want: redfish.Boot{BootSourceOverrideTarget: "Pxe", BootSourceOverrideEnabled: "Once", BootSourceOverrideMode: "Legacy"}, wantStarts: []string{"pxe", "disk"}},
		{name: "pxe persistent uefi string caps", device: driver.BootPXE, persistent: true, caps: "boot_mode:uefi,cpu_vt:true",
			want: redfish.Boot{BootSourceOverrideTarget: "Pxe", BootSourceOverrideEnabled: "Continuous", BootSourceOverrideMode: "UEFI"}, wantStarts: []string{"pxe", "pxe"}},
		{name: "disk persistent map caps", device: driver.BootDisk, persistent: true, caps: map[string]any{"boot_mode": "bios"},
			want: redfish.Boot{BootSourceOverrideTarget: "Hdd", BootSourceOverrideEnabled: "Continuous", BootSourceOverrideMode: "Legacy"}, wantStarts: []string{"disk", "disk"}},
		{name: "cdrom", device: driver.BootCDROM, want: redfish.Boot{BootSourceOverrideTarget: "Cd", BootSourceOverrideEnabled: "Once", BootSourceOverrideMode: "Legacy"}, wantStarts: []string{"cdrom", "disk"}},
		{name: "bios", device: driver.BootBIOS, want: redfish.Boot{BootSourceOverrideTarget: "BiosSetup", BootSourceOverrideEnabled: "Once", BootSourceOverrideMode: "Legacy"}, wantStarts: []string{"bios", "disk"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := startEmulator(t, false, "1")
			d := NewRedfish(testConfig())
			n := e.node(nil)
			if tc.caps != nil {
				n.Properties["capabilities"] = tc.caps
			}
			res, err := d.SetBootDeviceResult(ctx, n, tc.device, tc.persistent)
			if err != nil {
				t.Fatalf("SetBootDeviceResult(%q) = %v", tc.device, err)
			}
			if res.Provider != ProviderGofish {
				t.Errorf("provider = %q, want %q", res.Provider, ProviderGofish)
			}
			got, _ := e.srv.BootOverride("1")
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("boot override (-want +got):\n%s", diff)
			}
			for range 2 {
				if err := d.SetPowerState(ctx, n, driver.TargetPowerOn, 0); err != nil {
					t.Fatal(err)
				}
				if err := d.SetPowerState(ctx, n, driver.TargetPowerOff, 0); err != nil {
					t.Fatal(err)
				}
			}
			_, starts := e.machines["1"].state()
			if diff := cmp.Diff(tc.wantStarts, starts); diff != "" {
				t.Errorf("boot device at each start (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("unsupported device", func(t *testing.T) {
		e := startEmulator(t, false, "1")
		err := NewRedfish(testConfig()).SetBootDevice(ctx, e.node(nil), "floppy", false)
		if !errors.Is(err, ErrInvalidTarget) {
			t.Errorf("SetBootDevice(floppy) = %v, want ErrInvalidTarget", err)
		}
	})
}

// TestRedfishOptions covers TLS verification, session auth and system selection.
func TestRedfishOptions(t *testing.T) {
	ctx := context.Background()
	e := startEmulator(t, true, "vm0", "vm1")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	cert := e.http.Certificate()
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		extra   map[string]any
		wantOn  string // machine that must be on afterwards
		wantErr bool
	}{
		{name: "verify false bool", extra: map[string]any{KeyRedfishVerifyCA: false, KeyRedfishSystemID: "/redfish/v1/Systems/vm1"}, wantOn: "vm1"},
		{name: "verify false string, bare id", extra: map[string]any{KeyRedfishVerifyCA: "False", KeyRedfishSystemID: "vm0"}, wantOn: "vm0"},
		{name: "verify with CA bundle", extra: map[string]any{KeyRedfishVerifyCA: caFile, KeyRedfishSystemID: "vm1"}, wantOn: "vm1"},
		{name: "session auth", extra: map[string]any{KeyRedfishVerifyCA: false, KeyRedfishAuthType: "session", KeyRedfishSystemID: "vm0"}, wantOn: "vm0"},
		{name: "verify default refuses self-signed", extra: map[string]any{KeyRedfishSystemID: "vm0"}, wantErr: true},
		{name: "two systems and no system id", extra: map[string]any{KeyRedfishVerifyCA: false}, wantErr: true},
		{name: "wrong password", extra: map[string]any{KeyRedfishVerifyCA: false, KeyRedfishPassword: "nope", KeyRedfishSystemID: "vm0"}, wantErr: true},
		{name: "unknown system", extra: map[string]any{KeyRedfishVerifyCA: false, KeyRedfishSystemID: "vm9"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range e.machines {
				m.mu.Lock()
				m.on = false
				m.mu.Unlock()
			}
			d := NewRedfish(testConfig())
			err := d.SetPowerState(ctx, e.node(tc.extra), driver.TargetPowerOn, 0)
			if (err != nil) != tc.wantErr {
				t.Fatalf("SetPowerState(on) = %v, want error %v", err, tc.wantErr)
			}
			for id, m := range e.machines {
				on, _ := m.state()
				if on != (id == tc.wantOn) {
					t.Errorf("machine %s on = %v", id, on)
				}
			}
			if n := e.srv.Sessions(); n != 0 {
				t.Errorf("%d Redfish sessions left open", n)
			}
		})
	}
}

// TestDeadBMC checks that a BMC that does not answer gives a clear error
// rather than a hang: a TCP listener that never replies, and a closed port.
func TestDeadBMC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // accept and never answer
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name string
		addr string
		want error
	}{
		{name: "silent", addr: "http://" + ln.Addr().String(), want: ErrNoAnswer},
		{name: "closed port", addr: "http://" + closedAddr},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.CallTimeout = 500 * time.Millisecond
			d := NewRedfish(cfg)
			n := &driver.Node{DriverInfo: map[string]any{KeyRedfishAddress: tc.addr, KeyRedfishUsername: "a", KeyRedfishPassword: "b"}}
			_, err := d.PowerState(context.Background(), n)
			if err == nil {
				t.Fatalf("PowerState() = nil error, want one")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("PowerState() = %v, want %v", err, tc.want)
			}
			t.Logf("error: %v", err)
		})
	}
}
