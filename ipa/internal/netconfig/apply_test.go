package netconfig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/netnstest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// handle opens a netlink handle in ns.
func handle(t *testing.T, ns *netnstest.NS) *netlink.Handle {
	t.Helper()
	nsh, err := netns.GetFromName(ns.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nsh.Close() })
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// serve listens on addr inside ns and answers each connection with
// "hello from ADDR".
func serve(t *testing.T, ns *netnstest.NS, addr string) string {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "hello from %s", ln.Addr())
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// dial connects from ns to addr and returns what the server said.
func dial(ns *netnstest.NS, addr string) (string, error) {
	var got []byte
	err := ns.Do(func() error {
		c, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		got, err = io.ReadAll(c)
		return err
	})
	return string(got), err
}

type linkState struct {
	Up    bool
	MTU   int
	Addrs []string
	Links []string
}

func state(t *testing.T, h *netlink.Handle, name string) linkState {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	s := linkState{Up: l.Attrs().Flags&net.FlagUp != 0, MTU: l.Attrs().MTU}
	as, err := h.AddrList(l, unix.AF_UNSPEC)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if !a.IP.IsLinkLocalUnicast() {
			s.Addrs = append(s.Addrs, a.IPNet.String())
		}
	}
	ls, _ := h.LinkList()
	for _, x := range ls {
		s.Links = append(s.Links, x.Attrs().Name)
	}
	slices.Sort(s.Links)
	return s
}

func TestApplyStatic(t *testing.T) {
	netnstest.Skip(t)
	a, b := netnstest.Pair(t, "", "10.77.0.1/24")
	netnstest.IP(t, "-n", b.Name, "addr", "add", "10.78.0.9/32", "dev", "lo")
	netnstest.IP(t, "-n", b.Name, "addr", "add", "2001:db8:77::1/64", "dev", "veth0", "nodad")
	netnstest.IP(t, "-n", a.Name, "link", "set", "veth0", "down")
	h := handle(t, a)
	l, err := h.LinkByName("veth0")
	if err != nil {
		t.Fatal(err)
	}
	mac := l.Attrs().HardwareAddr.String()
	doc := fmt.Sprintf(`{
  "links": [{"id": "port0", "type": "phy", "ethernet_mac_address": %q, "mtu": 1400}],
  "networks": [
    {"id": "prov", "type": "ipv4", "link": "port0", "ip_address": "10.77.0.2", "netmask": "255.255.255.0",
     "routes": [{"network": "10.78.0.0", "netmask": "255.255.0.0", "gateway": "10.77.0.1"},
                {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.77.0.1"}],
     "services": [{"type": "dns", "address": "10.77.0.53"}]},
    {"id": "prov6", "type": "ipv6", "link": "port0", "ip_address": "2001:db8:77::2", "netmask": "ffff:ffff:ffff:ffff::"}
  ],
  "services": [{"type": "dns", "address": "10.77.0.54"}]
}`, strings.ToUpper(mac))
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Apply(context.Background(), p, Options{Handle: h})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Interfaces) != 1 || res.Interfaces[0].Interface != "veth0" || res.Interfaces[0].MAC != mac ||
		len(res.DHCPInterfaces()) != 0 {
		t.Errorf("result %+v", res)
	}
	st := state(t, h, "veth0")
	if !st.Up || st.MTU != 1400 || !slices.Contains(st.Addrs, "10.77.0.2/24") || !slices.Contains(st.Addrs, "2001:db8:77::2/64") {
		t.Errorf("veth0 after Apply: %+v", st)
	}
	routes, err := h.RouteList(l, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	var rs []string
	for _, r := range routes {
		dst := "default"
		if r.Dst != nil && r.Dst.String() != "0.0.0.0/0" {
			dst = r.Dst.String()
		}
		rs = append(rs, fmt.Sprintf("%s via %v", dst, r.Gw))
	}
	for _, want := range []string{"10.78.0.0/16 via 10.77.0.1", "default via 10.77.0.1"} {
		if !slices.Contains(rs, want) {
			t.Errorf("routes %q lack %q", rs, want)
		}
	}
	// TCP over the static address, through the route and over IPv6.
	for _, addr := range []string{"10.77.0.1:0", "10.78.0.9:0", "[2001:db8:77::1]:0"} {
		srv := serve(t, b, addr)
		got, err := dial(a, srv)
		if err != nil || got != "hello from "+srv {
			t.Errorf("dial %s: %q, %v", srv, got, err)
		}
	}
	rc := filepath.Join(t.TempDir(), "etc", "resolv.conf")
	if err := WriteResolvConf(rc, res.DNS); err != nil {
		t.Fatal(err)
	}
	b2, _ := os.ReadFile(rc)
	if !strings.Contains(string(b2), "nameserver 10.77.0.53\nnameserver 10.77.0.54\n") {
		t.Errorf("resolv.conf:\n%s", b2)
	}
}

func TestApplyDHCPNetworks(t *testing.T) {
	netnstest.Skip(t)
	a, _ := netnstest.Pair(t, "", "")
	h := handle(t, a)
	l, _ := h.LinkByName("veth0")
	doc := fmt.Sprintf(`{"links": [{"id": "p", "type": "ethernet", "ethernet_mac_address": %q}],
	  "networks": [{"type": "ipv4_dhcp", "link": "p"}, {"type": "ipv6_slaac", "link": "p"}]}`, l.Attrs().HardwareAddr)
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Apply(context.Background(), p, Options{Handle: h})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.DHCPInterfaces(); !slices.Equal(got, []string{"veth0"}) || !slices.Equal(res.Interfaces[0].DHCP, []string{"ipv4_dhcp", "ipv6_slaac"}) {
		t.Errorf("DHCP interfaces %q, result %+v", got, res)
	}
	if st := state(t, h, "veth0"); !st.Up || len(st.Addrs) != 0 {
		t.Errorf("veth0: %+v", st)
	}
}

// TestApplyUndo: a document the kernel refuses halfway (a gateway off the
// link) and one naming a NIC the machine lacks both fail with a clear
// error and leave the links as they were.
func TestApplyUndo(t *testing.T) {
	netnstest.Skip(t)
	a, _ := netnstest.Pair(t, "", "10.77.0.1/24")
	netnstest.IP(t, "-n", a.Name, "link", "set", "veth0", "down")
	h := handle(t, a)
	l, _ := h.LinkByName("veth0")
	mac := l.Attrs().HardwareAddr.String()
	before := state(t, h, "veth0")
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"gateway off link", fmt.Sprintf(`{"links": [{"id": "p", "type": "phy", "ethernet_mac_address": %q, "mtu": 1300}],
		  "networks": [{"id": "n", "type": "ipv4", "link": "p", "ip_address": "10.77.0.2/24",
		    "routes": [{"network": "10.80.0.0", "netmask": "255.255.0.0", "gateway": "10.77.0.1"},
		               {"network": "10.90.0.0", "netmask": "255.255.0.0", "gateway": "10.99.0.1"}]}]}`, mac),
			`netconfig: link "p": add route to 10.90.0.0/16 via 10.99.0.1: network is unreachable`},
		{"no such NIC", `{"links": [{"id": "p", "type": "phy", "ethernet_mac_address": "02:00:00:00:00:99"}],
		  "networks": [{"id": "n", "type": "ipv4", "link": "p", "ip_address": "10.77.0.2/24"}]}`,
			`link "p": no interface with MAC address 02:00:00:00:00:99`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Apply(context.Background(), p, Options{Handle: h})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply: %v, want %q", err, tc.want)
			}
			if tc.name == "no such NIC" && !errors.Is(err, ErrBadInput) {
				t.Errorf("%v is not ErrBadInput", err)
			}
			after := state(t, h, "veth0")
			if !slices.Equal(after.Addrs, before.Addrs) || after.Up != before.Up || after.MTU != before.MTU ||
				!slices.Equal(after.Links, before.Links) {
				t.Errorf("links changed: before %+v, after %+v", before, after)
			}
			rs, _ := h.RouteList(nil, unix.AF_INET)
			for _, r := range rs {
				if r.Dst != nil && r.Dst.String() == "10.80.0.0/16" {
					t.Errorf("route left behind: %v", r)
				}
			}
		})
	}
}

// TestApplyVLAN runs where the kernel has 802.1Q (the test host's kernel
// may not: then it is skipped, saying so).
func TestApplyVLAN(t *testing.T) {
	netnstest.Skip(t)
	a, b := netnstest.Pair(t, "", "")
	probe := &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: "probe.7"}, VlanId: 7}
	hb := handle(t, b)
	vb, _ := hb.LinkByName("veth0")
	probe.ParentIndex = vb.Attrs().Index
	if err := hb.LinkAdd(probe); err != nil {
		t.Skipf("the kernel makes no VLAN links (8021q): %v", err)
	}
	netnstest.IP(t, "-n", b.Name, "addr", "add", "10.79.0.1/24", "dev", "probe.7")
	netnstest.IP(t, "-n", b.Name, "link", "set", "probe.7", "up")
	h := handle(t, a)
	l, _ := h.LinkByName("veth0")
	doc := fmt.Sprintf(`{"links": [{"id": "p", "type": "phy", "ethernet_mac_address": %q},
	    {"id": "v7", "type": "vlan", "vlan_link": "p", "vlan_id": 7}],
	  "networks": [{"id": "n", "type": "ipv4", "link": "v7", "ip_address": "10.79.0.2", "netmask": "255.255.255.0"}]}`, l.Attrs().HardwareAddr)
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Apply(context.Background(), p, Options{Handle: h})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Interfaces) != 1 || res.Interfaces[0].Interface != "veth0.7" ||
		res.Interfaces[0].Addrs[0] != netip.MustParsePrefix("10.79.0.2/24") {
		t.Errorf("result %+v", res)
	}
	srv := serve(t, b, "10.79.0.1:0")
	if got, err := dial(a, srv); err != nil || got != "hello from "+srv {
		t.Errorf("dial %s over the VLAN: %q, %v", srv, got, err)
	}
}
