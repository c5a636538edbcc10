package e2e

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/baremetal/v1/nodes"
)

// qemuRescueMachine is the machine of TestQEMUDeploy that is rescued once
// deployed: the SeaBIOS machine behind the Redfish emulator, booting the
// rescue ramdisk from the network.
const qemuRescueMachine = qemuRedfishMachine

// agentCallback finds the agent's callback URL on the console.
var agentCallback = regexp.MustCompile(`callback_url=http://([0-9.]+):`)

// qemuRescue rescues the deployed machine m (rescue_interface agent, the
// deploy ramdisk as rescue ramdisk) with a password through gophercloud,
// logs into the rescue ramdisk over SSH as the rescue user with that
// password, runs a command and checks its output, then unrescues and
// waits for the deployed OS to report again (it powers itself off after).
func qemuRescue(t *testing.T, c client, bm *gophercloud.ServiceClient, m *qemuMachine, addPhase func(name, format string, args ...any)) {
	t.Helper()
	ctx := context.Background()
	const pw = "Rescue-me 2026"
	serialAt := int64(0)
	if fi, err := os.Stat(m.q.SerialLog()); err == nil {
		serialAt = fi.Size()
	}
	t0 := time.Now()
	if err := nodes.ChangeProvisionState(ctx, bm, m.name, nodes.ProvisionStateOpts{Target: nodes.TargetRescue, RescuePassword: pw}).ExtractErr(); err != nil {
		t.Fatalf("%s: rescue: %v", m.name, err)
	}
	n := c.waitState(m.name, "rescue", 4*time.Minute)
	if strings.Contains(fmt.Sprint(n), pw) {
		t.Fatalf("the rescue password shows through the API")
	}
	tRescued := time.Now()
	// The rescue ramdisk's address: its agent's callback on the console.
	serial, _ := os.ReadFile(m.q.SerialLog())
	var ip string
	if int64(len(serial)) > serialAt {
		for _, mm := range agentCallback.FindAllSubmatch(serial[serialAt:], -1) {
			ip = string(mm[1])
		}
	}
	if ip == "" {
		t.Fatalf("%s: no agent callback URL on the console since the rescue; tail:\n%s", m.name, tail(serial, 3000))
	}
	out, err := sshRun(ip+":22", "rescue", pw, `echo "rescued as $USER"; cat /proc/cmdline; ls /sys/block`)
	if err != nil {
		t.Fatalf("%s: ssh rescue@%s: %v (output %q)", m.name, ip, err, out)
	}
	if !strings.HasPrefix(out, "rescued as rescue\n") || !strings.Contains(out, "ipa-api-url=") {
		t.Errorf("%s: the rescue shell said %q, want the rescue user in the ramdisk (ipa-api-url on its command line)", m.name, out)
	}
	t.Logf("%s: ssh rescue@%s ran a command in the rescue ramdisk: %q", m.name, ip, out)
	if _, err := sshRun(ip+":22", "rescue", "wrong-"+pw, "true"); err == nil {
		t.Errorf("%s: ssh with a wrong password logged in", m.name)
	}
	tSSH := time.Now()

	if err := nodes.ChangeProvisionState(ctx, bm, m.name, nodes.ProvisionStateOpts{Target: nodes.TargetUnrescue}).ExtractErr(); err != nil {
		t.Fatalf("%s: unrescue: %v", m.name, err)
	}
	n = c.waitState(m.name, "active", 4*time.Minute)
	var rep map[string]string
	select {
	case rep = <-m.reports:
	case <-time.After(3 * time.Minute):
		serial, _ := os.ReadFile(m.q.SerialLog())
		t.Fatalf("%s: no report from the deployed OS in 3 min after unrescue; serial tail:\n%s", m.name, tail(serial, 3000))
	}
	if rep["uuid"] != m.uuid {
		t.Errorf("%s: report after unrescue %v, want the deployed OS of node %s", m.name, rep, m.uuid)
	}
	if n["last_error"] != nil {
		t.Errorf("%s: unrescued with last_error %v", m.name, n["last_error"])
	}
	addPhase(m.name, "rescue: to rescue %.1fs, SSH login and command %.1fs, unrescue→deployed OS report %.1fs",
		tRescued.Sub(t0).Seconds(), tSSH.Sub(tRescued).Seconds(), time.Since(tSSH).Seconds())
	waitPoweredOff(t, m)
}
