// Package readme runs the command blocks of the repository's README.md, in
// the order it gives them, against a conductor the test starts: the
// set-up, the node walk-through with the openstack CLI, the image upload.
// A README block the test does not know fails it, so instructions added
// later are run (or their reason not to be is written here).
package readme

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/harness"
)

// block is a fenced sh block of README.md.
type block struct {
	line int // of the opening fence
	text string
}

func readBlocks(t *testing.T, path string) []block {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []block
	var cur *block
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(l, "```sh"):
			cur = &block{line: n}
		case cur != nil && strings.HasPrefix(l, "```"):
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.text += l + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Blocks not run, by a line they contain, with the reason.
var notRun = map[string]string{
	"openssl req -x509": "the TLS example names a host address (192.0.2.10) and keeps a conductor in the foreground; " +
		"TLS is covered by conductor/service's and ipa's TLS tests",
}

// makeRun is the conductor command of the Makefile's run target, which
// the set-up block's `make run` stands for.
var makeRun = regexp.MustCompile(`(?m)^\t\./\$\(BIN\)/ferric-conductor (.*)$`)

// TestREADME: the set-up block starts the conductor as `make run` does
// (the Makefile's flags, on a free port instead of 6385, which another
// service may hold; `make test` is the suite this test is part of), then
// every other block runs in one bash, in order, with `set -e`, the
// README's 127.0.0.1:6385 replaced by the conductor's address.
func TestREADME(t *testing.T) {
	if _, err := exec.LookPath("openstack"); err != nil {
		t.Skip("skipping: the openstack CLI is not installed (python3-openstackclient python3-ironicclient, .ci/deps.sh)")
	}
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("skipping: qemu-img is not installed (.ci/deps.sh)")
	}
	blocks := readBlocks(t, "../../README.md")
	if len(blocks) == 0 || !strings.Contains(blocks[0].text, "make run") {
		t.Fatalf("README.md's first sh block is not the set-up with make run: %+v", blocks)
	}
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := makeRun.FindSubmatch(mk)
	if m == nil {
		t.Fatal("Makefile: no run target starting ./$(BIN)/ferric-conductor")
	}
	runFlags := strings.Fields(string(m[1]))
	for _, l := range strings.Split(strings.TrimSpace(blocks[0].text), "\n") {
		cmd := strings.TrimSpace(strings.SplitN(l, "#", 2)[0])
		if cmd != "make run" && cmd != "make test" {
			t.Fatalf("README.md:%d: set-up line %q: the test knows make run and make test only", blocks[0].line, l)
		}
	}

	addr := harness.FreeAddr(t, "127.0.0.1")
	work := t.TempDir()
	var args []string
	for _, f := range runFlags {
		f = strings.ReplaceAll(f, "127.0.0.1:6385", addr)
		f = strings.ReplaceAll(f, "./var", filepath.Join(work, "var"))
		args = append(args, f)
	}
	if !strings.Contains(strings.Join(args, " "), addr) {
		t.Fatalf("Makefile's run target %q does not listen on 127.0.0.1:6385 as README says", m[1])
	}
	args = append(args, "--inspector-listen", "")
	cmd := exec.Command(harness.Build(t), args...)
	cmd.Dir = work
	p, err := harness.StartBinary(cmd, func(l string) { t.Log("conductor: " + l) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(os.Interrupt, 30*time.Second); err != nil {
			t.Errorf("conductor: %v", err)
		}
	})

	var script strings.Builder
	script.WriteString("set -euxo pipefail\n")
	ran := 0
	for _, b := range blocks[1:] {
		if reason := skipped(b); reason != "" {
			t.Logf("README.md:%d: not run: %s", b.line, reason)
			continue
		}
		fmt.Fprintf(&script, "# README.md:%d\n%s", b.line, strings.ReplaceAll(b.text, "127.0.0.1:6385", addr))
		ran++
	}
	if ran < 2 {
		t.Fatalf("only %d README blocks to run; want the node walk-through and the image upload", ran)
	}
	sh := exec.Command("bash", "-c", script.String())
	sh.Dir = work
	sh.Env = cleanEnv()
	start := time.Now()
	out, err := sh.CombinedOutput()
	t.Logf("README blocks (%d) in %s:\n%s", ran, time.Since(start).Round(time.Second), out)
	if err != nil {
		t.Fatalf("README blocks: %v", err)
	}

	// What the blocks say happened, asked of the API.
	check := func(want string, args ...string) {
		t.Helper()
		c := exec.Command("openstack", args...)
		c.Env = append(cleanEnv(), "OS_AUTH_TYPE=none", "OS_ENDPOINT=http://"+addr)
		out, err := c.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("openstack %s = %q (%v), want %q", strings.Join(args, " "), out, err, want)
		}
	}
	check("active", "baremetal", "node", "show", "demo", "-f", "value", "-c", "provision_state")
	check("active", "--os-endpoint", "http://"+addr+"/images", "image", "show", "demo-image", "-f", "value", "-c", "status")
}

func skipped(b block) string {
	for k, reason := range notRun {
		if strings.Contains(b.text, k) {
			return reason
		}
	}
	return ""
}

// cleanEnv is the test's environment without OpenStack client settings
// (the README sets its own).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OS_") {
			env = append(env, kv)
		}
	}
	return env
}
