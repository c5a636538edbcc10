package feed

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The watchers of TestStream1000Watchers run in a process of their own
// (this test binary again, running TestWatcherProcess), as a conductor's
// watchers do: in one process with the client making the changes, a
// thousand reading goroutines delayed that client's own PATCHes by
// hundreds of milliseconds, which the figures then blamed on the
// conductor.

// Environment of the watchers' process.
const (
	envWatchURL   = "FERRIC_FEED_WATCH_URL"
	envWatchers   = "FERRIC_FEED_WATCHERS"
	envWatchTotal = "FERRIC_FEED_WATCH_TOTAL"
)

// watchSummary is what the watchers' process reports on its last line.
type watchSummary struct {
	Complete    int           // watchers that got every change once, in order
	Errors      []string      // the others' (at most 10)
	DelayMedian time.Duration // commit to watcher, watcher 0
	DelayP99    time.Duration
}

// watcherProcess is a running watchers' process.
type watcherProcess struct {
	cmd   *exec.Cmd
	out   *bufio.Scanner
	input io.Closer // closed when the load is over
}

// startWatchers opens n streams of url in a child process, each expecting
// total changes, and returns once they are all open.
func startWatchers(t testing.TB, url string, n, total int) *watcherProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWatcherProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envWatchURL+"="+url, envWatchers+"="+strconv.Itoa(n), envWatchTotal+"="+strconv.Itoa(total))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	wp := &watcherProcess{cmd: cmd, out: bufio.NewScanner(stdout), input: stdin}
	for wp.out.Scan() {
		line := wp.out.Text()
		if line == "ready" {
			return wp
		}
		if e, ok := strings.CutPrefix(line, "failed: "); ok {
			t.Fatalf("opening %d streams: %s", n, e)
		}
	}
	t.Fatalf("the watchers' process ended before opening its streams: %v", wp.out.Err())
	return nil
}

// wait tells the watchers' process the load is over, waits (a minute at
// most) until every watcher has read every change or failed, and returns
// their summary and the process's CPU time.
func (wp *watcherProcess) wait(t testing.TB) (watchSummary, time.Duration) {
	t.Helper()
	_ = wp.input.Close()
	var sum watchSummary
	var raw string
	for wp.out.Scan() {
		if s, ok := strings.CutPrefix(wp.out.Text(), "summary: "); ok {
			raw = s
		}
	}
	if err := json.Unmarshal([]byte(raw), &sum); err != nil {
		t.Fatalf("the watchers' process: summary %q: %v", raw, err)
	}
	_ = wp.cmd.Wait()
	st := wp.cmd.ProcessState
	return sum, st.UserTime() + st.SystemTime()
}

// TestWatcherProcess is the watchers' process of startWatchers (skipped
// when not started by it): it opens the streams, prints "ready", and once
// every watcher is done (or a minute after its input closes: the load is
// over) prints its summary.
func TestWatcherProcess(t *testing.T) {
	url := os.Getenv(envWatchURL)
	if url == "" {
		t.Skip("the watchers' process of TestStream1000Watchers, started by it")
	}
	n, _ := strconv.Atoi(os.Getenv(envWatchers))
	total, _ := strconv.Atoi(os.Getenv(envWatchTotal))
	ctx, stop := context.WithTimeout(context.Background(), 10*time.Minute)
	defer stop()
	ws := make([]*watcher, n)
	var wg, ready sync.WaitGroup
	var mu sync.Mutex
	var openErr error
	for i := range n {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			w := &watcher{total: total, timed: i == 0}
			ws[i] = w
			if err := w.run(ctx, url, ready.Done); err != nil {
				mu.Lock()
				openErr = err
				mu.Unlock()
			}
		}()
	}
	ready.Wait()
	if openErr != nil {
		fmt.Printf("failed: %v\n", openErr)
		return
	}
	fmt.Println("ready")
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	loaded := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(loaded) }()
	select {
	case <-done:
	case <-loaded:
		select {
		case <-done:
		case <-time.After(time.Minute):
		}
	}
	stop()
	var sum watchSummary
	for i, w := range ws {
		w.mu.Lock()
		var e string
		switch {
		case w.err != nil:
			e = fmt.Sprintf("watcher %d: %v", i, w.err)
		case w.n != total:
			e = fmt.Sprintf("watcher %d: %d of %d changes", i, w.n, total)
		default:
			sum.Complete++
		}
		if e != "" && len(sum.Errors) < 10 {
			sum.Errors = append(sum.Errors, e)
		}
		w.mu.Unlock()
	}
	sum.DelayMedian, sum.DelayP99 = quantile(ws[0].delays, 0.5), quantile(ws[0].delays, 0.99)
	raw, _ := json.Marshal(sum)
	fmt.Printf("summary: %s\n", raw)
}
