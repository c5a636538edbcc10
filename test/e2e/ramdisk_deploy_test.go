package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/test/harness"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// TestRamdiskDeployNetworkBoot takes a fake-hardware node with deploy
// interface ramdisk and boot interface ipxe through deploy validation
// (Ironic's messages), a deploy of a boot ISO (active at once, the iPXE
// script then sanboots the ISO), a rebuild with a kernel and ramdisk
// (the script boots them with kernel_append_params) and undeploy (back to
// the local disk's nothing-to-boot). As Ironic's iPXE boot does with its
// http root, the conductor downloads the images from the user's server,
// and the script boots its own copies (served with their SHA-256 as the
// ETag), a changed image is fetched again, and undeploy withdraws them;
// an image it cannot download fails the deploy.
func TestRamdiskDeployNetworkBoot(t *testing.T) {
	base := harness.Start(t, service.Config{Hostname: "e2e"}).URL
	c := client{t, base}
	const mac = "52:54:00:12:34:77"
	node := c.do("POST", "/v1/nodes", map[string]any{
		"driver": "fake-hardware", "name": "live", "deploy_interface": "ramdisk", "boot_interface": "ipxe",
		"driver_info": map[string]any{"deploy_kernel": "http://example.invalid/k", "deploy_ramdisk": "http://example.invalid/r"},
	}, 201)
	uuid := node["uuid"].(string)
	c.do("POST", "/v1/ports", map[string]any{"address": mac, "node_uuid": uuid}, 201)
	c.do("PUT", "/v1/nodes/live/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState("live", "manageable", 30*time.Second)
	c.do("PUT", "/v1/nodes/live/states/provision", map[string]any{"target": "provide"}, 202)
	c.waitState("live", "available", 30*time.Second)

	patch := func(ops ...map[string]any) { c.do("PATCH", "/v1/nodes/live", ops, 200) }
	refused := func(want string) {
		t.Helper()
		r := c.do("PUT", "/v1/nodes/live/states/provision", map[string]any{"target": "active"}, 400)
		if msg := fmt.Sprint(r["error_message"]); !strings.Contains(msg, want) {
			t.Errorf("deploy refused with %s, want it to name %q", msg, want)
		}
		if n := c.do("GET", "/v1/nodes/live", nil, 200); n["provision_state"] != "available" {
			t.Errorf("refused deploy moved the node to %v", n["provision_state"])
		}
	}
	refused("Missing are: ['kernel', 'ramdisk']")
	v := c.do("GET", "/v1/nodes/live/validate", nil, 200)
	if d := v["deploy"].(map[string]any); d["result"] != false || !strings.Contains(fmt.Sprint(d["reason"]), "insufficient information is present to boot from a remote volume") {
		t.Errorf("validate deploy = %v", d)
	}
	patch(map[string]any{"op": "add", "path": "/instance_info/kernel", "value": "http://images.example/vmlinuz"})
	refused("Missing are: ['ramdisk']")
	patch(map[string]any{"op": "remove", "path": "/instance_info/kernel"},
		map[string]any{"op": "add", "path": "/instance_info/boot_iso", "value": "http://images.example/live.iso"},
		map[string]any{"op": "add", "path": "/instance_info/image_source", "value": "http://images.example/disk.qcow2"})
	refused("An 'image_source' and 'boot_iso' parameter may not be specified at the same time.")
	patch(map[string]any{"op": "remove", "path": "/instance_info/image_source"},
		map[string]any{"op": "replace", "path": "/boot_interface", "value": "fake"})
	refused("The boot interface must have the `ramdisk_boot` capability")
	patch(map[string]any{"op": "replace", "path": "/boot_interface", "value": "ipxe"})

	// The user's image server: the conductor downloads from it, the
	// machine fetches only the conductor's copies.
	images := map[string][]byte{"/live.iso": []byte("LIVE-ISO " + strings.Repeat("x", 70000)),
		"/vmlinuz": []byte("KERNEL-1"), "/initrd": []byte("INITRD-1")}
	var imu sync.Mutex
	fetched := map[string]int{}
	imgSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		imu.Lock()
		b, ok := images[r.URL.Path]
		fetched[r.URL.Path]++
		imu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, r.URL.Path, time.Time{}, bytes.NewReader(b))
	}))
	defer imgSrv.Close()
	patch(map[string]any{"op": "replace", "path": "/instance_info/boot_iso", "value": imgSrv.URL + "/live.iso"})

	script := func() string {
		t.Helper()
		resp, err := http.Get(base + "/boot/nodes/" + mac + ".ipxe")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	get := func(u string) (int, []byte, string) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, resp.Header.Get("ETag")
	}
	// servedURL finds the URL of the script line starting with prefix
	// and checks that the conductor serves there what the user's server
	// has at path, with its SHA-256 as the ETag.
	servedURL := func(s, prefix, path string) string {
		t.Helper()
		for _, l := range strings.Split(s, "\n") {
			f := strings.Fields(l)
			for i, w := range f {
				if strings.HasPrefix(w, base+"/boot/instance/") && strings.HasPrefix(l, prefix) && i > 0 {
					code, b, etag := get(w)
					imu.Lock()
					want := images[path]
					imu.Unlock()
					sum := sha256.Sum256(want)
					if code != 200 || !bytes.Equal(b, want) || etag != `"sha256:`+hex.EncodeToString(sum[:])+`"` {
						t.Errorf("GET %s = %d, %d bytes, ETag %s; want the %d bytes of %s", w, code, len(b), etag, len(want), path)
					}
					return w
				}
			}
		}
		t.Errorf("iPXE script:\n%s\nhas no %q line with a URL of the conductor's", s, prefix)
		return ""
	}
	c.do("PUT", "/v1/nodes/live/states/provision", map[string]any{"target": "active"}, 202)
	n := c.waitState("live", "active", 30*time.Second)
	if n["power_state"] != "power on" {
		t.Errorf("power_state %v after a ramdisk deploy", n["power_state"])
	}
	s := script()
	if strings.Contains(s, imgSrv.URL) {
		t.Errorf("iPXE script of the active ramdisk node gives the user's URL:\n%s", s)
	}
	isoURL := servedURL(s, "sanboot --no-describe", "/live.iso")

	patch(map[string]any{"op": "remove", "path": "/instance_info/boot_iso"},
		map[string]any{"op": "add", "path": "/instance_info/kernel", "value": imgSrv.URL + "/vmlinuz"},
		map[string]any{"op": "add", "path": "/instance_info/ramdisk", "value": imgSrv.URL + "/initrd"},
		map[string]any{"op": "add", "path": "/instance_info/kernel_append_params", "value": "console=ttyS0 live.mode=1"})
	c.do("PUT", "/v1/nodes/live/states/provision", map[string]any{"target": "rebuild"}, 202)
	c.waitState("live", "active", 30*time.Second)
	s = script()
	if !strings.Contains(s, "initrd=ramdisk console=ttyS0 live.mode=1") || strings.Contains(s, imgSrv.URL) {
		t.Errorf("iPXE script after the rebuild:\n%s\nwant the conductor's kernel and initrd with the kernel parameters", s)
	}
	kernelURL := servedURL(s, "kernel ", "/vmlinuz")
	servedURL(s, "initrd --name ramdisk", "/initrd")
	if code, _, _ := get(isoURL); code != 404 {
		t.Errorf("the replaced boot ISO is still served after the rebuild (%d)", code)
	}
	if strings.Contains(s, "ipa-api-url") {
		t.Errorf("the instance got the agent's parameters:\n%s", s)
	}
	// A kernel changed at its server is fetched again by the next
	// rebuild; the earlier copy is no longer served.
	imu.Lock()
	images["/vmlinuz"] = []byte("KERNEL-2, a new build")
	imu.Unlock()
	c.do("PUT", "/v1/nodes/live/states/provision", map[string]any{"target": "rebuild"}, 202)
	c.waitState("live", "active", 30*time.Second)
	servedURL(script(), "kernel ", "/vmlinuz")
	if code, _, _ := get(kernelURL); code != 404 {
		t.Errorf("the earlier kernel copy is still served (%d)", code)
	}

	c.do("PUT", "/v1/nodes/live/states/provision", map[string]any{"target": "deleted"}, 202)
	n = c.waitState("live", "available", 30*time.Second)
	if dii, _ := n["driver_internal_info"].(map[string]any); dii["instance_boot_interface"] != nil {
		t.Errorf("instance boot still recorded after undeploy: %v", dii)
	}
	if s := script(); strings.Contains(s, "/boot/instance/") {
		t.Errorf("iPXE script after undeploy still boots the instance:\n%s", s)
	}

	// An image the conductor cannot download fails the deploy, naming it.
	patch(map[string]any{"op": "add", "path": "/instance_info/kernel", "value": imgSrv.URL + "/missing-kernel"},
		map[string]any{"op": "add", "path": "/instance_info/ramdisk", "value": imgSrv.URL + "/initrd"})
	c.do("PUT", "/v1/nodes/live/states/provision", map[string]any{"target": "active"}, 202)
	n = c.waitFailed("live", 30*time.Second)
	if msg := fmt.Sprint(n["last_error"]); n["provision_state"] != "deploy failed" || !strings.Contains(msg, "instance_info kernel") || !strings.Contains(msg, "404") {
		t.Errorf("state %v last_error %q, want deploy failed naming the kernel's 404", n["provision_state"], msg)
	}
}

// TestCustomAgentDeploy deploys a fake-hardware node with deploy
// interface custom-agent whose machine is a ferric-agent process: the
// conductor writes no image of its own; the agent's advertised steps (none
// enabled by default) and the user's deploy steps run in the ramdisk, here
// the agent's own write_image with the user's image_info (at a priority
// of the user's, which direct would refuse) and an erase_devices_metadata
// before it; a step the agent does not offer fails
// the deploy with Ironic's message.
func TestCustomAgentDeploy(t *testing.T) {
	base := startConductor(t)
	c := client{t, base}

	image := make([]byte, 3<<20+4321)
	rand.Read(image)
	writeMBR(image)
	sum := sha256.Sum256(image)
	imgURL := serveContent(t, "image.raw", time.Now(), image)
	disk := newDisk(t, bytes.Repeat([]byte{0xAA}, 1<<20), 64<<20)
	readHead := func(n int) []byte {
		b := make([]byte, n)
		f, _ := os.Open(disk)
		defer f.Close()
		f.ReadAt(b, 0)
		return b
	}

	enrollAgentNode(t, c, base, disk, "52:54:00:12:34:78", map[string]any{"name": "custom", "deploy_interface": "custom-agent"})
	c.do("PUT", "/v1/nodes/custom/states/provision", map[string]any{"target": "provide"}, 202)
	c.waitState("custom", "available", 90*time.Second)

	// No image_source needed, and none written: the agent offers no
	// deploy step with a priority, so the deploy boots the disk at once.
	writeDisk(t, disk, bytes.Repeat([]byte{0xBB}, 4096), 64<<20)
	c.do("PUT", "/v1/nodes/custom/states/provision", map[string]any{"target": "active"}, 202)
	n := c.waitState("custom", "active", 90*time.Second)
	if !bytes.Equal(readHead(4096), bytes.Repeat([]byte{0xBB}, 4096)) {
		t.Fatalf("a custom-agent deploy without steps changed the disk")
	}
	if n["power_state"] != "power on" {
		t.Errorf("power_state %v", n["power_state"])
	}

	step := func(name string, prio int, args map[string]any) map[string]any {
		return map[string]any{"interface": "deploy", "step": name, "priority": prio, "args": args}
	}
	c.do("PUT", "/v1/nodes/custom/states/provision", map[string]any{"target": "rebuild",
		"deploy_steps": []any{step("install_coreos", 90, map[string]any{})}}, 202)
	n = c.waitFailed("custom", 90*time.Second)
	if !strings.Contains(fmt.Sprint(n["last_error"]), "node does not support this deploy step") {
		t.Fatalf("unknown step: last_error %v", n["last_error"])
	}

	imageInfo := map[string]any{"id": "custom-image", "urls": []string{imgURL + "/image.raw"},
		"os_hash_algo": "sha256", "os_hash_value": hex.EncodeToString(sum[:]), "disk_format": "raw"}
	c.do("PUT", "/v1/nodes/custom/states/provision", map[string]any{"target": "active",
		"deploy_steps": []any{step("write_image", 70, map[string]any{"image_info": imageInfo}), step("erase_devices_metadata", 90, map[string]any{})}}, 202)
	n = c.waitState("custom", "active", 120*time.Second)
	if got := readHead(len(image)); !bytes.Equal(got, image) {
		t.Fatalf("the agent's write_image step did not leave the image on the disk")
	}
	if dii, _ := n["driver_internal_info"].(map[string]any); dii["agent_secret_token"] != nil {
		t.Errorf("agent token left after the deploy")
	}
}

// TestRamdiskDeployHTTPSBoot deploys a live ISO with the redfish-https
// boot interface (UEFI HTTP boot) on a redfish node behind the lab's
// emulator, whose machine does not boot over HTTP: the emulator's recorded
// boot override is checked: UefiHttp, Continuous, UEFI, and an HttpBootUri
// of the conductor that serves the ISO it downloaded; undeploy withdraws
// it.
func TestRamdiskDeployHTTPSBoot(t *testing.T) {
	live := []byte("a live ISO, as far as this test goes")
	isoURL := serveContent(t, "live.iso", time.Time{}, live)
	emu := redfish.New(redfish.Config{Username: "admin", Password: "pw", Machines: map[string]redfish.Machine{"m1": &machine{}}})
	rf := httptest.NewServer(emu)
	defer rf.Close()
	base := harness.Start(t, service.Config{Hostname: "e2e"}).URL
	c := client{t, base}
	c.doVersion("1.96", "POST", "/v1/nodes", map[string]any{
		"driver": "redfish", "name": "https-live", "boot_interface": "redfish-https", "deploy_interface": "ramdisk",
		"automated_clean": false, "properties": map[string]any{"capabilities": "boot_mode:uefi"},
		"driver_info": map[string]any{"redfish_address": rf.URL, "redfish_username": "admin", "redfish_password": "pw",
			"deploy_kernel": "ferric-deploy.kernel", "deploy_ramdisk": "ferric-deploy.initramfs"},
		"instance_info": map[string]any{"boot_iso": isoURL + "/live.iso"},
	}, 201)
	c.do("PUT", "/v1/nodes/https-live/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState("https-live", "manageable", 30*time.Second)
	c.do("PUT", "/v1/nodes/https-live/states/provision", map[string]any{"target": "provide"}, 202)
	c.waitState("https-live", "available", 30*time.Second)
	c.do("PUT", "/v1/nodes/https-live/states/provision", map[string]any{"target": "active"}, 202)
	n := c.waitState("https-live", "active", 30*time.Second)
	if n["power_state"] != "power on" {
		t.Errorf("power_state %v", n["power_state"])
	}
	o, _ := emu.BootOverride("m1")
	if o.BootSourceOverrideTarget != "UefiHttp" || o.BootSourceOverrideEnabled != "Continuous" || o.BootSourceOverrideMode != "UEFI" ||
		!strings.HasPrefix(o.HttpBootUri, base+"/boot/vmedia/") {
		t.Fatalf("boot override %+v, want UefiHttp Continuous UEFI at the conductor", o)
	}
	get := func(u string) (int, []byte) {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, b := get(o.HttpBootUri); code != 200 || !bytes.Equal(b, live) {
		t.Errorf("GET the HTTP boot URI = %d %q, want the ISO", code, b)
	}
	c.do("PUT", "/v1/nodes/https-live/states/provision", map[string]any{"target": "deleted"}, 202)
	c.waitState("https-live", "available", 30*time.Second)
	if code, _ := get(o.HttpBootUri); code != 404 {
		t.Errorf("GET the HTTP boot URI after undeploy = %d, want 404", code)
	}
}

// TestRamdiskDeployNoVirtualMedia deploys a live ISO through
// redfish-virtual-media on a BMC without virtual media: the deploy fails
// with the BMC's answer in last_error, no CD boot is set, and the
// node can still be undeployed.
func TestRamdiskDeployNoVirtualMedia(t *testing.T) {
	live := []byte("a live ISO")
	isoURL := serveContent(t, "live.iso", time.Time{}, live)
	emu := redfish.New(redfish.Config{Username: "admin", Password: "pw", Machines: map[string]redfish.Machine{"m1": &machine{}}})
	rf := httptest.NewServer(emu)
	defer rf.Close()
	base := harness.Start(t, service.Config{Hostname: "e2e"}).URL
	c := client{t, base}
	c.doVersion("1.96", "POST", "/v1/nodes", map[string]any{
		"driver": "redfish", "name": "no-vmedia", "boot_interface": "redfish-virtual-media", "deploy_interface": "ramdisk",
		"automated_clean": false,
		"driver_info": map[string]any{"redfish_address": rf.URL, "redfish_username": "admin", "redfish_password": "pw",
			"deploy_kernel": "ferric-deploy.kernel", "deploy_ramdisk": "ferric-deploy.initramfs"},
		"instance_info": map[string]any{"boot_iso": isoURL + "/live.iso"},
	}, 201)
	c.do("PUT", "/v1/nodes/no-vmedia/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState("no-vmedia", "manageable", 30*time.Second)
	c.do("PUT", "/v1/nodes/no-vmedia/states/provision", map[string]any{"target": "provide"}, 202)
	c.waitState("no-vmedia", "available", 30*time.Second)
	c.do("PUT", "/v1/nodes/no-vmedia/states/provision", map[string]any{"target": "active"}, 202)
	n := c.waitFailed("no-vmedia", 30*time.Second)
	if msg := fmt.Sprint(n["last_error"]); n["provision_state"] != "deploy failed" || !strings.Contains(msg, "Deploy step deploy.deploy failed") || !strings.Contains(msg, "no virtual media") {
		t.Fatalf("state %v last_error %q, want deploy failed naming the BMC's lack of virtual media", n["provision_state"], msg)
	}
	if b, _ := emu.BootOverride("m1"); b.BootSourceOverrideTarget == "Cd" {
		t.Errorf("boot override set to the CD after the failure: %+v", b)
	}
	c.do("PUT", "/v1/nodes/no-vmedia/states/provision", map[string]any{"target": "deleted"}, 202)
	n = c.waitState("no-vmedia", "available", 30*time.Second)
	if dii, _ := n["driver_internal_info"].(map[string]any); dii["instance_boot_interface"] != nil {
		t.Errorf("instance boot still recorded: %v", dii)
	}
}
