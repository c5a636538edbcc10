// Command ferric-lab sets up and tears down ferric's QEMU bare-metal lab
// (as root):
//
//	ferric-lab up   [-dir D] [-netns NS] [-machines N] [-power-on] ...
//	ferric-lab down [-dir D] [-netns NS] [-keep]
//	ferric-lab status [-dir D]
//
// up creates network namespace NS with bridge br0 (10.99.0.1/24) and taps
// tap0..tapN-1, then starts ferric-vbmc inside it: one QEMU machine vmI per
// tapI, each behind its own ipmi_sim BMC (127.0.0.1:6230+I in the namespace,
// admin/password, lanplus cipher suite 3) and the Redfish emulator
// (http://127.0.0.1:8000/redfish/v1/Systems/vmI). PIDs are saved under D;
// down stops everything by those PIDs, deletes the namespace and removes the
// disks, conductor state and logs from D (-keep keeps them). Run the
// conductor and tools inside the namespace: ip netns exec NS ...
//
// With -conductor BIN, up also starts that ferric-conductor inside the
// namespace (API and boot files on http://10.99.0.1:6385, full DHCP with
// IPv6 RA on br0, TFTP, deploy ramdisk from -boot-dir) and enrolls every
// machine through its API (node vmI: driver ipmi with its ipmi_sim BMC, or
// with -driver redfish its Redfish system; boot_mode from -firmware;
// deploy_kernel ferric-deploy.kernel, deploy_ramdisk ferric-deploy.initramfs;
// a port with its MAC). The enrollment runs as "ferric-lab enroll" inside the
// namespace.
//
// With -boot vmedia (and -driver redfish), the network has no DHCP server:
// the machines get a CD drive behind the Redfish emulator's virtual media,
// the conductor runs with --dhcp-mode none (no TFTP, no router
// advertisements), and each node is enrolled with boot_interface
// redfish-virtual-media, inspect_interface agent and a network_data giving machine I the static
// address .(50+I) of the bridge's /24, which the conductor puts on the
// node's boot ISO for the ramdisk (and a deploy's config drive may carry
// for the instance).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferric-metal/ferric/test/lab"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ferric-lab:", err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v, ok := os.LookupEnv("FERRIC_LAB_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))); ok {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(env(name, "")); err == nil {
		return v
	}
	return def
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: ferric-lab up|down|status [flags]   (-h for flags)")
		return errors.New("no command")
	}
	cmd := args[0]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", env("dir", "/tmp/ferric-lab"), "lab state directory (env FERRIC_LAB_DIR)")
	ns := fs.String("netns", env("netns", "ferriclab"), "network namespace (env FERRIC_LAB_NETNS)")
	n := fs.Int("machines", envInt("machines", 2), "number of machines (env FERRIC_LAB_MACHINES)")
	addr := fs.String("addr", env("addr", "10.99.0.1/24"), "bridge address; an IPv6 one (fd00:99::1/64) makes the lab network IPv6-only (env FERRIC_LAB_ADDR)")
	mem := fs.Int("mem", envInt("mem", lab.DefaultMemMiB), "guest RAM in MiB (env FERRIC_LAB_MEM)")
	disk := fs.Int("disk-size", envInt("disk-size", 5120), "machine disk size in MiB, sparse; the agent wants a root disk of 4 GiB or more (env FERRIC_LAB_DISK_SIZE)")
	ipmiPort := fs.Int("ipmi-port", envInt("ipmi-port", 6230), "first IPMI port (env FERRIC_LAB_IPMI_PORT)")
	redfish := fs.String("redfish-listen", env("redfish-listen", "127.0.0.1:8000"), "Redfish emulator address in the namespace (env FERRIC_LAB_REDFISH_LISTEN)")
	drv := fs.String("driver", env("driver", "ipmi"), "hardware type the machines are enrolled with: ipmi (ipmi_sim) or redfish (the Redfish emulator) (env FERRIC_LAB_DRIVER)")
	boot := fs.String("boot", env("boot", "pxe"), "how the machines boot the deploy ramdisk: pxe (the conductor's DHCP, TFTP and iPXE) or vmedia (virtual media through the Redfish emulator, static addresses, no DHCP server; needs -driver redfish) (env FERRIC_LAB_BOOT)")
	firmware := fs.String("firmware", env("firmware", "bios"), "machine firmware: bios (SeaBIOS) or uefi (OVMF, Debian package ovmf) (env FERRIC_LAB_FIRMWARE)")
	powerOn := fs.Bool("power-on", env("power-on", "") == "true", "power the machines on (PXE first) once their BMCs run (env FERRIC_LAB_POWER_ON)")
	vbmc := fs.String("vbmc", env("vbmc", ""), "ferric-vbmc binary (default: next to ferric-lab, else $PATH) (env FERRIC_LAB_VBMC)")
	conductor := fs.String("conductor", env("conductor", ""), "ferric-conductor binary to start in the namespace, enrolling the machines (env FERRIC_LAB_CONDUCTOR)")
	bootDir := fs.String("boot-dir", env("boot-dir", ""), "deploy kernel/ramdisk directory for -conductor (default: the conductor binary's directory, where make ramdisk puts them) (env FERRIC_LAB_BOOT_DIR)")
	apiPort := fs.Int("api-port", envInt("api-port", 6385), "conductor API port on the bridge address (env FERRIC_LAB_API_PORT)")
	keep := fs.Bool("keep", env("keep", "") == "true", "down: keep the machines' disks, the conductor's state and the logs in -dir (env FERRIC_LAB_KEEP)")
	apiURL := fs.String("api", env("api", ""), "enroll: the conductor API URL (env FERRIC_LAB_API)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch cmd {
	case "up":
		return up(ctx, stdout, upConfig{dir: *dir, ns: *ns, n: *n, addr: *addr, mem: *mem, disk: *disk,
			ipmiPort: *ipmiPort, redfish: *redfish, powerOn: *powerOn, vbmc: *vbmc, firmware: *firmware, driver: *drv,
			conductor: *conductor, bootDir: *bootDir, apiPort: *apiPort, boot: *boot})
	case "enroll":
		return enroll(ctx, stdout, *dir, *apiURL, *drv, *redfish, *boot, *addr)
	case "down":
		return down(ctx, stdout, *dir, *ns, *keep)
	case "status":
		return status(stdout, *dir)
	}
	return fmt.Errorf("unknown command %q: want up, down, status or enroll", cmd)
}

type upConfig struct {
	dir, ns, addr, redfish, vbmc string
	conductor, bootDir, firmware string
	driver, boot                 string
	n, mem, disk, ipmiPort       int
	apiPort                      int
	powerOn                      bool
}

func findVBMC(flagVal string) (string, error) {
	if flagVal != "" {
		return filepath.Abs(flagVal)
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "ferric-vbmc")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("ferric-vbmc")
	if err != nil {
		return "", fmt.Errorf("ferric-vbmc not found: build it (go build -o bin/ ./test/cmd/...) or pass -vbmc")
	}
	return filepath.Abs(p)
}

func up(ctx context.Context, stdout io.Writer, c upConfig) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("up needs root (network namespace, taps)")
	}
	switch c.driver {
	case "ipmi":
	case "redfish":
		if c.redfish == "" {
			return errors.New("-driver redfish needs the Redfish emulator (-redfish-listen)")
		}
	default:
		return fmt.Errorf("-driver %q: want ipmi or redfish", c.driver)
	}
	switch c.boot {
	case "pxe":
	case "vmedia":
		if c.driver != "redfish" {
			return errors.New("-boot vmedia needs -driver redfish (the Redfish emulator's virtual media)")
		}
	default:
		return fmt.Errorf("-boot %q: want pxe or vmedia", c.boot)
	}
	switch c.firmware {
	case "bios":
	case "uefi":
		if _, err := os.Stat(lab.OVMFCode); err != nil {
			return fmt.Errorf("-firmware uefi needs %s: apt-get install ovmf", lab.OVMFCode)
		}
	default:
		return fmt.Errorf("-firmware %q: want bios or uefi", c.firmware)
	}
	for _, tool := range []string{"ip", "qemu-system-x86_64", "ipmi_sim"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is missing: apt-get install iproute2 qemu-system-x86 openipmi", tool)
		}
	}
	vbmc, err := findVBMC(c.vbmc)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(c.dir)
	if err != nil {
		return err
	}
	if pid, ok := readPid(filepath.Join(dir, "vbmc.pid")); ok && alive(pid) {
		return fmt.Errorf("a lab runs already from %s (pid %d): ferric-lab down first", dir, pid)
	}
	if err := os.MkdirAll(filepath.Join(dir, "vm"), 0o755); err != nil {
		return err
	}
	nc := lab.NetConfig{Namespace: c.ns, Addr: c.addr, Taps: c.n}
	if p, perr := netip.ParsePrefix(c.addr); perr == nil && p.Addr().Is6() {
		// An IPv6 bridge address: an IPv6-only lab network.
		nc.Addr, nc.IPv6Only, nc.Addr6 = "", true, c.addr
	}
	if err := lab.NetUp(ctx, nc); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = down(context.Background(), io.Discard, dir, c.ns, true) // keep the logs to see why
		}
	}()
	logPath := filepath.Join(dir, "vbmc.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	readyPath := filepath.Join(dir, "bmcs.txt")
	ready, err := os.Create(readyPath)
	if err != nil {
		return err
	}
	defer ready.Close()
	vargs := []string{"netns", "exec", c.ns, vbmc, "serve",
		"-dir", filepath.Join(dir, "vm"), "-machines", strconv.Itoa(c.n), "-net", "tap",
		"-mem", strconv.Itoa(c.mem), "-disk-size", strconv.Itoa(c.disk),
		"-ipmi-port", strconv.Itoa(c.ipmiPort), "-redfish-listen", c.redfish, "-firmware", c.firmware}
	if c.boot == "vmedia" {
		vargs = append(vargs, "-vmedia")
	}
	cmd := exec.Command("ip", vargs...)
	cmd.Stdout, cmd.Stderr = ready, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives ferric-lab
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start ferric-vbmc: %w", err)
	}
	pid := cmd.Process.Pid
	if err := os.WriteFile(filepath.Join(dir, "vbmc.pid"), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "netns"), []byte(c.ns+"\n"), 0o644); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	want := c.n
	if c.redfish != "" {
		want++
	}
	deadline := time.After(30 * time.Second)
	for {
		lines := readLines(readyPath)
		if len(lines) >= want {
			break
		}
		select {
		case err := <-exited:
			return fmt.Errorf("ferric-vbmc exited (%v); see %s", err, logPath)
		case <-deadline:
			return fmt.Errorf("ferric-vbmc not ready after 30s; see %s", logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	var apiURL string
	if c.conductor != "" {
		if apiURL, err = startConductor(ctx, stdout, dir, c); err != nil {
			return err
		}
	}
	if c.powerOn {
		for i := range c.n {
			q, err := lab.LoadQEMU(filepath.Join(dir, "vm"), fmt.Sprintf("vm%d", i))
			if err != nil {
				return err
			}
			// Without DHCP nothing answers PXE: the disk.
			dev := lab.BootPXE
			if c.boot == "vmedia" {
				dev = lab.BootDisk
			}
			if err := q.SetBootDevice(ctx, dev); err != nil {
				return err
			}
			// QEMU must start inside the namespace to reach its tap.
			on := exec.CommandContext(ctx, "ip", "netns", "exec", c.ns, vbmc, "chassis", filepath.Join(dir, "vm"), q.Config().Name, "set", "power", "1")
			if out, err := on.CombinedOutput(); err != nil {
				return fmt.Errorf("power on %s: %w: %s", q.Config().Name, err, out)
			}
		}
	}
	fmt.Fprintf(stdout, "lab up: namespace %s, bridge br0 %s, %d machines, ferric-vbmc pid %d\n", c.ns, c.addr, c.n, pid)
	for i, l := range readLines(readyPath) {
		if i < c.n {
			q, _ := lab.LoadQEMU(filepath.Join(dir, "vm"), fmt.Sprintf("vm%d", i))
			if q != nil {
				fmt.Fprintf(stdout, "  %s  mac %s  tap%d  disk %s\n", l, q.Config().MAC, i, q.Config().Disk)
				continue
			}
		}
		fmt.Fprintf(stdout, "  %s\n", l)
	}
	fmt.Fprintf(stdout, "BMC user admin, password password; run tools inside: ip netns exec %s ...\n", c.ns)
	fmt.Fprintf(stdout, "e.g. ip netns exec %s ipmitool -I lanplus -C 3 -H 127.0.0.1 -p %d -U admin -P password chassis power status\n", c.ns, c.ipmiPort)
	if apiURL != "" {
		fmt.Fprintf(stdout, "conductor %s (log %s); e.g. ip netns exec %s curl -s -H 'X-OpenStack-Ironic-API-Version: 1.78' %s/v1/nodes\n",
			apiURL, filepath.Join(dir, "conductor.log"), c.ns, apiURL)
	}
	fmt.Fprintf(stdout, "stop with: ferric-lab down -dir %s -netns %s\n", dir, c.ns)
	return nil
}

// startConductor starts c.conductor inside the namespace with full DHCP on
// br0 (none with -boot vmedia) and enrolls the machines (ferric-lab enroll,
// inside the namespace).
func startConductor(ctx context.Context, stdout io.Writer, dir string, c upConfig) (string, error) {
	bin, err := filepath.Abs(c.conductor)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("-conductor: %w", err)
	}
	boot := c.bootDir
	if boot == "" {
		boot = filepath.Dir(bin)
	}
	if boot, err = filepath.Abs(boot); err != nil {
		return "", err
	}
	for _, f := range []string{"ferric-deploy.kernel", "ferric-deploy.initramfs"} {
		if _, err := os.Stat(filepath.Join(boot, f)); err != nil {
			fmt.Fprintf(stdout, "warning: %s has no %s (make ramdisk builds it; pass -boot-dir)\n", boot, f)
		}
	}
	host, _, _ := strings.Cut(c.addr, "/")
	prefix := host[:strings.LastIndexByte(host, '.')+1]
	apiListen := net.JoinHostPort(host, strconv.Itoa(c.apiPort)) // [v6]:port on an IPv6-only lab
	apiURL := "http://" + apiListen
	logPath := filepath.Join(dir, "conductor.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return "", err
	}
	defer logf.Close()
	args := []string{"netns", "exec", c.ns, bin,
		"--api-listen", apiListen, "--public-url", apiURL,
		"--state-dir", filepath.Join(dir, "conductor"), "--boot-dir", boot, "--console-port-range", "6530:6599"}
	if p, err := netip.ParsePrefix(c.addr); err == nil && p.Addr().Is6() && c.boot != "vmedia" {
		// IPv6-only: DHCPv6 and router advertisements (managed flag) on
		// the bridge, addresses ::100-::1ff of its prefix, TFTP on [host].
		base := p.Masked().Addr().As16()
		first, last := base, base
		first[14], last[14], last[15] = 1, 1, 0xff
		args = append(args, "--dhcp-mode", "none", "--dhcp-interface", "br0",
			"--dhcp6-range", netip.AddrFrom16(first).String()+"-"+netip.AddrFrom16(last).String(),
			"--tftp-listen", net.JoinHostPort(host, "69"), "--tftp-root", "/usr/lib/ipxe")
	} else if c.boot == "vmedia" {
		args = append(args, "--dhcp-mode", "none")
	} else {
		args = append(args, "--dhcp-mode", "full", "--dhcp-interface", "br0", "--dhcp-range", prefix+"100-"+prefix+"199",
			"--dhcp-router-advertisements", "--tftp-listen", host+":69", "--tftp-root", "/usr/lib/ipxe")
	}
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start conductor: %w", err)
	}
	pid := cmd.Process.Pid
	go cmd.Wait() //nolint:errcheck // reaped if it exits while we run
	if err := os.WriteFile(filepath.Join(dir, "conductor.pid"), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return "", err
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	en := exec.CommandContext(ctx, "ip", "netns", "exec", c.ns, self, "enroll", "-dir", dir, "-api", apiURL,
		"-driver", c.driver, "-redfish-listen", c.redfish, "-boot", c.boot, "-addr", c.addr)
	en.Stdout, en.Stderr = stdout, stdout
	if err := en.Run(); err != nil {
		return "", fmt.Errorf("enrolling the machines (conductor log %s): %w", logPath, err)
	}
	return apiURL, nil
}

// enroll waits for the API at apiURL and creates a node and a port for
// every machine of the lab in dir that has none yet; with boot vmedia the
// nodes boot from virtual media with a static address on the bridge's
// network addr (machine I: .(50+I)) in their network_data.
func enroll(ctx context.Context, stdout io.Writer, dir, apiURL, drv, redfishAddr, boot, addr string) error {
	if apiURL == "" {
		return errors.New("enroll: -api URL is required")
	}
	if boot != "pxe" && boot != "vmedia" {
		return fmt.Errorf("enroll: -boot %q: want pxe or vmedia", boot)
	}
	if boot == "vmedia" && drv != "redfish" {
		return errors.New("enroll: -boot vmedia needs -driver redfish")
	}
	var bridge netip.Prefix
	if boot == "vmedia" {
		p, err := netip.ParsePrefix(addr)
		if err != nil || !p.Addr().Is4() || p.Bits() > 24 {
			return fmt.Errorf("enroll: -addr %q: want an IPv4 address/prefix of at most /24", addr)
		}
		bridge = p
	}
	call := func(method, path string, body any) (int, []byte, error) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(apiURL, "/")+path, rd)
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("X-OpenStack-Ironic-API-Version", "1.78")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, err := call("GET", "/v1", nil)
		if err == nil && code == 200 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("enroll: conductor API %s not ready after 30s (%d, %v)", apiURL, code, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ports := map[string]string{} // machine -> ipmi port
	for _, l := range readLines(filepath.Join(dir, "bmcs.txt")) {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "ipmi" {
			if _, p, ok := strings.Cut(f[2], ":"); ok {
				ports[f[1]] = p
			}
		}
	}
	vmDir := filepath.Join(dir, "vm")
	matches, _ := filepath.Glob(filepath.Join(vmDir, "*.json"))
	for _, m := range matches {
		q, err := lab.LoadQEMU(vmDir, strings.TrimSuffix(filepath.Base(m), ".json"))
		if err != nil {
			continue
		}
		name := q.Config().Name
		if code, _, err := call("GET", "/v1/nodes/"+name, nil); err == nil && code == 200 {
			fmt.Fprintf(stdout, "  node %s exists already\n", name)
			continue
		}
		if drv == "ipmi" && ports[name] == "" {
			return fmt.Errorf("enroll: no IPMI BMC listed for %s in bmcs.txt", name)
		}
		fw := q.Config().Firmware
		if fw == "" {
			fw = "bios"
		}
		info := map[string]any{
			"ipmi_address": "127.0.0.1", "ipmi_port": ports[name], "ipmi_username": "admin",
			"ipmi_password": env("password", "password"), "ipmi_cipher_suite": "3",
		}
		bmc := "ipmi 127.0.0.1:" + ports[name]
		if drv == "redfish" {
			info = map[string]any{
				"redfish_address": "http://" + redfishAddr, "redfish_system_id": "/redfish/v1/Systems/" + name,
				"redfish_username": "admin", "redfish_password": env("password", "password"),
			}
			bmc = "redfish http://" + redfishAddr + "/redfish/v1/Systems/" + name
		}
		info["deploy_kernel"], info["deploy_ramdisk"] = "ferric-deploy.kernel", "ferric-deploy.initramfs"
		node := map[string]any{
			"name": name, "driver": drv, "deploy_interface": "direct",
			// The boot mode makes the conductor ask the BMC for EFI boot.
			"properties":  map[string]any{"capabilities": "boot_mode:" + fw},
			"driver_info": info,
		}
		if drv == "ipmi" {
			// The machine's serial console through its BMC's SOL
			// (ferric-vbmc -sol-port), on a conductor port.
			node["console_interface"] = "ipmitool-socat"
		}
		how := ""
		if boot == "vmedia" {
			ip, err := staticAddr(bridge, name)
			if err != nil {
				return fmt.Errorf("enroll %s: %w", name, err)
			}
			node["boot_interface"] = "redfish-virtual-media"
			// In-band inspection (the ramdisk from the CD) rather than
			// the redfish type's out-of-band default.
			node["inspect_interface"] = "agent"
			node["network_data"] = networkData(q.Config().MAC, ip, bridge)
			how = ", virtual media, static " + ip.String()
		}
		code, body, err := call("POST", "/v1/nodes", node)
		if err != nil || code != 201 {
			return fmt.Errorf("enroll %s: POST /v1/nodes = %d %s %v", name, code, body, err)
		}
		var created struct {
			UUID string `json:"uuid"`
		}
		_ = json.Unmarshal(body, &created)
		code, body, err = call("POST", "/v1/ports", map[string]any{"address": q.Config().MAC, "node_uuid": created.UUID})
		if err != nil || code != 201 {
			return fmt.Errorf("enroll %s: POST /v1/ports = %d %s %v", name, code, body, err)
		}
		fmt.Fprintf(stdout, "  enrolled node %s (%s): %s, port %s, %s%s\n", name, created.UUID, bmc, q.Config().MAC, fw, how)
	}
	return nil
}

// staticAddr is machine vmI's static address on the bridge's network:
// host .(50+I) of its last octet, outside the DHCP pool (.100-.199).
func staticAddr(bridge netip.Prefix, name string) (netip.Addr, error) {
	i, err := strconv.Atoi(strings.TrimPrefix(name, "vm"))
	if err != nil || !strings.HasPrefix(name, "vm") || i < 0 || i > 49 {
		return netip.Addr{}, fmt.Errorf("machine %q: static addresses are for vm0..vm49", name)
	}
	b := bridge.Masked().Addr().As4()
	b[3] += byte(50 + i)
	return netip.AddrFrom4(b), nil
}

// networkData is an OpenStack network_data.json for one NIC (by MAC) with
// the static address ip on the bridge's network, the bridge's address as
// its DNS server.
func networkData(mac string, ip netip.Addr, bridge netip.Prefix) map[string]any {
	mask := net.CIDRMask(bridge.Bits(), 32)
	return map[string]any{
		"links": []any{map[string]any{"id": "nic0", "type": "phy", "ethernet_mac_address": mac, "mtu": 1500}},
		"networks": []any{map[string]any{"id": "lab", "type": "ipv4", "link": "nic0", "network_id": "lab",
			"ip_address": ip.String(), "netmask": net.IP(mask).String(), "routes": []any{}}},
		"services": []any{map[string]any{"type": "dns", "address": bridge.Addr().String()}},
	}
}

func readLines(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func readPid(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil && pid > 0
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// Field 3 is the state; a zombie has exited.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

func down(ctx context.Context, stdout io.Writer, dir, ns string, keep bool) error {
	if b, err := os.ReadFile(filepath.Join(dir, "netns")); err == nil && strings.TrimSpace(string(b)) != "" {
		ns = strings.TrimSpace(string(b))
	}
	pidPath := filepath.Join(dir, "vbmc.pid")
	if pid, ok := readPid(pidPath); ok && alive(pid) {
		// ferric-vbmc powers the machines off and stops its ipmi_sims on SIGTERM.
		fmt.Fprintf(stdout, "stopping ferric-vbmc (pid %d)\n", pid)
		_ = syscall.Kill(pid, syscall.SIGTERM)
		for i := 0; i < 100 && alive(pid); i++ {
			time.Sleep(100 * time.Millisecond)
		}
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	_ = os.Remove(pidPath)
	condPid := filepath.Join(dir, "conductor.pid")
	if pid, ok := readPid(condPid); ok && alive(pid) {
		fmt.Fprintf(stdout, "stopping ferric-conductor (pid %d)\n", pid)
		_ = syscall.Kill(pid, syscall.SIGTERM)
		for i := 0; i < 100 && alive(pid); i++ {
			time.Sleep(100 * time.Millisecond)
		}
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	_ = os.Remove(condPid)
	// Any machine still running (e.g. ferric-vbmc was killed): by its saved pid.
	vmDir := filepath.Join(dir, "vm")
	matches, _ := filepath.Glob(filepath.Join(vmDir, "*.json"))
	for _, m := range matches {
		q, err := lab.LoadQEMU(vmDir, strings.TrimSuffix(filepath.Base(m), ".json"))
		if err != nil {
			continue
		}
		if pid, ok := q.Pid(); ok {
			fmt.Fprintf(stdout, "stopping %s (pid %d)\n", q.Config().Name, pid)
			_ = q.PowerOff(ctx)
		}
	}
	// ipmi_sim processes whose parent was killed: by their config path.
	sims, _ := filepath.Glob(filepath.Join(vmDir, "*.lan.conf"))
	for _, conf := range sims {
		for _, pid := range pidsWithArg(conf) {
			fmt.Fprintf(stdout, "stopping ipmi_sim (pid %d)\n", pid)
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	if err := lab.NetDown(ctx, ns); err != nil {
		return err
	}
	_ = os.Remove(filepath.Join(dir, "netns"))
	fmt.Fprintf(stdout, "lab down: namespace %s removed\n", ns)
	if keep {
		fmt.Fprintf(stdout, "kept disks, conductor state and logs in %s\n", dir)
		return nil
	}
	// What up created, by name: a stale conductor state or disk would
	// otherwise meet the next lab (nodes enrolled with old settings).
	for _, name := range labFiles {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("lab down: %w", err)
		}
	}
	_ = os.Remove(dir) // only when empty
	fmt.Fprintf(stdout, "lab down: removed the machines' disks, the conductor's state and the logs from %s\n", dir)
	return nil
}

// labFiles are the entries up creates in the lab directory.
var labFiles = []string{"vm", "conductor", "bmcs.txt", "vbmc.log", "conductor.log", "vbmc.pid", "conductor.pid", "netns"}

// pidsWithArg lists processes with arg in their command line.
func pidsWithArg(arg string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, a := range strings.Split(string(b), "\x00") {
			if a == arg {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

func status(stdout io.Writer, dir string) error {
	pid, ok := readPid(filepath.Join(dir, "vbmc.pid"))
	if !ok || !alive(pid) {
		fmt.Fprintln(stdout, "lab: down")
		return nil
	}
	fmt.Fprintf(stdout, "lab: up, ferric-vbmc pid %d\n", pid)
	if cp, ok := readPid(filepath.Join(dir, "conductor.pid")); ok && alive(cp) {
		fmt.Fprintf(stdout, "  ferric-conductor pid %d (log %s)\n", cp, filepath.Join(dir, "conductor.log"))
	}
	for _, l := range readLines(filepath.Join(dir, "bmcs.txt")) {
		fmt.Fprintf(stdout, "  %s\n", l)
	}
	vmDir := filepath.Join(dir, "vm")
	matches, _ := filepath.Glob(filepath.Join(vmDir, "*.json"))
	for _, m := range matches {
		q, err := lab.LoadQEMU(vmDir, strings.TrimSuffix(filepath.Base(m), ".json"))
		if err != nil {
			continue
		}
		st := "off"
		if p, ok := q.Pid(); ok {
			st = fmt.Sprintf("on (pid %d)", p)
		}
		fmt.Fprintf(stdout, "  %s %s boot=%s\n", q.Config().Name, st, q.BootDevice())
	}
	return nil
}
