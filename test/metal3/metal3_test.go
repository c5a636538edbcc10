package metal3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	metal3api "github.com/metal3-io/baremetal-operator/apis/metal3.io/v1alpha1"
	"github.com/metal3-io/baremetal-operator/pkg/hardwareutils/bmc"
	"github.com/metal3-io/baremetal-operator/pkg/provisioner"
	"github.com/metal3-io/baremetal-operator/pkg/provisioner/ironic"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// hostCase is one kind of BMC a BareMetalHost can name. Adding a BMC
// driver of BMO's (idrac-redfish://, redfish-virtualmedia://, ...) is one
// line in hostCases.
type hostCase struct {
	name string
	// scheme of spec.bmc.address, e.g. "redfish+http".
	scheme string
	// start puts the machine behind its BMC.
	start func(*testing.T, *machine) bmcUnderTest
	// bios: BIOS settings (HostFirmwareSettings) are applied in preparing;
	// firmware: a firmware update (HostFirmwareComponents) too; raid: a
	// hardware RAID volume (spec.raid.hardwareRAIDVolumes) too.
	bios, firmware, raid bool
	// gate, when set, is an environment variable that must be 1 for the
	// case to run, for a driver ferric does not serve yet (see the case).
	gate string
	// vmedia: the ramdisk boots from the virtual media the conductor
	// inserts (never from the network), with the host's preprovisioning
	// network data on the image.
	vmedia bool
}

var hostCases = []hostCase{
	{name: "ipmi", scheme: "ipmi", start: startIPMIBMC},
	// BMO enrolls every Redfish-family host with raid_interface=redfish.
	{name: "redfish", scheme: "redfish+http", start: startRedfishBMC, bios: true, firmware: true, raid: true},
	// BMO's idrac-redfish: driver idrac with the idrac-redfish interfaces;
	// the emulator stands in for the iDRAC.
	{name: "idrac-redfish", scheme: "idrac-redfish+http", start: startRedfishBMC, bios: true, firmware: true, raid: true},
	// BMO's redfish-virtualmedia: boot_interface redfish-virtual-media;
	// the machine boots the ISO the conductor builds and inserts through
	// the emulator's VirtualMedia (vmedia_test.go).
	{name: "redfish-virtualmedia", scheme: "redfish-virtualmedia+http", start: startRedfishVMediaBMC, bios: true, firmware: true, raid: true, vmedia: true},
}

// TestBareMetalHostLifecycle drives one BareMetalHost per BMC kind with
// metal3's baremetal-operator Ironic provisioner against a ferric
// conductor, as BMO's controller does: registering, inspecting (the
// machine network-boots the real agent, which posts its inventory),
// preparing (BIOS settings and a firmware update as manual cleaning where
// the BMC has them), available (automated cleaning by the agent),
// provisioning (an image URL with a checksum URL, user data and network
// data in the config drive), provisioned, power off and on, deprovisioning,
// and deletion. It logs the time each state takes.
func TestBareMetalHostLifecycle(t *testing.T) {
	t.Parallel()
	for i, hc := range hostCases {
		t.Run(hc.name, func(t *testing.T) {
			if hc.gate != "" && os.Getenv(hc.gate) != "1" {
				t.Skipf("%s=1 runs this case: ferric does not yet serve everything BMO asks of a %s:// host", hc.gate, hc.scheme)
			}
			t.Parallel()
			lifecycle(t, hc, fmt.Sprintf("52:54:00:6d:33:%02x", i+1))
		})
	}
}

// envMu serializes the environment BMO's factory is configured from.
var envMu sync.Mutex

// setup is a host's world: a conductor, the files it downloads, the
// machine behind its BMC, and BMO's provisioner factory configured for
// that conductor; the controller holds a BareMetalHost naming the BMC.
type setup struct {
	base string
	fs   files
	m    *machine
	b    bmcUnderTest
	c    *controller
}

func newSetup(t *testing.T, hc hostCase, mac string) setup {
	base := startConductor(t)
	fs := startFiles(t)
	m := newMachine(t, "host-"+hc.name, mac, buildAgent(t), base+"/boot", 5<<30)
	b := hc.start(t, m)

	// BMO's factory reads its settings from the environment, with no
	// Ironic credentials (METAL3_AUTH_ROOT_DIR without an ironic folder).
	env := map[string]string{"IRONIC_ENDPOINT": base + "/v1/", "METAL3_AUTH_ROOT_DIR": t.TempDir(),
		"DEPLOY_KERNEL_URL": fs.URL + "/deploy.kernel", "DEPLOY_RAMDISK_URL": fs.URL + "/deploy.initramfs"}
	provLog := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("provisioner log:\n%s", provLog.String())
		}
	})
	envMu.Lock() // the cases run in parallel: one environment at a time
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

	c := &controller{t: t, factory: factory, creds: bmc.Credentials{Username: b.Username, Password: b.Password},
		config: hostConfig{
			userData:    "#cloud-config\nhostname: metal3-" + hc.name + "\n",
			networkData: "links:\n- id: enp1s0\n  type: phy\n  ethernet_mac_address: " + mac + "\nnetworks:\n- id: provisioning\n  link: enp1s0\n  network_id: provisioning\n  type: ipv4_dhcp\nservices: []\n",
		},
		host: metal3api.BareMetalHost{
			ObjectMeta: metav1.ObjectMeta{Name: "host-" + hc.name, Namespace: "metal3", UID: types.UID("6d657461-6c33-4000-8000-0000000000" + mac[len(mac)-2:])},
			Spec: metal3api.BareMetalHostSpec{
				BMC:                   metal3api.BMCDetails{Address: hc.scheme + "://" + b.Address, CredentialsName: "bmc-credentials"},
				BootMACAddress:        mac,
				Online:                true,
				AutomatedCleaningMode: metal3api.CleaningModeMetadata,
				BootMode:              metal3api.Legacy,
				// The profile's /dev/sda is not the agent's disk (a file).
				RootDeviceHints: &metal3api.RootDeviceHints{MinSizeGigabytes: 4},
			},
		},
	}
	return setup{base: base, fs: fs, m: m, b: b, c: c}
}

func lifecycle(t *testing.T, hc hostCase, mac string) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	w := newSetup(t, hc, mac)
	base, fs, m, b, c, factory := w.base, w.fs, w.m, w.b, w.c, w.c.factory
	format := "raw"
	if hc.bios {
		c.fwSettings = metal3api.DesiredSettingsMap{"NumLock": intstr.FromString("Off"), "ProcCores": intstr.FromInt32(4)}
	}
	if hc.firmware {
		c.fwUpdates = []metal3api.FirmwareUpdate{{Component: "bios", URL: fs.URL + "/bios-2.0.bin"}}
	}
	if hc.vmedia {
		c.preprovNetworkData = "links:\n- id: enp1s0\n  type: phy\n  ethernet_mac_address: " + mac + "\nnetworks:\n- id: provisioning\n  link: enp1s0\n  network_id: provisioning\n  type: ipv4_dhcp\nservices: []\n"
		defer checkMediaBoots(t, m, b, mac)
	}
	if hc.raid {
		size := 5
		c.host.Spec.RAID = &metal3api.RAIDConfig{HardwareRAIDVolumes: []metal3api.HardwareRAIDVolume{{Name: "os", Level: "1", SizeGibibytes: &size}}}
	}
	var phases []stateTime // the test's steps, some within one state
	defer func() {
		var report strings.Builder
		var total time.Duration
		for _, st := range c.times {
			fmt.Fprintf(&report, "\n  %-26s %8.1fs", st.State, st.Took.Seconds())
			total += st.Took
		}
		t.Logf("%s: time in each BareMetalHost state (total %.1fs):%s", hc.name, total.Seconds(), report.String())
		report.Reset()
		for _, st := range phases {
			fmt.Fprintf(&report, "\n  %-26s %8.1fs", st.State, st.Took.Seconds())
		}
		t.Logf("%s: time of each step:%s", hc.name, report.String())
	}()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// step runs one step of the host's life and records its time.
	step := func(name string, timeout time.Duration, done func() bool) {
		t.Helper()
		start := time.Now()
		must(c.runUntil(ctx, name, timeout, done))
		phases = append(phases, stateTime{metal3api.ProvisioningState(name), time.Since(start)})
	}
	inState := func(s metal3api.ProvisioningState) func() bool {
		return func() bool { return c.host.Status.Provisioning.State == s }
	}

	// Register, inspect, prepare: the host ends available, its hardware
	// details from the agent's inventory.
	step("register+inspect+prepare", 5*time.Minute, inState(metal3api.StateAvailable))
	hd := c.host.Status.HardwareDetails
	if hd == nil || hd.CPU.Count <= 0 || hd.RAMMebibytes <= 0 {
		t.Fatalf("hardware details after inspection: %+v", hd)
	}
	foundDisk, foundNIC := false, false
	for _, d := range hd.Storage {
		foundDisk = foundDisk || (d.Name == m.disk && d.SizeBytes == 5<<30)
	}
	for _, n := range hd.NIC {
		foundNIC = foundNIC || strings.EqualFold(n.MAC, mac)
	}
	if !foundDisk || !foundNIC {
		t.Errorf("hardware details: storage %+v, NICs %+v; want the %s disk of 5 GiB and the NIC %s", hd.Storage, hd.NIC, m.disk, mac)
	}
	if starts := m.Starts(); len(starts) == 0 || starts[0] != "ramdisk" {
		t.Errorf("machine starts %v: inspection did not boot the ramdisk", starts)
	}
	if hc.bios {
		if got := b.BIOS(); got["NumLock"] != "Off" || got["ProcCores"] != float64(4) {
			t.Errorf("BMC's BIOS after preparing: NumLock %v ProcCores %v, want Off and 4", got["NumLock"], got["ProcCores"])
		}
		if c.fwSettingsRead["NumLock"] != "Off" || c.fwSettingsRead["ProcCores"] != "4" {
			t.Errorf("firmware settings read through the provisioner: %v", c.fwSettingsRead)
		}
	}
	if hc.raid {
		if v := b.Volumes(); len(v) != 1 || v[0].Name != "os" || v[0].RAIDType != "RAID1" || v[0].Capacity != 5<<30 {
			t.Errorf("BMC's volumes after preparing: %+v, want the RAID-1 os of 5 GiB", v)
		}
		if r := c.host.Status.Provisioning.RAID; r == nil || len(r.HardwareRAIDVolumes) != 1 {
			t.Errorf("status.provisioning.raid after preparing: %+v", r)
		}
	}
	// biosVersion is the bios component's version, as the
	// HostFirmwareComponents controller reads it.
	biosVersion := func() string {
		prov, err := factory.NewProvisioner(ctx, provisioner.BuildHostData(c.host, c.creds), c.publish)
		must(err)
		if _, err := prov.TryInit(ctx); err != nil {
			t.Fatal(err)
		}
		comps, err := prov.GetFirmwareComponents(ctx)
		must(err)
		for _, fc := range comps {
			if fc.Component == "bios" {
				return fc.CurrentVersion
			}
		}
		t.Errorf("no bios in the firmware components %+v", comps)
		return ""
	}
	if hc.firmware {
		if v := biosVersion(); v != "2.0.0-metal3" {
			t.Errorf("bios version after preparing: %q, want 2.0.0-metal3", v)
		}
	}

	// Provision an image whose checksum is a URL, with user data and
	// network data.
	c.host.Spec.Image = &metal3api.Image{URL: fs.URL + "/host.img", Checksum: fs.URL + "/host.img.sha256",
		ChecksumType: metal3api.SHA256, DiskFormat: &format}
	step("provision", 5*time.Minute, inState(metal3api.StateProvisioned))
	step("provisioned, powered on", time.Minute, func() bool { return c.host.Status.PoweredOn })
	head, rest, err := readDisk(m.disk, len(fs.Image))
	must(err)
	if !bytes.Equal(head[512:], fs.Image[512:]) || !bytes.Equal(head[:446], fs.Image[:446]) {
		t.Errorf("the disk does not hold the image after provisioning")
	}
	for _, want := range []string{"config-2", "hostname: metal3-" + hc.name, `"ethernet_mac_address"`, `"metal3-name"`} {
		if !bytes.Contains(rest, []byte(want)) {
			t.Errorf("config drive after the image lacks %q", want)
		}
	}
	if starts := m.Starts(); starts[len(starts)-1] != "disk" {
		t.Errorf("machine starts %v: the provisioned host did not boot its disk", starts)
	}
	if !containsAll(c.events, "Registered", "InspectionComplete", "ProvisioningComplete") {
		t.Errorf("events %v", c.events)
	}
	// BMO reads the node's health (API 1.109), which the conductor's
	// power sync takes from a Redfish BMC's System Status.Health; ipmi
	// has none.
	wantHealth := ""
	if strings.Contains(hc.scheme, "redfish") {
		wantHealth = "OK"
	}
	step("health read by BMO", time.Minute, func() bool {
		prov, err := factory.NewProvisioner(ctx, provisioner.BuildHostData(c.host, c.creds), c.publish)
		must(err)
		return prov.GetHealth(ctx) == wantHealth
	})

	// Power off and on through spec.online.
	c.host.Spec.Online = false
	step("power off", 2*time.Minute, func() bool { return !c.host.Status.PoweredOn })
	if on, _ := m.Running(ctx); on {
		t.Errorf("machine still running after power off")
	}
	if hc.bios || hc.firmware {
		// Changed while off, with a HostUpdatePolicy: applied by servicing
		// at power on.
		c.updatePolicy = true
		if hc.bios {
			c.fwSettings = metal3api.DesiredSettingsMap{"NumLock": intstr.FromString("On"), "ProcCores": intstr.FromInt32(6)}
		}
		if hc.firmware {
			c.fwUpdates = append(c.fwUpdates, metal3api.FirmwareUpdate{Component: "bios", URL: fs.URL + "/bios-2.1.bin"})
		}
	}
	c.host.Spec.Online = true
	// Servicing itself powers the machine on (BIOS settings apply at a
	// reboot), and BMO records the power it reads as it goes: the host is
	// on, and serviced, once its operational status is back to OK.
	step("power on (servicing first)", 3*time.Minute, func() bool {
		return c.host.Status.PoweredOn && c.host.Status.OperationalStatus != metal3api.OperationalStatusServicing
	})
	if on, _ := m.Running(ctx); !on {
		t.Errorf("machine not running after power on")
	}
	if hc.bios {
		if got := b.BIOS(); got["NumLock"] != "On" || got["ProcCores"] != float64(6) {
			t.Errorf("BMC's BIOS after servicing: NumLock %v ProcCores %v, want On and 6", got["NumLock"], got["ProcCores"])
		}
	}
	if hc.firmware {
		if v := biosVersion(); v != "2.1.0-metal3" {
			t.Errorf("bios version after servicing: %q, want 2.1.0-metal3", v)
		}
	}
	if hc.bios || hc.firmware {
		if starts := m.Starts(); starts[len(starts)-1] != "disk" {
			t.Errorf("machine starts %v: after servicing the host did not boot its disk", starts)
		}
	}

	// Deprovision (automated cleaning erases the disk's metadata), then
	// delete.
	c.host.Spec.Image = nil
	step("deprovision", 5*time.Minute, func() bool {
		return c.host.Status.Provisioning.State == metal3api.StateAvailable && c.host.Status.Provisioning.Image.URL == ""
	})
	head, _, err = readDisk(m.disk, 512)
	must(err)
	if head[510] == 0x55 && head[511] == 0xAA {
		t.Errorf("the partition table is still on the disk after deprovisioning (automated cleaning)")
	}
	now := metav1.Now()
	c.host.DeletionTimestamp = &now
	step("delete", 2*time.Minute, func() bool { return c.deleted })
	if on, _ := m.Running(ctx); on {
		t.Errorf("machine running after the host was deleted")
	}
	resp, err := get(base + "/v1/nodes/" + c.host.Status.Provisioning.ID)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("node after delete: %s, %v; want 404", resp, err)
	}
}

// TestBareMetalHostBadChecksum provisions an ipmi:// host (inspection
// disabled by its annotation, as BMO allows) with a checksum file whose
// digest is not the image's: the deploy fails in the agent and BMO's
// provisioner reports ferric's last_error, naming the checksum, as the
// host's provisioning error.
func TestBareMetalHostBadChecksum(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	w := newSetup(t, hostCase{name: "badsum", scheme: "ipmi", start: startIPMIBMC}, "52:54:00:6d:33:f1")
	c := w.c
	c.host.Annotations = map[string]string{metal3api.InspectAnnotationPrefix: "disabled"}
	if err := c.runUntil(ctx, "register", 2*time.Minute, func() bool {
		return c.host.Status.Provisioning.State == metal3api.StateAvailable
	}); err != nil {
		t.Fatal(err)
	}
	for _, s := range c.times {
		if s.State == metal3api.StateInspecting {
			t.Errorf("the host was inspected although its annotation disables inspection")
		}
	}
	format := "raw"
	c.host.Spec.Image = &metal3api.Image{URL: w.fs.URL + "/host.img", Checksum: w.fs.URL + "/wrong.sha256",
		ChecksumType: metal3api.SHA256, DiskFormat: &format}
	err := c.runUntil(ctx, "provision", 3*time.Minute, func() bool {
		return c.host.Status.Provisioning.State == metal3api.StateProvisioned
	})
	if !errors.Is(err, errActionFailed) || !strings.Contains(err.Error(), "Image provisioning failed") ||
		!strings.Contains(err.Error(), "checksum") {
		t.Fatalf("provisioning with a wrong checksum: %v; want BMO's provisioning failure naming the checksum", err)
	}
	t.Logf("BMO's error: %s", c.host.Status.ErrorMessage)
	if head, _, err := readDisk(w.m.disk, 512); err != nil || (head[510] == 0x55 && head[511] == 0xAA) {
		t.Errorf("a partition table was left on the disk after a failed checksum (read err %v)", err)
	}
}

// readDisk returns the first n bytes of a sparse disk file and the data
// written after them (its holes skipped: the disk is 5 GiB).
func readDisk(path string, n int) (head, rest []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	head = make([]byte, n)
	if _, err := f.ReadAt(head, 0); err != nil {
		return nil, nil, err
	}
	const seekData, seekHole = 3, 4 // lseek(2) SEEK_DATA, SEEK_HOLE
	for off := int64(n); ; {
		start, err := f.Seek(off, seekData)
		if err != nil { // ENXIO: no data after off
			return head, rest, nil
		}
		end, err := f.Seek(start, seekHole)
		if err != nil {
			return nil, nil, err
		}
		if end-start > 256<<20 {
			return nil, nil, fmt.Errorf("%s: %d bytes of data at %d, more than a config drive", path, end-start, start)
		}
		b := make([]byte, end-start)
		if _, err := f.ReadAt(b, start); err != nil {
			return nil, nil, err
		}
		rest = append(rest, b...)
		off = end
	}
}

func containsAll(have []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

// syncBuffer keeps the provisioner's log (shown when the test fails).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
