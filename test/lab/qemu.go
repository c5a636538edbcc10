// Package lab runs the pieces of ferric's bare-metal lab: QEMU machines that
// stand in for servers (QEMU), OpenIPMI ipmi_sim virtual BMCs whose
// chassis_control program drives them (IPMISim, Chassis), and the network
// namespace with a bridge and one tap per machine (Net). The Redfish BMC
// emulator is in the redfish sub-package.
//
// A machine keeps its state in files under its directory (NAME.json config,
// NAME.pid, NAME.qmp, NAME.bootdev, NAME.serial, NAME.qemu.log), because the
// chassis_control program is a new process for every IPMI command.
package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults of MachineConfig.
const (
	DefaultMemMiB      = 256
	DefaultDiskSizeMiB = 64
	DefaultQEMU        = "qemu-system-x86_64"
	// OVMFCode and OVMFVars are the UEFI firmware and its variable store
	// template (Debian package ovmf); each machine gets its own copy of
	// the variables.
	OVMFCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	OVMFVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// Boot devices a machine understands.
const (
	BootPXE   = "pxe"
	BootDisk  = "disk"
	BootCDROM = "cdrom"
	BootBIOS  = "bios"
)

// MachineConfig describes one lab machine.
type MachineConfig struct {
	Name string `json:"name"`
	// Dir holds the machine's state files.
	Dir string `json:"dir"`
	// Disk is a raw disk image; created sparse with DiskSizeMiB when missing.
	// Default Dir/NAME.raw.
	Disk        string `json:"disk"`
	DiskSizeMiB int    `json:"disk_size_mib"`
	// ExtraDisks are more raw disk images (virtio, after Disk, without a
	// boot index), each created sparse with DiskSizeMiB when missing.
	ExtraDisks []string `json:"extra_disks,omitempty"`
	// MAC of the virtio NIC.
	MAC string `json:"mac"`
	// Net is "user" (QEMU user-mode network, isolated with restrict=on),
	// "slirp" (user-mode network with its DHCP server and NAT: the guest
	// reaches the host's addresses, 10.0.2.2 being its loopback), "tap:IFNAME"
	// or "none" (a NIC with no link). Default "user".
	Net string `json:"net"`
	// HostFwd are QEMU hostfwd rules of a "slirp" network
	// ("tcp:HOSTADDR:PORT-:GUESTPORT"): the host's connections to
	// HOSTADDR:PORT reach the guest's GUESTPORT.
	HostFwd []string `json:"host_fwd,omitempty"`
	// MemMiB of guest RAM. Default DefaultMemMiB.
	MemMiB int `json:"mem_mib"`
	// Firmware is "bios" (SeaBIOS, default) or "uefi" (OVMF).
	Firmware string `json:"firmware"`
	// QEMU is the emulator binary. Default DefaultQEMU from $PATH.
	QEMU string `json:"qemu"`
	// BMCSerial, when set, is host:port of an ipmi_sim serial interface
	// with the VM codec (IPMISimConfig.SerialPort): the machine gets an
	// in-band KCS BMC (ipmi-bmc-extern), as servers have, that the deploy
	// agent reads its BMC's address from. QEMU reconnects when ipmi_sim
	// restarts.
	BMCSerial string `json:"bmc_serial,omitempty"`
	// SOLListen, when set, is host:port where QEMU serves the machine's
	// serial port (ttyS0) as a TCP server for its BMC's serial-over-LAN
	// (IPMISimConfig.SOL connects there); the serial log still receives
	// all of its output.
	SOLListen string `json:"sol_listen,omitempty"`
	// CDROM gives the machine a CD drive (scsi-cd on virtio-scsi, empty until a
	// virtual media insert), the drive a BMC's virtual media attaches to.
	CDROM bool `json:"cdrom,omitempty"`
	// HTTPBoot makes the network boot UEFI HTTP boot (Firmware "uefi"):
	// the NIC has no option ROM, so OVMF's own virtio-net driver and HTTP
	// boot client run instead of iPXE's, and OVMF's PXE boot options are
	// off (fw_cfg opt/org.tianocore/IPv4PXESupport and IPv6PXESupport
	// "no"), so the NIC's boot options are HTTPv4 then HTTPv6: the
	// firmware asks DHCP as an HTTPClient and boots the URL it gets.
	HTTPBoot bool `json:"http_boot,omitempty"`
	// PXEIPv6 makes the network boot UEFI PXE over IPv6 (Firmware
	// "uefi", an IPv6-only network): the NIC has no option ROM (OVMF's
	// own virtio-net driver and PXE client run) and OVMF's IPv4 PXE is
	// off (fw_cfg opt/org.tianocore/IPv4PXESupport "no"), so the NIC's
	// first boot option is PXEv6: DHCPv6, then the boot-file URL's
	// tftp://[addr]/file.
	PXEIPv6 bool `json:"pxe_ipv6,omitempty"`
	// USBStick gives the machine the slot a BMC's virtual USB stick
	// attaches to (empty until an insert). It is a removable SCSI disk
	// on the virtio-scsi bus, not USB: Debian's cloud kernel has no USB
	// storage driver.
	USBStick bool `json:"usb_stick,omitempty"`
}

// QEMU controls one QEMU machine (TCG, one vCPU) through its state files and
// its QMP socket. Its methods may be called from different processes.
type QEMU struct {
	cfg  MachineConfig
	nmis atomic.Int64
}

// NewQEMU returns a controller for cfg with defaults applied.
func NewQEMU(cfg MachineConfig) (*QEMU, error) {
	if cfg.Name == "" || strings.ContainsAny(cfg.Name, "/ \t,") {
		return nil, fmt.Errorf("lab: machine name %q: want a plain non-empty name", cfg.Name)
	}
	if cfg.Dir == "" {
		return nil, fmt.Errorf("lab: machine %s: no state directory", cfg.Name)
	}
	if cfg.BMCSerial != "" {
		if h, p, err := net.SplitHostPort(cfg.BMCSerial); err != nil || h == "" || p == "" || strings.ContainsAny(cfg.BMCSerial, ", ") {
			return nil, fmt.Errorf("lab: machine %s: BMC serial %q: want host:port", cfg.Name, cfg.BMCSerial)
		}
	}
	if cfg.SOLListen != "" {
		if h, p, err := net.SplitHostPort(cfg.SOLListen); err != nil || h == "" || p == "" || strings.ContainsAny(cfg.SOLListen, ", ") {
			return nil, fmt.Errorf("lab: machine %s: SOL listen %q: want host:port", cfg.Name, cfg.SOLListen)
		}
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("lab: machine %s: %w", cfg.Name, err)
	}
	cfg.Dir = dir
	if cfg.Disk == "" {
		cfg.Disk = filepath.Join(dir, cfg.Name+".raw")
	}
	if cfg.DiskSizeMiB <= 0 {
		cfg.DiskSizeMiB = DefaultDiskSizeMiB
	}
	if cfg.MAC == "" {
		cfg.MAC = "52:54:00:00:00:01"
	}
	if cfg.Net == "" {
		cfg.Net = "user"
	}
	if cfg.MemMiB <= 0 {
		cfg.MemMiB = DefaultMemMiB
	}
	if cfg.Firmware == "" {
		cfg.Firmware = "bios"
	}
	if cfg.QEMU == "" {
		cfg.QEMU = DefaultQEMU
	}
	if len(filepath.Join(dir, cfg.Name+".qmp")) > 100 {
		return nil, fmt.Errorf("lab: machine %s: state directory %s is too long for a unix socket path", cfg.Name, dir)
	}
	return &QEMU{cfg: cfg}, nil
}

// Config returns the machine's configuration with defaults applied.
func (q *QEMU) Config() MachineConfig { return q.cfg }

func (q *QEMU) path(ext string) string { return filepath.Join(q.cfg.Dir, q.cfg.Name+ext) }

// SerialLog is the file receiving the machine's serial console.
func (q *QEMU) SerialLog() string { return q.path(".serial") }

// FirmwareLog is the file receiving SeaBIOS's debug log, where each boot
// attempt shows as a "Booting from ..." line.
func (q *QEMU) FirmwareLog() string { return q.path(".firmware.log") }

// Save writes the configuration to Dir/NAME.json for LoadQEMU.
func (q *QEMU) Save() error {
	if err := os.MkdirAll(q.cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	b, err := json.MarshalIndent(q.cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := os.WriteFile(q.path(".json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("lab: save machine %s: %w", q.cfg.Name, err)
	}
	return nil
}

// LoadQEMU reads a configuration saved by Save.
func LoadQEMU(dir, name string) (*QEMU, error) {
	b, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if err != nil {
		return nil, fmt.Errorf("lab: load machine %s: %w", name, err)
	}
	var cfg MachineConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("lab: load machine %s: %w", name, err)
	}
	return NewQEMU(cfg)
}

// lock serialises state changes of one machine across processes.
func (q *QEMU) lock() (func(), error) {
	if err := os.MkdirAll(q.cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	f, err := os.OpenFile(q.path(".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lab: lock machine %s: %w", q.cfg.Name, err)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// Pid returns the QEMU process id while the machine runs.
func (q *QEMU) Pid() (int, bool) {
	b, err := os.ReadFile(q.path(".pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	// The pid must still be our QEMU (not a reused pid, not a zombie).
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmd), q.path(".pid")) {
		return 0, false
	}
	return pid, true
}

// Running reports whether the machine's QEMU process is alive.
func (q *QEMU) Running(context.Context) (bool, error) {
	_, ok := q.Pid()
	return ok, nil
}

// CommandLine returns the argv of the running QEMU process.
func (q *QEMU) CommandLine() ([]string, error) {
	pid, ok := q.Pid()
	if !ok {
		return nil, fmt.Errorf("lab: machine %s is off", q.cfg.Name)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), nil
}

// BootDevice returns the device the machine boots from at its next start.
func (q *QEMU) BootDevice() string {
	b, err := os.ReadFile(q.path(".bootdev"))
	if err != nil {
		return BootDisk
	}
	if d := strings.TrimSpace(string(b)); d != "" {
		return d
	}
	return BootDisk
}

// bootIndexes returns the bootindex of the NIC, the disk and the CD drive
// for dev.
func bootIndexes(dev string) (nic, disk, cd int) {
	switch dev {
	case BootPXE:
		return 1, 2, 3
	case BootCDROM:
		return 3, 2, 1
	}
	return 2, 1, 3
}

// SetBootDevice records dev for the next start. On a running machine it
// also changes the devices' bootindex over QMP, which QEMU applies at the
// next reset.
func (q *QEMU) SetBootDevice(ctx context.Context, dev string) error {
	switch dev {
	case BootPXE, BootDisk, BootCDROM, BootBIOS:
	default:
		return fmt.Errorf("lab: boot device %q: want pxe, disk, cdrom or bios", dev)
	}
	unlock, err := q.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.WriteFile(q.path(".bootdev"), []byte(dev+"\n"), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if _, ok := q.Pid(); !ok {
		return nil
	}
	nic, disk, cd := bootIndexes(dev)
	devs := []struct {
		id  string
		idx int
	}{{"nic0", nic}, {"disk0", disk}}
	if q.cfg.CDROM {
		devs = append(devs, struct {
			id  string
			idx int
		}{"cd0", cd})
	}
	// Two devices cannot share a bootindex: move them all out of the way
	// first, then give each its place.
	set := func(id string, idx int) error {
		_, err := QMP(ctx, q.path(".qmp"), "qom-set", map[string]any{"path": "/machine/peripheral/" + id, "property": "bootindex", "value": idx})
		if err != nil {
			return fmt.Errorf("lab: machine %s: live boot order change: %w", q.cfg.Name, err)
		}
		return nil
	}
	for i, d := range devs {
		if err := set(d.id, 10+i); err != nil {
			return err
		}
	}
	for _, d := range devs {
		if err := set(d.id, d.idx); err != nil {
			return err
		}
	}
	return nil
}

// BootIndex reads the live bootindex of "nic0", "disk0" or "cd0" over QMP.
func (q *QEMU) BootIndex(ctx context.Context, dev string) (int, error) {
	v, err := QMP(ctx, q.path(".qmp"), "qom-get", map[string]any{"path": "/machine/peripheral/" + dev, "property": "bootindex"})
	if err != nil {
		return 0, err
	}
	var idx int
	if err := json.Unmarshal(v, &idx); err != nil {
		return 0, fmt.Errorf("lab: bootindex of %s: %w", dev, err)
	}
	return idx, nil
}

// Args returns the QEMU command line used to start the machine now.
func (q *QEMU) Args() []string {
	c := q.cfg
	nic, disk, cd := bootIndexes(q.BootDevice())
	args := []string{
		"-name", c.Name,
		"-machine", "q35,accel=tcg",
		"-cpu", "max", "-smp", "1", "-m", strconv.Itoa(c.MemMiB),
		"-display", "none", "-daemonize",
		"-pidfile", q.path(".pid"),
		"-qmp", "unix:" + q.path(".qmp") + ",server=on,wait=off",
		"-chardev", q.serialChardev(),
		"-serial", "chardev:ser0",
		// SeaBIOS writes its log (boot order, "Booting from ...") to port 0x402.
		"-chardev", "file,id=fw0,path=" + q.FirmwareLog() + ",append=on",
		"-device", "isa-debugcon,iobase=0x402,chardev=fw0",
		"-drive", "file=" + c.Disk + ",format=raw,if=none,id=d0",
		"-device", fmt.Sprintf("virtio-blk-pci,drive=d0,id=disk0,bootindex=%d", disk),
	}
	for i, d := range c.ExtraDisks {
		args = append(args, "-drive", fmt.Sprintf("file=%s,format=raw,if=none,id=d%d", d, i+1),
			"-device", fmt.Sprintf("virtio-blk-pci,drive=d%d,id=disk%d", i+1, i+1))
	}
	if c.Firmware == "uefi" {
		args = append(args,
			"-drive", "if=pflash,format=raw,readonly=on,file="+OVMFCode,
			"-drive", "if=pflash,format=raw,file="+q.path(".vars"))
	}
	switch {
	case strings.HasPrefix(c.Net, "tap:"):
		args = append(args, "-netdev", "tap,id=n0,ifname="+strings.TrimPrefix(c.Net, "tap:")+",script=no,downscript=no")
	case c.Net == "none":
		args = append(args, "-netdev", "hubport,id=n0,hubid=0")
	case c.Net == "slirp":
		nd := "user,id=n0"
		for _, f := range c.HostFwd {
			nd += ",hostfwd=" + f
		}
		args = append(args, "-netdev", nd)
	default:
		args = append(args, "-netdev", "user,id=n0,restrict=on")
	}
	nicDev := fmt.Sprintf("virtio-net-pci,netdev=n0,id=nic0,mac=%s,bootindex=%d", c.MAC, nic)
	if c.HTTPBoot && c.Firmware == "uefi" {
		nicDev += ",romfile="
		args = append(args, "-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=no",
			"-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=no")
	}
	if c.PXEIPv6 && !c.HTTPBoot && c.Firmware == "uefi" {
		nicDev += ",romfile="
		args = append(args, "-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=no")
	}
	args = append(args, "-device", nicDev)
	if c.CDROM {
		drive := "if=none,id=cdd0,media=cdrom,readonly=on"
		if iso := q.Media(); iso != "" {
			drive = "file=" + iso + ",format=raw," + drive
		}
		// On virtio-scsi rather than q35's AHCI: firmware (SeaBIOS, OVMF)
		// boots from it, and the deploy ramdisk's cloud kernel, which has
		// virtio_scsi and sr_mod but no ahci, reads it (config-2).
		args = append(args, "-drive", drive, "-device", "virtio-scsi-pci,id=scsi0",
			"-device", fmt.Sprintf("scsi-cd,bus=scsi0.0,drive=cdd0,id=cd0,bootindex=%d", cd))
	}
	if c.USBStick {
		if !c.CDROM {
			args = append(args, "-device", "virtio-scsi-pci,id=scsi0")
		}
		drive := "if=none,id=usbd0,readonly=on"
		if img := q.USBMedia(); img != "" {
			drive = "file=" + img + ",format=raw," + drive
		}
		args = append(args, "-drive", drive, "-device", "scsi-hd,bus=scsi0.0,drive=usbd0,id=usb0,removable=on")
	}
	if c.BMCSerial != "" {
		host, port, _ := net.SplitHostPort(c.BMCSerial)
		args = append(args,
			"-chardev", "socket,id=ipmi0,host="+host+",port="+port+",reconnect=2",
			"-device", "ipmi-bmc-extern,id=bmc0,chardev=ipmi0",
			"-device", "isa-ipmi-kcs,bmc=bmc0")
	}
	return args
}

// serialChardev is the serial port's backend: the serial log, or, for
// SOL, a TCP server that logs to the serial log all the same (QEMU writes
// the log whether or not the BMC is connected).
func (q *QEMU) serialChardev() string {
	if q.cfg.SOLListen == "" {
		return "file,id=ser0,path=" + q.SerialLog() + ",append=on"
	}
	host, port, _ := net.SplitHostPort(q.cfg.SOLListen)
	return "socket,id=ser0,host=" + host + ",port=" + port + ",server=on,wait=off,logfile=" + q.SerialLog() + ",logappend=on"
}

// PowerOn starts QEMU (daemonized) unless it runs already.
func (q *QEMU) PowerOn(ctx context.Context) error {
	unlock, err := q.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := q.Pid(); ok {
		return nil
	}
	if err := q.prepareDisk(); err != nil {
		return err
	}
	if q.cfg.Firmware == "uefi" {
		if _, err := os.Stat(q.path(".vars")); errors.Is(err, os.ErrNotExist) {
			b, err := os.ReadFile(OVMFVars)
			if err != nil {
				return fmt.Errorf("lab: uefi needs the ovmf package: %w", err)
			}
			if err := os.WriteFile(q.path(".vars"), b, 0o644); err != nil {
				return fmt.Errorf("lab: %w", err)
			}
		}
		if uri := q.HTTPBootURI(); uri != "" {
			if err := SetOVMFHTTPBoot(q.path(".vars"), uri); err != nil {
				return err
			}
		}
	}
	_ = os.Remove(q.path(".pid"))
	logf, err := os.OpenFile(q.path(".qemu.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== power on %s boot=%s\n", time.Now().Format(time.RFC3339Nano), q.BootDevice())
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, q.cfg.QEMU, q.Args()...)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = logf, logf // files, not pipes: the daemon keeps them
	if err := cmd.Run(); err != nil {
		tail, _ := os.ReadFile(q.path(".qemu.log"))
		if len(tail) > 400 {
			tail = tail[len(tail)-400:]
		}
		return fmt.Errorf("lab: start machine %s: %w: %s", q.cfg.Name, err, strings.TrimSpace(string(tail)))
	}
	if _, ok := q.Pid(); !ok {
		return fmt.Errorf("lab: machine %s: QEMU exited right after starting; see %s", q.cfg.Name, q.path(".qemu.log"))
	}
	return nil
}

func (q *QEMU) prepareDisk() error {
	for _, d := range append([]string{q.cfg.Disk}, q.cfg.ExtraDisks...) {
		if err := q.createDisk(d); err != nil {
			return err
		}
	}
	return nil
}

// createDisk creates a sparse raw disk of DiskSizeMiB unless it exists.
func (q *QEMU) createDisk(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("lab: create disk: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(int64(q.cfg.DiskSizeMiB) << 20); err != nil {
		return fmt.Errorf("lab: create disk: %w", err)
	}
	return nil
}

// PowerOff stops QEMU at once (a hard power-off): SIGTERM, then SIGKILL
// after 5 s.
func (q *QEMU) PowerOff(ctx context.Context) error {
	unlock, err := q.lock()
	if err != nil {
		return err
	}
	defer unlock()
	pid, ok := q.Pid()
	if !ok {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok := q.Pid(); !ok {
			_ = os.Remove(q.path(".pid"))
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lab: power off %s: %w", q.cfg.Name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	_ = os.Remove(q.path(".pid"))
	return nil
}

// Shutdown sends an ACPI power button press (QMP system_powerdown).
func (q *QEMU) Shutdown(ctx context.Context) error {
	if _, ok := q.Pid(); !ok {
		return nil
	}
	_, err := QMP(ctx, q.path(".qmp"), "system_powerdown", nil)
	return err
}

// InjectNMI sends a non-maskable interrupt to the running machine's CPUs
// (QMP inject-nmi), as a BMC's diagnostic interrupt does.
func (q *QEMU) InjectNMI(ctx context.Context) error {
	if _, ok := q.Pid(); !ok {
		return fmt.Errorf("lab: NMI to %s: machine is off", q.cfg.Name)
	}
	if _, err := QMP(ctx, q.path(".qmp"), "inject-nmi", nil); err != nil {
		return err
	}
	q.nmis.Add(1)
	return nil
}

// NMIs counts the NMIs InjectNMI delivered.
func (q *QEMU) NMIs() int64 { return q.nmis.Load() }

// Reset is a hard reset (QMP system_reset); the boot order set while the
// machine ran applies. It returns once QEMU has reset the machine.
func (q *QEMU) Reset(ctx context.Context) error {
	if _, ok := q.Pid(); !ok {
		return fmt.Errorf("lab: reset %s: machine is off", q.cfg.Name)
	}
	// Wait for the reset itself, so that a boot order changed afterwards
	// is not the one the firmware reads now.
	_, err := qmp(ctx, q.path(".qmp"), "system_reset", nil, "RESET")
	return err
}

// Media returns the image in the machine's CD drive ("" when empty).
func (q *QEMU) Media() string {
	b, err := os.ReadFile(q.path(".media"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// InsertMedia puts the ISO image at path in the machine's CD drive: at
// once over QMP (blockdev-change-medium) when it runs, else at its next
// start. The drive is read-only.
func (q *QEMU) InsertMedia(ctx context.Context, path string) error {
	if !q.cfg.CDROM {
		return fmt.Errorf("lab: machine %s has no CD drive", q.cfg.Name)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if strings.ContainsAny(abs, ",\n") {
		return fmt.Errorf("lab: media path %q: no commas or newlines", abs)
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("lab: media: %w", err)
	}
	unlock, err := q.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := q.Pid(); ok {
		_, err := QMP(ctx, q.path(".qmp"), "blockdev-change-medium", map[string]any{"id": "cd0", "filename": abs, "format": "raw", "read-only-mode": "read-only"})
		if err != nil {
			return fmt.Errorf("lab: machine %s: insert media: %w", q.cfg.Name, err)
		}
	}
	if err := os.WriteFile(q.path(".media"), []byte(abs+"\n"), 0o644); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}

// EjectMedia empties the machine's CD drive (QMP eject, forced: a guest
// may have locked the tray).
func (q *QEMU) EjectMedia(ctx context.Context) error {
	if !q.cfg.CDROM {
		return fmt.Errorf("lab: machine %s has no CD drive", q.cfg.Name)
	}
	unlock, err := q.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := q.Pid(); ok {
		if _, err := QMP(ctx, q.path(".qmp"), "eject", map[string]any{"id": "cd0", "force": true}); err != nil {
			return fmt.Errorf("lab: machine %s: eject media: %w", q.cfg.Name, err)
		}
	}
	if err := os.Remove(q.path(".media")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("lab: %w", err)
	}
	return nil
}
