package agent

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferric-metal/ferric/ipa/protocol"
	"github.com/ferric-metal/ferric/ipa/swraid"
)

// TestSoftwareRAIDRootDevice: with an md array over partitions of sda and
// sdb (a fake sysfs), the array replaces its holder disks among the
// devices the agent writes to and erases, and is the root device (the
// smallest of at least 4 GiB).
func TestSoftwareRAIDRootDevice(t *testing.T) {
	sys := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(sys, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sys, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("block/md0/size", "10485760\n") // 5 GiB
	write("block/md0/md/level", "raid1\n")
	for _, d := range []string{"sda", "sdb"} {
		if err := os.MkdirAll(filepath.Join(sys, "block/md0/slaves", d+"1"), 0o755); err != nil {
			t.Fatal(err)
		}
		write("devices/block/"+d+"/"+d+"1/start", "2048\n")
		if err := os.MkdirAll(filepath.Join(sys, "class/block"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(sys, "devices/block", d, d+"1"), filepath.Join(sys, "class/block", d+"1")); err != nil {
			t.Fatal(err)
		}
	}
	a, err := New(Config{APIURLs: []string{"http://127.0.0.1:1"}, MACs: []string{"52:54:00:12:34:56"}, AdvertiseHost: "127.0.0.1",
		Inventory: fakeInventory, Power: nopPower{}, SoftwareRAID: &swraid.Manager{Sys: sys, Dev: "/dev"}})
	if err != nil {
		t.Fatal(err)
	}
	inv, _ := fakeInventory(context.Background())
	var names []string
	for _, d := range a.withArrays(inv.Disks) {
		names = append(names, d.Name)
	}
	if want := []string{"/dev/sdc", "/dev/md0"}; len(names) != 2 || names[0] != want[0] || names[1] != want[1] {
		t.Errorf("withArrays = %v, want %v", names, want)
	}
	root, err := a.rootDevice(context.Background(), nodeView{})
	if err != nil || root.Name != "/dev/md0" || root.Size != 5<<30 {
		t.Errorf("rootDevice = %+v, %v; want /dev/md0 of 5 GiB", root, err)
	}
	// The raid steps are offered as clean (delete, create) and deploy
	// (apply) steps of the raid interface, as IPA's.
	offered := map[string]bool{}
	for _, k := range []protocol.StepKind{protocol.KindClean, protocol.KindDeploy} {
		for _, s := range steps(k) {
			if s.Interface == "raid" {
				offered[string(k)+"."+s.Step] = true
			}
		}
	}
	for _, want := range []string{"clean.delete_configuration", "clean.create_configuration", "deploy.apply_configuration"} {
		if !offered[want] {
			t.Errorf("step %s not offered (%v)", want, offered)
		}
	}
}
