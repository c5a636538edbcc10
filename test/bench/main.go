// Command bench loads an Ironic-compatible API (ferric or the real Ironic)
// and prints throughput and latency per phase:
//
//	a  create -n nodes (fake-hardware) with -create-conc clients
//	b  full detailed listing of all nodes (following next), -list-reps times
//	c  GET /v1/nodes/{uuid} of random nodes, -conc clients for -dur
//	d  PATCH a property of random nodes, -conc clients for -dur
//	e  -deploy-n fresh nodes taken enroll→manageable→available→active at once
//	f  create nodes up to -list-n in total, then time full listings of them
//
// Usage: bench [flags] http://127.0.0.1:6385
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	nNodes     = flag.Int("n", 1000, "nodes to create in phase a")
	createConc = flag.Int("create-conc", 8, "clients creating nodes")
	listReps   = flag.Int("list-reps", 3, "full listings in phase b")
	conc       = flag.Int("conc", 16, "clients in phases c and d")
	dur        = flag.Duration("dur", 15*time.Second, "duration of phases c and d")
	deployN    = flag.Int("deploy-n", 100, "nodes provisioned in phase e")
	listN      = flag.Int("list-n", 10000, "total nodes for phase f")
	listNReps  = flag.Int("list-n-reps", 3, "full listings in phase f")
	phases     = flag.String("phases", "abcdef", "phases to run")
	pollEvery  = flag.Duration("poll", 500*time.Millisecond, "e: state poll interval per node (and 409 retry wait)")
	micro      = flag.String("microversion", "1.78", "X-OpenStack-Ironic-API-Version")
	pid        = flag.Int("pid", 0, "server PID to sample RSS from (0 = none)")
	prefix     = flag.String("prefix", "", "node name prefix (default: bench-<time>)")
)

var (
	base   string
	client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 5 * time.Minute}
)

func main() {
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: bench [flags] BASE_URL")
		os.Exit(2)
	}
	base = strings.TrimSuffix(flag.Arg(0), "/")
	if *prefix == "" {
		*prefix = fmt.Sprintf("bench-%d", time.Now().Unix())
	}
	var rss rssSampler
	if *pid > 0 {
		rss.start(*pid)
	}
	fmt.Printf("bench %s microversion %s\n", base, *micro)
	var ids []string
	if strings.Contains(*phases, "a") {
		ids = phaseCreate(*nNodes, *createConc, "a")
		rss.report("a")
	}
	if len(ids) == 0 {
		ids = listUUIDs()
	}
	if strings.Contains(*phases, "b") {
		phaseList("b", *listReps)
		rss.report("b")
	}
	if strings.Contains(*phases, "c") {
		phaseLoad("c GET", ids, func(id string, _ int) (int, error) {
			return do("GET", "/v1/nodes/"+id, nil)
		})
		rss.report("c")
	}
	if strings.Contains(*phases, "d") {
		phaseLoad("d PATCH", ids, func(id string, i int) (int, error) {
			return do("PATCH", "/v1/nodes/"+id, []map[string]any{{"op": "add", "path": "/properties/bench_counter", "value": i}})
		})
		rss.report("d")
	}
	if strings.Contains(*phases, "e") {
		phaseDeploy(*deployN)
		rss.report("e")
	}
	if strings.Contains(*phases, "f") {
		have := len(listUUIDs())
		if have < *listN {
			phaseCreate(*listN-have, *createConc, "f-create")
		}
		phaseList("f", *listNReps)
		rss.report("f")
	}
	rss.stop()
}

func do(method, path string, body any) (int, error) {
	code, _, err := doJSON(method, path, body, nil)
	return code, err
}

func doJSON(method, path string, body, out any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = base + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-OpenStack-Ironic-API-Version", *micro)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, nil, err
	}
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			return res.StatusCode, raw, err
		}
	}
	if res.StatusCode >= 300 {
		return res.StatusCode, raw, fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, raw)
	}
	return res.StatusCode, raw, nil
}

type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) { l.mu.Lock(); l.d = append(l.d, d); l.mu.Unlock() }
func (l *latencies) pct(p float64) time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	slices.Sort(l.d)
	return l.d[min(len(l.d)-1, int(float64(len(l.d))*p))]
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + "ms"
}

var seq atomic.Int64

func phaseCreate(n, workers int, name string) []string {
	ids := make([]string, n)
	var lat latencies
	var errs atomic.Int64
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				body := map[string]any{"driver": "fake-hardware", "name": fmt.Sprintf("%s-%d", *prefix, seq.Add(1)),
					"resource_class": "bench", "properties": map[string]any{"cpus": 8, "memory_mb": 16384, "local_gb": 100, "cpu_arch": "x86_64"},
					"driver_info": map[string]any{"fake_key": "fake_value"}}
				var out struct{ UUID string }
				t0 := time.Now()
				_, _, err := doJSON("POST", "/v1/nodes", body, &out)
				lat.add(time.Since(t0))
				if err != nil {
					errs.Add(1)
					fmt.Fprintln(os.Stderr, err)
					continue
				}
				ids[i] = out.UUID
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	fmt.Printf("%-8s create %d nodes, %d clients: %.2fs, %.1f nodes/s, p50 %s p99 %s, errors %d\n", name, n, workers,
		el.Seconds(), float64(n)/el.Seconds(), ms(lat.pct(.5)), ms(lat.pct(.99)), errs.Load())
	return slices.DeleteFunc(ids, func(s string) bool { return s == "" })
}

// fullList follows next through the detailed listing; returns count and bytes.
func fullList() (int, int, error) {
	count, size := 0, 0
	url := "/v1/nodes/detail"
	for url != "" {
		var page struct {
			Nodes []json.RawMessage `json:"nodes"`
			Next  string            `json:"next"`
		}
		_, raw, err := doJSON("GET", url, nil, &page)
		if err != nil {
			return count, size, err
		}
		count += len(page.Nodes)
		size += len(raw)
		url = page.Next
	}
	return count, size, nil
}

func phaseList(name string, reps int) {
	var times []time.Duration
	count, size := 0, 0
	for range reps {
		t0 := time.Now()
		c, s, err := fullList()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return
		}
		times = append(times, time.Since(t0))
		count, size = c, s
	}
	slices.Sort(times)
	fmt.Printf("%-8s full detailed listing of %d nodes (%.1f MiB): median %.3fs, min %.3fs, max %.3fs\n", name, count,
		float64(size)/(1<<20), times[len(times)/2].Seconds(), times[0].Seconds(), times[len(times)-1].Seconds())
}

func listUUIDs() []string {
	var ids []string
	url := "/v1/nodes"
	for url != "" {
		var page struct {
			Nodes []struct{ UUID string } `json:"nodes"`
			Next  string                  `json:"next"`
		}
		if _, _, err := doJSON("GET", url, nil, &page); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return ids
		}
		for _, n := range page.Nodes {
			ids = append(ids, n.UUID)
		}
		url = page.Next
	}
	return ids
}

func phaseLoad(name string, ids []string, fn func(id string, i int) (int, error)) {
	if len(ids) == 0 {
		fmt.Println(name, ": no nodes")
		return
	}
	var lat latencies
	var n, errs atomic.Int64
	deadline := time.Now().Add(*dur)
	var wg sync.WaitGroup
	for w := range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for i := 0; time.Now().Before(deadline); i++ {
				id := ids[r.IntN(len(ids))]
				t0 := time.Now()
				_, err := fn(id, i)
				lat.add(time.Since(t0))
				n.Add(1)
				if err != nil {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("%-8s %d clients %s: %d requests, %.1f req/s, p50 %s p99 %s, errors %d\n", name, *conc, *dur, n.Load(),
		float64(n.Load())/dur.Seconds(), ms(lat.pct(.5)), ms(lat.pct(.99)), errs.Load())
}

// waitState polls until the node is stable in want (every -poll, 0.5 s by
// default like a client).
func waitState(id, want string) error {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		var st struct {
			ProvisionState       string  `json:"provision_state"`
			TargetProvisionState *string `json:"target_provision_state"`
			LastError            *string `json:"last_error"`
		}
		if _, _, err := doJSON("GET", "/v1/nodes/"+id+"/states", nil, &st); err != nil {
			return err
		}
		if st.ProvisionState == want && st.TargetProvisionState == nil {
			return nil
		}
		if strings.HasSuffix(st.ProvisionState, "failed") || st.ProvisionState == "error" {
			return fmt.Errorf("node %s: %s: %v", id, st.ProvisionState, st.LastError)
		}
		time.Sleep(*pollEvery)
	}
	return fmt.Errorf("node %s: timeout waiting for %s", id, want)
}

// provision retries 409 (node locked) and 503 (no free worker) like
// ironicclient does.
func provision(id, target string) error {
	for try := 0; ; try++ {
		code, err := do("PUT", "/v1/nodes/"+id+"/states/provision", map[string]any{"target": target})
		if (code == http.StatusConflict || code == http.StatusServiceUnavailable) && try < 20 {
			time.Sleep(*pollEvery)
			continue
		}
		return err
	}
}

func phaseDeploy(n int) {
	ids := phaseCreate(n, *createConc, "e-create")
	var lat latencies
	var errs atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	done := make([]time.Duration, 0, n)
	var mu sync.Mutex
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, step := range [][2]string{{"manage", "manageable"}, {"provide", "available"}, {"active", "active"}} {
				t0 := time.Now()
				err := provision(id, step[0])
				lat.add(time.Since(t0))
				if err == nil {
					err = waitState(id, step[1])
				}
				if err != nil {
					errs.Add(1)
					fmt.Fprintln(os.Stderr, err)
					return
				}
			}
			mu.Lock()
			done = append(done, time.Since(start))
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(done)
	if len(done) == 0 {
		fmt.Println("e        no node reached active")
		return
	}
	fmt.Printf("%-8s %d nodes enroll→active: all active after %.2fs (first %.2fs, median %.2fs), PUT p50 %s p99 %s, errors %d\n",
		"e", n, done[len(done)-1].Seconds(), done[0].Seconds(), done[len(done)/2].Seconds(), ms(lat.pct(.5)), ms(lat.pct(.99)), errs.Load())
}

// rssSampler samples /proc/PID/status VmRSS (and its children's, for a
// forking server, when -pid is the parent) every 200 ms.
type rssSampler struct {
	pid   int
	peak  atomic.Int64
	stopc chan struct{}
}

func (r *rssSampler) start(pid int) {
	r.pid, r.stopc = pid, make(chan struct{})
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			if kb := treeRSS(pid); kb > r.peak.Load() {
				r.peak.Store(kb)
			}
			select {
			case <-r.stopc:
				return
			case <-t.C:
			}
		}
	}()
}

func (r *rssSampler) report(phase string) {
	if r.pid == 0 {
		return
	}
	fmt.Printf("%-8s RSS now %.1f MiB, peak so far %.1f MiB (pid %d and children)\n", phase,
		float64(treeRSS(r.pid))/1024, float64(r.peak.Load())/1024, r.pid)
}

func (r *rssSampler) stop() {
	if r.stopc != nil {
		close(r.stopc)
	}
}

func treeRSS(pid int) int64 {
	total := rssKB(pid)
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, f := range strings.Fields(string(kids)) {
		if c, err := strconv.Atoi(f); err == nil {
			total += treeRSS(c)
		}
	}
	return total
}

func rssKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				return n
			}
		}
	}
	return 0
}
