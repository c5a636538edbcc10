// Package initsys does what the agent needs as PID 1 of a ramdisk: mount
// the kernel filesystems, attach the console, load kernel modules in
// modules.dep order, bring up every NIC with carrier through DHCP, and power
// off or reboot at the end.
package initsys

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"golang.org/x/sys/unix"
)

// MountAll mounts proc, sys, devtmpfs and tmpfs and points fds 0–2 at
// /dev/console.
func MountAll() error {
	var errs []error
	for _, m := range []struct{ src, dst, fs string }{
		{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}, {"devtmpfs", "/dev", "devtmpfs"}, {"devpts", "/dev/pts", "devpts"},
		{"tmpfs", "/tmp", "tmpfs"}, {"tmpfs", "/run", "tmpfs"},
	} {
		os.MkdirAll(m.dst, 0o755)
		if err := unix.Mount(m.src, m.dst, m.fs, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			errs = append(errs, fmt.Errorf("initsys: mount %s: %w", m.dst, err))
		}
	}
	if fd, err := unix.Open("/dev/console", unix.O_RDWR, 0); err == nil {
		unix.Dup2(fd, 0)
		unix.Dup2(fd, 1)
		unix.Dup2(fd, 2)
	}
	return errors.Join(errs...)
}

// MountEFIVars mounts efivarfs at /sys/firmware/efi/efivars when the
// machine booted by UEFI (after the modules: efivarfs may be one). It
// reports whether EFI variables are there.
func MountEFIVars() bool {
	const dst = "/sys/firmware/efi/efivars"
	if _, err := os.Stat("/sys/firmware/efi"); err != nil {
		return false
	}
	var st unix.Statfs_t
	if unix.Statfs(dst, &st) == nil && st.Type == unix.EFIVARFS_MAGIC {
		return true
	}
	err := unix.Mount("efivarfs", dst, "efivarfs", 0, "")
	return err == nil || errors.Is(err, unix.EBUSY)
}

// PstoreDir is where MountPstore mounts the kernel's pstore.
const PstoreDir = "/sys/fs/pstore"

// MountPstore mounts the kernel's pstore (its saved oops/panic records) at
// PstoreDir when the kernel has one; it reports whether it is there.
func MountPstore() bool {
	if _, err := os.Stat(PstoreDir); err != nil {
		return false
	}
	err := unix.Mount("pstore", PstoreDir, "pstore", 0, "")
	return err == nil || errors.Is(err, unix.EBUSY)
}

// LoadModules loads every module under dir (e.g. /lib/modules/<release>)
// listed in modules.dep, dependencies first, with finit_module.
func LoadModules(log *slog.Logger, dir string) error {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return fmt.Errorf("initsys: %w", err)
	}
	defer f.Close()
	deps := map[string][]string{}
	var order []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		order = append(order, mod)
	}
	loaded := map[string]bool{}
	var load func(m string, depth int)
	load = func(m string, depth int) {
		if loaded[m] || depth > 32 {
			return
		}
		loaded[m] = true
		for i := len(deps[m]) - 1; i >= 0; i-- { // modules.dep lists the deepest dependency last
			load(deps[m][i], depth+1)
		}
		mf, err := os.Open(filepath.Join(dir, m))
		if err != nil {
			log.Warn("module missing", "module", m, "error", err)
			return
		}
		defer mf.Close()
		flags := 0
		if strings.HasSuffix(m, ".xz") || strings.HasSuffix(m, ".zst") || strings.HasSuffix(m, ".gz") {
			flags = 4 // MODULE_INIT_COMPRESSED_FILE: the kernel decompresses
		}
		if err := unix.FinitModule(int(mf.Fd()), moduleParams(m), flags); err != nil && !errors.Is(err, unix.EEXIST) {
			log.Warn("module load failed", "module", m, "error", err)
		}
	}
	for _, m := range order {
		load(m, 0)
	}
	return nil
}

// moduleParams are the parameters a module is loaded with: bonding makes
// no bond0 of its own (max_bonds=0, as distributions configure it), so
// that network_data's bonds get the names they are given.
func moduleParams(path string) string {
	name, _, _ := strings.Cut(filepath.Base(path), ".")
	if name == "bonding" {
		return "max_bonds=0"
	}
	return ""
}

// LoadModuleOrder loads the modules named in orderFile (one file name a
// line, dependencies first, as ipa/ramdisk/build.sh writes
// /etc/modules.order) from dir with finit_module, in that order.
func LoadModuleOrder(log *slog.Logger, dir, orderFile string) error {
	b, err := os.ReadFile(orderFile)
	if err != nil {
		return fmt.Errorf("initsys: %w", err)
	}
	for _, name := range strings.Fields(string(b)) {
		mf, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			log.Warn("module missing", "module", name, "error", err)
			continue
		}
		flags := 0
		if strings.HasSuffix(name, ".xz") || strings.HasSuffix(name, ".zst") || strings.HasSuffix(name, ".gz") {
			flags = 4 // MODULE_INIT_COMPRESSED_FILE
		}
		if err := unix.FinitModule(int(mf.Fd()), moduleParams(name), flags); err != nil && !errors.Is(err, unix.EEXIST) {
			log.Warn("module load failed", "module", name, "error", err)
		}
		mf.Close()
	}
	return nil
}

// Lease is a configured interface.
type Lease struct {
	Interface string
	MAC       string
	Addr      net.IPNet
	Router    net.IP
}

// ConfigureNetwork brings every Ethernet interface up, waits up to wait for
// carrier, and runs DHCP on all interfaces with carrier in parallel.
func ConfigureNetwork(ctx context.Context, log *slog.Logger, wait time.Duration) ([]Lease, error) {
	return ConfigureNetworkOn(ctx, log, wait, nil)
}

// ConfigureNetworkOn is ConfigureNetwork on the named interfaces only (all
// Ethernet interfaces when only is empty): the links network_data leaves
// to DHCP.
func ConfigureNetworkOn(ctx context.Context, log *slog.Logger, wait time.Duration, only []string) ([]Lease, error) {
	return configure(ctx, log, wait, only, dhcp)
}

// ConfigureNetworkIPv6On is ConfigureNetworkOn with DHCPv6 instead of
// DHCPv4: for an IPv6-only provisioning network (the API URL's host is
// an IPv6 address).
func ConfigureNetworkIPv6On(ctx context.Context, log *slog.Logger, wait time.Duration, only []string) ([]Lease, error) {
	return configure(ctx, log, wait, only, dhcpv6Lease)
}

func configure(ctx context.Context, log *slog.Logger, wait time.Duration, only []string,
	dhcp func(context.Context, net.Interface) (Lease, error)) ([]Lease, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("initsys: %w", err)
	}
	setUp("lo")
	var cands []net.Interface
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 || len(i.HardwareAddr) != 6 {
			continue
		}
		if len(only) > 0 && !slices.Contains(only, i.Name) {
			continue
		}
		if err := setUp(i.Name); err != nil {
			log.Warn("link up failed", "interface", i.Name, "error", err)
			continue
		}
		cands = append(cands, i)
	}
	deadline := time.Now().Add(wait)
	var withCarrier []net.Interface
	for {
		withCarrier = withCarrier[:0]
		for _, i := range cands {
			if b, _ := os.ReadFile("/sys/class/net/" + i.Name + "/carrier"); strings.TrimSpace(string(b)) == "1" {
				withCarrier = append(withCarrier, i)
			}
		}
		if len(withCarrier) == len(cands) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var (
		mu     sync.Mutex
		leases []Lease
		wg     sync.WaitGroup
	)
	for _, i := range withCarrier {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := dhcp(ctx, i)
			if err != nil {
				log.Warn("dhcp failed", "interface", i.Name, "mac", i.HardwareAddr.String(), "error", err)
				return
			}
			log.Info("dhcp lease", "interface", i.Name, "mac", l.MAC, "addr", l.Addr.String(), "router", l.Router)
			mu.Lock()
			leases = append(leases, l)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(leases) == 0 {
		return nil, fmt.Errorf("initsys: no DHCP lease on %d interfaces with carrier (of %d)", len(withCarrier), len(cands))
	}
	return leases, nil
}

func dhcp(ctx context.Context, i net.Interface) (Lease, error) {
	c, err := nclient4.New(i.Name, nclient4.WithTimeout(4*time.Second), nclient4.WithRetry(5))
	if err != nil {
		return Lease{}, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	l, err := c.Request(ctx)
	if err != nil {
		return Lease{}, err
	}
	mask := l.ACK.SubnetMask()
	if mask == nil {
		mask = l.ACK.YourIPAddr.DefaultMask()
	}
	lease := Lease{Interface: i.Name, MAC: i.HardwareAddr.String(), Addr: net.IPNet{IP: l.ACK.YourIPAddr.To4(), Mask: mask}}
	if err := setAddr(i.Name, lease.Addr); err != nil {
		return lease, err
	}
	if r := l.ACK.Router(); len(r) > 0 {
		lease.Router = r[0]
		if err := addDefaultRoute(i.Name, r[0]); err != nil && !errors.Is(err, unix.EEXIST) {
			return lease, fmt.Errorf("default route via %s: %w", r[0], err)
		}
	}
	return lease, nil
}

func ctlSocket() (int, error) { return unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0) }

func setUp(name string) error {
	fd, err := ctlSocket()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

func setAddr(name string, a net.IPNet) error {
	fd, err := ctlSocket()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for _, op := range []struct {
		req uint
		ip  net.IP
	}{{unix.SIOCSIFADDR, a.IP}, {unix.SIOCSIFNETMASK, net.IP(a.Mask)}} {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		if err := ifr.SetInet4Addr(op.ip.To4()); err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, op.req, ifr); err != nil {
			return fmt.Errorf("initsys: %s: %w", name, err)
		}
	}
	return nil
}

// rtentry mirrors struct rtentry of <net/route.h> (64-bit layout).
type rtentry struct {
	pad1    uintptr
	dst     unix.RawSockaddrInet4
	gateway unix.RawSockaddrInet4
	genmask unix.RawSockaddrInet4
	flags   uint16
	pad2    int16
	pad3    uintptr
	pad4    uintptr
	metric  int16
	dev     *byte
	window  uintptr
	irtt    uint16
}

func addDefaultRoute(dev string, gw net.IP) error {
	fd, err := ctlSocket()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	name, err := unix.BytePtrFromString(dev)
	if err != nil {
		return err
	}
	rt := rtentry{flags: unix.RTF_UP | unix.RTF_GATEWAY, dev: name}
	rt.dst.Family, rt.gateway.Family, rt.genmask.Family = unix.AF_INET, unix.AF_INET, unix.AF_INET
	copy(rt.gateway.Addr[:], gw.To4())
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCADDRT, uintptr(unsafe.Pointer(&rt))); e != 0 {
		return e
	}
	return nil
}

// Power ends the machine's life: sync, then power off or reboot. It only
// returns on failure.
type Power struct{}

// PowerOff implements agent.Powerer.
func (Power) PowerOff(ctx context.Context, reboot bool) error {
	unix.Sync()
	cmd := unix.LINUX_REBOOT_CMD_POWER_OFF
	if reboot {
		cmd = unix.LINUX_REBOOT_CMD_RESTART
	}
	if err := unix.Reboot(cmd); err != nil {
		// Fall back to sysrq.
		key := "o"
		if reboot {
			key = "b"
		}
		os.WriteFile("/proc/sysrq-trigger", []byte(key), 0)
		return fmt.Errorf("initsys: reboot(%d): %w", cmd, err)
	}
	return nil
}

// Halt never returns: it powers off, and if that fails, sleeps forever (PID
// 1 must not exit).
func Halt(log *slog.Logger, err error) {
	log.Error("fatal error, powering off", "error", err)
	time.Sleep(5 * time.Second)
	Power{}.PowerOff(context.Background(), false)
	for {
		time.Sleep(time.Hour)
	}
}
