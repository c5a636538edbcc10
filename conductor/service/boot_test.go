package service

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferric-metal/ferric/conductor/driver"
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

	// A port with pxe_enabled false gets addresses only when its node
	// boots the ramdisk from virtual media (its agent needs them).
	h.mediaBoot = map[string]bool{"redfish-virtual-media": true}
	for _, tc := range []struct {
		boot string
		want bool
	}{{"ipxe", false}, {"redfish-virtual-media", true}} {
		err := st.Update(context.Background(), func(tx store.Tx) error {
			p, err := tx.Port("a1111111-2222-3333-4444-555555555551")
			if err != nil {
				return err
			}
			p.PXEEnabled = false
			if err := tx.PutPort(p); err != nil {
				return err
			}
			n, err := tx.Node(uuid)
			if err != nil {
				return err
			}
			n.Interfaces = map[string]string{"boot": tc.boot}
			return tx.PutNode(n)
		})
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := h.PXEEnabled(context.Background(), mac); ok != tc.want {
			t.Errorf("pxe_enabled false port of a %s node: known %v, want %v", tc.boot, ok, tc.want)
		}
	}
	// The virtual media ISO's parameters: the network boot's without
	// BOOTIF, files of the boot dir, URLs other than http(s) refused
	// (TestVmediaRamdiskFromURLs downloads http ones).
	rdf := h.vmediaRamdisk("/srv/boot")
	dn := &driver.Node{UUID: uuid, DriverInfo: map[string]any{"deploy_kernel": "ferric-deploy.kernel", "deploy_ramdisk": "../x/initrd"}}
	rd, err := rdf(dn, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "ipa-api-url=http://10.99.0.1:6385 ipa-inspection-callback-url=http://10.99.0.1:6385/v1/continue_inspection console=ttyS0,115200n8 ipa-debug=1 boot_method=vmedia"
	if rd.Kernel != "/srv/boot/ferric-deploy.kernel" || rd.Initrd != "/srv/boot/x/initrd" || rd.Params != want {
		t.Errorf("vmedia ramdisk = %+v, want params %q", rd, want)
	}
	// An operator's boot_method gives way to the virtual media one.
	dn.DriverInfo["kernel_append_params"] = "boot_method=pxe nofb"
	if rd, err := rdf(dn, false); err != nil || !strings.HasSuffix(rd.Params, " nofb boot_method=vmedia") || strings.Contains(rd.Params, "boot_method=pxe") {
		t.Errorf("vmedia ramdisk with kernel_append_params boot_method=pxe: %+v, %v", rd, err)
	}
	dn.DriverInfo["deploy_ramdisk"] = "ftp://images/ramdisk"
	if _, err := rdf(dn, false); err == nil || !strings.Contains(err.Error(), "takes an http(s) URL or a file") {
		t.Errorf("vmedia ramdisk from an ftp URL: %v", err)
	}
}
