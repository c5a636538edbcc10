package harness

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/artifacts"
)

// readyLine is what ferric-conductor logs once its API serves.
const readyLine = "ferric-conductor ready"

// Build returns the ferric-conductor binary, built once per run by
// test/artifacts (shared by the suite's test binaries: run it, don't
// modify it).
func Build(t testing.TB) string {
	t.Helper()
	bin, err := artifacts.GoBinary("./conductor/cmd/ferric-conductor")
	if err != nil {
		t.Fatalf("building the conductor: %v", err)
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
