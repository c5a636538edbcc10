package e2e

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/images/iso"
	"github.com/ferric-metal/ferric/test/harness"
	"github.com/ferric-metal/ferric/test/lab"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// TestQEMURamdiskDeployHTTPSBoot is TestQEMURamdiskDeploy's live ISO with
// boot_interface redfish-https on one OVMF machine (TCG): the conductor
// downloads the ISO and gives the BMC its own URL as the UefiHttp
// override's HttpBootUri; the lab's emulator hands it to the machine,
// which writes it into OVMF's variable store as a URI boot option and
// BootNext (lab.SetOVMFHTTPBoot) before the start, and the firmware
// HTTP-boots the ISO (into a RAM disk) from the conductor: the live
// ISO's init shows on the console. The machine is on QEMU's user network
// (its DHCP gives the address; nothing of ferric's answers it), where the
// host's loopback is 10.0.2.2, the conductor's public address.
func TestQEMURamdiskDeployHTTPSBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: boots a QEMU machine; run without -short")
	}
	for _, p := range []string{"xorriso", "grub-mkstandalone", "mkfs.vfat", "mcopy", "qemu-system-x86_64", "cpio"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("skipping: %s not installed (.ci/deps.sh)", p)
		}
	}
	for _, f := range []string{"/usr/lib/ISOLINUX/isolinux.bin", lab.OVMFCode, lab.OVMFVars} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("skipping: %v (.ci/deps.sh)", err)
		}
	}
	kernel := liveKernel(t)
	ctx := context.Background()
	dir := workDir(t, "ferric-e2e-https-", "")
	img, err := (&iso.Builder{Dir: filepath.Join(dir, "live")}).Build(ctx, iso.Input{Kernel: kernel, Ramdisk: liveInitramfs(t, dir),
		Params: "console=ttyS0,115200n8 panic=0 ferric.live=1"})
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(img)
	t.Logf("live ISO %.1f MiB", float64(fi.Size())/(1<<20))
	isoSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, img) }))
	defer isoSrv.Close()

	// The conductor on a fixed loopback port, published as 10.0.2.2 (the
	// host's loopback as QEMU's user network shows it to the guest).
	port := harness.FreePort(t)
	public := "http://10.0.2.2:" + strconv.Itoa(port)
	base, stop := runConductor(t, service.Config{APIListen: "127.0.0.1:" + strconv.Itoa(port), PublicURL: public,
		StateDir: filepath.Join(dir, "state"), Hostname: "e2e"})
	defer stop()
	c := client{t, base}

	q, err := lab.NewQEMU(lab.MachineConfig{Name: "vm0", Dir: filepath.Join(dir, "vm"), DiskSizeMiB: 8, MemMiB: 512,
		Net: "slirp", Firmware: "uefi", HTTPBoot: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.PowerOff(context.Background()) })
	bmc := redfish.New(redfish.Config{Username: "admin", Password: "pw", Machines: map[string]redfish.Machine{"vm0": q},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	rf := httptest.NewServer(bmc)
	defer rf.Close()

	c.doVersion("1.96", "POST", "/v1/nodes", map[string]any{
		"driver": "redfish", "name": "https-live", "boot_interface": "redfish-https", "deploy_interface": "ramdisk",
		"automated_clean": false, "properties": map[string]any{"capabilities": "boot_mode:uefi"},
		"driver_info": map[string]any{"redfish_address": rf.URL, "redfish_system_id": "/redfish/v1/Systems/vm0",
			"redfish_username": "admin", "redfish_password": "pw",
			"deploy_kernel": "ferric-deploy.kernel", "deploy_ramdisk": "ferric-deploy.initramfs"},
		"instance_info": map[string]any{"boot_iso": isoSrv.URL + "/live.iso"},
	}, 201)
	c.do("PUT", "/v1/nodes/https-live/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState("https-live", "manageable", time.Minute)
	c.do("PUT", "/v1/nodes/https-live/states/provision", map[string]any{"target": "provide"}, 202)
	c.waitState("https-live", "available", time.Minute)
	t0 := time.Now()
	c.do("PUT", "/v1/nodes/https-live/states/provision", map[string]any{"target": "active"}, 202)
	n := c.waitState("https-live", "active", 2*time.Minute)
	if n["power_state"] != "power on" {
		t.Errorf("power_state %v after the deploy", n["power_state"])
	}
	o, _ := bmc.BootOverride("vm0")
	if o.BootSourceOverrideTarget != "UefiHttp" || !strings.HasPrefix(o.HttpBootUri, public+"/boot/vmedia/") {
		t.Fatalf("boot override %+v, want UefiHttp at the conductor's public URL", o)
	}
	s := waitSerial(t, q, 5*time.Minute, "the live ISO over HTTP boot", liveMarker, "ferric.live=1")
	if !strings.Contains(string(s), "Start HTTP Boot over IPv4") || !strings.Contains(string(s), o.HttpBootUri) {
		t.Errorf("the live ISO came up, but the console shows no HTTP boot of %s:\n%s", o.HttpBootUri, tail(s, 3000))
	}
	t.Logf("phase live ISO up over UEFI HTTP boot: %.1fs after the deploy request", time.Since(t0).Seconds())

	c.do("PUT", "/v1/nodes/https-live/states/provision", map[string]any{"target": "deleted"}, 202)
	n = c.waitState("https-live", "available", 2*time.Minute)
	if n["power_state"] != "power off" {
		t.Errorf("power_state %v after undeploy", n["power_state"])
	}
	if resp, err := http.Get(strings.Replace(o.HttpBootUri, public, base, 1)); err != nil || resp.StatusCode != 404 {
		t.Errorf("the ISO is still served after undeploy: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}
