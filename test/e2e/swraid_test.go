package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/lab"
	"github.com/ferric-metal/ferric/test/lab/redfish"
)

// qemuEnvSWRAID marks the child of TestQEMUSoftwareRAID.
const qemuEnvSWRAID = "FERRIC_E2E_QEMU_SWRAID"

// swraidDiskMiB is the size of each of the machine's two disks (sparse):
// small, so that md's first resync of the mirror is short under TCG.
const swraidDiskMiB = 1536

// TestQEMUSoftwareRAID: two QEMU machines with two disks each, vm0 with
// SeaBIOS and vm1 with UEFI (OVMF), behind the Redfish emulator (driver
// redfish, raid_interface agent), in the namespace of TestQEMUDeploy (same
// parent and artifacts). Manual cleaning runs
// raid.delete_configuration and raid.create_configuration for a software
// RAID-1 target_raid_config (the agent in the ramdisk builds md0 with
// mdadm over a holder partition on each disk); the node's raid_config
// shows it. The test OS is deployed onto the array (root device /dev/md0)
// with a config drive, and install_bootloader makes both disks boot it
// (BIOS: the image's boot code on each disk; UEFI: an EFI system
// partition on each, mirrored, with a boot entry per disk); the deployed
// OS boots, assembles the array and reports. Then the first disk is
// removed (QEMU started with the second disk only): the OS still boots,
// from the degraded mirror, and reports again. With both disks back (the
// first one stale), the node is undeployed and raid.delete_configuration
// removes the arrays and the holder partition tables; raid_config is
// empty again. The two machines run at the same time.
func TestQEMUSoftwareRAID(t *testing.T) {
	if dir := os.Getenv(qemuEnvChild); dir != "" {
		swraidChild(t, dir)
		return
	}
	if _, err := exec.LookPath("mdadm"); err != nil {
		t.Skip("skipping: the deploy ramdisk needs the host's mdadm (Debian package mdadm; .ci/deps.sh installs it)")
	}
	// A variant of qemuParent: only the cloud-kernel ramdisk is built.
	qemuParent(t, "TestQEMUSoftwareRAID", qemuEnvSWRAID+"=1")
}

func swraidChild(t *testing.T, dir string) {
	// Two machines, vm0 with SeaBIOS and vm1 with UEFI, behind the
	// Redfish emulator.
	firmwares := []string{"bios", "uefi"}
	machines := map[string]redfish.Machine{}
	configs := map[string]lab.MachineConfig{}
	for i, fw := range firmwares {
		name := fmt.Sprintf("vm%d", i)
		vmDir := filepath.Join(dir, "vm")
		mc := lab.MachineConfig{Name: name, Dir: vmDir, MAC: fmt.Sprintf("52:54:00:e2:e0:%02x", i+1), Net: fmt.Sprintf("tap:tap%d", i),
			Disk: filepath.Join(vmDir, name+".raw"), ExtraDisks: []string{filepath.Join(vmDir, name+"-b.raw")},
			DiskSizeMiB: swraidDiskMiB, Firmware: fw}
		machines[name], configs[name] = newLabQEMU(t, mc), mc
	}
	bmc := serveRedfish(t, machines, "")

	// Where the deployed OS reports (its user_data URL).
	reports := map[string]chan map[string]string{"vm0": make(chan map[string]string, 4), "vm1": make(chan map[string]string, 4)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /report/{name}", func(w http.ResponseWriter, r *http.Request) {
		var rep map[string]string
		_ = json.NewDecoder(r.Body).Decode(&rep)
		if ch := reports[r.PathValue("name")]; ch != nil {
			select {
			case ch <- rep:
			default:
			}
		}
	})
	files := serveOnBridge(t, mux)
	base := startQEMUConductor(t, dir, qemuBridgeIP, &qemuConductor{})
	imageID := qemuUpload(t, base, "testos-raw", "raw", filepath.Join(dir, "testos.raw"))

	t.Run("machines", func(t *testing.T) {
		for i, firmware := range firmwares {
			name := fmt.Sprintf("vm%d", i)
			t.Run(firmware, func(t *testing.T) {
				t.Parallel()
				swraidMachine(t, swraidSetup{mc: configs[name], q: machines[name].(*lab.QEMU), base: base, files: files, imageID: imageID,
					redfish: bmc, reports: reports[name]})
			})
		}
	})
}

type swraidSetup struct {
	mc                            lab.MachineConfig
	q                             *lab.QEMU
	base, files, imageID, redfish string
	reports                       chan map[string]string
}

// swraidMachine takes one machine through the software RAID-1 clean,
// the deploy onto the array and the boots with two disks and with the
// second alone.
func swraidMachine(t *testing.T, s swraidSetup) {
	ctx := context.Background()
	mc, q := s.mc, s.q
	name, mac, disk1 := mc.Name, mc.MAC, mc.ExtraDisks[0]
	reports, files, imageID, base := s.reports, s.files, s.imageID, s.base
	c := client{t, base}
	serialTail := func() string {
		b, _ := os.ReadFile(q.SerialLog())
		return tail(b, 3000)
	}
	waitReport := func(what string, uuid string) {
		t.Helper()
		select {
		case rep := <-reports:
			if rep["uuid"] != uuid {
				t.Errorf("%s: report %v, want uuid %s", what, rep, uuid)
			}
		case <-time.After(3 * time.Minute):
			t.Fatalf("%s: no report from the deployed OS in 3 min; serial tail:\n%s", what, serialTail())
		}
	}

	start := time.Now()
	props := map[string]any{"root_device": map[string]any{"name": "/dev/md0"}}
	if mc.Firmware == "uefi" {
		props["capabilities"] = "boot_mode:uefi"
	}
	n := c.do("POST", "/v1/nodes", map[string]any{"name": name, "driver": "redfish", "deploy_interface": "direct",
		"raid_interface": "agent", "automated_clean": false, "properties": props,
		"driver_info": redfishDriverInfo(s.redfish, name)}, 201)
	uuid, _ := n["uuid"].(string)
	c.do("POST", "/v1/ports", map[string]any{"node_uuid": uuid, "address": mac}, 201)

	// Bad configs are refused when set, with IPA's messages; nothing changes.
	bad := map[string]any{"logical_disks": []any{map[string]any{"raid_level": "0", "size_gb": "MAX", "controller": "software"}}}
	resp := c.do("PUT", "/v1/nodes/"+uuid+"/states/raid", bad, 400)
	if b, _ := json.Marshal(resp); !strings.Contains(string(b), "Software RAID Configuration requires RAID-1 for the first logical disk") {
		t.Errorf("RAID-0 first volume: %s", b)
	}
	c.do("PUT", "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState(uuid, "manageable", time.Minute)
	// create_configuration without a target is refused before cleaning starts.
	resp = c.do("PUT", "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "clean", "clean_steps": []any{
		map[string]any{"interface": "raid", "step": "create_configuration"}}}, 400)
	if b, _ := json.Marshal(resp); !strings.Contains(string(b), "has no target RAID configuration") {
		t.Errorf("create_configuration without target_raid_config: %s", b)
	}
	c.do("PUT", "/v1/nodes/"+uuid+"/states/raid", map[string]any{"logical_disks": []any{
		map[string]any{"raid_level": "1", "size_gb": "MAX", "controller": "software", "is_root_volume": true}}}, 204)
	t0 := time.Now()
	c.do("PUT", "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "clean", "clean_steps": []any{
		map[string]any{"interface": "raid", "step": "delete_configuration"},
		map[string]any{"interface": "raid", "step": "create_configuration"}}}, 202)
	n = c.waitState(uuid, "manageable", 5*time.Minute)
	tClean := time.Since(t0)
	rc, _ := n["raid_config"].(map[string]any)
	lds, _ := rc["logical_disks"].([]any)
	if len(lds) != 1 || rc["last_updated"] == nil {
		t.Fatalf("raid_config after cleaning = %v, want the software RAID-1", rc)
	}
	if ld, _ := lds[0].(map[string]any); ld["raid_level"] != "1" || ld["controller"] != "software" {
		t.Errorf("raid_config logical disk = %v", ld)
	}
	if !strings.Contains(serialTail(), "software RAID device created") {
		t.Logf("the agent's console does not show the array; serial tail:\n%s", serialTail())
	}

	c.do("PUT", "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "provide"}, 202)
	c.waitState(uuid, "available", time.Minute)
	c.do("PATCH", "/v1/nodes/"+uuid, []any{map[string]any{"op": "add", "path": "/instance_info/image_source", "value": imageID}}, 200)
	t0 = time.Now()
	c.do("PUT", "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "active", "configdrive": map[string]any{
		"meta_data": map[string]any{"hostname": name + "-raid"}, "user_data": files + "/report/" + name + "\n"}}, 202)
	c.waitState(uuid, "active", 5*time.Minute)
	tDeploy := time.Since(t0)
	t0 = time.Now()
	waitReport("two disks", uuid)
	tBoot2 := time.Since(t0)
	if s := serialTail(); !strings.Contains(s, "software RAID assembled") {
		t.Errorf("the deployed OS did not assemble the array; serial tail:\n%s", s)
	}

	if mc.Firmware == "uefi" {
		nv, err := os.ReadFile(filepath.Join(mc.Dir, name+".vars"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"ferric-raid-0", "ferric-raid-1"} {
			if !bytes.Contains(nv, utf16le(want)) {
				t.Errorf("the firmware's variable store has no boot entry %q", want)
			}
		}
	}

	// The first disk is gone: the machine starts with the second alone.
	deadline := time.Now().Add(time.Minute)
	for on, _ := q.Running(ctx); on && time.Now().Before(deadline); on, _ = q.Running(ctx) {
		time.Sleep(200 * time.Millisecond)
	}
	_ = q.PowerOff(ctx)
	one := mc
	one.Disk, one.ExtraDisks = disk1, nil
	q1, err := lab.NewQEMU(one)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q1.PowerOff(context.Background()) })
	if err := q1.SetBootDevice(ctx, lab.BootDisk); err != nil {
		t.Fatal(err)
	}
	t0 = time.Now()
	if err := q1.PowerOn(ctx); err != nil {
		t.Fatal(err)
	}
	waitReport("second disk only", uuid)
	tBoot1 := time.Since(t0)
	serial, _ := os.ReadFile(q1.SerialLog())
	if i := strings.LastIndex(string(serial), "software RAID assembled"); i < 0 {
		t.Errorf("one disk: the OS did not assemble the degraded array")
	} else if mdstat := strings.Join(strings.SplitN(string(serial[i:]), "\n", 5)[:4], " | "); !strings.Contains(mdstat, "[2/1]") {
		t.Errorf("one disk: the array is not the degraded mirror: %s", mdstat)
	} else {
		t.Logf("one disk: %s", mdstat)
	}

	// Both disks are back (the first one stale); undeploy, then
	// delete_configuration removes every array (the ESP mirror too) and the
	// holder disks' partition tables.
	deadline = time.Now().Add(time.Minute)
	for on, _ := q1.Running(ctx); on && time.Now().Before(deadline); on, _ = q1.Running(ctx) {
		time.Sleep(200 * time.Millisecond)
	}
	_ = q1.PowerOff(ctx)
	t0 = time.Now()
	c.do("PUT", "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "deleted"}, 202)
	c.waitState(uuid, "available", 2*time.Minute)
	c.do("PUT", "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "manage"}, 202)
	c.waitState(uuid, "manageable", time.Minute)
	c.do("PUT", "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": "clean", "clean_steps": []any{
		map[string]any{"interface": "raid", "step": "delete_configuration"}}}, 202)
	n = c.waitState(uuid, "manageable", 5*time.Minute)
	tDelete := time.Since(t0)
	if rc, _ := n["raid_config"].(map[string]any); len(rc) != 0 {
		t.Errorf("raid_config after delete_configuration = %v, want {}", rc)
	}
	for _, d := range []string{mc.Disk, disk1} {
		f, err := os.Open(d)
		if err != nil {
			t.Fatal(err)
		}
		mbr := make([]byte, 512)
		_, err = io.ReadFull(f, mbr)
		f.Close()
		if err != nil || (mbr[510] == 0x55 && mbr[511] == 0xaa) {
			t.Errorf("%s still has a partition table after delete_configuration (read err %v)", d, err)
		}
	}
	t.Logf("phase %s (%s)", name, mc.Firmware)
	t.Logf("phase clean (delete+create software RAID-1): %.1fs; deploy to active: %.1fs; active→report (2 disks): %.1fs; power-on→report (disk 2 only): %.1fs; undeploy + delete_configuration: %.1fs; total %.1fs",
		tClean.Seconds(), tDeploy.Seconds(), tBoot2.Seconds(), tBoot1.Seconds(), tDelete.Seconds(), time.Since(start).Seconds())
}
