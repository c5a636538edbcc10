package metal3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metal3api "github.com/metal3-io/baremetal-operator/apis/metal3.io/v1alpha1"
	"github.com/metal3-io/baremetal-operator/pkg/hardwareutils/bmc"
	"github.com/metal3-io/baremetal-operator/pkg/provisioner/ironic"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/artifacts"
	"github.com/ferric-metal/ferric/test/harness"
	"github.com/ferric-metal/ferric/test/lab"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// swraidDiskMiB is the size of each of the QEMU machine's two disks
// (sparse): the smallest that inspection takes for a root disk candidate
// (4 GiB, as IPA), so that md's first resync of the mirror is short.
const swraidDiskMiB = 4608

// TestBareMetalHostSoftwareRAID drives a BareMetalHost with
// spec.raid.softwareRAIDVolumes (one RAID-1 volume, as BMO requires for
// the first) through BMO's provisioner on a real QEMU machine (TCG) with
// two disks and a CD drive, behind the lab's Redfish emulator as a
// redfish-virtualmedia:// host: the conductor inserts the ramdisk ISO (the
// host's network data on it; the machine's network is QEMU's user-mode
// network, whose DHCP the ramdisk uses, and the conductor and the files
// listen on the host's own address, which the guest reaches through
// QEMU's NAT). Preparing runs BMO's RAID clean steps with raid_interface
// agent (BMO switches it for software RAID): the agent in the ramdisk
// builds md0 with mdadm over a holder partition on each disk. The image
// goes onto the array (root device hint /dev/md0), then the host is
// deprovisioned and deleted. It logs the time in each BareMetalHost state.
func TestBareMetalHostSoftwareRAID(t *testing.T) {
	for _, tool := range []string{lab.DefaultQEMU, "mdadm", "xorriso"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipping: %s is not installed (.ci/deps.sh installs it)", tool)
		}
	}
	hostIP := hostAddress()
	if hostIP == "" {
		t.Skip("skipping: the host has no non-loopback IPv4 address for the guest to reach through QEMU's NAT")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	dir := t.TempDir()
	swraidArtifacts(t, dir)

	// The files the host downloads: deploy kernel and ramdisk (the
	// conductor builds its ISO from them), the test OS and its checksum.
	img, err := os.ReadFile(filepath.Join(dir, "testos.raw"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(img)
	if err := os.WriteFile(filepath.Join(dir, "testos.raw.sha256"), []byte(hex.EncodeToString(sum[:])+"  testos.raw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fl, err := net.Listen("tcp", hostIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	fsrv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 10 * time.Second}
	go fsrv.Serve(fl)
	t.Cleanup(func() { fsrv.Close() })
	filesURL := "http://" + fl.Addr().String()

	// The conductor, where the guest reaches it.
	apiAddr := harness.FreeAddr(t, hostIP)
	// The agent's API, forwarded from the host's address by QEMU: the
	// agent advertises that address in its callback URL.
	agentPort, err := harness.PickPort(hostIP)
	if err != nil {
		t.Fatal(err)
	}
	base := harness.Start(t, service.Config{Hostname: "metal3-swraid", AutomatedClean: true, PowerSyncInterval: 5 * time.Second,
		APIListen: apiAddr, PublicURL: "http://" + apiAddr,
		KernelAppendParams: fmt.Sprintf("ipa-advertise-host=%s ipa-advertise-port=%d", hostIP, agentPort)}).URL

	mac := "52:54:00:6d:33:e1"
	vmDir := filepath.Join(dir, "vm")
	q, err := lab.NewQEMU(lab.MachineConfig{Name: "swraid", Dir: vmDir, MAC: mac, Net: "slirp", MemMiB: 512,
		HostFwd: []string{fmt.Sprintf("tcp:%s:%d-:9999", hostIP, agentPort)}, CDROM: true,
		Disk: filepath.Join(vmDir, "swraid-a.raw"), ExtraDisks: []string{filepath.Join(vmDir, "swraid-b.raw")}, DiskSizeMiB: swraidDiskMiB})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Save(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.PowerOff(context.Background()) })
	serialTail := func() string {
		b, _ := os.ReadFile(q.SerialLog())
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		return string(b)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("machine's serial console (tail):\n%s", serialTail())
		}
	})
	emu := redfish.New(redfish.Config{Username: "admin", Password: "pw-redfish", Machines: map[string]redfish.Machine{"m1": q},
		MediaDir: t.TempDir()})
	rf := httptest.NewServer(emu)
	t.Cleanup(rf.Close)

	env := map[string]string{"IRONIC_ENDPOINT": base + "/v1/", "METAL3_AUTH_ROOT_DIR": t.TempDir(),
		"DEPLOY_KERNEL_URL": filesURL + "/boot/ferric-deploy.kernel", "DEPLOY_RAMDISK_URL": filesURL + "/boot/ferric-deploy.initramfs"}
	provLog := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("provisioner log:\n%s", provLog.String())
		}
	})
	envMu.Lock()
	for k, v := range env {
		os.Setenv(k, v)
	}
	factory, err := ironic.NewProvisionerFactory(zap.New(zap.WriteTo(provLog)), false)
	for k := range env {
		os.Unsetenv(k)
	}
	envMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	netData := "links:\n- id: enp1s0\n  type: phy\n  ethernet_mac_address: " + mac + "\nnetworks:\n- id: provisioning\n  link: enp1s0\n  network_id: provisioning\n  type: ipv4_dhcp\nservices: []\n"
	c := &controller{t: t, factory: factory, creds: bmc.Credentials{Username: "admin", Password: "pw-redfish"},
		config:             hostConfig{userData: "#cloud-config\nhostname: metal3-swraid\n", networkData: netData},
		preprovNetworkData: netData,
		host: metal3api.BareMetalHost{
			ObjectMeta: metav1.ObjectMeta{Name: "host-swraid", Namespace: "metal3", UID: types.UID("6d657461-6c33-4000-8000-0000000000e1")},
			Spec: metal3api.BareMetalHostSpec{
				BMC: metal3api.BMCDetails{Address: "redfish-virtualmedia+http://" + strings.TrimPrefix(rf.URL, "http://") + "/redfish/v1/Systems/m1",
					CredentialsName: "bmc-credentials"},
				BootMACAddress:        mac,
				Online:                true,
				AutomatedCleaningMode: metal3api.CleaningModeMetadata,
				BootMode:              metal3api.Legacy,
				RootDeviceHints:       &metal3api.RootDeviceHints{DeviceName: "/dev/md0"},
				RAID:                  &metal3api.RAIDConfig{SoftwareRAIDVolumes: []metal3api.SoftwareRAIDVolume{{Level: "1"}}},
			},
		},
	}
	defer func() {
		var report strings.Builder
		var total time.Duration
		for _, st := range c.times {
			fmt.Fprintf(&report, "\n  %-26s %8.1fs", st.State, st.Took.Seconds())
			total += st.Took
		}
		t.Logf("software RAID host: time in each BareMetalHost state (total %.1fs):%s", total.Seconds(), report.String())
	}()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// Register, inspect, prepare (the software RAID-1): available.
	must(c.runUntil(ctx, "register+inspect+prepare", 20*time.Minute, func() bool {
		return c.host.Status.Provisioning.State == metal3api.StateAvailable
	}))
	node := nodeJSON(t, base, c.host.Status.Provisioning.ID)
	if node["raid_interface"] != "agent" {
		t.Errorf("raid_interface after preparing = %v, want agent (BMO's for software RAID)", node["raid_interface"])
	}
	rc, _ := node["raid_config"].(map[string]any)
	lds, _ := rc["logical_disks"].([]any)
	if ld, _ := firstMap(lds); len(lds) != 1 || ld["raid_level"] != "1" || ld["controller"] != "software" {
		t.Errorf("raid_config after preparing = %v, want one software RAID-1", rc)
	}
	if r := c.host.Status.Provisioning.RAID; r == nil || len(r.SoftwareRAIDVolumes) != 1 {
		t.Errorf("status.provisioning.raid after preparing: %+v", r)
	}
	for _, d := range append([]string{q.Config().Disk}, q.Config().ExtraDisks...) {
		if off, err := mdSuperblock(d); err != nil {
			t.Errorf("%s after preparing: %v", d, err)
		} else {
			t.Logf("%s: md member superblock at %d", d, off)
		}
	}

	// Provision the test OS onto the array.
	format := "raw"
	c.host.Spec.Image = &metal3api.Image{URL: filesURL + "/testos.raw", Checksum: filesURL + "/testos.raw.sha256",
		ChecksumType: metal3api.SHA256, DiskFormat: &format}
	must(c.runUntil(ctx, "provision", 20*time.Minute, func() bool {
		return c.host.Status.Provisioning.State == metal3api.StateProvisioned
	}))
	node = nodeJSON(t, base, c.host.Status.Provisioning.ID)
	if rd, _ := node["instance_info"].(map[string]any)["root_device"].(map[string]any); rd == nil || !strings.Contains(fmt.Sprint(rd["name"]), "/dev/md0") {
		t.Errorf("instance_info.root_device = %v, want BMO's hint naming /dev/md0", rd)
	}
	if rc, _ := node["raid_config"].(map[string]any); len(rc) == 0 {
		t.Errorf("raid_config after provisioning is empty")
	}
	// The image is inside the array: md's 1.2 superblock sits at the
	// start of each member, the data after it, so the image's first
	// partition (its boot sector 1 MiB in; the partition table changes
	// with the config drive) is on each disk after the member's data
	// offset.
	for _, d := range append([]string{q.Config().Disk}, q.Config().ExtraDisks...) {
		if ok, err := holdsImage(d, 1<<20, img[1<<20:1<<20+512]); err != nil || !ok {
			t.Errorf("%s after provisioning: the image's first partition is not on the array's member (err %v)", d, err)
		}
	}

	// Deprovision (automated cleaning, metadata), then delete.
	c.host.Spec.Image = nil
	must(c.runUntil(ctx, "deprovision", 20*time.Minute, func() bool {
		return c.host.Status.Provisioning.State == metal3api.StateAvailable && c.host.Status.Provisioning.Image.URL == ""
	}))
	now := metav1.Now()
	c.host.DeletionTimestamp = &now
	must(c.runUntil(ctx, "delete", 3*time.Minute, func() bool { return c.deleted }))
	if on, _ := q.Running(ctx); on {
		t.Errorf("machine running after the host was deleted")
	}
	if _, err := get(base + "/v1/nodes/" + c.host.Status.Provisioning.ID); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("node after delete: %v; want 404", err)
	}
}

// swraidArtifacts links into dir boot/ferric-deploy.{kernel,initramfs}
// (from $FERRIC_RAMDISK_DIR when set, as test/e2e does) and the test OS
// testos.raw, built once per run by test/artifacts.
func swraidArtifacts(t *testing.T, dir string) {
	t.Helper()
	rd, err := artifacts.DeployRamdisk(artifacts.CloudKernel)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := artifacts.TestOS(64)
	if err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{rd.Kernel: "boot/ferric-deploy.kernel", rd.Initramfs: "boot/ferric-deploy.initramfs", raw: "testos.raw"} {
		if err := artifacts.Link(src, filepath.Join(dir, dst)); err != nil {
			t.Fatal(err)
		}
	}
}

// hostAddress is the host's first non-loopback IPv4 address: QEMU's
// user-mode network lets the guest connect to it, and the host's own
// processes (the conductor, the BMC) reach it too.
func hostAddress() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			return ipn.IP.String()
		}
	}
	return ""
}

// nodeJSON reads a node at BMO's microversion.
func nodeJSON(t *testing.T, base, id string) map[string]any {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/v1/nodes/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-OpenStack-Ironic-API-Version", "1.95")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var n map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&n); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET node %s: %s, %v", id, resp.Status, err)
	}
	return n
}

func firstMap(xs []any) (map[string]any, bool) {
	if len(xs) == 0 {
		return nil, false
	}
	m, ok := xs[0].(map[string]any)
	return m, ok
}

// mdMagic is the magic number of a Linux md superblock (version 1.x).
const mdMagic = 0xa92b4efc

// mdSuperblock finds a version 1.2 md superblock (4 KiB into a member
// partition) in the first 64 MiB of a disk file and returns its offset.
func mdSuperblock(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 64<<20)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF {
		return 0, err
	}
	for off := 4096; off+4 <= n; off += 512 {
		if binary.LittleEndian.Uint32(buf[off:]) == mdMagic && binary.LittleEndian.Uint32(buf[off+4:]) == 1 {
			return int64(off), nil
		}
	}
	return 0, fmt.Errorf("no md superblock in its first 64 MiB")
}

// holdsImage reports whether the member of the array on the disk at path
// has sector at offset off of the array's data: the superblock's
// data_offset (sectors, at byte 128 of the superblock) counts from the
// member partition's start, 4 KiB before the superblock.
func holdsImage(path string, off int64, sector []byte) (bool, error) {
	sb, err := mdSuperblock(path)
	if err != nil {
		return false, err
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	hdr := make([]byte, 256)
	if _, err := f.ReadAt(hdr, sb); err != nil {
		return false, err
	}
	dataOff := int64(binary.LittleEndian.Uint64(hdr[128:])) * 512
	got := make([]byte, len(sector))
	if _, err := f.ReadAt(got, sb-4096+dataOff+off); err != nil {
		return false, err
	}
	return bytes.Equal(got, sector), nil
}
