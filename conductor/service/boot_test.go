package service

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/pxe/ipxe"
)

func TestBootFor(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	extra, _ := ipxe.ParseParam("ipa-debug=1")
	h := &bootHosts{st: st, publicURL: "http://10.99.0.1:6385", extraArgs: []ipxe.Param{extra}}
	const uuid = "91111111-2222-3333-4444-555555555551"
	mac, _ := net.ParseMAC("52:54:00:aa:bb:cc")
	setState := func(state string) {
		t.Helper()
		err := st.Update(context.Background(), func(tx store.Tx) error {
			n, err := tx.Node(uuid)
			if err != nil {
				n = &store.Node{UUID: uuid, DriverInfo: store.Object{"deploy_kernel": "ferric-deploy.kernel",
					"deploy_ramdisk": "http://images/ramdisk", "kernel_append_params": "nofb nomodeset"}}
				if err := tx.PutPort(&store.Port{UUID: "a1111111-2222-3333-4444-555555555551", NodeUUID: uuid,
					Address: "52:54:00:aa:bb:cc", PXEEnabled: true}); err != nil {
					return err
				}
			}
			n.ProvisionState = state
			return tx.PutNode(n)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		state    string
		kind     ipxe.ActionKind
		callback bool
	}{
		{"deploying", ipxe.ActionDeploy, false}, {"wait call-back", ipxe.ActionDeploy, false},
		{"clean wait", ipxe.ActionDeploy, false}, {"inspect wait", ipxe.ActionDeploy, true},
		{"active", ipxe.ActionLocalDisk, false}, {"available", ipxe.ActionUnknown, false},
		{"manageable", ipxe.ActionUnknown, false},
	}
	for _, tc := range tests {
		t.Run(tc.state, func(t *testing.T) {
			setState(tc.state)
			a, err := h.BootFor(context.Background(), mac)
			if err != nil || a.Kind != tc.kind {
				t.Fatalf("BootFor in %s = %v, %v; want kind %v", tc.state, a.Kind, err, tc.kind)
			}
			if a.Kind != ipxe.ActionDeploy {
				return
			}
			rd := a.Ramdisk
			if rd.KernelURL != "http://10.99.0.1:6385/boot/files/ferric-deploy.kernel" || rd.InitrdURL != "http://images/ramdisk" || rd.APIURL != "http://10.99.0.1:6385" {
				t.Errorf("ramdisk = %+v", rd)
			}
			if (rd.InspectionCallbackURL != "") != tc.callback {
				t.Errorf("inspection callback %q in %s", rd.InspectionCallbackURL, tc.state)
			}
			var args []string
			for _, p := range rd.ExtraArgs {
				args = append(args, p.Key)
			}
			if got := strings.Join(args, " "); got != "ipa-debug nofb nomodeset" {
				t.Errorf("extra args %q, want conductor's then the node's", got)
			}
		})
	}
	other, _ := net.ParseMAC("52:54:00:00:00:01")
	if a, _ := h.BootFor(context.Background(), other); a.Kind != ipxe.ActionUnknown {
		t.Errorf("unknown MAC got %v", a.Kind)
	}
	if ok, _ := h.PXEEnabled(context.Background(), mac); !ok {
		t.Error("enrolled pxe_enabled port not PXE-enabled")
	}
	if ok, _ := h.PXEEnabled(context.Background(), other); ok {
		t.Error("unknown MAC PXE-enabled")
	}
}
