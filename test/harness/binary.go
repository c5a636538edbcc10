package harness

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// readyLine is what ferric-conductor logs once its API serves.
const readyLine = "ferric-conductor ready"

// Build builds the ferric-conductor binary into a directory of the test's
// own and returns its path.
func Build(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ferric-conductor")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/ferric-metal/ferric/conductor/cmd/ferric-conductor")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the conductor: %v\n%s", err, out)
	}
	return bin
}

// Process is a running ferric-conductor binary.
type Process struct {
	// Cmd is the process; Cmd.Process.Signal reaches it.
	Cmd *exec.Cmd

	done    chan struct{}
	waitErr error
}

// StartBinary starts cmd, ferric-conductor with its flags (its Stdout as
// the caller set it), and returns once it has logged that it is ready;
// line, when not nil, is called with every line of its standard error (its
// log), in order, from one goroutine. If it exits first, or is not ready
// within StartTimeout, it is killed and StartBinary returns an error.
func StartBinary(cmd *exec.Cmd, line func(string)) (*Process, error) {
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(p.done)
		var once sync.Once
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			l := sc.Text()
			if line != nil {
				line(l)
			}
			if strings.Contains(l, readyLine) {
				once.Do(func() { close(ready) })
			}
		}
		// Drain what the scanner left (a line over its limit) so that
		// the process never blocks on a full pipe.
		_, _ = io.Copy(io.Discard, stderr)
		p.waitErr = cmd.Wait()
	}()
	select {
	case <-ready:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("ferric-conductor exited before it was ready: %v", p.waitErr)
	case <-time.After(StartTimeout):
		_ = cmd.Process.Kill()
		<-p.done
		return nil, fmt.Errorf("ferric-conductor not ready in %s", StartTimeout)
	}
}

// Stop sends sig and waits for the process to exit; if it has not within
// grace it is killed. It returns the process's exit error, or an error
// saying it had to be killed.
func (p *Process) Stop(sig os.Signal, grace time.Duration) error {
	_ = p.Cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(grace):
		_ = p.Cmd.Process.Kill()
		<-p.done
		return errors.New("ferric-conductor did not stop on " + sig.String() + " and was killed")
	}
}

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }
