package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// redfishAgentNode enrolls a redfish node (direct deploy) behind the lab's
// Redfish emulator whose machine is the agent process with a file of size
// bytes as its disk, and returns the API client, the emulator, the machine
// and the disk's path.
func redfishAgentNode(t *testing.T, name, mac string, size int64) (client, *redfish.Server, *machine, string) {
	t.Helper()
	mach := &machine{}
	emu := redfish.New(redfish.Config{Username: "admin", Password: "pw", Machines: map[string]redfish.Machine{"m1": mach}})
	bmc := httptest.NewServer(emu)
	t.Cleanup(bmc.Close)
	base := startConductor(t)
	c := client{t, base}
	node := c.doVersion("1.86", "POST", "/v1/nodes", map[string]any{"driver": "redfish", "name": name, "deploy_interface": "direct",
		"firmware_interface": "redfish",
		"driver_info": map[string]any{"redfish_address": bmc.URL, "redfish_username": "admin", "redfish_password": "pw",
			"redfish_system_id": "/redfish/v1/Systems/m1",
			"deploy_kernel":     "http://example.invalid/k", "deploy_ramdisk": "http://example.invalid/r"}}, 201)
	if node["bios_interface"] != "redfish" {
		t.Fatalf("bios_interface = %v, want redfish (the redfish hardware type's default)", node["bios_interface"])
	}
	c.do("POST", "/v1/ports", map[string]any{"address": mac, "node_uuid": node["uuid"]}, 201)
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	startMachineAgent(t, base, disk, mac)
	return c, emu, mach, disk
}

// firmwareServer serves firmware images by path.
func firmwareServer(t *testing.T, images map[string][]byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, ok := images[r.URL.Path]; ok {
			w.Write(b)
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// firmwareVersions returns a node's firmware versions by component (API 1.86).
func (c client) firmwareVersions(node string) map[string]string {
	c.t.Helper()
	v := map[string]string{}
	for _, x := range c.doVersion("1.86", "GET", "/v1/nodes/"+node+"/firmware", nil, 200)["firmware"].([]any) {
		comp := x.(map[string]any)
		v[comp["component"].(string)] = fmt.Sprint(comp["current_version"])
	}
	return v
}

// TestRedfishBIOSCleaning: a redfish node whose machine runs the agent
// (a process with a file as disk) behind the lab's Redfish emulator.
// Verification caches the BIOS settings; manual cleaning with
// bios.apply_configuration asks the BMC for the change, reboots the
// machine into the ramdisk, and checks the change once the agent is back;
// bios.factory_reset restores the defaults; a setting the BMC refuses
// fails cleaning with its message.
func TestRedfishBIOSCleaning(t *testing.T) {
	c, emu, mach, _ := redfishAgentNode(t, "bios-node", "52:54:00:12:34:77", 8<<20)

	c.do("PUT", "/v1/nodes/bios-node/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState("bios-node", "manageable", 30*time.Second)
	setting := func(name string) map[string]any {
		t.Helper()
		r := c.doVersion("1.74", "GET", "/v1/nodes/bios-node/bios/"+name, nil, 200)
		s, _ := r[name].(map[string]any)
		return s
	}
	list := c.doVersion("1.40", "GET", "/v1/nodes/bios-node/bios", nil, 200)["bios"].([]any)
	if len(list) != len(redfish.DefaultBIOS()) {
		t.Fatalf("cached BIOS settings after verification: %v", list)
	}
	if s := setting("ProcCores"); s["value"] != "8" || s["updated_at"] != nil {
		t.Fatalf("ProcCores = %v", s)
	}
	if s := setting("SecureBootEnable"); s["value"] != "False" || s["attribute_type"] != "Boolean" {
		t.Errorf("SecureBootEnable = %v, want False (Python's text of the boolean)", s)
	}
	// The BMC's attribute registry describes the settings (1.74 fields).
	if s := setting("ProcCores"); s["attribute_type"] != "Integer" || s["lower_bound"] != float64(1) || s["upper_bound"] != float64(64) || s["reset_required"] != true {
		t.Errorf("ProcCores registry fields = %v", s)
	}
	if s := setting("NumLock"); fmt.Sprint(s["allowable_values"]) != "[On Off]" || s["read_only"] != false {
		t.Errorf("NumLock registry fields = %v", s)
	}

	clean := func(steps ...map[string]any) {
		t.Helper()
		c.doVersion("1.15", "PUT", "/v1/nodes/bios-node/states/provision", map[string]any{"target": "clean", "clean_steps": steps}, 202)
	}
	_, _, resets0, ons0 := mach.state()
	clean(map[string]any{"interface": "bios", "step": "apply_configuration", "args": map[string]any{
		"settings": []map[string]any{{"name": "NumLock", "value": "Off"}, {"name": "ProcCores", "value": "4"}}}})
	c.waitState("bios-node", "manageable", 90*time.Second)
	if got, _ := emu.BIOS("m1"); got["NumLock"] != "Off" || got["ProcCores"] != float64(4) {
		t.Fatalf("BMC's BIOS after apply_configuration: %v", got)
	}
	if _, _, resets, ons := mach.state(); resets+ons < resets0+ons0+2 {
		t.Errorf("machine started %d times during cleaning, want the ramdisk boot and the BIOS step's reboot", resets+ons-resets0-ons0)
	}
	if s := setting("NumLock"); s["value"] != "Off" || s["updated_at"] == nil {
		t.Errorf("cached NumLock after apply_configuration = %v", s)
	}
	if s := setting("ProcCores"); s["value"] != "4" {
		t.Errorf("cached ProcCores after apply_configuration = %v", s)
	}

	clean(map[string]any{"interface": "bios", "step": "factory_reset", "args": map[string]any{}})
	c.waitState("bios-node", "manageable", 90*time.Second)
	if got, _ := emu.BIOS("m1"); got["NumLock"] != "On" || got["ProcCores"] != float64(8) {
		t.Fatalf("BMC's BIOS after factory_reset: %v", got)
	}
	if s := setting("NumLock"); s["value"] != "On" {
		t.Errorf("cached NumLock after factory_reset = %v", s)
	}

	cleanFails := func(want string, settings ...map[string]any) {
		t.Helper()
		clean(map[string]any{"interface": "bios", "step": "apply_configuration", "args": map[string]any{"settings": settings}})
		deadline := time.Now().Add(90 * time.Second)
		var n map[string]any
		for time.Now().Before(deadline) {
			if n = c.do("GET", "/v1/nodes/bios-node", nil, 200); n["provision_state"] == "clean failed" {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if n["provision_state"] != "clean failed" || !strings.Contains(fmt.Sprint(n["last_error"]), want) {
			t.Fatalf("state %v, last_error %v; want clean failed with %q", n["provision_state"], n["last_error"], want)
		}
		c.do("PUT", "/v1/nodes/bios-node/states/provision", map[string]any{"target": "manage"}, 202)
		c.waitState("bios-node", "manageable", 30*time.Second)
	}
	// A setting the BMC does not know: its refusal.
	cleanFails("NoSuchSetting is unknown", map[string]any{"name": "NoSuchSetting", "value": "x"})
	// Values the registry rules out are refused before the BMC is asked.
	cleanFails("invalid value for setting(s): ProcCores, SystemModelName",
		map[string]any{"name": "ProcCores", "value": "100"}, map[string]any{"name": "SystemModelName", "value": "x"})
	if got, _ := emu.BIOS("m1"); got["ProcCores"] != float64(8) {
		t.Errorf("ProcCores changed by a refused request: %v", got["ProcCores"])
	}

	// firmware.update as a manual clean step (as metal3 updates firmware):
	// a BMC image alone needs no reboot; a BIOS image takes effect when the
	// machine restarts, so it reboots into the ramdisk and cleaning goes on
	// with the new agent; the firmware versions are read again.
	fw := firmwareServer(t, map[string][]byte{
		"/bios-3.1.bin": redfish.FirmwareImage("bios", "3.1.0"), "/bmc-1.5.bin": redfish.FirmwareImage("bmc", "1.5.0")})
	versions := func() map[string]string { return c.firmwareVersions("bios-node") }
	update := func(images ...map[string]any) map[string]any {
		return map[string]any{"interface": "firmware", "step": "update", "args": map[string]any{"settings": images}}
	}
	bmcImage := map[string]any{"component": "bmc", "url": fw.URL + "/bmc-1.5.bin"}
	biosImage := map[string]any{"component": "bios", "url": fw.URL + "/bios-3.1.bin"}
	_, _, resets0, ons0 = mach.state()
	clean(update(bmcImage))
	c.waitState("bios-node", "manageable", 90*time.Second)
	if v := versions(); v["bmc"] != "1.5.0" {
		t.Errorf("firmware versions after a BMC image: %v", v)
	}
	_, _, resets1, ons1 := mach.state()
	if started := resets1 + ons1 - resets0 - ons0; started != 1 {
		t.Errorf("machine started %d times cleaning with a BMC image, want 1 (the ramdisk)", started)
	}
	clean(update(biosImage), map[string]any{"interface": "deploy", "step": "erase_devices_metadata"})
	c.waitState("bios-node", "manageable", 90*time.Second)
	if v := versions(); v["bios"] != "3.1.0" || v["bmc"] != "1.5.0" {
		t.Errorf("firmware versions after a BIOS image: %v", v)
	}
	if _, _, resets, ons := mach.state(); resets+ons < resets1+ons1+2 {
		t.Errorf("machine started %d times cleaning with a BIOS image, want the ramdisk boot and the reboot after the image", resets+ons-resets1-ons1)
	}
	if n := c.do("GET", "/v1/nodes/bios-node", nil, 200); n["last_error"] != nil || fmt.Sprint(n["clean_step"]) != "map[]" {
		t.Errorf("after cleaning with firmware.update: last_error %v, clean_step %v", n["last_error"], n["clean_step"])
	}
	// An image the BMC cannot use fails cleaning with its message.
	clean(update(map[string]any{"component": "bios", "url": fw.URL + "/missing.bin"}))
	var n map[string]any
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if n = c.do("GET", "/v1/nodes/bios-node", nil, 200); n["provision_state"] == "clean failed" {
			break
		}
	}
	if n["provision_state"] != "clean failed" || !strings.Contains(fmt.Sprint(n["last_error"]), "is not a firmware image") {
		t.Fatalf("after a bad image: %v, last_error %v", n["provision_state"], n["last_error"])
	}
	if v := versions(); v["bios"] != "3.1.0" {
		t.Errorf("firmware versions after a refused image: %v", v)
	}
	c.do("PUT", "/v1/nodes/bios-node/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState("bios-node", "manageable", 30*time.Second)

	// management.update_firmware, the older form of the step: the conductor
	// checks each image's checksum before the BMC is given its URL; the
	// machine reboots into the ramdisk after the images.
	bios32 := redfish.FirmwareImage("bios", "3.2.0")
	sha1sum := sha1.Sum(bios32)
	fw2 := firmwareServer(t, map[string][]byte{"/bios-3.2.bin": bios32})
	legacy := func(sum string) map[string]any {
		return map[string]any{"interface": "management", "step": "update_firmware", "args": map[string]any{
			"firmware_images": []map[string]any{{"url": fw2.URL + "/bios-3.2.bin", "checksum": sum, "wait": 1}}}}
	}
	// A wrong checksum fails the clean before the BMC is asked.
	clean(legacy(strings.Repeat("0", 40)))
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if n = c.do("GET", "/v1/nodes/bios-node", nil, 200); n["provision_state"] == "clean failed" {
			break
		}
	}
	if n["provision_state"] != "clean failed" || !strings.Contains(fmt.Sprint(n["last_error"]), "sha1 of firmware image") {
		t.Fatalf("after a wrong checksum: %v, last_error %v", n["provision_state"], n["last_error"])
	}
	c.do("PUT", "/v1/nodes/bios-node/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState("bios-node", "manageable", 30*time.Second)
	if v := versions(); v["bios"] != "3.1.0" {
		t.Errorf("firmware versions after a wrong checksum: %v", v)
	}
	_, _, resets2, ons2 := mach.state()
	clean(legacy(hex.EncodeToString(sha1sum[:])))
	c.waitState("bios-node", "manageable", 90*time.Second)
	if v := versions(); v["bios"] != "3.2.0" {
		t.Errorf("firmware versions after management.update_firmware: %v", v)
	}
	if _, _, resets, ons := mach.state(); resets+ons < resets2+ons2+2 {
		t.Errorf("machine started %d times cleaning with management.update_firmware, want the ramdisk boot and the reboot after the image", resets+ons-resets2-ons2)
	}
	// Arguments outside Ironic's schema for the step are refused.
	c.do("PUT", "/v1/nodes/bios-node/states/provision", map[string]any{"target": "clean", "clean_steps": []map[string]any{
		{"interface": "management", "step": "update_firmware", "args": map[string]any{
			"firmware_images": []map[string]any{{"url": fw2.URL + "/bios-3.2.bin"}}}}}}, 202)
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if n = c.do("GET", "/v1/nodes/bios-node", nil, 200); n["provision_state"] == "clean failed" {
			break
		}
	}
	if n["provision_state"] != "clean failed" || !strings.Contains(fmt.Sprint(n["last_error"]), "Invalid firmware update") {
		t.Fatalf("after firmware_images without a checksum: %v, last_error %v", n["provision_state"], n["last_error"])
	}
}

// TestRedfishBIOSDeployTemplate: a deploy template (the way a Nova flavor's
// trait asks for BIOS settings) whose step bios.apply_configuration runs
// before the image is written: the change goes to the BMC, the machine
// reboots into the ramdisk, the deploy resumes at that step with the new
// agent, checks the change, writes the image and ends active.
func TestRedfishBIOSDeployTemplate(t *testing.T) {
	c, emu, mach, disk := redfishAgentNode(t, "tpl-node", "52:54:00:12:34:99", 64<<20)
	image := make([]byte, 5<<20)
	rand.Read(image[:1<<20])
	writeMBR(image)
	sum := sha256.Sum256(image)
	imgURL := serveContent(t, "image.raw", time.Now(), image)
	fw := firmwareServer(t, map[string][]byte{"/bios-1.9.bin": redfish.FirmwareImage("bios", "1.9.0"),
		"/bios-2.0.bin": redfish.FirmwareImage("bios", "2.0.0-ferric"), "/bmc-0.2.bin": redfish.FirmwareImage("bmc", "0.2.0")})

	// The template asks for a BIOS setting, then a BIOS image (each
	// reboots the machine into the ramdisk; the deploy resumes with the
	// new agent), both before the image is written.
	c.do("PUT", "/v1/nodes/tpl-node/traits/CUSTOM_NO_SMT", nil, 204)
	c.doVersion("1.55", "POST", "/v1/deploy_templates", map[string]any{"name": "CUSTOM_NO_SMT", "steps": []map[string]any{{
		"interface": "bios", "step": "apply_configuration", "priority": 110,
		"args": map[string]any{"settings": []map[string]any{{"name": "LogicalProc", "value": "Disabled"}}}}, {
		"interface": "firmware", "step": "update", "priority": 100,
		"args": map[string]any{"settings": []map[string]any{{"component": "bios", "url": fw.URL + "/bios-1.9.bin"}}}}}}, 201)
	c.do("PUT", "/v1/nodes/tpl-node/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState("tpl-node", "manageable", 30*time.Second)
	c.do("PUT", "/v1/nodes/tpl-node/states/provision", map[string]any{"target": "provide"}, 202)
	c.waitState("tpl-node", "available", 90*time.Second)
	c.do("PATCH", "/v1/nodes/tpl-node", []map[string]any{
		{"op": "add", "path": "/instance_info/image_source", "value": imgURL + "/image.raw"},
		{"op": "add", "path": "/instance_info/image_os_hash_algo", "value": "sha256"},
		{"op": "add", "path": "/instance_info/image_os_hash_value", "value": hex.EncodeToString(sum[:])},
		{"op": "add", "path": "/instance_info/traits", "value": []string{"CUSTOM_NO_SMT"}},
	}, 200)
	c.do("PUT", "/v1/nodes/tpl-node/states/provision", map[string]any{"target": "active"}, 202)
	c.waitState("tpl-node", "active", 120*time.Second)
	if got, _ := emu.BIOS("m1"); got["LogicalProc"] != "Disabled" {
		t.Errorf("BMC's LogicalProc after the deploy = %v, want Disabled", got["LogicalProc"])
	}
	fwVersions := func() map[string]string { return c.firmwareVersions("tpl-node") }
	if v := fwVersions(); v["bios"] != "1.9.0" {
		t.Errorf("firmware versions after the deploy's firmware.update: %v", v)
	}
	got := make([]byte, len(image))
	f, _ := os.Open(disk)
	f.ReadAt(got, 0)
	f.Close()
	if !bytes.Equal(got, image) {
		t.Error("the disk does not hold the image after the deploy")
	}

	// Servicing (1.87) the active node: a BIOS change needs no ramdisk,
	// the machine reboots into its instance (from disk) and the node
	// returns to active once the BMC shows the change.
	_, _, resets0, ons0 := mach.state()
	c.doVersion("1.87", "PUT", "/v1/nodes/tpl-node/states/provision", map[string]any{"target": "service",
		"service_steps": []map[string]any{{"interface": "bios", "step": "apply_configuration",
			"args": map[string]any{"settings": []map[string]any{{"name": "NumLock", "value": "Off"}}}}}}, 202)
	c.waitState("tpl-node", "active", 90*time.Second)
	if got, _ := emu.BIOS("m1"); got["NumLock"] != "Off" || got["LogicalProc"] != "Disabled" {
		t.Errorf("BMC's BIOS after servicing: %v", got)
	}
	if _, booted, resets, ons := mach.state(); resets+ons <= resets0+ons0 || booted != "disk" {
		t.Errorf("after servicing the machine restarted %d times, last from %q; want a restart from disk", resets+ons-resets0-ons0, booted)
	}
	n := c.doVersion("1.87", "GET", "/v1/nodes/tpl-node", nil, 200)
	if n["last_error"] != nil || fmt.Sprint(n["service_step"]) != "map[]" {
		t.Errorf("after servicing: last_error %v, service_step %v", n["last_error"], n["service_step"])
	}
	if s := c.doVersion("1.40", "GET", "/v1/nodes/tpl-node/bios/NumLock", nil, 200)["NumLock"].(map[string]any); s["value"] != "Off" {
		t.Errorf("cached NumLock after servicing = %v", s)
	}
	// firmware.update as a service step: the BMC flashes a BIOS image (in
	// effect after the reboot into the instance) and a BMC image; the
	// node's firmware versions show both.
	_, _, resets0, ons0 = mach.state()
	c.doVersion("1.87", "PUT", "/v1/nodes/tpl-node/states/provision", map[string]any{"target": "service",
		"service_steps": []map[string]any{{"interface": "firmware", "step": "update", "args": map[string]any{"settings": []map[string]any{
			{"component": "bios", "url": fw.URL + "/bios-2.0.bin"}, {"component": "bmc", "url": fw.URL + "/bmc-0.2.bin"}}}}}}, 202)
	c.waitState("tpl-node", "active", 90*time.Second)
	if _, booted, resets, ons := mach.state(); resets+ons <= resets0+ons0 || booted != "disk" {
		t.Errorf("after the BIOS image the machine restarted %d times, last from %q; want a restart from disk", resets+ons-resets0-ons0, booted)
	}
	if versions := fwVersions(); versions["bios"] != "2.0.0-ferric" || versions["bmc"] != "0.2.0" {
		t.Errorf("firmware versions after firmware.update: %v", versions)
	}
	// management.update_firmware as a service step: the checksum checked,
	// the image flashed, the machine back in its instance.
	bios21 := redfish.FirmwareImage("bios", "2.1.0")
	sum21 := sha256.Sum256(bios21)
	fw21 := firmwareServer(t, map[string][]byte{"/bios-2.1.bin": bios21})
	_, _, resets0, ons0 = mach.state()
	c.doVersion("1.87", "PUT", "/v1/nodes/tpl-node/states/provision", map[string]any{"target": "service",
		"service_steps": []map[string]any{{"interface": "management", "step": "update_firmware", "args": map[string]any{
			"firmware_images": []map[string]any{{"url": fw21.URL + "/bios-2.1.bin", "checksum": "sha256:" + hex.EncodeToString(sum21[:])}}}}}}, 202)
	c.waitState("tpl-node", "active", 90*time.Second)
	if versions := fwVersions(); versions["bios"] != "2.1.0" {
		t.Errorf("firmware versions after management.update_firmware: %v", versions)
	}
	if _, booted, resets, ons := mach.state(); resets+ons <= resets0+ons0 || booted != "disk" {
		t.Errorf("after management.update_firmware the machine restarted %d times, last from %q; want a restart from disk", resets+ons-resets0-ons0, booted)
	}
	// Its arguments are checked before the servicing starts.
	c.doVersion("1.87", "PUT", "/v1/nodes/tpl-node/states/provision", map[string]any{"target": "service",
		"service_steps": []map[string]any{{"interface": "management", "step": "update_firmware", "args": map[string]any{
			"firmware_images": []map[string]any{{"url": fw21.URL + "/bios-2.1.bin"}}}}}}, 400)
	// An image the BMC cannot use fails the servicing with its message.
	c.doVersion("1.87", "PUT", "/v1/nodes/tpl-node/states/provision", map[string]any{"target": "service",
		"service_steps": []map[string]any{{"interface": "firmware", "step": "update", "args": map[string]any{"settings": []map[string]any{
			{"component": "bios", "url": fw.URL + "/missing.bin"}}}}}}, 202)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if n = c.do("GET", "/v1/nodes/tpl-node", nil, 200); n["provision_state"] == "service failed" {
			break
		}
	}
	if n["provision_state"] != "service failed" || !strings.Contains(fmt.Sprint(n["last_error"]), "is not a firmware image") {
		t.Fatalf("after a bad image: %v, last_error %v", n["provision_state"], n["last_error"])
	}
	c.doVersion("1.87", "PUT", "/v1/nodes/tpl-node/states/provision", map[string]any{"target": "abort"}, 202)
	c.waitState("tpl-node", "active", 30*time.Second)

	// A step no interface of the node offers is refused, the node stays active.
	c.doVersion("1.87", "PUT", "/v1/nodes/tpl-node/states/provision", map[string]any{"target": "service",
		"service_steps": []map[string]any{{"interface": "raid", "step": "create_configuration"}}}, 400)
	// A setting the BMC refuses fails the servicing with its message.
	c.doVersion("1.87", "PUT", "/v1/nodes/tpl-node/states/provision", map[string]any{"target": "service",
		"service_steps": []map[string]any{{"interface": "bios", "step": "apply_configuration",
			"args": map[string]any{"settings": []map[string]any{{"name": "NoSuchSetting", "value": "x"}}}}}}, 202)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if n = c.do("GET", "/v1/nodes/tpl-node", nil, 200); n["provision_state"] == "service failed" {
			break
		}
	}
	if n["provision_state"] != "service failed" || !strings.Contains(fmt.Sprint(n["last_error"]), "BIOS attribute NoSuchSetting is unknown") {
		t.Errorf("after a refused setting: %v, last_error %v; want service failed with the BMC's message", n["provision_state"], n["last_error"])
	}
}
