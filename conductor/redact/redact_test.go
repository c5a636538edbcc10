package redact

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMap(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in, want map[string]any
	}{
		{"plain", map[string]any{"ipmi_address": "10.0.0.1", "ipmi_port": 623.0}, map[string]any{"ipmi_address": "10.0.0.1", "ipmi_port": 623.0}},
		{"password", map[string]any{"ipmi_password": "p", "ipmi_username": "u"}, map[string]any{"ipmi_password": Mask, "ipmi_username": "u"}},
		{"case", map[string]any{"Redfish_PASSWORD": "p"}, map[string]any{"Redfish_PASSWORD": Mask}},
		{"token", map[string]any{"token": "t", "agent_token": "t", "auth_token": "t"}, map[string]any{"token": Mask, "agent_token": Mask, "auth_token": Mask}},
		{"private key", map[string]any{"ssh_private_key": "k", "ssh_public_key": "pub"}, map[string]any{"ssh_private_key": Mask, "ssh_public_key": "pub"}},
		{"passphrase and secret", map[string]any{"passphrase": "x", "client_secret": "y", "configdrive": map[string]any{"a": 1.0}},
			map[string]any{"passphrase": Mask, "client_secret": Mask, "configdrive": Mask}},
		{"nested object", map[string]any{"x": map[string]any{"password": "p", "user": "u"}},
			map[string]any{"x": map[string]any{"password": Mask, "user": "u"}}},
		{"deep", map[string]any{"a": map[string]any{"b": map[string]any{"c": map[string]any{"sslkey": "k"}}}},
			map[string]any{"a": map[string]any{"b": map[string]any{"c": map[string]any{"sslkey": Mask}}}}},
		{"list of objects", map[string]any{"l": []any{map[string]any{"password": "p"}, "x"}},
			map[string]any{"l": []any{map[string]any{"password": Mask}, "x"}}},
		{"in a string", map[string]any{"cmd": "ipmitool -U admin -P x --password hunter2 sys_pswd=abc"},
			map[string]any{"cmd": "ipmitool -U admin -P x --password " + Mask + " sys_pswd=" + Mask}},
		{"json in a string", map[string]any{"raw": `{"password": "hunter2", "user": "u"}`},
			map[string]any{"raw": `{"password": "` + Mask + `", "user": "u"}`}},
		{"masked already", map[string]any{"password": Mask}, map[string]any{"password": Mask}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := cloneJSON(tc.in)
			got := Map(tc.in)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("Map(%v) (-want +got):\n%s", tc.in, d)
			}
			if d := cmp.Diff(orig, tc.in); d != "" {
				t.Errorf("Map changed its input:\n%s", d)
			}
		})
	}
}

func cloneJSON(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		switch x := v.(type) {
		case map[string]any:
			out[k] = cloneJSON(x)
		case []any:
			l := make([]any, len(x))
			for i, e := range x {
				if em, ok := e.(map[string]any); ok {
					l[i] = cloneJSON(em)
				} else {
					l[i] = e
				}
			}
			out[k] = l
		default:
			out[k] = v
		}
	}
	return out
}

func TestHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(Handler(slog.NewTextHandler(&buf, nil)))
	log.With("ipmi_password", "w1").Info("connecting with password=w2", "driver_info",
		map[string]any{"redfish_password": "w3"}, "err", errString("exit 1: ipmitool --password w4"),
		slog.Group("g", "token", "w5"))
	out := buf.String()
	for _, s := range []string{"w1", "w2", "w3", "w4", "w5"} {
		if strings.Contains(out, s) {
			t.Errorf("log line leaks %s: %s", s, out)
		}
	}
	if !strings.Contains(out, Mask) {
		t.Errorf("log line without a mask: %s", out)
	}
}

type errString string

func (e errString) Error() string { return string(e) }
