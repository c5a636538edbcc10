package bmc

import (
	"slices"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/conductor/driver"
)

func TestIPMISocatConsole(t *testing.T) {
	c := &IPMISocatConsole{IPMIToolPath: "/usr/bin/ipmitool"}
	for _, tc := range []struct {
		name     string
		info     map[string]any
		port     int
		attach   string
		badField string // in the error, when invalid
	}{
		{"port given", map[string]any{"ipmi_address": "10.0.0.5", "ipmi_username": "admin", "ipmi_password": "pw word", "ipmi_terminal_port": 9000},
			9000, "-I lanplus -H 10.0.0.5 -p 623 -U admin -E sol activate", ""},
		{"port as string, cipher suite", map[string]any{"ipmi_address": "[fd00::5]", "ipmi_port": "6230", "ipmi_username": "admin", "ipmi_cipher_suite": 3, "ipmi_terminal_port": "9001"},
			9001, "-I lanplus -H fd00::5 -p 6230 -U admin -E -C 3 sol activate", ""},
		{"no port: the conductor's range", map[string]any{"ipmi_address": "10.0.0.5"}, 0, "-I lanplus -H 10.0.0.5 -p 623 -U  -E sol activate", ""},
		{"bad port", map[string]any{"ipmi_address": "10.0.0.5", "ipmi_terminal_port": "70000"}, 0, "", `ipmi_terminal_port "70000" is not a valid port.`},
		{"no address", map[string]any{"ipmi_terminal_port": 9000}, 0, "", "ipmi_address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &driver.Node{UUID: "u1", DriverInfo: tc.info}
			err := c.ValidateConsole(n)
			if tc.badField != "" {
				if err == nil || !strings.Contains(err.Error(), tc.badField) {
					t.Fatalf("ValidateConsole = %v, want an error naming %s", err, tc.badField)
				}
				return
			}
			if err != nil {
				t.Fatalf("ValidateConsole = %v", err)
			}
			if p, err := c.ConsolePort(n); p != tc.port || err != nil {
				t.Errorf("ConsolePort = %d, %v; want %d", p, err, tc.port)
			}
			attach, detach, err := c.ConsoleCommands(n)
			if err != nil {
				t.Fatal(err)
			}
			if attach.Path != "/usr/bin/ipmitool" || strings.Join(attach.Args, " ") != tc.attach {
				t.Errorf("attach = %s %q, want %q", attach.Path, strings.Join(attach.Args, " "), tc.attach)
			}
			if want := strings.TrimSuffix(tc.attach, "activate") + "deactivate"; strings.Join(detach.Args, " ") != want {
				t.Errorf("detach = %q, want %q", strings.Join(detach.Args, " "), want)
			}
			pw, _ := tc.info["ipmi_password"].(string)
			if !slices.Contains(attach.Env, "IPMI_PASSWORD="+pw) || !slices.Equal(attach.Env, detach.Env) {
				t.Errorf("env = %q / %q, want IPMI_PASSWORD=%s in both", attach.Env, detach.Env, pw)
			}
			for _, a := range attach.Args {
				if pw != "" && strings.Contains(a, pw) {
					t.Errorf("the password is in the arguments: %q", attach.Args)
				}
			}
		})
	}
}
