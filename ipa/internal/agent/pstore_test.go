package agent

import (
	"os"
	"path/filepath"
	"testing"
)

// erase_pstore empties every mounted pstore (found in /proc/mounts) and
// succeeds without one.
func TestErasePstore(t *testing.T) {
	root := t.TempDir()
	store := filepath.Join(t.TempDir(), "pstore")
	for _, f := range []string{"dmesg-efi-1", "dmesg-efi-2", "console-ramoops-0"} {
		if err := os.MkdirAll(store, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(store, f), []byte("panic: previous tenant"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	mounts := "sysfs /sys sysfs rw 0 0\npstore " + store + " pstore rw,nosuid,nodev,noexec 0 0\n"
	if err := os.WriteFile(filepath.Join(root, "proc/mounts"), []byte(mounts), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{APIURLs: []string{"http://127.0.0.1:1"}, MACs: []string{"52:54:00:12:34:56"}, AdvertiseHost: "127.0.0.1",
		Inventory: fakeInventory, Power: nopPower{}, ProcRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.erasePstore(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(store); len(left) != 0 {
		t.Errorf("pstore still holds %d records", len(left))
	}
	// No pstore mounted: nothing to erase, not an error.
	if err := os.WriteFile(filepath.Join(root, "proc/mounts"), []byte("sysfs /sys sysfs rw 0 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.erasePstore(); err != nil {
		t.Errorf("without a pstore: %v", err)
	}
}
