package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
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

// usbMediaMachine is a mediaMachine with a USB stick slot that keeps the
// bytes of the image inserted (the BMC removes its copy at the eject).
type usbMediaMachine struct {
	mediaMachine
	umu sync.Mutex
	usb []byte // nil when empty
}

func (m *usbMediaMachine) HasUSB() bool { return true }

func (m *usbMediaMachine) InsertUSB(_ context.Context, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	m.umu.Lock()
	defer m.umu.Unlock()
	m.usb = b
	return nil
}

func (m *usbMediaMachine) EjectUSB(context.Context) error {
	m.umu.Lock()
	defer m.umu.Unlock()
	m.usb = nil
	return nil
}

func (m *usbMediaMachine) stick() []byte {
	m.umu.Lock()
	defer m.umu.Unlock()
	return m.usb
}

// TestRamdiskDeployConfigDrive deploys live ISOs with a config drive
// through redfish-virtual-media against the lab's Redfish emulator, as
// Ironic's ramdisk deploy does: the config drive of the provision request
// (a dict the conductor builds into a config-2 ISO) is attached as a
// virtual USB stick beside the CD holding the instance's ISO; a rebuild
// with a gzipped, base64-encoded image attaches exactly that image;
// undeploy ejects both. A BMC with a CD and no USB stick fails the deploy
// with Ironic's message and leaves nothing inserted.
func TestRamdiskDeployConfigDrive(t *testing.T) {
	live := []byte("a live ISO, as far as this test goes")
	isoURL := serveContent(t, "live.iso", time.Time{}, live)
	withUSB, cdOnly := &usbMediaMachine{}, &mediaMachine{}
	emu := redfish.New(redfish.Config{Username: "admin", Password: "pw", MediaDir: t.TempDir(),
		Machines: map[string]redfish.Machine{"m1": withUSB, "m2": cdOnly}})
	rf := httptest.NewServer(emu)
	defer rf.Close()
	base := harness.Start(t, service.Config{Hostname: "e2e"}).URL
	c := client{t, base}
	for _, name := range []string{"cd-live", "cd-nousb"} {
		sys := map[string]string{"cd-live": "m1", "cd-nousb": "m2"}[name]
		c.doVersion("1.96", "POST", "/v1/nodes", map[string]any{
			"driver": "redfish", "name": name, "boot_interface": "redfish-virtual-media", "deploy_interface": "ramdisk",
			"automated_clean": false,
			"driver_info": map[string]any{"redfish_address": rf.URL, "redfish_system_id": "/redfish/v1/Systems/" + sys,
				"redfish_username": "admin", "redfish_password": "pw",
				"deploy_kernel": "ferric-deploy.kernel", "deploy_ramdisk": "ferric-deploy.initramfs"},
			"instance_info": map[string]any{"boot_iso": isoURL + "/live.iso"},
		}, 201)
		c.do("PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "manage"}, 202)
		c.waitState(name, "manageable", 30*time.Second)
		c.do("PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "provide"}, 202)
		c.waitState(name, "available", 30*time.Second)
	}

	const userData = "#cloud-config\nhostname: live-from-configdrive\n"
	c.doVersion("1.96", "PUT", "/v1/nodes/cd-live/states/provision", map[string]any{"target": "active",
		"configdrive": map[string]any{"user_data": userData, "meta_data": map[string]any{"hostname": "live1"}}}, 202)
	n := c.waitState("cd-live", "active", 30*time.Second)
	if n["last_error"] != nil {
		t.Errorf("last_error %v", n["last_error"])
	}
	if img, in := emu.Media("m1"); img == "" || !in {
		t.Fatalf("no instance ISO in the CD (%q %v)", img, in)
	}
	stick := withUSB.stick()
	if len(stick) < 32813 || string(stick[32769:32774]) != "CD001" || !strings.HasPrefix(string(stick[32808:32840]), "config-2") {
		t.Fatalf("the USB stick holds %d bytes, not an ISO labelled config-2", len(stick))
	}
	if !bytes.Contains(stick, []byte(userData)) {
		t.Errorf("the config drive on the USB stick lacks the user_data")
	}
	if img, in := emu.MediaOf("m1", "UsbStick"); !strings.HasPrefix(img, base+"/boot/vmedia/") || !in {
		t.Errorf("USB stick image %q inserted %v, want one the conductor serves", img, in)
	}

	// A rebuild with an image given as base64 of its gzip: the stick gets
	// the image itself.
	raw := append([]byte("A RAW CONFIG DRIVE IMAGE "), bytes.Repeat([]byte{0xab}, 4096)...)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	c.doVersion("1.96", "PUT", "/v1/nodes/cd-live/states/provision", map[string]any{"target": "rebuild",
		"configdrive": base64.StdEncoding.EncodeToString(gz.Bytes())}, 202)
	n = c.waitState("cd-live", "active", 30*time.Second)
	if n["last_error"] != nil {
		t.Errorf("last_error after the rebuild %v", n["last_error"])
	}
	if got := withUSB.stick(); !bytes.Equal(got, raw) {
		t.Errorf("after the rebuild the USB stick holds %d bytes, want the %d of the image", len(got), len(raw))
	}
	stickURL, _ := emu.MediaOf("m1", "UsbStick")

	c.do("PUT", "/v1/nodes/cd-live/states/provision", map[string]any{"target": "deleted"}, 202)
	c.waitState("cd-live", "available", 30*time.Second)
	if img, _ := emu.Media("m1"); img != "" || withUSB.stick() != nil {
		t.Errorf("after undeploy the CD holds %q and the USB stick %d bytes", img, len(withUSB.stick()))
	}
	if resp, err := http.Get(stickURL); err != nil || resp.StatusCode != 404 {
		t.Errorf("the config drive image is still served after undeploy: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// No USB stick: Ironic's error, nothing left inserted.
	c.doVersion("1.96", "PUT", "/v1/nodes/cd-nousb/states/provision", map[string]any{"target": "active",
		"configdrive": map[string]any{"user_data": userData}}, 202)
	n = c.waitFailed("cd-nousb", 30*time.Second)
	want := fmt.Sprintf("Cannot attach configdrive for node %s: no suitable virtual USB slot has been found", n["uuid"])
	if msg := fmt.Sprint(n["last_error"]); n["provision_state"] != "deploy failed" || !strings.Contains(msg, want) {
		t.Fatalf("state %v last_error %q, want deploy failed with %q", n["provision_state"], msg, want)
	}
	if img, _ := emu.Media("m2"); img != "" {
		t.Errorf("the instance ISO %s stays inserted after the failure", img)
	}
	c.do("PUT", "/v1/nodes/cd-nousb/states/provision", map[string]any{"target": "deleted"}, 202)
	c.waitState("cd-nousb", "available", 30*time.Second)
}
