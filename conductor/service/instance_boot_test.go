package service

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/pxe/ipxe"
)

// TestBootForInstance checks the network boot of an active ramdisk
// deploy's instance: its ISO or its kernel and ramdisk when the network
// boot set it up, the local disk otherwise (a direct deploy, or an
// instance on virtual media).
func TestBootForInstance(t *testing.T) {
	st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := &bootHosts{st: st, publicURL: "http://10.99.0.1:6385", mediaBoot: map[string]bool{"redfish-virtual-media": true}}
	const uuid = "91111111-2222-3333-4444-555555555552"
	mac, _ := net.ParseMAC("52:54:00:aa:bb:dd")
	if err := st.Update(context.Background(), func(tx store.Tx) error {
		return tx.PutPort(&store.Port{UUID: "a1111111-2222-3333-4444-555555555552", NodeUUID: uuid, Address: mac.String(), PXEEnabled: true})
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		dii, ii   store.Object
		want      ipxe.ActionKind
		iso, args string
	}{
		{"direct deploy", store.Object{}, store.Object{"image_source": "http://x/disk.img"}, ipxe.ActionLocalDisk, "", ""},
		{"iso over ipxe", store.Object{driver.InstanceBootKey: "ipxe"}, store.Object{"boot_iso": "http://x/live.iso"}, ipxe.ActionInstance, "http://x/live.iso", ""},
		{"kernel over pxe", store.Object{driver.InstanceBootKey: "pxe"},
			store.Object{"kernel": "http://x/k", "ramdisk": "http://x/r", "kernel_append_params": "console=ttyS0 quiet"}, ipxe.ActionInstance, "", "console=ttyS0 quiet"},
		{"instance on virtual media", store.Object{driver.InstanceBootKey: "redfish-virtual-media"}, store.Object{"boot_iso": "http://x/live.iso"}, ipxe.ActionLocalDisk, "", ""},
		{"instance info gone bad", store.Object{driver.InstanceBootKey: "ipxe"}, store.Object{"kernel": "http://x/k"}, ipxe.ActionUnknown, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := st.Update(context.Background(), func(tx store.Tx) error {
				n, err := tx.Node(uuid)
				if err != nil {
					n = &store.Node{UUID: uuid, ProvisionState: "active", DriverInfo: store.Object{}}
				}
				n.DriverInternalInfo, n.InstanceInfo = tc.dii, tc.ii
				return tx.PutNode(n)
			}); err != nil {
				t.Fatal(err)
			}
			a, err := h.BootFor(context.Background(), mac)
			if err != nil || a.Kind != tc.want {
				t.Fatalf("BootFor = %v, %v; want kind %v", a.Kind, err, tc.want)
			}
			if a.Kind != ipxe.ActionInstance {
				return
			}
			if a.Instance.ISOURL != tc.iso || ipxe.JoinArgs(a.Instance.Args) != tc.args {
				t.Errorf("instance = %+v, want ISO %q args %q", a.Instance, tc.iso, tc.args)
			}
		})
	}
}
