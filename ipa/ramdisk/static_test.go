package ramdisk_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/ferric-metal/ferric/test/artifacts"
	"github.com/ferric-metal/ferric/test/netnstest"
	"golang.org/x/sys/unix"
)

// TestStaticNetworkQEMU boots the deploy ramdisk (build.sh, Debian's cloud
// kernel) in a QEMU machine (TCG, i440fx: the CD on the PIIX IDE
// controller) whose network has no DHCP server, with a CD labelled
// config-2 holding openstack/latest/network_data.json, as Ironic's virtual
// media ISO does. The agent must configure the static address from it and
// make its lookup to ipa-api-url from that address.
func TestStaticNetworkQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: builds the ramdisk and boots a QEMU machine; run without -short")
	}
	netnstest.Skip(t)
	for _, tool := range []string{"qemu-system-x86_64", "xorriso", "dpkg-deb", "depmod", "cpio", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (.ci/deps.sh installs it)", tool)
		}
	}
	dir := t.TempDir()
	start := time.Now()
	// Built by test/artifacts once per run, always with this tree's agent
	// (not from $FERRIC_RAMDISK_DIR).
	rd, err := artifacts.BuildRamdisk(artifacts.CloudKernel)
	if err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{rd.Kernel: "ferric-deploy.kernel", rd.Initramfs: "ferric-deploy.initramfs"} {
		if err := artifacts.Link(src, filepath.Join(dir, dst)); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("ramdisk built in %.1fs", time.Since(start).Seconds())

	const mac0, mac1 = "52:54:00:81:00:02", "52:54:00:81:00:03"
	route := `"routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.81.0.1"}]`
	for _, tc := range []struct {
		name string
		macs []string
		nd   string
		log  string // the agent's line for the configured link
		vlan int    // the address is on this VLAN: no lookup reaches the untagged peer; wait for its tagged ARP
	}{
		{"phy", []string{mac0}, fmt.Sprintf(`{
  "links": [{"id": "enp0s3", "type": "phy", "ethernet_mac_address": %q, "mtu": 1500}],
  "networks": [{"id": "prov", "type": "ipv4", "link": "enp0s3", "ip_address": "10.81.0.2", "netmask": "255.255.255.0", %s}],
  "services": [{"type": "dns", "address": "10.81.0.1"}]}`, strings.ToUpper(mac0), route),
			"link=enp0s3 interface=eth0 mac=" + mac0 + " addrs=[10.81.0.2/24]", 0},
		{"bond active-backup", []string{mac0, mac1}, fmt.Sprintf(`{
  "links": [{"id": "nic0", "type": "phy", "ethernet_mac_address": %q}, {"id": "nic1", "type": "phy", "ethernet_mac_address": %q},
            {"id": "bond0", "type": "bond", "bond_links": ["nic0", "nic1"], "bond_mode": "active-backup", "bond_miimon": 100,
             "ethernet_mac_address": %q}],
  "networks": [{"id": "prov", "type": "ipv4", "link": "bond0", "ip_address": "10.81.0.2/24", %s}]}`, mac0, mac1, mac0, route),
			"link=bond0 interface=bond0 mac=" + mac0 + " addrs=[10.81.0.2/24]", 0},
		{"vlan", []string{mac0}, fmt.Sprintf(`{
  "links": [{"id": "nic0", "type": "phy", "ethernet_mac_address": %q},
            {"id": "v100", "type": "vlan", "vlan_link": "nic0", "vlan_id": 100, "vlan_mac_address": %q}],
  "networks": [{"id": "prov", "type": "ipv4", "link": "v100", "ip_address": "10.81.0.2/24", %s}]}`, mac0, mac0, route),
			"link=v100 interface=eth0.100 mac=" + mac0 + " addrs=[10.81.0.2/24]", 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bootStatic(t, dir, tc.macs, tc.nd, tc.log, tc.vlan)
		})
	}
}

// bootStatic boots the ramdisk of dir with a config-2 CD holding nd, NICs
// of macs on taps in a namespace whose first tap is 10.81.0.1/24, and
// waits for the agent's lookup.
func bootStatic(t *testing.T, dir string, macs []string, nd, wantLog string, vlan int) {
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	mac := macs[0]
	rd := dir // the ramdisk
	dir = filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_"))
	tree := filepath.Join(dir, "iso")
	p := filepath.Join(tree, "openstack", "latest", "network_data.json")
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(nd), 0o644); err != nil {
		t.Fatal(err)
	}
	iso := filepath.Join(dir, "config-2.iso")
	os.MkdirAll(dir, 0o755)
	run("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "config-2", "-o", iso, tree)

	// The machine's network: a tap in a namespace, no DHCP server.
	ns := netnstest.New(t, "pxs")
	var nics []string
	for i, m := range macs {
		tap := fmt.Sprintf("tap%d", i)
		netnstest.IP(t, "-n", ns.Name, "tuntap", "add", tap, "mode", "tap")
		if i == 0 {
			netnstest.IP(t, "-n", ns.Name, "addr", "add", "10.81.0.1/24", "dev", tap)
		}
		netnstest.IP(t, "-n", ns.Name, "link", "set", tap, "up")
		nics = append(nics, "-netdev", fmt.Sprintf("tap,id=n%d,ifname=%s,script=no,downscript=no", i, tap),
			"-device", fmt.Sprintf("virtio-net-pci,netdev=n%d,mac=%s", i, m))
	}
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp", "10.81.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	type req struct{ from, path string }
	var (
		mu   sync.Mutex
		reqs []req
	)
	got := make(chan req, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		reqs = append(reqs, req{host, r.URL.RequestURI()})
		mu.Unlock()
		if r.URL.Path == "/v1/lookup" {
			select {
			case got <- req{host, r.URL.RequestURI()}:
			default:
			}
		}
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/" { // Ironic's root: the agent discovers the API version
			fmt.Fprint(w, `{"name": "OpenStack Ironic API", "default_version": {"id": "v1", "version": "1.96", "min_version": "1.1", "status": "CURRENT"}}`)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error_message": "{\"faultstring\": \"Node could not be found.\", \"faultcode\": \"Client\"}"}`)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	serial := filepath.Join(dir, "serial.log")
	qctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	args := []string{"netns", "exec", ns.Name, "qemu-system-x86_64",
		"-machine", "pc,accel=tcg", "-m", "768", "-smp", "1", "-nographic", "-no-reboot",
		"-kernel", filepath.Join(rd, "ferric-deploy.kernel"), "-initrd", filepath.Join(rd, "ferric-deploy.initramfs"),
		"-append", fmt.Sprintf("console=ttyS0 ipa-api-url=http://%s boot_method=vmedia ipa-debug=1", ln.Addr()),
		"-cdrom", iso, "-serial", "file:" + serial, "-monitor", "none", "-display", "none"}
	q := exec.CommandContext(qctx, "ip", append(args, nics...)...)
	q.WaitDelay = 5 * time.Second
	if out, err := os.Create(filepath.Join(dir, "qemu.out")); err == nil {
		q.Stdout, q.Stderr = out, out
		defer out.Close()
	}
	tagged := make(chan int, 1)
	if vlan > 0 {
		watchARP(t, qctx, ns, "tap0", net.IPv4(10, 81, 0, 2), tagged)
	}
	boot := time.Now()
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- q.Wait() }()
	t.Cleanup(func() {
		q.Process.Kill()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("QEMU (pid %d) did not end", q.Process.Pid)
		}
	})
	select {
	case vid := <-tagged:
		t.Logf("ARP from 10.81.0.2 on VLAN %d %.1fs after power-on", vid, time.Since(boot).Seconds())
		if vid != vlan {
			t.Errorf("ARP from 10.81.0.2 with VLAN %d, want %d (-1: untagged)", vid, vlan)
		}
	case r := <-got:
		if vlan > 0 {
			t.Fatalf("lookup %s from %s reached the untagged peer, want the address on VLAN %d", r.path, r.from, vlan)
		}
		t.Logf("lookup %s from %s %.1fs after power-on", r.path, r.from, time.Since(boot).Seconds())
		if r.from != "10.81.0.2" {
			t.Errorf("lookup came from %s, want the static address 10.81.0.2", r.from)
		}
		if !strings.Contains(r.path, "52%3A54%3A00%3A81%3A00%3A02") && !strings.Contains(r.path, mac) {
			t.Errorf("lookup %s lacks the MAC %s", r.path, mac)
		}
	case err := <-done:
		done <- err
		b, _ := os.ReadFile(serial)
		t.Fatalf("QEMU ended (%v) before the lookup; serial console:\n%s", err, tail(b))
	case <-qctx.Done():
		b, _ := os.ReadFile(serial)
		t.Fatalf("no lookup within the time; serial console:\n%s", tail(b))
	}
	mu.Lock()
	for _, r := range reqs {
		if r.from != "10.81.0.2" {
			t.Errorf("request %s from %s, want all from 10.81.0.2", r.path, r.from)
		}
	}
	mu.Unlock()
	b, _ := os.ReadFile(serial)
	for _, want := range []string{"network data found", wantLog} {
		if !strings.Contains(string(b), want) {
			t.Errorf("serial console lacks %q:\n%s", want, tail(b))
		}
	}
	if strings.Contains(string(b), "dhcp lease") {
		t.Errorf("the agent ran DHCP:\n%s", tail(b))
	}
}

// watchARP sends to vids the VLAN (-1: none) of the first ARP packet from
// ip seen on ifname in ns, read with a packet socket (the kernel moves a
// VLAN tag into PACKET_AUXDATA; a tag left in the frame counts too).
func watchARP(t *testing.T, ctx context.Context, ns *netnstest.NS, ifname string, ip net.IP, vids chan<- int) {
	t.Helper()
	htons := func(v uint16) uint16 { return v<<8 | v>>8 }
	fd := -1
	if err := ns.Do(func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL))); err != nil {
			return err
		}
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			return err
		}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 300000}); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	}); err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		t.Fatalf("packet socket on %s: %v", ifname, err)
	}
	stopped := make(chan struct{})
	t.Cleanup(func() { <-stopped; unix.Close(fd) })
	go func() {
		defer close(stopped)
		buf, oob := make([]byte, 4096), make([]byte, 512)
		for ctx.Err() == nil {
			n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, 0)
			if err != nil {
				if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
					continue
				}
				return
			}
			f, vid := buf[:n], -1
			if len(f) >= 18 && binary.BigEndian.Uint16(f[12:]) == unix.ETH_P_8021Q {
				vid = int(binary.BigEndian.Uint16(f[14:]) & 0xfff)
				f = append(append([]byte(nil), f[:12]...), f[16:]...)
			} else if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, m := range msgs {
					if m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA && len(m.Data) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})) {
						aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&m.Data[0]))
						if aux.Status&unix.TP_STATUS_VLAN_VALID != 0 {
							vid = int(aux.Vlan_tci & 0xfff)
						}
					}
				}
			}
			// Ethernet (14) + ARP: sender protocol address at 28..32.
			if len(f) >= 42 && binary.BigEndian.Uint16(f[12:]) == unix.ETH_P_ARP && net.IP(f[28:32]).Equal(ip) {
				select {
				case vids <- vid:
				default:
				}
			}
		}
	}()
}

func tail(b []byte) string {
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}
