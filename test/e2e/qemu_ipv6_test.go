package e2e

// TestQEMUIPv6Only: IPv6 provisioning end to end (issue 24). One OVMF
// machine (TCG) on an IPv6-only lab network (lab.SetIPv6Only: the bridge
// has fd00:99::1/64 and no IPv4) whose NIC boots UEFI PXE over IPv6
// (lab.MachineConfig.PXEIPv6). The conductor listens on [fd00:99::1] only
// and runs --dhcp6-range: its router advertisements carry the managed
// flag and the prefix, its DHCPv6 server answers the firmware's PXE
// Solicit with tftp://[fd00:99::1]/snponly.efi, served by ferric's TFTP
// over IPv6, and iPXE's own DHCPv6 (user class iPXE) with the boot script
// http://[fd00:99::1]:port/boot/boot.ipxe. The deploy ramdisk's agent,
// whose ipa-api-url has a bracketed IPv6 address, configures its link by
// DHCPv6 and posts its inventory: the node is inspected. Then a deploy of
// the test OS from the conductor's image store (the agent downloads it
// over IPv6) with a config drive, and the test OS boots from the disk.

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/lab"
)

// qemuEnvIPv6 is set in the child of TestQEMUIPv6Only.
const qemuEnvIPv6 = "FERRIC_E2E_QEMU_IPV6"

const qemuBridgeIP6 = "fd00:99::1"

// TestQEMUIPv6Only inspects and deploys one OVMF machine on an IPv6-only
// network.
func TestQEMUIPv6Only(t *testing.T) {
	if dir := os.Getenv(qemuEnvChild); dir != "" {
		if os.Getenv(qemuEnvIPv6) != "" {
			qemuIPv6Child(t, dir)
		}
		return
	}
	qemuParent(t, "TestQEMUIPv6Only", qemuEnvIPv6+"=1")
}

func qemuIPv6Child(t *testing.T, dir string) {
	if _, err := os.Stat("/usr/lib/ipxe/snponly.efi"); err != nil {
		t.Skip("skipping: no /usr/lib/ipxe/snponly.efi (package ipxe; .ci/deps.sh)")
	}
	ctx := context.Background()
	if err := lab.SetIPv6Only(ctx, "", "br0", qemuBridgeIP6+"/64"); err != nil {
		t.Fatal(err)
	}
	m := &qemuMachine{name: "vm0", mac: "52:54:00:e2:e0:61", firmware: "uefi"}
	startRedfishMachine(t, m, lab.MachineConfig{Dir: filepath.Join(dir, "vm"), Net: "tap:tap0",
		DiskSizeMiB: qemuDiskMiB, Firmware: "uefi", PXEIPv6: true})
	// The API on [fd00:99::1]:port.
	base := startQEMUConductor(t, dir, qemuBridgeIP6, &qemuConductor{noDHCP: true,
		extra: []string{"--dhcp-interface", "br0", "--dhcp6-range", "fd00:99::100-fd00:99::1ff",
			"--tftp-listen", net.JoinHostPort(qemuBridgeIP6, "69"), "--tftp-root", "/usr/lib/ipxe"}})
	c := client{t, base}
	inspectUEFIRedfish(t, c, m, 6*time.Minute, "IPv6 (UEFI PXEv6, TFTP, iPXE DHCPv6, agent DHCPv6)")
	serial := firmwareChainedIPXE(t, m, "Start PXE over IPv6", "Start PXE over IPv4")
	if !strings.Contains(serial, "ipa-api-url="+base) {
		t.Errorf("the ramdisk's command line has no ipa-api-url=%s:\n%s", base, tail([]byte(serial), 4000))
	}
	if t.Failed() {
		return
	}

	// Deploy: the test OS from the conductor's image store (qcow2, its
	// checksum from the store) with a config drive. The machine boots the
	// ramdisk over the same IPv6 path, the agent downloads the image from
	// http://[fd00:99::1]:port and writes it, and the machine boots the
	// test OS from its disk, which prints the config drive's identity.
	imageID := qemuUpload(t, base, "testos-qcow2", "qcow2", filepath.Join(dir, "testos.qcow2"))
	c.do("PATCH", "/v1/nodes/vm0", []map[string]any{
		{"op": "add", "path": "/automated_clean", "value": false},
		{"op": "add", "path": "/instance_info/image_source", "value": imageID}}, 200)
	c.do("PUT", "/v1/nodes/vm0/states/provision", map[string]any{"target": "provide"}, 202)
	c.waitState("vm0", "available", time.Minute)
	t0 := time.Now()
	hostname := "vm0-ipv6"
	c.doVersion("1.56", "PUT", "/v1/nodes/vm0/states/provision", map[string]any{"target": "active",
		"configdrive": map[string]any{"meta_data": map[string]any{"hostname": hostname}}}, 202)
	c.waitState("vm0", "active", 6*time.Minute)
	tActive := time.Now()
	want := "ferric-testos: booted uuid=" + m.uuid + " hostname=" + hostname
	waitSerial(t, m.q, 4*time.Minute, "the deployed test OS", want)
	t.Logf("phase deploy over IPv6 (image from the store at %s): active %.1fs after the request, test OS booted %.1fs after active",
		base, tActive.Sub(t0).Seconds(), time.Since(tActive).Seconds())
}
