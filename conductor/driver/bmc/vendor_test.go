package bmc

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/test/lab"
)

func TestIPMIVendorArgs(t *testing.T) {
	d := NewIPMI(testConfig())
	n := &driver.Node{UUID: "n", DriverInfo: map[string]any{KeyIPMIAddress: "127.0.0.1"}}
	tests := []struct {
		method  string
		args    map[string]any
		wantErr string
	}{
		{"send_raw", map[string]any{"raw_bytes": "0x06 0x01"}, ""},
		{"send_raw", map[string]any{"raw_bytes": "6 1 255"}, ""},
		{"send_raw", map[string]any{}, "raw_bytes (string of bytes) was not specified"},
		{"send_raw", map[string]any{"raw_bytes": "0x06"}, "at least a network function and a command"},
		{"send_raw", map[string]any{"raw_bytes": "0x06 -E"}, "is not a byte"},
		{"send_raw", map[string]any{"raw_bytes": "0x06 256"}, "is not a byte"},
		{"send_raw", map[string]any{"raw_bytes": "0x06 0x100"}, "is not a byte"},
		{"bmc_reset", map[string]any{}, ""},
		{"bmc_reset", map[string]any{"warm": "false"}, ""},
		{"bmc_reset", map[string]any{"warm": "sometimes"}, "warm must be a boolean"},
		{"nope", map[string]any{}, "no vendor method"},
	}
	for _, tc := range tests {
		err := d.ValidateCall(n, tc.method, tc.args)
		if got := fmt.Sprint(err); tc.wantErr == "" && err != nil || tc.wantErr != "" && !strings.Contains(got, tc.wantErr) {
			t.Errorf("%s %v: %v, want %q", tc.method, tc.args, err, tc.wantErr)
		}
	}
	if err := d.ValidateCall(&driver.Node{UUID: "n", DriverInfo: map[string]any{}}, "send_raw", map[string]any{"raw_bytes": "0x06 0x01"}); err == nil {
		t.Errorf("send_raw without ipmi_address accepted")
	}
}

// The vendor methods against OpenIPMI's ipmi_sim through the real ipmitool.
func TestIPMIVendorAgainstIPMISim(t *testing.T) {
	needTools(t, "ipmitool", "ipmi_sim")
	ctx := context.Background()
	dir := t.TempDir()
	port := freeUDPPort(t)
	sim, err := lab.StartIPMISim(ctx, lab.IPMISimConfig{Name: "vendor", Dir: dir, Port: port, Username: "admin", Password: "password"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Stop() })
	d := NewIPMI(testConfig())
	n := &driver.Node{UUID: "node-vendor", DriverInfo: map[string]any{
		KeyIPMIAddress: "127.0.0.1", KeyIPMIPort: float64(port), KeyIPMIUsername: "admin",
		KeyIPMIPassword: "password", KeyIPMICipherSuite: "3",
	}}
	// Get Device ID (NetFn App 0x06, command 0x01): the device id, revision, firmware...
	out, err := d.Call(ctx, n, "send_raw", map[string]any{"raw_bytes": "0x06 0x01"})
	if err != nil {
		t.Fatalf("send_raw: %v", err)
	}
	if fields := strings.Fields(fmt.Sprint(out)); len(fields) < 11 {
		t.Errorf("Get Device ID answered %q, want at least 11 bytes", out)
	}
	// Get Chassis Status (NetFn Chassis 0x00, command 0x01): 3 or 4 bytes.
	if out, err := d.Call(ctx, n, "send_raw", map[string]any{"raw_bytes": "0x00 0x01"}); err != nil || len(strings.Fields(fmt.Sprint(out))) < 3 {
		t.Errorf("chassis status: %q, %v", out, err)
	}
	// A command the BMC refuses is an error with ipmitool's complaint, and
	// never the password (it goes through the environment).
	_, err = d.Call(ctx, n, "send_raw", map[string]any{"raw_bytes": "0x06 0xfe"})
	if err == nil || !strings.Contains(err.Error(), "Invalid command") || strings.Contains(err.Error(), "password") {
		t.Errorf("refused command: %v", err)
	}
	// ipmi_sim has no BMC reset: the refusal comes back as is.
	if _, err := d.Call(ctx, n, "bmc_reset", map[string]any{"warm": true}); err == nil || !strings.Contains(err.Error(), "bmc reset warm") {
		t.Errorf("bmc_reset: %v", err)
	}
}
