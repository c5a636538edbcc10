package feed

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
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

// startBinary runs ferric-conductor on addr and state with extra flags.
func startBinary(t testing.TB, bin, addr, state string, extra ...string) *harness.Process {
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
	addr := harness.FreeAddr(t, "127.0.0.1")
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
func cpuTime(t testing.TB, pid int) time.Duration {
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
// change at 100 a second, evenly spaced: every watcher gets every change,
// in order, once (asserted). The rate reached, the conductor's CPU, the
// PATCHes' latency and the commit-to-watcher latency are logged; the
// figures against the same load with no watcher, and the most changes a
// second the conductor commits, are BenchmarkStream1000Watchers's (a
// figure of the machine, not a pass/fail of the code: under load both
// fall).
func TestStream1000Watchers(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 watchers: not in -short")
	}
	watchFeed(t, 1000, false)
}

// BenchmarkStream1000Watchers reports, with 1,000 watchers open and then
// with none (base-): changes/s, the rate reached when 100 changes a second
// are asked for, evenly spaced (100 when the conductor keeps up), and
// those PATCHes' median and p99 latency; max-changes/s, the most changes a
// second 20 clients PATCHing as fast as they can get committed (and, with
// watchers, delivered); cpu-ms/change, the conductor's CPU time per change
// over both loads, which the machine's other work changes less than the
// rates:
//
//	go test -run '^$' -bench Stream1000Watchers -benchtime 1x -count 3 ./test/feed/
func BenchmarkStream1000Watchers(b *testing.B) {
	for range b.N {
		with, without := watchFeed(b, 1000, true)
		b.ReportMetric(with.rate, "changes/s")
		b.ReportMetric(ms(with.median), "patch-median-ms")
		b.ReportMetric(ms(with.p99), "patch-p99-ms")
		b.ReportMetric(with.max, "max-changes/s")
		b.ReportMetric(ms(with.cpu), "cpu-ms/change")
		b.ReportMetric(without.rate, "base-changes/s")
		b.ReportMetric(ms(without.median), "base-patch-median-ms")
		b.ReportMetric(ms(without.p99), "base-patch-p99-ms")
		b.ReportMetric(without.max, "base-max-changes/s")
		b.ReportMetric(ms(without.cpu), "base-cpu-ms/change")
	}
}

func ms(d time.Duration) float64 { return d.Seconds() * 1000 }

// loadFigures are one load's figures.
type loadFigures struct {
	rate        float64       // changes a second reached at 100 asked
	median, p99 time.Duration // of those PATCHes
	max         float64       // changes a second at full speed
	cpu         time.Duration // the conductor's CPU per change
}

// The loads of watchFeed: rate a second for seconds, evenly spaced, over
// nodes nodes; then (for the benchmark) maxChanges by maxClients clients
// as fast as they go.
const (
	feedRate, feedSeconds, feedNodes = 100, 5, 200
	maxChanges, maxClients           = 1000, 20
)

// watchFeed opens watchers streams and makes feedRate×feedSeconds changes
// at feedRate a second (and, with baseline, maxChanges more at full
// speed); every watcher must see every change once, in order. It returns
// the figures with the watchers open and, with baseline, the same loads'
// once they are gone.
func watchFeed(t testing.TB, watchers int, baseline bool) (with, without loadFigures) {
	bin := harness.Build(t)
	addr := harness.FreeAddr(t, "127.0.0.1")
	c := client{t, "http://" + addr}
	p := startBinary(t, bin, addr, t.TempDir(), "--max-connections-per-client", "4000", "--max-connections", "8000")
	for i := range feedNodes {
		c.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": fmt.Sprintf("w%d", i)}, 201)
	}
	paced := feedRate * feedSeconds
	total := paced
	if baseline {
		total += maxChanges
	}
	wp := startWatchers(t, c.base+"/v1/events/stream?types=node&fields=extra", watchers, total)

	cpu0 := cpuTime(t, p.Cmd.Process.Pid)
	with = pacedLoad(c, 0)
	cpuPaced := cpuTime(t, p.Cmd.Process.Pid) - cpu0
	if baseline {
		with.max = fullLoad(c, paced, maxChanges)
	}
	cpu := cpuTime(t, p.Cmd.Process.Pid) - cpu0
	with.cpu = cpu / time.Duration(total)
	sum, self := wp.wait(t)
	for _, e := range sum.Errors {
		t.Error(e)
	}
	t.Logf("%d watchers, %d changes at %d/s asked: %.1f/s; PATCH median %s, p99 %s; conductor CPU %s (%.0f%% of one core); %d watchers got all %d changes once, in order; commit to watcher median %s, p99 %s",
		watchers, paced, feedRate, with.rate, with.median, with.p99, cpuPaced, 100*cpuPaced.Seconds()/feedSeconds, sum.Complete, total,
		sum.DelayMedian, sum.DelayP99)
	if baseline {
		t.Logf("with %d watchers at full speed: %.0f changes/s; conductor CPU %s per change over both loads (the watchers' process: %s)",
			watchers, with.max, with.cpu.Round(time.Microsecond), self.Round(time.Millisecond))
	}
	if !baseline {
		return with, without
	}
	cpu0 = cpuTime(t, p.Cmd.Process.Pid)
	without = pacedLoad(c, 0)
	without.max = fullLoad(c, paced, maxChanges)
	without.cpu = (cpuTime(t, p.Cmd.Process.Pid) - cpu0) / time.Duration(total)
	t.Logf("the same loads with no watcher open: %.1f/s, PATCH median %s, p99 %s; at full speed %.0f changes/s; conductor CPU %s per change",
		without.rate, without.median, without.p99, without.max, without.cpu.Round(time.Microsecond))
	return with, without
}

// pacedLoad makes changes seq..seq+feedRate×feedSeconds-1 at feedRate a
// second, evenly spaced: change i is asked at i/feedRate, by the writer of
// its node (one per node, so a node's changes stay in order). The rate
// reached is the changes over the time from the first asked to the last
// done.
func pacedLoad(c client, seq int) loadFigures {
	total := feedRate * feedSeconds
	t0 := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	lat := make([]time.Duration, 0, total)
	for w := range feedNodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += feedNodes {
				time.Sleep(time.Until(t0.Add(time.Duration(i) * time.Second / feedRate)))
				a := time.Now()
				patchSeq(c, w, seq+i)
				mu.Lock()
				lat = append(lat, time.Since(a))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// The last change is asked at (total-1)/feedRate: a conductor that
	// keeps up reaches feedRate.
	elapsed := time.Since(t0) + time.Second/feedRate
	return loadFigures{rate: float64(total) / elapsed.Seconds(), median: quantile(lat, 0.5), p99: quantile(lat, 0.99)}
}

// loadClient keeps its connections to the conductor open between PATCHes,
// as API clients do (http.DefaultClient keeps two: with more writers at
// once, most PATCHes opened a connection of their own, and its time was
// counted as the PATCH's).
var loadClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: feedNodes}}

// patchSeq sets node w<node>'s extra/seq to seq.
func patchSeq(c client, node, seq int) {
	body := fmt.Sprintf(`[{"op":"add","path":"/extra/seq","value":%d}]`, seq)
	req, _ := http.NewRequest("PATCH", fmt.Sprintf("%s/v1/nodes/w%d", c.base, node), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-OpenStack-Ironic-API-Version", "1.110")
	resp, err := loadClient.Do(req)
	if err != nil {
		c.t.Error(err)
		return
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.t.Errorf("PATCH node w%d = %s %s, want 200", node, resp.Status, raw)
	}
}

// fullLoad makes changes seq..seq+n-1 with maxClients clients as fast as
// they go, client j making the changes i ≡ j (mod maxClients), so a node's
// (i mod feedNodes) in order; it returns the changes a second.
func fullLoad(c client, seq, n int) float64 {
	t0 := time.Now()
	var wg sync.WaitGroup
	for j := range maxClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := j; i < n; i += maxClients {
				patchSeq(c, i%feedNodes, seq+i)
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(t0).Seconds()
}

// watcher reads one stream of TestStream1000Watchers and checks it as it
// reads: every change once (the "seq" of its extra), each node's in order.
type watcher struct {
	total int
	timed bool // record commit-to-watcher delays

	mu     sync.Mutex
	n      int
	err    error
	delays []time.Duration
}

func (w *watcher) run(ctx context.Context, url string, opened func()) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := streamClient.Do(req)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("%s", resp.Status)
	}
	opened()
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	r := bufio.NewReaderSize(resp.Body, 16<<10)
	seen := make([]bool, w.total)
	last := map[string]int{}
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return nil // closed at the end of the test
		}
		if !bytes.HasPrefix(line, []byte("data: {")) || !bytes.Contains(line, []byte(`"type":"node"`)) {
			continue
		}
		seq, node, at, ok := parseWatched(line)
		w.mu.Lock()
		switch {
		case !ok:
			w.err = fmt.Errorf("event %s", line)
		case seq < 0 || seq >= w.total || seen[seq]:
			w.err = fmt.Errorf("change %d again or unknown", seq)
		case w.after(last, node, seq):
			w.err = fmt.Errorf("node %s change %d after %d", node, seq, last[node])
		default:
			seen[seq], last[node] = true, seq
			w.n++
			if w.timed && !at.IsZero() {
				w.delays = append(w.delays, time.Since(at))
			}
		}
		done := w.err != nil || w.n == w.total
		w.mu.Unlock()
		if done {
			return nil
		}
	}
}

// after reports whether node's last change seen is seq or later.
func (w *watcher) after(last map[string]int, node string, seq int) bool {
	l, ok := last[node]
	return ok && l >= seq
}

// parseWatched reads seq, the node's name and the commit time of a data
// line by hand.
func parseWatched(line []byte) (int, string, time.Time, bool) {
	j := bytes.Index(line, []byte(`"seq":`))
	k := bytes.Index(line, []byte(`"name":"`))
	if j < 0 || k < 0 {
		return 0, "", time.Time{}, false
	}
	seq := 0
	for _, b := range line[j+6:] {
		if b < '0' || b > '9' {
			break
		}
		seq = seq*10 + int(b-'0')
	}
	name := line[k+8:]
	name = name[:bytes.IndexByte(name, '"')]
	at, _ := eventTime(string(line))
	return seq, string(name), at, true
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
