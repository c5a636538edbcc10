package harness

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// OpenStackCLI is Debian's openstack client (python3-openstackclient, with
// ironicclient and novaclient), which the suites drive as users do.
const OpenStackCLI = "/usr/bin/openstack"

// NeedOpenStackCLI skips t when the CLI is not installed, or in -short
// mode (each command costs a Python start-up of a second or more).
func NeedOpenStackCLI(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(OpenStackCLI); err != nil {
		t.Skipf("skipping: %s not installed (.ci/deps.sh installs python3-openstackclient and python3-ironicclient)", OpenStackCLI)
	}
	if testing.Short() {
		t.Skip("skipping CLI test in -short mode")
	}
}

// OpenStack runs the CLI with args, without authentication against
// endpoint, with env added to the environment. It fails t when the
// command fails, logs the command and its time, and returns its output.
func OpenStack(t testing.TB, endpoint string, env []string, args ...string) string {
	t.Helper()
	full := append([]string{"--os-auth-type", "none", "--os-endpoint", endpoint}, args...)
	cmd := exec.Command(OpenStackCLI, full...)
	cmd.Env = append(append(os.Environ(), "PYTHONWARNINGS=ignore"), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("openstack %s (%.1fs)", strings.Join(args, " "), time.Since(start).Seconds())
	return string(out)
}
