package api

import (
	"context"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/conductor/store"
)

// TestMaskingViews: secrets under Ironic's sensitive keys, at any nesting,
// never come back from any view of a node (create and PATCH answers, GET,
// detail, ?fields=), a volume target, or node history; the harness scans
// every answer for the secret values.
func TestMaskingViews(t *testing.T) {
	e := newTestEnv(t, nil)
	e.version = "1.78"
	driverInfo := map[string]any{}
	for i, k := range []string{"ipmi_password", "redfish_password", "ssh_private_key", "token", "passphrase",
		"client_secret", "snmp_auth_key", "snmp_priv_key", "auth_token", "sys_pswd", "sslkey", "encrypted_key"} {
		driverInfo[k] = "s3cr3t-top-" + k
		e.addSecret("s3cr3t-top-" + k)
		_ = i
	}
	driverInfo["x"] = map[string]any{"password": "s3cr3t-nested", "user": "visible-user"}
	driverInfo["deep"] = map[string]any{"a": map[string]any{"b": map[string]any{"private_key": "s3cr3t-deep"}}}
	driverInfo["list"] = []any{map[string]any{"passphrase": "s3cr3t-in-list"}}
	driverInfo["cmd"] = "ipmitool --password s3cr3t-in-string"
	for _, s := range []string{"s3cr3t-nested", "s3cr3t-deep", "s3cr3t-in-list", "s3cr3t-in-string"} {
		e.addSecret(s)
	}
	created := e.createNode(map[string]any{"driver_info": driverInfo,
		"instance_info": map[string]any{"image_source": "http://x/img", "nested": map[string]any{"token": "s3cr3t-ii"}}})
	e.addSecret("s3cr3t-ii")
	uuid := created.str("uuid")
	di := created.j["driver_info"].(map[string]any)
	if di["ipmi_password"] != Masked || di["x"].(map[string]any)["password"] != Masked {
		t.Errorf("create answer driver_info = %v, want masked", di)
	}
	if di["x"].(map[string]any)["user"] != "visible-user" {
		t.Errorf("a non-secret nested value was masked: %v", di["x"])
	}
	patched := e.must(200, e.do("PATCH", "/v1/nodes/"+uuid, []any{
		map[string]any{"op": "add", "path": "/driver_info/y", "value": map[string]any{"bmc_password": "s3cr3t-patched"}},
	}), "patch")
	e.addSecret("s3cr3t-patched")
	if got := patched.j["driver_info"].(map[string]any)["y"].(map[string]any)["bmc_password"]; got != Masked {
		t.Errorf("PATCH answer y.bmc_password = %v", got)
	}
	err := e.st.Update(context.Background(), func(tx store.Tx) error {
		n, err := tx.Node(uuid)
		if err != nil {
			return err
		}
		msg := "power failed: ipmitool -I lanplus -U admin --password s3cr3t-history exit 1"
		n.LastError = &msg
		return tx.PutNode(n)
	})
	if err != nil {
		t.Fatal(err)
	}
	e.addSecret("s3cr3t-history")
	for _, path := range []string{
		"/v1/nodes/" + uuid, "/v1/nodes/detail", "/v1/nodes/" + uuid + "?fields=driver_info,instance_info,last_error",
		"/v1/nodes?fields=uuid,driver_info,last_error", "/v1/nodes/" + uuid + "/history", "/v1/nodes/" + uuid + "/history?detail=true",
	} {
		r := e.must(200, e.do("GET", path, nil), path)
		if !strings.Contains(string(r.raw), Masked) {
			t.Errorf("GET %s shows no mask: %.300s", path, r.raw)
		}
	}
	e.version = "1.32"
	tgt := e.must(201, e.do("POST", "/v1/volume/targets", map[string]any{"node_uuid": uuid, "volume_type": "iscsi",
		"volume_id": "v1", "boot_index": 0, "properties": map[string]any{"auth_password": "s3cr3t-target", "target_iqn": "iqn.x"}}), "target")
	e.addSecret("s3cr3t-target")
	e.must(200, e.do("GET", "/v1/volume/targets/"+tgt.str("uuid"), nil), "target get")
	e.must(200, e.do("GET", "/v1/volume/targets?detail=true", nil), "target list")
}
