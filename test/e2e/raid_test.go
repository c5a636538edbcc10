package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"

	"github.com/ferric-metal/ferric/test/lab/redfish"
)

const gib = int64(1) << 30

// TestRedfishRAIDCleaning: hardware RAID on a redfish node whose machine
// runs the agent behind the lab's Redfish emulator, with four 10 GiB
// drives on the emulated controller, for the redfish and idrac hardware
// types. raid_interface redfish (idrac-redfish) is the default; target_raid_config is checked when set; configs the drives
// cannot hold are refused before cleaning starts; a volume the BMC
// refuses fails cleaning with its message and leaves the drives as they
// were; create_configuration and delete_configuration build and remove
// the volumes and raid_config shows them.
func TestRedfishRAIDCleaning(t *testing.T) {
	for _, tc := range []struct{ driver, raid, mac string }{
		{"redfish", "redfish", "52:54:00:12:34:7a"},
		{"idrac", "idrac-redfish", "52:54:00:12:34:7b"},
	} {
		t.Run(tc.driver, func(t *testing.T) { raidCleaning(t, tc.driver, tc.raid, tc.mac) })
	}
}

// raidAgentNode enrolls a node of hardware type drv behind the lab's
// Redfish emulator whose system has four 10 GiB drives on a RAID
// controller; its machine is the agent process with a file of size bytes
// as its disk. It checks the interfaces Ironic gives the hardware type.
func raidAgentNode(t *testing.T, drv, raidIface, name, mac string, size int64) (client, *redfish.Server, string) {
	t.Helper()
	c, emu, _, disk := raidAgentNodeHW(t, drv, raidIface, name, mac, size, redfish.Hardware{})
	return c, emu, disk
}

// raidAgentNodeHW is raidAgentNode with the system's hardware (its
// drives are set here) and the machine.
func raidAgentNodeHW(t *testing.T, drv, raidIface, name, mac string, size int64, hw redfish.Hardware) (client, *redfish.Server, *machine, string) {
	t.Helper()
	hw.Disks = []redfish.Disk{{Size: 10 * gib}, {Size: 10 * gib}, {Size: 10 * gib}, {Size: 10 * gib}}
	mach := &machine{}
	emu := redfish.New(redfish.Config{Username: "admin", Password: "pw", Machines: map[string]redfish.Machine{"m1": mach},
		Hardware: map[string]redfish.Hardware{"m1": hw}})
	bmc := httptest.NewServer(emu)
	t.Cleanup(bmc.Close)
	base := startConductor(t)
	c := client{t, base}
	node := c.doVersion("1.86", "POST", "/v1/nodes", map[string]any{"driver": drv, "name": name, "deploy_interface": "direct",
		"driver_info": map[string]any{"redfish_address": bmc.URL, "redfish_username": "admin", "redfish_password": "pw",
			"redfish_system_id": "/redfish/v1/Systems/m1",
			"deploy_kernel":     "http://example.invalid/k", "deploy_ramdisk": "http://example.invalid/r"}}, 201)
	for kind, want := range map[string]string{"raid": raidIface, "vendor": raidIface, "firmware": "redfish"} {
		if got := node[kind+"_interface"]; got != want {
			t.Errorf("%s_interface = %v, want %s (Ironic's default for %s)", kind, got, want, drv)
		}
	}
	c.do("POST", "/v1/ports", map[string]any{"address": mac, "node_uuid": node["uuid"]}, 201)
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	startMachineAgent(t, base, disk, mac)
	return c, emu, mach, disk
}

func raidCleaning(t *testing.T, drv, raidIface, mac string) {
	name := drv + "-raid-node"
	c, emu, _ := raidAgentNode(t, drv, raidIface, name, mac, 8<<20)
	c.do("PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState(name, "manageable", 30*time.Second)

	setRAID := func(cfg map[string]any, want int) string {
		t.Helper()
		out := c.doVersion("1.12", "PUT", "/v1/nodes/"+name+"/states/raid", cfg, want)
		return fmt.Sprint(out["error_message"])
	}
	disksCfg := func(lds ...map[string]any) map[string]any {
		l := []any{}
		for _, ld := range lds {
			l = append(l, ld)
		}
		return map[string]any{"logical_disks": l}
	}
	// Refused when set: Ironic's schema messages.
	for _, tc := range []struct {
		cfg  map[string]any
		want string
	}{
		{disksCfg(map[string]any{"raid_level": "7", "size_gb": 10}), "RAID config validation error: '7' is not one of"},
		{map[string]any{"volumes": []any{}}, "Additional properties are not allowed ('volumes' was unexpected)"},
		{disksCfg(map[string]any{"raid_level": "1", "size_gb": "big"}), "'big' is not valid under any of the given schemas"},
		{disksCfg(map[string]any{"raid_level": "1", "size_gb": 1, "physical_disks": []any{"0", "1"}}), "'controller' is a dependency of 'physical_disks'"},
	} {
		if msg := setRAID(tc.cfg, 400); !strings.Contains(msg, tc.want) {
			t.Errorf("PUT states/raid %v: %s, want %q", tc.cfg, msg, tc.want)
		}
	}
	if n := c.do("GET", "/v1/nodes/"+name, nil, 200); fmt.Sprint(n["target_raid_config"]) != "map[]" {
		t.Fatalf("target_raid_config after refused PUTs = %v", n["target_raid_config"])
	}

	clean := func(steps ...string) map[string]any {
		t.Helper()
		var list []map[string]any
		for _, s := range steps {
			list = append(list, map[string]any{"interface": "raid", "step": s, "args": map[string]any{}})
		}
		return c.doVersion("1.15", "PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "clean", "clean_steps": list}, 202)
	}
	cleanRefused := func(want string) {
		t.Helper()
		out := c.doVersion("1.15", "PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "clean",
			"clean_steps": []map[string]any{{"interface": "raid", "step": "create_configuration"}}}, 400)
		if msg := fmt.Sprint(out["error_message"]); !strings.Contains(msg, want) {
			t.Errorf("clean refused with %s, want %q", msg, want)
		}
		if n := c.do("GET", "/v1/nodes/"+name, nil, 200); n["provision_state"] != "manageable" || n["target_provision_state"] != nil {
			t.Errorf("after a refused clean: %v -> %v", n["provision_state"], n["target_provision_state"])
		}
	}
	// No target_raid_config yet.
	cleanRefused("has no target RAID configuration")
	// Configs the drives cannot hold are refused before cleaning starts.
	setRAID(disksCfg(map[string]any{"raid_level": "1", "size_gb": 11, "controller": "1", "physical_disks": []any{"0", "1"}}), 204)
	cleanRefused("The physical disk space (10737418240 bytes) is not enough for the size of the logical disk (11811160064 bytes)")
	setRAID(disksCfg(map[string]any{"raid_level": "5", "size_gb": 40}), 204)
	cleanRefused("failed to find matching physical disks for all logical disks")
	setRAID(disksCfg(map[string]any{"raid_level": "1+0", "size_gb": 1, "number_of_physical_disks": 6}), 204)
	cleanRefused("failed to find matching physical disks for all logical disks")
	setRAID(disksCfg(map[string]any{"raid_level": "2", "size_gb": 1}), 204)
	cleanRefused("RAID level 2 is not supported by the driver")
	if v := emu.Volumes("m1"); len(v) != 0 {
		t.Fatalf("volumes after refused cleans: %+v", v)
	}

	// A level the controller does not build (RAID6): the BMC refuses the
	// second volume, cleaning fails with its message, and the first
	// volume is removed again.
	setRAID(disksCfg(
		map[string]any{"raid_level": "0", "size_gb": 1, "controller": "1", "physical_disks": []any{"0"}},
		map[string]any{"raid_level": "6", "size_gb": 1, "controller": "1", "physical_disks": []any{"0", "1", "2", "3"}, "share_physical_disks": true}), 204)
	clean("create_configuration")
	var n map[string]any
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if n = c.do("GET", "/v1/nodes/"+name, nil, 200); n["provision_state"] == "clean failed" {
			break
		}
	}
	if n["provision_state"] != "clean failed" || !strings.Contains(fmt.Sprint(n["last_error"]), "The value RAID6 for the property RAIDType is not in the list of acceptable values") {
		t.Fatalf("state %v, last_error %v; want clean failed with the BMC's message", n["provision_state"], n["last_error"])
	}
	if v := emu.Volumes("m1"); len(v) != 0 {
		t.Errorf("volumes after the BMC refused one: %+v, want none (the drives as they were)", v)
	}
	c.do("PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState(name, "manageable", 30*time.Second)

	// A root RAID-1 of 5 GiB on any two drives and a RAID-0 of the rest.
	setRAID(disksCfg(
		map[string]any{"raid_level": "1", "size_gb": 5, "is_root_volume": true, "volume_name": "root"},
		map[string]any{"raid_level": "0", "size_gb": "MAX", "controller": "1", "physical_disks": []any{"2", "3"}, "volume_name": "data"}), 204)
	clean("delete_configuration", "create_configuration")
	c.waitState(name, "manageable", 90*time.Second)
	want := []redfish.Volume{
		{ID: "2", Name: "root", RAIDType: "RAID1", Capacity: 5 * gib, Drives: []int{0, 1}},
		{ID: "3", Name: "data", RAIDType: "RAID0", Capacity: 20 * gib, Drives: []int{2, 3}},
	}
	if d := cmp.Diff(want, emu.Volumes("m1")); d != "" {
		t.Errorf("volumes after create_configuration (-want +got):\n%s", d)
	}
	n = c.do("GET", "/v1/nodes/"+name, nil, 200)
	rc, _ := n["raid_config"].(map[string]any)
	wantLDs := []any{
		map[string]any{"id": "2", "name": "root", "controller": "1", "size_gb": float64(5), "raid_level": "1"},
		map[string]any{"id": "3", "name": "data", "controller": "1", "size_gb": float64(20), "raid_level": "0"},
	}
	if d := cmp.Diff(wantLDs, rc["logical_disks"]); d != "" || rc["last_updated"] == nil {
		t.Errorf("raid_config = %v (-want +got):\n%s", rc, d)
	}
	if n["last_error"] != nil {
		t.Errorf("last_error after cleaning = %v", n["last_error"])
	}

	// As metal3 prepares a host: the RAID steps, then a BIOS setting (a
	// reboot into the ramdisk), in one manual clean.
	c.doVersion("1.15", "PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "clean", "clean_steps": []map[string]any{
		{"interface": "raid", "step": "delete_configuration", "args": map[string]any{}},
		{"interface": "raid", "step": "create_configuration", "args": map[string]any{"create_nonroot_volumes": false}},
		{"interface": "bios", "step": "apply_configuration", "args": map[string]any{"settings": []map[string]any{{"name": "NumLock", "value": "Off"}}}},
	}}, 202)
	c.waitState(name, "manageable", 90*time.Second)
	if v := emu.Volumes("m1"); len(v) != 1 || v[0].Name != "root" || v[0].RAIDType != "RAID1" {
		t.Errorf("volumes after the root volume only: %+v", v)
	}
	if got, _ := emu.BIOS("m1"); got["NumLock"] != "Off" {
		t.Errorf("BIOS NumLock after the clean = %v", got["NumLock"])
	}

	// delete_configuration removes every volume.
	clean("delete_configuration")
	c.waitState(name, "manageable", 90*time.Second)
	if v := emu.Volumes("m1"); len(v) != 0 {
		t.Errorf("volumes after delete_configuration: %+v", v)
	}
	n = c.do("GET", "/v1/nodes/"+name, nil, 200)
	if rc, _ := n["raid_config"].(map[string]any); fmt.Sprint(rc["logical_disks"]) != "[]" {
		t.Errorf("raid_config after delete_configuration = %v", n["raid_config"])
	}
	// An empty config clears target_raid_config.
	setRAID(map[string]any{}, 204)
	if n := c.do("GET", "/v1/nodes/"+name, nil, 200); fmt.Sprint(n["target_raid_config"]) != "map[]" {
		t.Errorf("target_raid_config after clearing = %v", n["target_raid_config"])
	}
}

// TestRedfishRAIDOnReset: an idrac node whose controller, as an iDRAC's,
// builds and deletes volumes only when the machine restarts (202 and a
// task): the RAID steps make their requests, reboot the machine into the
// ramdisk and check the volumes once the agent is back; a volume the BMC
// refuses cancels the task of the one asked for before it.
func TestRedfishRAIDOnReset(t *testing.T) {
	const name = "raid-onreset"
	c, emu, mach, _ := raidAgentNodeHW(t, "idrac", "idrac-redfish", name, "52:54:00:12:34:7d", 8<<20, redfish.Hardware{VolumeApplyTime: "OnReset"})
	c.do("PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState(name, "manageable", 30*time.Second)
	setRAID := func(lds ...any) {
		t.Helper()
		c.doVersion("1.12", "PUT", "/v1/nodes/"+name+"/states/raid", map[string]any{"logical_disks": lds}, 204)
	}
	clean := func(steps ...string) {
		t.Helper()
		var list []map[string]any
		for _, s := range steps {
			list = append(list, map[string]any{"interface": "raid", "step": s, "args": map[string]any{}})
		}
		c.doVersion("1.15", "PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "clean", "clean_steps": list}, 202)
	}
	starts := func() int { _, _, resets, ons := mach.state(); return resets + ons }
	setRAID(map[string]any{"raid_level": "1", "size_gb": 5, "is_root_volume": true, "volume_name": "root"},
		map[string]any{"raid_level": "0", "size_gb": "MAX", "controller": "1", "physical_disks": []any{"2", "3"}, "volume_name": "data"})
	before := starts()
	clean("delete_configuration", "create_configuration")
	c.waitState(name, "manageable", 90*time.Second)
	want := []redfish.Volume{
		{ID: "1", Name: "root", RAIDType: "RAID1", Capacity: 5 * gib, Drives: []int{0, 1}},
		{ID: "2", Name: "data", RAIDType: "RAID0", Capacity: 20 * gib, Drives: []int{2, 3}},
	}
	if d := cmp.Diff(want, emu.Volumes("m1")); d != "" {
		t.Errorf("volumes after create_configuration (-want +got):\n%s", d)
	}
	if n := starts() - before; n < 2 {
		t.Errorf("the machine started %d times, want the ramdisk boot and the restart that builds the volumes", n)
	}
	n := c.do("GET", "/v1/nodes/"+name, nil, 200)
	if rc, _ := n["raid_config"].(map[string]any); fmt.Sprint(rc["logical_disks"]) != "[map[controller:1 id:1 name:root raid_level:1 size_gb:5] map[controller:1 id:2 name:data raid_level:0 size_gb:20]]" {
		t.Errorf("raid_config = %v", n["raid_config"])
	}

	clean("delete_configuration")
	c.waitState(name, "manageable", 90*time.Second)
	if v := emu.Volumes("m1"); len(v) != 0 {
		t.Fatalf("volumes after delete_configuration: %+v", v)
	}
	// The controller has no RAID6: the RAID0 asked for first is cancelled.
	setRAID(map[string]any{"raid_level": "0", "size_gb": 1, "controller": "1", "physical_disks": []any{"0"}},
		map[string]any{"raid_level": "6", "size_gb": 1, "controller": "1", "physical_disks": []any{"0", "1", "2", "3"}, "share_physical_disks": true})
	clean("create_configuration")
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if n = c.do("GET", "/v1/nodes/"+name, nil, 200); n["provision_state"] == "clean failed" {
			break
		}
	}
	if n["provision_state"] != "clean failed" || !strings.Contains(fmt.Sprint(n["last_error"]), "The value RAID6 for the property RAIDType is not in the list") {
		t.Fatalf("state %v, last_error %v; want clean failed with the BMC's message", n["provision_state"], n["last_error"])
	}
	c.do("PUT", "/v1/nodes/"+name+"/states/power", map[string]any{"target": "rebooting"}, 202)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if n = c.do("GET", "/v1/nodes/"+name, nil, 200); n["target_power_state"] == nil {
			break
		}
	}
	if v := emu.Volumes("m1"); len(v) != 0 {
		t.Errorf("volumes after a restart following the refusal: %+v, want none (the RAID0 task cancelled)", v)
	}
}

// TestRedfishRAIDDeploySteps: raid.delete_configuration and
// raid.apply_configuration as deploy steps (the config in the step's
// raid_config argument, which becomes the node's target_raid_config) run
// by the conductor before the image is written; a config the drives
// cannot hold is refused when the deploy is asked for; servicing removes
// the volumes with raid.delete_configuration.
func TestRedfishRAIDDeploySteps(t *testing.T) {
	const name = "raid-deploy"
	c, emu, disk := raidAgentNode(t, "redfish", "redfish", name, "52:54:00:12:34:7c", 64<<20)
	image := make([]byte, 5<<20)
	rand.Read(image[:1<<20])
	writeMBR(image)
	sum := sha256.Sum256(image)
	imgURL := serveContent(t, "image.raw", time.Now(), image)
	c.do("PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState(name, "manageable", 30*time.Second)
	c.do("PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "provide"}, 202)
	c.waitState(name, "available", 90*time.Second)
	c.do("PATCH", "/v1/nodes/"+name, []map[string]any{
		{"op": "add", "path": "/instance_info/image_source", "value": imgURL + "/image.raw"},
		{"op": "add", "path": "/instance_info/image_os_hash_algo", "value": "sha256"},
		{"op": "add", "path": "/instance_info/image_os_hash_value", "value": hex.EncodeToString(sum[:])},
	}, 200)
	steps := func(ld map[string]any) []map[string]any {
		return []map[string]any{
			{"interface": "raid", "step": "delete_configuration", "priority": 95, "args": map[string]any{}},
			{"interface": "raid", "step": "apply_configuration", "priority": 90, "args": map[string]any{
				"raid_config": map[string]any{"logical_disks": []any{ld}}}},
		}
	}
	out := c.doVersion("1.69", "PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "active",
		"deploy_steps": steps(map[string]any{"raid_level": "5", "size_gb": 31, "is_root_volume": true})}, 400)
	if msg := fmt.Sprint(out["error_message"]); !strings.Contains(msg, "failed to find matching physical disks for all logical disks") {
		t.Errorf("deploy with a RAID-5 of 31 GiB on four 10 GiB drives: %s", msg)
	}
	if n := c.do("GET", "/v1/nodes/"+name, nil, 200); n["provision_state"] != "available" {
		t.Fatalf("after a refused deploy: %v", n["provision_state"])
	}
	c.doVersion("1.69", "PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "active",
		"deploy_steps": steps(map[string]any{"raid_level": "5", "size_gb": 20, "is_root_volume": true, "volume_name": "os"})}, 202)
	c.waitState(name, "active", 120*time.Second)
	want := []redfish.Volume{{ID: "1", Name: "os", RAIDType: "RAID5", Capacity: 20 * gib, Drives: []int{0, 1, 2}}}
	if d := cmp.Diff(want, emu.Volumes("m1")); d != "" {
		t.Errorf("volumes after the deploy (-want +got):\n%s", d)
	}
	n := c.do("GET", "/v1/nodes/"+name, nil, 200)
	if rc, _ := n["raid_config"].(map[string]any); fmt.Sprint(rc["logical_disks"]) != "[map[controller:1 id:1 name:os raid_level:5 size_gb:20]]" {
		t.Errorf("raid_config after the deploy = %v", n["raid_config"])
	}
	if trc, _ := n["target_raid_config"].(map[string]any); fmt.Sprint(trc["logical_disks"]) != "[map[is_root_volume:true raid_level:5 size_gb:20 volume_name:os]]" {
		t.Errorf("target_raid_config after apply_configuration = %v", n["target_raid_config"])
	}
	got := make([]byte, len(image))
	f, _ := os.Open(disk)
	f.ReadAt(got, 0)
	f.Close()
	if !bytes.Equal(got, image) {
		t.Error("the disk does not hold the image after the deploy")
	}
	// Servicing: delete_configuration removes the volumes.
	c.doVersion("1.87", "PUT", "/v1/nodes/"+name+"/states/provision", map[string]any{"target": "service",
		"service_steps": []map[string]any{{"interface": "raid", "step": "delete_configuration"}}}, 202)
	c.waitState(name, "active", 90*time.Second)
	if v := emu.Volumes("m1"); len(v) != 0 {
		t.Errorf("volumes after servicing with delete_configuration: %+v", v)
	}
}

// TestRedfishEventSubscriptions: BMC event subscriptions through the
// redfish vendor interface's passthru methods, as metal3 makes them.
func TestRedfishEventSubscriptions(t *testing.T) {
	emu := redfish.New(redfish.Config{Username: "admin", Password: "pw", Machines: map[string]redfish.Machine{"m1": &machine{}}})
	bmc := httptest.NewServer(emu)
	t.Cleanup(bmc.Close)
	c := client{t, startConductor(t)}
	for _, drv := range []string{"redfish", "idrac"} {
		t.Run(drv, func(t *testing.T) {
			c := client{t, c.base}
			name := "events-" + drv
			node := c.do("POST", "/v1/nodes", map[string]any{"driver": drv, "name": name,
				"driver_info": map[string]any{"redfish_address": bmc.URL, "redfish_username": "admin", "redfish_password": "pw",
					"redfish_system_id": "/redfish/v1/Systems/m1"}}, 201)
			if v := node["vendor_interface"]; v != map[string]string{"redfish": "redfish", "idrac": "idrac-redfish"}[drv] {
				t.Errorf("vendor_interface = %v", v)
			}
			methods := c.do("GET", "/v1/nodes/"+name+"/vendor_passthru/methods", nil, 200)
			for _, m := range []string{"create_subscription", "delete_subscription", "get_subscription", "get_all_subscriptions"} {
				if _, ok := methods[m]; !ok {
					t.Errorf("vendor method %s not listed: %v", m, methods)
				}
			}
			vp := "/v1/nodes/" + name + "/vendor_passthru?method="
			out := c.do("POST", vp+"create_subscription", map[string]any{"Destination": "/relative"}, 400)
			if msg := fmt.Sprint(out["error_message"]); !strings.Contains(msg, "Destination '/relative' is not a valid URI") {
				t.Errorf("bad destination: %s", msg)
			}
			sub := c.do("POST", vp+"create_subscription", map[string]any{"Destination": "https://metal3.example.com/events", "Context": "bmh-" + drv}, 200)
			id, _ := sub["Id"].(string)
			if id == "" || sub["Destination"] != "https://metal3.example.com/events" || sub["Protocol"] != "Redfish" || fmt.Sprint(sub["EventTypes"]) != "[Alert]" {
				t.Fatalf("create_subscription = %v", sub)
			}
			if got := c.do("GET", vp+"get_subscription", map[string]any{"id": id}, 200); got["Context"] != "bmh-"+drv {
				t.Errorf("get_subscription = %v", got)
			}
			all := c.do("GET", vp+"get_all_subscriptions", nil, 200)
			if !strings.Contains(fmt.Sprint(all["Members"]), "/redfish/v1/EventService/Subscriptions/"+id) {
				t.Errorf("get_all_subscriptions = %v", all)
			}
			c.do("DELETE", vp+"delete_subscription", map[string]any{"id": id}, 200)
			c.do("DELETE", vp+"delete_subscription", map[string]any{"id": id}, 404)
			c.do("DELETE", vp+"delete_subscription", map[string]any{}, 400)
		})
	}
	// The calls metal3 makes (BMCEventSubscription), through gophercloud.
	t.Run("gophercloud", func(t *testing.T) {
		ctx := context.Background()
		bm := qemuBaremetal(t, c.base)
		sub, err := nodes.CreateSubscription(ctx, bm, "events-redfish", nodes.CallVendorPassthruOpts{Method: "create_subscription"},
			nodes.CreateSubscriptionOpts{Destination: "https://metal3.example.com/bmh", Context: "bmh", EventTypes: []string{"Alert"},
				HttpHeaders: []map[string]string{{"X-Token": "t"}}}).Extract()
		if err != nil || sub.Id == "" || sub.Context != "bmh" || sub.Protocol != "Redfish" {
			t.Fatalf("CreateSubscription = %+v, %v", sub, err)
		}
		if h := emu.Subscriptions(); len(h) != 1 || fmt.Sprint(h[0].Headers) != "[map[X-Token:t]]" {
			t.Errorf("subscription on the BMC = %+v, want its HttpHeaders", h)
		}
		all, err := nodes.GetAllSubscriptions(ctx, bm, "events-redfish", nodes.CallVendorPassthruOpts{Method: "get_all_subscriptions"}).Extract()
		if err != nil || all.MembersCount != 1 || all.Members[0]["@odata.id"] != "/redfish/v1/EventService/Subscriptions/"+sub.Id {
			t.Errorf("GetAllSubscriptions = %+v, %v", all, err)
		}
		if err := nodes.DeleteSubscription(ctx, bm, "events-redfish", nodes.CallVendorPassthruOpts{Method: "delete_subscription"},
			nodes.DeleteSubscriptionOpts{Id: sub.Id}).ExtractErr(); err != nil {
			t.Errorf("DeleteSubscription: %v", err)
		}
	})
	if s := emu.Subscriptions(); len(s) != 0 {
		t.Errorf("subscriptions left on the BMC: %+v", s)
	}
}
