package feed

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/test/harness"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startBinary runs ferric-conductor on addr and state with extra flags.
func startBinary(t *testing.T, bin, addr, state string, extra ...string) *harness.Process {
	t.Helper()
	args := append([]string{"--api-listen", addr, "--state-dir", state, "--hostname", "feed-bin",
		"--inspector-listen", ""}, extra...)
	p, err := harness.StartBinary(exec.Command(bin, args...), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(syscall.SIGTERM, 10*time.Second) })
	return p
}

// TestStreamResumeAcrossRestart: a watcher reads part of the changes, the
// conductor is killed (SIGKILL) and started again on the same state, and
// the watcher resumes with its Last-Event-ID: it gets every change it had
// not read, once, including those made while it was away.
func TestStreamResumeAcrossRestart(t *testing.T) {
	bin := harness.Build(t)
	state := t.TempDir()
	addr := freeAddr(t)
	c := client{t, "http://" + addr}
	p := startBinary(t, bin, addr, state)

	s := mustOpen(t, c.base, "?types=node", "")
	c.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "r1"}, 201)
	const before = 10
	for i := range before {
		c.do("PATCH", "/v1/nodes/r1", []map[string]any{{"op": "add", "path": "/extra/i", "value": i}}, 200)
	}
	// Read the create and the first 4 updates only.
	var revs []float64
	var resumeFrom string
	for range 5 {
		ev := s.nextOf(t, "node", 5*time.Second)
		revs = append(revs, ev.Data["revision"].(float64))
		resumeFrom = ev.ID // the id the client had when it read the event
	}
	s.Close()

	_ = p.Cmd.Process.Kill()
	<-p.Done()
	p = startBinary(t, bin, addr, state)
	const after = 5
	for i := range after {
		c.do("PATCH", "/v1/nodes/r1", []map[string]any{{"op": "add", "path": "/extra/j", "value": i}}, 200)
	}
	s2 := mustOpen(t, c.base, "?types=node", resumeFrom)
	var extras []string
	for range before - 4 + after {
		ev := s2.nextOf(t, "node", 5*time.Second)
		r := ev.Data["revision"].(float64)
		if r <= revs[len(revs)-1] {
			t.Fatalf("after resume: revision %v, not after %v (repeated)", r, revs[len(revs)-1])
		}
		revs = append(revs, r)
		ex := ev.Data["fields"].(map[string]any)["extra"].(map[string]any)
		extras = append(extras, fmt.Sprint(ex["i"], "/", ex["j"]))
	}
	want := "4/<nil> 5/<nil> 6/<nil> 7/<nil> 8/<nil> 9/<nil> 9/0 9/1 9/2 9/3 9/4"
	if got := strings.Join(extras, " "); got != want {
		t.Errorf("extra seen after the resume = %s, want %s", got, want)
	}
	if ev, ok := s2.next(time.Second); ok && ev.Type == "node" {
		t.Errorf("an event more than made: %v", ev.Data)
	}
	_ = p
}

// cpuTime is the user+system CPU time a process has used so far.
func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name (which may hold spaces).
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// TestStream1000Watchers: 1,000 watchers on one conductor while nodes
// change 100 times a second: the writers keep the rate (asserted), every
// watcher gets every change, in order, once. The conductor's CPU over
// the run, the PATCHes' latency and the commit-to-watcher latency are
// logged.
func TestStream1000Watchers(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 watchers: not in -short")
	}
	const watchers, rate, seconds = 1000, 100, 5
	bin := harness.Build(t)
	addr := freeAddr(t)
	c := client{t, "http://" + addr}
	p := startBinary(t, bin, addr, t.TempDir(), "--max-connections-per-client", "4000", "--max-connections", "8000")
	// One writer per node, each at rate/nodes a second: 100 changes a
	// second in all while one PATCH takes under nodes/rate seconds (the
	// machine the tests run on is shared: a PATCH may take half a second).
	const nodes = 100
	for i := range nodes {
		c.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": fmt.Sprintf("w%d", i)}, 201)
	}
	streams := make([]*stream, watchers)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var openErr error
	for i := range watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, code, body, err := openMode(t.Context(), c.base, "?types=node&fields=extra", "", true)
			if err == nil && code != 200 {
				err = fmt.Errorf("%d %s", code, body)
			}
			if err != nil {
				mu.Lock()
				openErr = err
				mu.Unlock()
				return
			}
			streams[i] = s
		}()
	}
	wg.Wait()
	if openErr != nil {
		t.Fatalf("opening %d streams: %v", watchers, openErr)
	}
	for _, s := range streams {
		t.Cleanup(s.Close)
		s.nextOf(t, "ready", 10*time.Second)
	}

	cpu0, t0 := cpuTime(t, p.Cmd.Process.Pid), time.Now()
	total := rate * seconds
	var wwg sync.WaitGroup
	lat := make([]time.Duration, 0, total)
	for w := range nodes {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			tick := time.NewTicker(time.Second * nodes / rate)
			defer tick.Stop()
			for i := w; i < total; i += nodes {
				<-tick.C
				a := time.Now()
				c.do("PATCH", fmt.Sprintf("/v1/nodes/w%d", w), []map[string]any{{"op": "add", "path": "/extra/seq", "value": i}}, 200)
				mu.Lock()
				lat = append(lat, time.Since(a))
				mu.Unlock()
			}
		}()
	}
	wwg.Wait()
	elapsed := time.Since(t0)
	got := float64(total) / elapsed.Seconds()

	// Every watcher gets every change once, each node's in order.
	errs := make(chan error, watchers)
	var delays []time.Duration // commit to watcher, watcher 0
	for w, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := make([]bool, total)
			last := map[string]int{}
			for i := range total {
				ev, ok := s.next(30 * time.Second)
				if !ok {
					errs <- fmt.Errorf("watcher %d: %d of %d changes", w, i, total)
					return
				}
				// The test's own CPU is the conductor's neighbour: no JSON
				// decoding of 100,000 events a second, substrings.
				var seq int
				j := strings.Index(ev.Raw, `"seq":`)
				k := strings.Index(ev.Raw, `"name":"w`)
				if j < 0 || k < 0 {
					errs <- fmt.Errorf("watcher %d: event %s", w, ev.Raw)
					return
				}
				fmt.Sscanf(ev.Raw[j+6:], "%d", &seq)
				node := ev.Raw[k+8 : k+8+strings.IndexByte(ev.Raw[k+8:], '"')]
				if seq < 0 || seq >= total || seen[seq] {
					errs <- fmt.Errorf("watcher %d: change %d again or unknown", w, seq)
					return
				}
				if l, ok := last[node]; ok && l >= seq {
					errs <- fmt.Errorf("watcher %d: node %s change %d after %d", w, node, seq, l)
					return
				}
				seen[seq], last[node] = true, seq
				if w == 0 {
					if at, ok := eventTime(ev.Raw); ok {
						delays = append(delays, ev.At.Sub(at))
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	cpu := cpuTime(t, p.Cmd.Process.Pid) - cpu0
	t.Logf("%d watchers, %d changes in %s (%.0f/s): every watcher got every change once, in order; conductor CPU %s (%.0f%% of one core); PATCH median %s, p99 %s; commit to watcher median %s, p99 %s",
		watchers, total, elapsed.Round(time.Millisecond), got, cpu, 100*cpu.Seconds()/elapsed.Seconds(),
		quantile(lat, 0.5), quantile(lat, 0.99), quantile(delays, 0.5), quantile(delays, 0.99))
	if got < 0.9*rate {
		t.Errorf("%.0f changes a second with %d watchers, want %d", got, watchers, rate)
	}
}

// eventTime reads the "time" of an event's raw data (the commit's).
func eventTime(raw string) (time.Time, bool) {
	i := strings.Index(raw, `"time":"`)
	if i < 0 {
		return time.Time{}, false
	}
	v := raw[i+8:]
	v = v[:strings.IndexByte(v, '"')]
	at, err := time.Parse("2006-01-02T15:04:05.999999-07:00", v)
	if err != nil {
		at, err = time.Parse(time.RFC3339Nano, v)
	}
	return at, err == nil
}

// quantile is the q-quantile of ds (0 when empty), rounded.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))].Round(time.Millisecond)
}
