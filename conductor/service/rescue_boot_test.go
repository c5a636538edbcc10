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

// TestBootForRescue: a node rescuing network-boots its rescue kernel and
// ramdisk, not the deploy ones; without them it boots nothing, named; a
// rescued node boots nothing from the network.
func TestBootForRescue(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := &bootHosts{st: st, publicURL: "http://10.99.0.1:6385"}
	const uuid = "91111111-2222-3333-4444-555555555559"
	mac, _ := net.ParseMAC("52:54:00:aa:bb:cd")
	put := func(state string, di store.Object) {
		t.Helper()
		if err := st.Update(context.Background(), func(tx store.Tx) error {
			n, err := tx.Node(uuid)
			if err != nil {
				n = &store.Node{UUID: uuid}
				if err := tx.PutPort(&store.Port{UUID: "a1111111-2222-3333-4444-555555555559", NodeUUID: uuid, Address: mac.String(), PXEEnabled: true}); err != nil {
					return err
				}
			}
			n.ProvisionState, n.DriverInfo = state, di
			return tx.PutNode(n)
		}); err != nil {
			t.Fatal(err)
		}
	}
	both := store.Object{"deploy_kernel": "dk", "deploy_ramdisk": "dr", "rescue_kernel": "rk", "rescue_ramdisk": "http://images/rr"}
	for _, state := range []string{"rescuing", "rescue wait"} {
		put(state, both)
		a, err := h.BootFor(context.Background(), mac)
		if err != nil || a.Kind != ipxe.ActionDeploy || a.Ramdisk.KernelURL != "http://10.99.0.1:6385/boot/files/rk" || a.Ramdisk.InitrdURL != "http://images/rr" {
			t.Errorf("BootFor in %s = %+v, %v; want the rescue kernel and ramdisk", state, a, err)
		}
	}
	put("rescue wait", store.Object{"deploy_kernel": "dk", "deploy_ramdisk": "dr"})
	if a, _ := h.BootFor(context.Background(), mac); a.Kind != ipxe.ActionUnknown || !strings.Contains(a.Message, "rescue_kernel/rescue_ramdisk") {
		t.Errorf("without a rescue ramdisk: %+v", a)
	}
	put("rescue", both)
	if a, _ := h.BootFor(context.Background(), mac); a.Kind != ipxe.ActionUnknown {
		t.Errorf("rescued node boots %v", a.Kind)
	}
}
