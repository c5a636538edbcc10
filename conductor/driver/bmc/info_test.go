package bmc

import (
	"errors"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/conductor/driver"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		d       driver.Power
		info    map[string]any
		wantErr error
		wantMsg string // substring of the error
	}{
		{name: "ipmi ok", d: NewIPMI(Config{}), info: map[string]any{KeyIPMIAddress: "10.0.0.1", KeyIPMIPort: "6230", KeyIPMICipherSuite: 3.0}},
		{name: "ipmi missing address", d: NewIPMI(Config{}), info: map[string]any{KeyIPMIUsername: "u"}, wantErr: driver.ErrMissingInfo, wantMsg: "ipmi_address"},
		{name: "ipmi empty address", d: NewIPMI(Config{}), info: map[string]any{KeyIPMIAddress: " "}, wantErr: driver.ErrMissingInfo, wantMsg: "ipmi_address"},
		{name: "ipmi bad port", d: NewIPMI(Config{}), info: map[string]any{KeyIPMIAddress: "h", KeyIPMIPort: "x"}, wantMsg: "ipmi_port"},
		{name: "ipmi bad cipher", d: NewIPMI(Config{}), info: map[string]any{KeyIPMIAddress: "h", KeyIPMICipherSuite: "42"}, wantMsg: "ipmi_cipher_suite"},
		{name: "redfish ok", d: NewRedfish(Config{}), info: map[string]any{KeyRedfishAddress: "https://10.0.0.5:8443", KeyRedfishSystemID: "/redfish/v1/Systems/1", KeyRedfishVerifyCA: "false"}},
		{name: "redfish bare host", d: NewRedfish(Config{}), info: map[string]any{KeyRedfishAddress: "bmc.example"}},
		{name: "redfish missing", d: NewRedfish(Config{}), info: map[string]any{KeyRedfishUsername: "u"}, wantErr: driver.ErrMissingInfo, wantMsg: "redfish_address"},
		{name: "redfish bad scheme", d: NewRedfish(Config{}), info: map[string]any{KeyRedfishAddress: "ftp://h"}, wantMsg: "scheme"},
		{name: "redfish path in address", d: NewRedfish(Config{}), info: map[string]any{KeyRedfishAddress: "https://h/redfish/v1/Systems/1"}, wantMsg: "without a path"},
		{name: "redfish missing CA file", d: NewRedfish(Config{}), info: map[string]any{KeyRedfishAddress: "h", KeyRedfishVerifyCA: "/nonexistent/ca.pem"}, wantMsg: "CA bundle"},
		{name: "redfish bad auth type", d: NewRedfish(Config{}), info: map[string]any{KeyRedfishAddress: "h", KeyRedfishAuthType: "kerberos"}, wantMsg: "redfish_auth_type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.d.Validate(&driver.Node{DriverInfo: tc.info})
			if (err != nil) != (tc.wantMsg != "") {
				t.Fatalf("Validate() = %v, want error containing %q", err, tc.wantMsg)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Validate() = %v, want %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Validate() = %v, want it to contain %q", err, tc.wantMsg)
			}
		})
	}
}

func TestParseRedfishAddress(t *testing.T) {
	tests := []struct {
		addr, wantEndpoint, wantHost string
	}{
		{"10.0.0.5", "https://10.0.0.5:443", "10.0.0.5"},
		{"10.0.0.5:8443", "https://10.0.0.5:8443", "10.0.0.5"},
		{"http://127.0.0.1:8000/", "http://127.0.0.1:8000", "127.0.0.1"},
		{"https://[fd00::5]", "https://[fd00::5]:443", "fd00::5"},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			info, err := parseRedfishInfo(&driver.Node{DriverInfo: map[string]any{KeyRedfishAddress: tc.addr}})
			if err != nil {
				t.Fatal(err)
			}
			if got := info.endpoint(); got != tc.wantEndpoint || info.host != tc.wantHost {
				t.Errorf("parse(%q) = %q host %q, want %q host %q", tc.addr, got, info.host, tc.wantEndpoint, tc.wantHost)
			}
		})
	}
}

func TestNormalizePower(t *testing.T) {
	tests := []struct {
		raw, want string
		ok        bool
	}{
		{"Chassis Power is on\n", driver.PowerOn, true},
		{"Chassis Power is off", driver.PowerOff, true},
		{"On", driver.PowerOn, true},
		{"PoweringOff", driver.PowerOff, true},
		{"Paused", "", false},
	}
	for _, tc := range tests {
		got, ok := normalizePower(tc.raw)
		if got != tc.want || ok != tc.ok {
			t.Errorf("normalizePower(%q) = %q, %v, want %q, %v", tc.raw, got, ok, tc.want, tc.ok)
		}
	}
}
