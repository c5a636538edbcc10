package metal3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/artifacts"
	"github.com/ferric-metal/ferric/test/harness"
	"github.com/ferric-metal/ferric/test/lab"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// chassisFlag makes the test binary ipmi_sim's chassis_control program:
// it hands the request to the test process that owns the machine (over
// HTTP) and prints the answer, as test/lab.ChassisMain does for QEMU.
const chassisFlag = "-ferric-metal3-chassis"

func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == chassisFlag {
		os.Exit(chassisMain(os.Args[2], os.Args[3:]))
	}
	os.Exit(m.Run())
}

func chassisMain(url string, args []string) int {
	resp, err := http.Post(url, "text/plain", strings.NewReader(strings.Join(args, " ")))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(os.Stdout, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

// startConductor runs a ferric conductor in-process until the test ends
// and returns its API URL.
func startConductor(t *testing.T) string {
	t.Helper()
	return harness.Start(t, service.Config{Hostname: "metal3", AutomatedClean: true,
		PowerSyncInterval: 5 * time.Second}).URL
}

// buildAgent is ferric-agent from the main module, built once per run
// (test/artifacts).
func buildAgent(t *testing.T) string {
	t.Helper()
	bin, err := artifacts.Agent()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// bmcUnderTest is a machine's BMC as a test sees it.
type bmcUnderTest struct {
	// Address is the BareMetalHost's spec.bmc.address (without scheme:
	// the case adds its own).
	Address string
	// Username and Password are the BMC's credentials (the host's secret).
	Username, Password string
	// BIOS returns the BIOS attributes the BMC holds (nil if it has none).
	BIOS func() map[string]any
	// Volumes returns the RAID volumes the BMC built (Redfish only).
	Volumes func() []redfish.Volume
	// Media returns the image URL in the BMC's virtual CD and whether it
	// is inserted (Redfish with virtual media only).
	Media func() (string, bool)
}

// startRedfishBMC puts m behind the lab's Redfish emulator over HTTP.
func startRedfishBMC(t *testing.T, m *machine) bmcUnderTest {
	// Two 10 GiB drives on the emulated RAID controller, for the host's
	// hardware RAID volume (the agent's disk is the machine's file).
	hw := redfish.Hardware{Disks: []redfish.Disk{{Size: 10 << 30}, {Size: 10 << 30}}}
	emu := redfish.New(redfish.Config{Username: "admin", Password: "pw-redfish", Machines: map[string]redfish.Machine{"m1": m},
		Hardware: map[string]redfish.Hardware{"m1": hw}})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	return bmcUnderTest{Address: strings.TrimPrefix(srv.URL, "http://") + "/redfish/v1/Systems/m1", Username: "admin", Password: "pw-redfish",
		BIOS:    func() map[string]any { b, _ := emu.BIOS("m1"); return b },
		Volumes: func() []redfish.Volume { return emu.Volumes("m1") }}
}

// startIPMIBMC puts m behind an OpenIPMI ipmi_sim whose chassis_control is
// this test binary, relaying to m.
func startIPMIBMC(t *testing.T, m *machine) bmcUnderTest {
	for _, tool := range []string{"ipmi_sim", "ipmitool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (Debian packages openipmi and ipmitool, installed by .ci/deps.sh)", tool)
		}
	}
	ctl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var out bytes.Buffer
		if err := lab.Chassis(r.Context(), m, strings.Fields(string(b)), &out); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Write(out.Bytes())
	}))
	t.Cleanup(ctl.Close)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	sim, err := lab.StartIPMISim(context.Background(), lab.IPMISimConfig{Name: m.name, Dir: t.TempDir(), Port: port,
		Username: "admin", Password: "pw-ipmi", ChassisControl: []string{self, chassisFlag, ctl.URL}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Stop() })
	return bmcUnderTest{Address: sim.Addr(), Username: "admin", Password: "pw-ipmi"}
}

// files serves what the hosts download: the deploy kernel and initramfs
// (the machine fetches them as iPXE does), the instance image and its
// checksum file, and firmware images.
type files struct {
	URL   string
	Image []byte
}

func startFiles(t *testing.T) files {
	img := make([]byte, 4<<20)
	for i := range img {
		img[i] = byte(i*7 + i>>12)
	}
	writeMBR(img)
	sum := sha256.Sum256(img)
	content := map[string][]byte{
		"/deploy.kernel":    []byte("not really a kernel"),
		"/deploy.initramfs": []byte("not really an initramfs"),
		"/host.img":         img,
		"/host.img.sha256":  []byte(hex.EncodeToString(sum[:]) + "  host.img\n"),
		"/wrong.sha256":     []byte(strings.Repeat("0", 64) + "  host.img\n"),
		"/bios-2.0.bin":     redfish.FirmwareImage("bios", "2.0.0-metal3"),
		"/bios-2.1.bin":     redfish.FirmwareImage("bios", "2.1.0-metal3"),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := content[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, r.URL.Path, time.Time{}, bytes.NewReader(b))
	}))
	t.Cleanup(srv.Close)
	return files{URL: srv.URL, Image: img}
}

// writeMBR gives a whole-disk image an MBR with one Linux partition.
func writeMBR(img []byte) {
	clear(img[440:512])
	copy(img[440:444], []byte{0x4d, 0x33, 0x6d, 0x33}) // disk signature
	e := img[446:462]
	e[4] = 0x83                                 // Linux
	binary.LittleEndian.PutUint32(e[8:], 2048)  // first LBA
	binary.LittleEndian.PutUint32(e[12:], 4096) // sectors (2 MiB)
	img[510], img[511] = 0x55, 0xAA
}
