package e2e

// TestQEMUUEFIHTTPBoot: UEFI HTTP boot end to end (issue 24). One OVMF
// machine (TCG) whose NIC has no iPXE option ROM and whose firmware has
// PXE off (lab.MachineConfig.HTTPBoot), so that its network boot is
// OVMF's own HTTP boot client: it asks DHCP as an HTTPClient, ferric's
// full DHCP answers with the URL of snponly.efi on the conductor's HTTP
// port (--firmware-dir), the firmware downloads and starts that iPXE,
// which chains to the conductor's boot script and the deploy ramdisk,
// whose agent posts its inventory: the node is inspected, with no TFTP in
// the path. Then a ramdisk deploy of a live kernel and initramfs: the
// conductor downloads them, and the machine HTTP-boots into iPXE again,
// whose script for the active node boots the conductor's copies
// (/boot/instance/), not the image server's URLs. Driver redfish (the
// lab's emulator), boot interface ipxe.

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/lab"
)

// qemuEnvHTTPBoot is set in the child of TestQEMUUEFIHTTPBoot.
const qemuEnvHTTPBoot = "FERRIC_E2E_QEMU_HTTPBOOT"

// TestQEMUUEFIHTTPBoot inspects one OVMF machine whose firmware boots the
// deploy ramdisk's chain over UEFI HTTP boot from ferric's DHCP answer.
func TestQEMUUEFIHTTPBoot(t *testing.T) {
	if dir := os.Getenv(qemuEnvChild); dir != "" {
		qemuHTTPBootChild(t, dir)
		return
	}
	qemuParent(t, "TestQEMUUEFIHTTPBoot", qemuEnvHTTPBoot+"=1")
}

func qemuHTTPBootChild(t *testing.T, dir string) {
	const snp = "/usr/lib/ipxe/snponly.efi"
	if _, err := os.Stat(snp); err != nil {
		t.Skipf("skipping: no %s (package ipxe; .ci/deps.sh)", snp)
	}
	m := &qemuMachine{name: "vm0", mac: "52:54:00:e2:e0:41", firmware: "uefi"}
	startRedfishMachine(t, m, lab.MachineConfig{Dir: filepath.Join(dir, "vm"), Net: "tap:tap0",
		DiskSizeMiB: qemuDiskMiB, Firmware: "uefi", HTTPBoot: true})
	base := startQEMUConductor(t, dir, qemuBridgeIP, &qemuConductor{extra: []string{"--firmware-dir", filepath.Dir(snp)}})
	c := client{t, base}
	inspectUEFIRedfish(t, c, m, 5*time.Minute, "UEFI HTTP boot")

	// The firmware's own HTTP boot fetched iPXE (the NIC has no ROM and
	// PXE is off): OVMF's console says so, then iPXE's banner follows.
	firmwareChainedIPXE(t, m, "Start HTTP Boot over IPv4", "Start PXE over")
	if t.Failed() {
		return
	}

	// Deploy: a ramdisk deploy of a live kernel and initramfs, which the
	// conductor downloads and serves itself; the machine HTTP-boots into
	// iPXE again, whose script for the active node boots those copies.
	kernel := liveKernel(t)
	initrd := liveInitramfs(t, dir)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/vmlinuz":
			http.ServeFile(w, r, kernel)
		case "/initrd":
			http.ServeFile(w, r, initrd)
		default:
			http.NotFound(w, r)
		}
	}))
	defer files.Close()
	c.do("PATCH", "/v1/nodes/vm0", []map[string]any{
		{"op": "replace", "path": "/deploy_interface", "value": "ramdisk"},
		{"op": "add", "path": "/automated_clean", "value": false},
		{"op": "add", "path": "/instance_info/kernel", "value": files.URL + "/vmlinuz"},
		{"op": "add", "path": "/instance_info/ramdisk", "value": files.URL + "/initrd"},
		{"op": "add", "path": "/instance_info/kernel_append_params", "value": "console=ttyS0,115200n8 panic=0 ferric.live=1"}}, 200)
	c.do("PUT", "/v1/nodes/vm0/states/provision", map[string]any{"target": "provide"}, 202)
	c.waitState("vm0", "available", time.Minute)
	t0 := time.Now()
	c.do("PUT", "/v1/nodes/vm0/states/provision", map[string]any{"target": "active"}, 202)
	c.waitState("vm0", "active", 2*time.Minute)
	b := waitSerial(t, m.q, 5*time.Minute, "the live kernel", liveMarker, "ferric.live=1")
	if s := string(b); !strings.Contains(s, base+"/boot/instance/") || strings.Contains(s, files.URL) {
		t.Errorf("the live kernel came up, but not from the conductor's copies:\n%s", tail(b, 4000))
	}
	t.Logf("phase ramdisk deploy over UEFI HTTP boot and iPXE: live kernel up %.1fs after the deploy request", time.Since(t0).Seconds())
}
