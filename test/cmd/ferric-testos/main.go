//go:build linux

// Command ferric-testos is the /init of the lab's test OS image (built by
// test/lab/mkimage.sh): what a deployed instance runs in the lab. It mounts
// /dev, /proc and /sys, loads the modules listed in /etc/modules.order, finds
// assembles Linux software RAID arrays as an OS's initramfs does (mdadm
// --assemble --scan --run, when the image carries mdadm: degraded arrays
// start too), finds the config drive (a filesystem labelled config-2, ISO
// 9660 or VFAT; on a deployed array it is a partition of the md device), reads
// openstack/latest/meta_data.json and prints
//
//	ferric-testos: booted uuid=<uuid> hostname=<hostname>
//
// on the console. It sets root's password and keys from the metadata
// (agent.go). If user_data holds an http:// URL (the first word that
// starts with http:// or https://), it configures the first Ethernet link
// (static from network_data.json when given there, else DHCP) and POSTs
// {"uuid":...,"hostname":...,"name":...} to that URL. Then it powers off,
// unless the kernel command line has ferric.testos.stay=1 — or the config
// drive's vendor data names a phone-home (a server built through the
// Compute API): then it reports DEPLOYING and DEPLOYED there, with root's
// shadow entry, keys and metadata in its report, and stays up serving the
// phone-home's actions (changePassword), see agent.go.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	setup()
	err := run()
	if err != nil {
		fmt.Printf("ferric-testos: error: %v\n", err)
	}
	if !strings.Contains(readFile("/proc/cmdline"), "ferric.testos.stay=1") {
		unix.Sync()
		time.Sleep(200 * time.Millisecond)
		_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	}
	select {} // PID 1 must not exit
}

func setup() {
	_ = os.MkdirAll("/dev", 0o755)
	_ = unix.Mount("devtmpfs", "/dev", "devtmpfs", 0, "")
	if c, err := os.OpenFile("/dev/console", os.O_RDWR, 0); err == nil {
		_ = unix.Dup2(int(c.Fd()), 0)
		_ = unix.Dup2(int(c.Fd()), 1)
		_ = unix.Dup2(int(c.Fd()), 2)
	}
	for _, m := range [][3]string{{"proc", "/proc", "proc"}, {"sysfs", "/sys", "sysfs"}} {
		_ = os.MkdirAll(m[1], 0o755)
		_ = unix.Mount(m[0], m[1], m[2], 0, "")
	}
	for _, name := range strings.Fields(readFile("/etc/modules.order")) {
		f, err := os.Open(filepath.Join("/lib/modules", name))
		if err != nil {
			continue
		}
		if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
			fmt.Printf("ferric-testos: module %s: %v\n", name, err)
		}
		f.Close()
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

type metaData struct {
	UUID     string `json:"uuid"`
	Hostname string `json:"hostname"`
	Name     string `json:"name"`
	// What the in-server agent applies (agent.go).
	AdminPass  string            `json:"admin_pass"`
	PublicKeys map[string]string `json:"public_keys"`
	Meta       map[string]string `json:"meta"`
}

func run() error {
	assembleRAID()
	dev, fstype, err := findConfigDrive(15 * time.Second)
	if err != nil {
		return err
	}
	_ = os.MkdirAll("/mnt/config", 0o755)
	if err := unix.Mount(dev, "/mnt/config", fstype, unix.MS_RDONLY, ""); err != nil {
		return fmt.Errorf("mount config drive %s (%s): %w", dev, fstype, err)
	}
	var md metaData
	if err := json.Unmarshal([]byte(readFile("/mnt/config/openstack/latest/meta_data.json")), &md); err != nil {
		return fmt.Errorf("config drive %s: meta_data.json: %w", dev, err)
	}
	fmt.Printf("ferric-testos: booted uuid=%s hostname=%s config-drive=%s\n", md.UUID, md.Hostname, dev)
	url := reportURL(readFile("/mnt/config/openstack/latest/user_data"))
	ph := phoneHomeOf(readFile("/mnt/config/openstack/latest/vendor_data2.json"))
	if url == "" && ph == nil {
		return applyUsers(md)
	}
	if err := network(readFile("/mnt/config/openstack/latest/network_data.json")); err != nil {
		return err
	}
	if ph == nil {
		if err := applyUsers(md); err != nil {
			return err
		}
		return report(url, facts(md, ""))
	}
	// The in-server agent (agent.go): report in, apply, report the
	// outcome, then serve the phone-home's actions for good.
	ph.status("DEPLOYING", "")
	if err := applyUsers(md); err != nil {
		ph.status("FAILED", err.Error())
	} else {
		ph.status("DEPLOYED", "root password, keys and network configured by ferric-testos")
	}
	if url != "" {
		if err := report(url, facts(md, "boot")); err != nil {
			fmt.Printf("ferric-testos: %v\n", err)
		}
	}
	ph.serve(md, url)
	return nil
}

// report POSTs body as JSON to url, retrying for up to 20 s.
func report(url string, body map[string]string) error {
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			fmt.Printf("ferric-testos: reported to %s: %s\n", url, resp.Status)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("report to %s: %w", url, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func reportURL(userData string) string {
	for _, w := range strings.Fields(userData) {
		w = strings.Trim(w, `"',`)
		if strings.HasPrefix(w, "http://") || strings.HasPrefix(w, "https://") {
			return w
		}
	}
	return ""
}

// assembleRAID starts the md arrays whose members it finds (missing
// members allowed), as mdadm's initramfs hook does; without mdadm in the
// image it does nothing.
func assembleRAID() {
	for _, p := range []string{"/sbin/mdadm", "/usr/sbin/mdadm"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		out, err := exec.Command(p, "--assemble", "--scan", "--run").CombinedOutput()
		if arrays := strings.TrimSpace(readFile("/proc/mdstat")); strings.Contains(arrays, "active") {
			fmt.Printf("ferric-testos: software RAID assembled:\n%s\n", arrays)
		} else if err != nil && len(out) > 0 {
			fmt.Printf("ferric-testos: mdadm --assemble: %s\n", strings.TrimSpace(string(out)))
		}
		return
	}
}

// findConfigDrive looks for a block device whose filesystem label is config-2.
func findConfigDrive(wait time.Duration) (string, string, error) {
	deadline := time.Now().Add(wait)
	for {
		ents, _ := os.ReadDir("/sys/class/block")
		for _, e := range ents {
			dev := "/dev/" + e.Name()
			if fstype := label(dev); fstype != "" {
				return dev, fstype, nil
			}
		}
		if time.Now().After(deadline) {
			return "", "", errors.New("no config drive (filesystem labelled config-2) found")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// label returns "iso9660" or "vfat" when dev holds such a filesystem with
// the label config-2 (case-insensitive, padded with spaces or, as go-diskfs
// writes ISO volume IDs, NULs, which blkid accepts too), else "".
func label(dev string) string {
	f, err := os.Open(dev)
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, 512)
	if _, err := f.ReadAt(buf, 32768); err == nil && buf[0] == 1 && string(buf[1:6]) == "CD001" {
		if strings.EqualFold(strings.Trim(string(buf[40:72]), " \x00"), "config-2") {
			return "iso9660"
		}
		return ""
	}
	if _, err := f.ReadAt(buf, 0); err != nil || buf[510] != 0x55 || buf[511] != 0xaa {
		return ""
	}
	for _, off := range []struct{ typ, lbl int }{{54, 43}, {82, 71}} { // FAT12/16, FAT32
		if strings.HasPrefix(string(buf[off.typ:off.typ+8]), "FAT") &&
			strings.EqualFold(strings.Trim(string(buf[off.lbl:off.lbl+11]), " \x00"), "config-2") {
			return "vfat"
		}
	}
	return ""
}

// network configures the first Ethernet link: statically when
// network_data.json has an ipv4 network, else with DHCP.
func network(networkData string) error {
	ifc, err := firstEthernet(10 * time.Second)
	if err != nil {
		return err
	}
	if err := linkUp(ifc.Name); err != nil {
		return err
	}
	var nd struct {
		Networks []struct {
			Type      string `json:"type"`
			IPAddress string `json:"ip_address"`
			Netmask   string `json:"netmask"`
		} `json:"networks"`
	}
	_ = json.Unmarshal([]byte(networkData), &nd)
	for _, n := range nd.Networks {
		if n.Type == "ipv4" && n.IPAddress != "" {
			mask := net.IPMask(net.ParseIP(n.Netmask).To4())
			fmt.Printf("ferric-testos: %s static %s/%s\n", ifc.Name, n.IPAddress, n.Netmask)
			return setAddr(ifc.Name, net.ParseIP(n.IPAddress), mask)
		}
	}
	ip, mask, err := dhcp(ifc, 15*time.Second)
	if err != nil {
		return err
	}
	fmt.Printf("ferric-testos: %s dhcp %s\n", ifc.Name, (&net.IPNet{IP: ip, Mask: mask}).String())
	return setAddr(ifc.Name, ip, mask)
}

func firstEthernet(wait time.Duration) (net.Interface, error) {
	deadline := time.Now().Add(wait)
	for {
		ifs, _ := net.Interfaces()
		for _, i := range ifs {
			if i.Flags&net.FlagLoopback == 0 && len(i.HardwareAddr) == 6 {
				return i, nil
			}
		}
		if time.Now().After(deadline) {
			return net.Interface{}, errors.New("no Ethernet interface")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ioctlSock() (int, error) { return unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0) }

func linkUp(name string) error {
	fd, err := ioctlSock()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s: get flags: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("%s: up: %w", name, err)
	}
	return nil
}

func setAddr(name string, ip net.IP, mask net.IPMask) error {
	fd, err := ioctlSock()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for _, s := range []struct {
		req uint
		ip  net.IP
	}{{unix.SIOCSIFADDR, ip}, {unix.SIOCSIFNETMASK, net.IP(mask)}} {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return err
		}
		if err := ifr.SetInet4Addr(s.ip.To4()); err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, s.req, ifr); err != nil {
			return fmt.Errorf("%s: set address %s: %w", name, s.ip, err)
		}
	}
	return nil
}

// dhcp is a minimal DHCPv4 client (DISCOVER, OFFER, REQUEST, ACK) over a UDP
// socket bound to the interface, asking for broadcast replies.
func dhcp(ifc net.Interface, wait time.Duration) (net.IP, net.IPMask, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, nil, err
	}
	defer unix.Close(fd)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
	if err := unix.BindToDevice(fd, ifc.Name); err != nil {
		return nil, nil, fmt.Errorf("dhcp: bind to %s: %w", ifc.Name, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: 68}); err != nil {
		return nil, nil, fmt.Errorf("dhcp: bind :68: %w", err)
	}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1})
	xid := uint32(time.Now().UnixNano())
	bcast := &unix.SockaddrInet4{Port: 67, Addr: [4]byte{255, 255, 255, 255}}
	deadline := time.Now().Add(wait)
	var offer, server net.IP
	for time.Now().Before(deadline) {
		var opts []byte
		typ := byte(1) // DISCOVER
		if offer != nil {
			typ = 3 // REQUEST
			opts = append(opts, 50, 4)
			opts = append(opts, offer.To4()...)
			opts = append(opts, 54, 4)
			opts = append(opts, server.To4()...)
		}
		if err := unix.Sendto(fd, dhcpPacket(xid, ifc.HardwareAddr, typ, opts), 0, bcast); err != nil {
			return nil, nil, fmt.Errorf("dhcp: send: %w", err)
		}
		buf := make([]byte, 1500)
		for {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				break // timeout: send again
			}
			p := buf[:n]
			if n < 240 || p[0] != 2 || binary.BigEndian.Uint32(p[4:8]) != xid {
				continue
			}
			mt, o := dhcpOptions(p[240:])
			yiaddr := net.IP(append([]byte(nil), p[16:20]...))
			switch {
			case mt == 2 && offer == nil: // OFFER
				offer, server = yiaddr, net.IP(o[54])
				if len(server) != 4 {
					server = net.IP(append([]byte(nil), p[20:24]...))
				}
			case mt == 5 && offer != nil: // ACK
				mask := net.IPMask(o[1])
				if len(mask) != 4 {
					mask = yiaddr.DefaultMask()
				}
				return yiaddr, mask, nil
			case mt == 6: // NAK
				offer = nil
			default:
				continue
			}
			break
		}
	}
	return nil, nil, fmt.Errorf("dhcp: no lease on %s within %s", ifc.Name, wait)
}

func dhcpPacket(xid uint32, mac net.HardwareAddr, typ byte, extra []byte) []byte {
	p := make([]byte, 240)
	p[0], p[1], p[2] = 1, 1, 6
	binary.BigEndian.PutUint32(p[4:8], xid)
	binary.BigEndian.PutUint16(p[10:12], 0x8000) // broadcast reply
	copy(p[28:34], mac)
	copy(p[236:240], []byte{99, 130, 83, 99})
	p = append(p, 53, 1, typ, 55, 3, 1, 3, 6)
	p = append(p, extra...)
	return append(p, 255)
}

func dhcpOptions(b []byte) (byte, map[byte][]byte) {
	o := map[byte][]byte{}
	for i := 0; i < len(b); {
		c := b[i]
		if c == 255 {
			break
		}
		if c == 0 {
			i++
			continue
		}
		if i+1 >= len(b) || i+2+int(b[i+1]) > len(b) {
			break
		}
		o[c] = b[i+2 : i+2+int(b[i+1])]
		i += 2 + int(b[i+1])
	}
	var mt byte
	if v := o[53]; len(v) == 1 {
		mt = v[0]
	}
	return mt, o
}
