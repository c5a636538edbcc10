package metal3

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/harness"
)

// machine is the computer behind a BMC (the lab's Redfish emulator or
// ipmi_sim): a file as its disk, one NIC, and firmware that network-boots
// as iPXE does. Started from the network, it fetches the boot script the
// conductor serves for its MAC, downloads the kernel and initramfs the
// script names, and runs the real ferric-agent as a process with the
// script's kernel command line; started from its disk, it runs the
// deployed instance (nothing here: the test reads the disk instead).
type machine struct {
	t        *testing.T
	name     string
	mac      string
	disk     string
	agentBin string
	bootURL  string // the conductor's /boot/ base URL

	mu      sync.Mutex
	on      bool
	bootDev string // next boot device: "pxe", "disk", ...
	gen     int    // incremented on every start and stop
	agent   *exec.Cmd
	log     bytes.Buffer // agents' output, for failures
	starts  []string     // what each start booted: "ramdisk", "disk", or why nothing
	// media is the image in the CD drive (vmedia_test.go), cdBoots what
	// each start from it found, netBoots the starts from the network.
	media    string
	cdBoots  []cdBoot
	netBoots int
}

func newMachine(t *testing.T, name, mac, agentBin, bootURL string, diskSize int64) *machine {
	t.Helper()
	disk := filepath.Join(t.TempDir(), name+".disk")
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, diskSize); err != nil { // sparse
		t.Fatal(err)
	}
	m := &machine{t: t, name: name, mac: mac, disk: disk, agentBin: agentBin, bootURL: bootURL, bootDev: "pxe"}
	t.Cleanup(func() {
		m.mu.Lock()
		m.stopLocked()
		m.mu.Unlock()
		if t.Failed() {
			t.Logf("%s: starts %v; agent output:\n%s", name, m.Starts(), m.agentOutput())
		}
	})
	return m
}

// MACAddress makes the machine's NIC the one the Redfish emulator shows.
func (m *machine) MACAddress() string { return m.mac }

func (m *machine) Running(context.Context) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.on, nil
}

func (m *machine) PowerOn(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.on {
		m.on = true
		m.startLocked()
	}
	return nil
}

func (m *machine) PowerOff(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopLocked()
	m.on = false
	return nil
}

// Shutdown: both the ramdisk and the test's instance obey the ACPI
// power button.
func (m *machine) Shutdown(ctx context.Context) error { return m.PowerOff(ctx) }

func (m *machine) Reset(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.on {
		m.stopLocked()
		m.startLocked()
	}
	return nil
}

func (m *machine) InjectNMI(context.Context) error { return nil }

func (m *machine) SetBootDevice(_ context.Context, dev string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.bootDev = dev
	return nil
}

// Starts returns what each start of the machine booted.
func (m *machine) Starts() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.starts...)
}

func (m *machine) agentOutput() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.log.String()
}

// stopLocked kills the running agent, if any, and cancels a boot under way.
func (m *machine) stopLocked() {
	m.gen++
	if m.agent != nil {
		_ = m.agent.Process.Kill()
		_ = m.agent.Wait()
		m.agent = nil
	}
}

// startLocked boots the machine from its boot device, in the background
// as firmware does after the power button.
func (m *machine) startLocked() {
	m.gen++
	gen, dev := m.gen, m.bootDev
	go m.boot(gen, dev)
}

func (m *machine) record(gen int, what string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen != m.gen {
		return false
	}
	m.starts = append(m.starts, what)
	return true
}

func (m *machine) boot(gen int, dev string) {
	var cmdline string
	var err error
	switch dev {
	case "pxe":
		cmdline, err = m.netboot()
	case "cdrom":
		cmdline, err = m.cdboot(gen)
	default:
		m.record(gen, "disk")
		return
	}
	if err != nil {
		m.record(gen, "no boot: "+err.Error())
		return
	}
	if cmdline == "" { // the script sends the machine to its disk
		m.record(gen, "disk")
		return
	}
	file := filepath.Join(filepath.Dir(m.disk), fmt.Sprintf("%s.cmdline.%d", m.name, gen))
	if err := os.WriteFile(file, []byte(cmdline), 0o600); err != nil {
		m.record(gen, "no boot: "+err.Error())
		return
	}
	port, err := harness.PickPort("127.0.0.1")
	if err != nil {
		m.record(gen, "no boot: "+err.Error())
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen != m.gen {
		return // powered off or reset meanwhile
	}
	cmd := exec.Command(m.agentBin, "--cmdline", file, "--disk", m.disk, "--mac", m.mac,
		"--listen", fmt.Sprintf("127.0.0.1:%d", port), "--advertise-host", "127.0.0.1", "--advertise-port", fmt.Sprint(port),
		"--heartbeat-interval", "1s", "--lookup-max", "1s", "--forced-heartbeat-gap", "100ms", "--min-root-size", "1048576")
	fmt.Fprintf(&m.log, "--- boot %d: %s\n", gen, cmdline)
	cmd.Stdout, cmd.Stderr = lockedWriter{&m.mu, &m.log}, lockedWriter{&m.mu, &m.log}
	if err := cmd.Start(); err != nil {
		m.starts = append(m.starts, "no boot: "+err.Error())
		return
	}
	m.agent = cmd
	m.starts = append(m.starts, "ramdisk")
}

// netboot does what iPXE does with the conductor's boot script for this
// MAC: it returns the kernel command line of a deploy ramdisk after
// fetching the kernel and initramfs, or "" when the script boots the
// local disk.
func (m *machine) netboot() (string, error) {
	m.mu.Lock()
	m.netBoots++
	m.mu.Unlock()
	script, err := get(m.bootURL + "/nodes/" + m.mac + ".ipxe")
	if err != nil {
		return "", err
	}
	var kernel, initrd, args string
	sc := bufio.NewScanner(bytes.NewReader(script))
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(sc.Text()), "|| goto fail"))
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "kernel":
			kernel = f[1]
			args = strings.Join(f[2:], " ")
		case len(f) >= 2 && f[0] == "initrd":
			initrd = f[len(f)-1]
		case len(f) >= 1 && f[0] == "sanboot":
			return "", nil
		}
	}
	if kernel == "" || initrd == "" {
		return "", fmt.Errorf("boot script without kernel and initrd:\n%s", script)
	}
	for _, u := range []string{kernel, initrd} {
		if _, err := get(u); err != nil {
			return "", err
		}
	}
	return args, nil
}

func get(url string) ([]byte, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// BootDevice is the device the next start boots (lab.ChassisMachine).
func (m *machine) BootDevice() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bootDev
}
