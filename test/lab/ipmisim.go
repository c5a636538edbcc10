package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// IPMISimConfig describes one OpenIPMI ipmi_sim virtual BMC.
type IPMISimConfig struct {
	Name string
	// Dir receives NAME.lan.conf, NAME.emu, the NAME.state folder and
	// NAME.ipmi_sim.log.
	Dir string
	// Addr and Port the BMC listens on (UDP). Default 127.0.0.1:623.
	Addr string
	Port int
	// Username and Password of the admin user (user 2).
	Username, Password string
	// ChassisControl is the argv of the chassis_control program; ipmi_sim
	// appends "get|set PARAM ...". No element may contain a space or quote.
	ChassisControl []string
	// SerialPort, when not 0, is a TCP port on Addr where ipmi_sim offers
	// the machine's in-band system interface with QEMU's "VM" codec: a
	// machine started with MachineConfig.BMCSerial at that address sees a
	// KCS BMC (/dev/ipmi0) that is this ipmi_sim.
	SerialPort int
	// SOL, when set, is the machine's serial port the BMC offers as
	// serial-over-LAN (ipmitool sol activate): "tcp:HOST:PORT", where the
	// machine's QEMU serves it (MachineConfig.SOLListen). ipmi_sim
	// connects there and reconnects when QEMU restarts.
	SOL string
	// Binary is ipmi_sim; default from $PATH.
	Binary string
}

// IPMISim is a running ipmi_sim process.
type IPMISim struct {
	cfg  IPMISimConfig
	pid  int
	done chan struct{} // closed when the process has been reaped
}

// Addr returns host:port of the BMC.
func (s *IPMISim) Addr() string {
	return net.JoinHostPort(s.cfg.Addr, strconv.Itoa(s.cfg.Port))
}

// Pid returns the ipmi_sim process id.
func (s *IPMISim) Pid() int { return s.pid }

// WriteIPMISimConfig writes the lan.conf and emu files of cfg (the lan.conf
// holds the password: mode 0600) and returns their paths.
func WriteIPMISimConfig(cfg IPMISimConfig) (lanConf, emu string, err error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1"
	}
	if cfg.Port == 0 {
		cfg.Port = 623
	}
	for _, a := range append([]string{cfg.Username, cfg.Password}, cfg.ChassisControl...) {
		if strings.ContainsAny(a, "\" \t\n") {
			return "", "", fmt.Errorf("lab: ipmi_sim %s: user, password and chassis_control words must not contain quotes or spaces", cfg.Name)
		}
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, cfg.Name+".state"), 0o755); err != nil {
		return "", "", fmt.Errorf("lab: %w", err)
	}
	lanConf = filepath.Join(cfg.Dir, cfg.Name+".lan.conf")
	emu = filepath.Join(cfg.Dir, cfg.Name+".emu")
	var b strings.Builder
	fmt.Fprintf(&b, "name \"%s\"\nset_working_mc 0x20\n  startlan 1\n    addr %s %d\n    priv_limit admin\n", cfg.Name, cfg.Addr, cfg.Port)
	for _, lvl := range []string{"callback", "user", "operator", "admin"} {
		fmt.Fprintf(&b, "    allowed_auths_%s none md2 md5 straight\n", lvl)
	}
	b.WriteString("    guid a123456789abcdefa123456789abcdef\n  endlan\n")
	if len(cfg.ChassisControl) > 0 {
		fmt.Fprintf(&b, "  chassis_control \"%s\"\n", strings.Join(cfg.ChassisControl, " "))
	}
	if cfg.SerialPort != 0 {
		fmt.Fprintf(&b, "  serial 15 %s %d codec VM\n", cfg.Addr, cfg.SerialPort)
	}
	if cfg.SOL != "" {
		if strings.ContainsAny(cfg.SOL, "\" \t\n") {
			return "", "", fmt.Errorf("lab: ipmi_sim %s: SOL device %q must not contain quotes or spaces", cfg.Name, cfg.SOL)
		}
		fmt.Fprintf(&b, "  sol \"%s\" 115200\n", cfg.SOL)
	}
	fmt.Fprintf(&b, "  user 2 true \"%s\" \"%s\" admin 10 none md2 md5 straight\n", cfg.Username, cfg.Password)
	if err := os.WriteFile(lanConf, []byte(b.String()), 0o600); err != nil {
		return "", "", fmt.Errorf("lab: %w", err)
	}
	const emuText = "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nsel_enable 0x20 1000 0x0a\nmc_enable 0x20\n"
	if err := os.WriteFile(emu, []byte(emuText), 0o644); err != nil {
		return "", "", fmt.Errorf("lab: %w", err)
	}
	return lanConf, emu, nil
}

// StartIPMISim writes the configuration and starts ipmi_sim, waiting until
// it answers an RMCP presence ping. The process lives until Stop, not ctx.
func StartIPMISim(ctx context.Context, cfg IPMISimConfig) (*IPMISim, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1"
	}
	if cfg.Port == 0 {
		cfg.Port = 623
	}
	if cfg.Binary == "" {
		cfg.Binary = "ipmi_sim"
	}
	lanConf, emu, err := WriteIPMISimConfig(cfg)
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(cfg.Dir, cfg.Name+".ipmi_sim.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(cfg.Binary, "-n", "-c", lanConf, "-f", emu, "-s", filepath.Join(cfg.Dir, cfg.Name+".state"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("lab: start ipmi_sim %s: %w", cfg.Name, err)
	}
	s := &IPMISim{cfg: cfg, pid: cmd.Process.Pid, done: make(chan struct{})}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := rmcpPing(s.Addr(), 200*time.Millisecond); err == nil {
			return s, nil
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("lab: ipmi_sim %s exited (%v); see %s.ipmi_sim.log", cfg.Name, err, filepath.Join(cfg.Dir, cfg.Name))
		case <-ctx.Done():
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			return nil, fmt.Errorf("lab: ipmi_sim %s: %w", cfg.Name, ctx.Err())
		default:
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			return nil, fmt.Errorf("lab: ipmi_sim %s does not answer on %s", cfg.Name, s.Addr())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SetLAN sets the LAN channel 1 address and MAC the BMC reports (Get LAN
// Configuration Parameters, which an in-band reader such as the deploy
// agent asks), with ipmitool over the BMC's own LAN interface as its admin.
func (s *IPMISim) SetLAN(ctx context.Context, ip, mac string) error {
	for _, set := range [][]string{{"ipaddr", ip}, {"macaddr", mac}} {
		out, err := exec.CommandContext(ctx, "ipmitool", "-I", "lanplus", "-C", "3", "-H", s.cfg.Addr, "-p", strconv.Itoa(s.cfg.Port),
			"-U", s.cfg.Username, "-P", s.cfg.Password, "lan", "set", "1", set[0], set[1]).CombinedOutput()
		if err != nil {
			return fmt.Errorf("lab: ipmi_sim %s: ipmitool lan set %s: %w: %s", s.cfg.Name, set[0], err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// Stop ends ipmi_sim (its process group) and waits for it to go.
func (s *IPMISim) Stop() error {
	_ = syscall.Kill(-s.pid, syscall.SIGTERM)
	select {
	case <-s.done:
		return nil
	case <-time.After(2 * time.Second):
	}
	_ = syscall.Kill(-s.pid, syscall.SIGKILL)
	select {
	case <-s.done:
		return nil
	case <-time.After(2 * time.Second):
		return fmt.Errorf("lab: ipmi_sim %s (pid %d) did not stop", s.cfg.Name, s.pid)
	}
}

// rmcpPing sends an ASF presence ping to a BMC and waits for the pong.
func rmcpPing(addr string, timeout time.Duration) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	// RMCP header (version 6, seq 0xff, class ASF) + ASF presence ping.
	ping := []byte{0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, 0x01, 0x00, 0x00}
	if _, err := c.Write(ping); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if n < 9 || buf[8] != 0x40 {
		return fmt.Errorf("lab: %s: not an RMCP pong", addr)
	}
	return nil
}
