package vmedia

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/images/iso"
)

// recordMedia is a fake BMC that remembers what each node has inserted.
type recordMedia struct {
	mu  sync.Mutex
	url map[string]string
}

func (m *recordMedia) InsertMedia(_ context.Context, n *driver.Node, _, url string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.url[n.UUID] = url
	return nil
}

func (m *recordMedia) EjectMedia(_ context.Context, n *driver.Node, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.url, n.UUID)
	return nil
}

// TestNetworkDataISO checks that a node's network_data goes on its ISO
// (read back over the Boot's HTTP handler, as the BMC fetches it) at
// openstack/latest/network_data.json, labelled config-2; that nodes with
// different network data get their own ISOs and nodes without any share
// the FERRIC_BOOT one.
func TestNetworkDataISO(t *testing.T) {
	for _, p := range []string{"xorriso", "grub-mkstandalone", "mkfs.vfat", "mcopy"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("skipping: %s not installed (.ci/deps.sh)", p)
		}
	}
	if _, err := os.Stat("/usr/lib/ISOLINUX/isolinux.bin"); err != nil {
		t.Skip("skipping: no ISOLINUX (.ci/deps.sh)")
	}
	ctx := context.Background()
	dir := t.TempDir()
	kernel, initrd := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd")
	for _, f := range []string{kernel, initrd} {
		if err := os.WriteFile(f, []byte(filepath.Base(f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	media := &recordMedia{url: map[string]string{}}
	b, err := New(Config{Media: media, Dir: filepath.Join(dir, "iso"), Log: quiet(),
		Ramdisk: func(*driver.Node, bool) (Ramdisk, error) {
			return Ramdisk{Kernel: kernel, Initrd: initrd, Params: "console=ttyS0 boot_method=vmedia"}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.StripPrefix("/boot/vmedia", b)}
	go srv.Serve(ln)
	defer srv.Close()
	b.SetBaseURL("http://" + ln.Addr().String() + "/boot/vmedia")

	static := func(ip string) map[string]any {
		return map[string]any{
			"links":    []any{map[string]any{"id": "port0", "type": "phy", "ethernet_mac_address": "52:54:00:12:34:56"}},
			"networks": []any{map[string]any{"id": "net0", "type": "ipv4", "link": "port0", "ip_address": ip, "netmask": "255.255.255.0"}},
			"services": []any{},
		}
	}
	nodes := []struct {
		uuid      string
		nd        map[string]any
		wantLabel string
	}{
		{"8c1c2e2a-0000-4000-8000-000000000011", static("10.99.0.11"), iso.ConfigDriveLabel},
		{"8c1c2e2a-0000-4000-8000-000000000012", static("10.99.0.12"), iso.ConfigDriveLabel},
		{"8c1c2e2a-0000-4000-8000-000000000013", nil, iso.Label},
		{"8c1c2e2a-0000-4000-8000-000000000014", map[string]any{}, iso.Label},
	}
	images := map[string]string{} // node -> image file on disk
	for _, nd := range nodes {
		n := &driver.Node{UUID: nd.uuid, NetworkData: nd.nd, Properties: map[string]any{},
			DriverInfo: map[string]any{"deploy_kernel": kernel, "deploy_ramdisk": initrd}}
		if _, err := b.PrepareRamdisk(ctx, n, false); err != nil {
			t.Fatalf("node %s: %v", nd.uuid, err)
		}
		img := fetchISO(t, media.url[nd.uuid])
		b.mu.Lock()
		images[nd.uuid] = b.byName[b.byNode[nd.uuid]]
		b.mu.Unlock()
		if got := volumeID(t, img); got != nd.wantLabel {
			t.Errorf("node %s: ISO label %q, want %q", nd.uuid, got, nd.wantLabel)
		}
		got, err := isoExtract(img, "/"+iso.NetworkDataPath)
		if len(nd.nd) == 0 {
			if err == nil {
				t.Errorf("node %s without network_data: the ISO has %s", nd.uuid, iso.NetworkDataPath)
			}
			continue
		}
		if err != nil {
			t.Fatalf("node %s: %v", nd.uuid, err)
		}
		var back map[string]any
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("node %s: %s: %v", nd.uuid, iso.NetworkDataPath, err)
		}
		want, _ := json.Marshal(nd.nd)
		var wantBack map[string]any
		_ = json.Unmarshal(want, &wantBack)
		if !reflect.DeepEqual(back, wantBack) {
			t.Errorf("node %s: %s = %s, want %s", nd.uuid, iso.NetworkDataPath, got, want)
		}
	}
	if images[nodes[0].uuid] == images[nodes[1].uuid] {
		t.Errorf("two nodes with different network_data share the ISO %s", images[nodes[0].uuid])
	}
	if images[nodes[2].uuid] != images[nodes[3].uuid] {
		t.Errorf("nodes without network_data got different ISOs: %s, %s", images[nodes[2].uuid], images[nodes[3].uuid])
	}
	if b.Builds() != 3 {
		t.Errorf("%d builds, want 3 (two nodes' own, one shared)", b.Builds())
	}
	// The same network data again (a reboot within a step): from the cache.
	n := &driver.Node{UUID: nodes[0].uuid, NetworkData: static("10.99.0.11"), DriverInfo: map[string]any{"deploy_kernel": kernel, "deploy_ramdisk": initrd}}
	if _, err := b.PrepareRamdisk(ctx, n, false); err != nil {
		t.Fatal(err)
	}
	if b.Builds() != 3 {
		t.Errorf("the same network data built again: %d builds", b.Builds())
	}
	// Clean-up removes a node's own ISO (its network data does not
	// linger); the shared one stays cached while unpublished.
	for _, nd := range nodes {
		if err := b.CleanUpRamdisk(ctx, &driver.Node{UUID: nd.uuid}); err != nil {
			t.Fatal(err)
		}
	}
	for i, nd := range nodes {
		_, err := os.Stat(images[nd.uuid])
		if gone := err != nil; gone != (i < 2) {
			t.Errorf("node %s: image %s removed %v after the clean-up, want %v", nd.uuid, images[nd.uuid], gone, i < 2)
		}
	}
}

// fetchISO downloads a published ISO as the BMC does.
func fetchISO(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	f, err := os.CreateTemp(t.TempDir(), "*.iso")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

func isoExtract(img, name string) ([]byte, error) {
	dst := filepath.Join(filepath.Dir(img), "extract-"+filepath.Base(name))
	if out, err := exec.Command("xorriso", "-osirrox", "on", "-indev", img, "-extract", name, dst).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("extract %s: %w: %s", name, err, out)
	}
	return os.ReadFile(dst)
}

func volumeID(t *testing.T, img string) string {
	t.Helper()
	out, err := exec.Command("xorriso", "-indev", img, "-pvd_info").CombinedOutput()
	if err != nil {
		t.Fatalf("pvd_info: %v: %s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "Volume Id" {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no Volume Id in pvd_info:\n%s", out)
	return ""
}
