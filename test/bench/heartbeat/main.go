// Command heartbeat measures how many agent heartbeats an Ironic-compatible
// API (ferric, and the real Ironic beside it) takes from agents in the
// states where agents heartbeat, each with its agent token:
//
//   - fast: fast-track idle (driver_info.fast_track): the node is
//     manageable or available and its ramdisk stays up until it is
//     deployed; every heartbeat is recorded on the node;
//   - clean: automated cleaning (deploy_interface direct, fake boot and
//     power): the node goes to clean wait, its agent looks up and
//     heartbeats, the conductor asks it for its clean steps and starts
//     erase_devices_metadata, which runs for the rest of the benchmark;
//   - deploy: a deploy of an http image: deploy wait, lookup, heartbeat,
//     the conductor starts the image write, which never ends.
//
// The agents' command API is served by this program (agent.go), so the
// conductors' calls to the agents (steps, command status polls) are real
// HTTP. Heartbeats are POST /v1/heartbeat/{uuid} with callback_url,
// agent_token and agent_version, as IPA sends them, from -conc clients for
// -dur, every agent in turn, -rounds times. It prints heartbeats/s, p50,
// p99 and, with -pid, the server's CPU time per heartbeat (from /proc, the
// processes named and their children).
//
// With -base URL (the real Ironic), both servers get the same agents and
// the rounds alternate between them; it prints the medians and the ratio.
//
// Usage: heartbeat [flags] http://127.0.0.1:6385
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	nNodes   = flag.Int("n", 1000, "agents (nodes), spread over -mix")
	mixF     = flag.String("mix", "fast,clean,deploy", "comma-separated agent states: fast, clean, deploy")
	conc     = flag.Int("conc", 32, "concurrent heartbeat clients")
	dur      = flag.Duration("dur", 10*time.Second, "length of one heartbeat round")
	rounds   = flag.Int("rounds", 3, "heartbeat rounds (per server)")
	setConc  = flag.Int("setup-conc", 8, "clients enrolling nodes")
	pids     = flag.String("pid", "", "comma-separated server PIDs whose CPU time is measured (with children)")
	baseURL  = flag.String("base", "", "the baseline server (the real Ironic): same agents, rounds alternate, ratio printed")
	baseConc = flag.Int("base-conc", 0, "clients of the baseline server (default -conc)")
	baseN    = flag.Int("base-n", 0, "agents of the baseline server (default -n; the real Ironic enrolls them slowly)")
	basePIDs = flag.String("base-pid", "", "PIDs of the baseline server (with children)")
	micro    = flag.String("microversion", "1.68", "X-OpenStack-Ironic-API-Version (tokens need 1.62)")
	prefix   = flag.String("prefix", "", "node name prefix (default hb-<time>)")
)

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: time.Minute}

func main() {
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: heartbeat [flags] BASE_URL")
		os.Exit(2)
	}
	if *prefix == "" {
		*prefix = fmt.Sprintf("hb-%d", time.Now().Unix())
	}
	if err := bench(); err != nil {
		fmt.Fprintln(os.Stderr, "heartbeat:", err)
		os.Exit(1)
	}
}

func bench() error {
	var mix []string
	for _, k := range strings.Split(*mixF, ",") {
		switch k = strings.TrimSpace(k); k {
		case "fast", "clean", "deploy":
			mix = append(mix, k)
		case "":
		default:
			return fmt.Errorf("-mix: unknown state %q (fast, clean, deploy)", k)
		}
	}
	if len(mix) == 0 || *nNodes < 1 || *rounds < 1 || *conc < 1 {
		return fmt.Errorf("need -mix, -n, -rounds and -conc")
	}
	targets := []*target{{name: "ferric", base: strings.TrimSuffix(flag.Arg(0), "/"), pids: parsePIDs(*pids), n: *nNodes, conc: *conc}}
	if *baseURL != "" {
		targets[0].name = "server"
		bn := *baseN
		if bn <= 0 {
			bn = *nNodes
		}
		bc := *baseConc
		if bc <= 0 {
			bc = *conc
		}
		targets = append(targets, &target{name: "baseline", base: strings.TrimSuffix(*baseURL, "/"), pids: parsePIDs(*basePIDs), n: bn, conc: bc})
	}
	for _, t := range targets {
		if t.conc > t.n {
			return fmt.Errorf("%d clients are more than the %d agents of %s: an agent heartbeats one at a time", t.conc, t.n, t.name)
		}
		// Each server its own agents, so that the calls to the agents
		// are counted apart.
		fa, err := startFakeAgents()
		if err != nil {
			return err
		}
		t.fa = fa
		if t.agents, err = t.setup(t.n, mix); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	for r := range *rounds {
		for _, t := range targets {
			res := t.round()
			t.results = append(t.results, res)
			fmt.Printf("round %d %-8s %d clients: %s\n", r+1, t.name, t.conc, res)
		}
	}
	for _, t := range targets {
		fmt.Printf("median   %-8s %s\n", t.name, t.median())
	}
	for _, t := range targets {
		fmt.Printf("states   %-8s after the rounds: %s\n", t.name, t.states())
	}
	if len(targets) == 2 {
		a, b := targets[0].median(), targets[1].median()
		fmt.Printf("ratio server/baseline: %.1fx heartbeats/s", a.rate/b.rate)
		if a.cpuPer > 0 && b.cpuPer > 0 {
			fmt.Printf(", %.1fx less CPU a heartbeat", b.cpuPer/a.cpuPer)
		}
		fmt.Printf(" (medians of %d rounds)\n", *rounds)
	}
	return nil
}

// target is one server under test.
type target struct {
	name    string
	base    string
	n       int // agents
	conc    int // clients
	pids    []int
	fa      *fakeAgents
	agents  []agent
	results []result
	mu      sync.Mutex
	clients map[int]*http.Client // agentClient's, by group
}

type agent struct{ uuid, token, kind, callback string }

// result is one heartbeat round.
type result struct {
	n, errs   int64
	secs      float64
	rate      float64
	p50, p99  time.Duration
	cpuPer    float64 // µs of server CPU a heartbeat (0: not measured)
	cores     float64
	agentCall float64 // calls to the agents a second (status polls and commands)
	byKind    map[string]time.Duration
}

func (r result) String() string {
	s := fmt.Sprintf("%d ok (%.0f/s), p50 %.2fms p99 %.2fms, errors %d", r.n, r.rate,
		ms(r.p50), ms(r.p99), r.errs)
	if r.cpuPer > 0 {
		s += fmt.Sprintf(", server CPU %.0fµs a heartbeat (%.2f cores)", r.cpuPer, r.cores)
	}
	s += fmt.Sprintf(", agent calls %.0f/s", r.agentCall)
	if len(r.byKind) > 1 {
		var ks []string
		for k := range r.byKind {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		s += ", p99 by state:"
		for _, k := range ks {
			s += fmt.Sprintf(" %s %.2fms", k, ms(r.byKind[k]))
		}
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// median is the round of median rate (with its CPU and latencies).
func (t *target) median() result {
	rs := slices.Clone(t.results)
	slices.SortFunc(rs, func(a, b result) int {
		switch {
		case a.rate < b.rate:
			return -1
		case a.rate > b.rate:
			return 1
		}
		return 0
	})
	m := rs[len(rs)/2]
	cpus := make([]float64, 0, len(rs))
	for _, r := range rs {
		cpus = append(cpus, r.cpuPer)
	}
	slices.Sort(cpus)
	m.cpuPer = cpus[len(cpus)/2]
	return m
}

// setup enrolls n nodes and brings each to its state, with a token.
func (t *target) setup(n int, mix []string) ([]agent, error) {
	t0 := time.Now()
	agents := make([]agent, n)
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range *setConc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				a, err := t.prepare(i, mix[i%len(mix)])
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				agents[i] = a
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	count := map[string]int{}
	for _, a := range agents {
		count[a.kind]++
	}
	fmt.Printf("setup    %-8s %d agents %v with tokens in %.1fs\n", t.name, n, count, time.Since(t0).Seconds())
	return agents, nil
}

// prepare enrolls node i and brings it to kind's state: fast-track idle
// (manageable, every other one available), cleaning with a running clean
// step, or deploying with a running image write.
func (t *target) prepare(i int, kind string) (agent, error) {
	var out struct{ UUID string }
	body := map[string]any{"driver": "fake-hardware", "name": fmt.Sprintf("%s-%d", *prefix, i),
		"properties": map[string]any{"cpus": 8, "memory_mb": 16384, "local_gb": 100, "cpu_arch": "x86_64"}}
	switch kind {
	case "fast":
		body["driver_info"] = map[string]any{"fast_track": true}
		body["automated_clean"] = false
	case "clean":
		body["deploy_interface"], body["boot_interface"] = "direct", "fake"
		body["automated_clean"] = true
	case "deploy":
		body["deploy_interface"], body["boot_interface"] = "direct", "fake"
		body["automated_clean"] = false
		body["instance_info"] = map[string]any{"image_source": t.fa.url + "/image.raw",
			"image_checksum": imageMD5(), "image_disk_format": "raw", "root_gb": 10}
	}
	if code, raw, err := t.call("POST", "/v1/nodes", body, &out); err != nil || code != 201 {
		return agent{}, fmt.Errorf("create: %d %s %v", code, raw, err)
	}
	cb, err := t.fa.callback(out.UUID)
	if err != nil {
		return agent{}, err
	}
	a := agent{uuid: out.UUID, kind: kind, callback: cb}
	steps := [][2]string{{"manage", "manageable"}}
	switch {
	case kind == "fast" && i%2 == 1, kind == "deploy":
		steps = append(steps, [2]string{"provide", "available"})
	case kind == "clean":
		steps = append(steps, [2]string{"provide", "clean wait"})
	}
	if kind == "deploy" {
		steps = append(steps, [2]string{"active", "wait call-back"})
	}
	for _, s := range steps {
		if err := t.provision(out.UUID, s[0], s[1]); err != nil {
			return agent{}, err
		}
	}
	var lk struct {
		Config struct {
			Token string `json:"agent_token"`
		} `json:"config"`
	}
	if code, raw, err := t.call("GET", "/v1/lookup?node_uuid="+out.UUID, nil, &lk); err != nil || code != 200 || lk.Config.Token == "" {
		return agent{}, fmt.Errorf("lookup %s (%s): %d %s %v", out.UUID, kind, code, raw, err)
	}
	a.token = lk.Config.Token
	if kind == "fast" {
		return a, nil
	}
	// The agent's first heartbeats: the conductor takes its steps and
	// starts the long one.
	deadline := time.Now().Add(3 * time.Minute)
	for !t.fa.busy(a.uuid) {
		if time.Now().After(deadline) {
			var n struct {
				ProvisionState string `json:"provision_state"`
				LastError      string `json:"last_error"`
			}
			_, _, _ = t.call("GET", "/v1/nodes/"+a.uuid, nil, &n)
			return agent{}, fmt.Errorf("%s %s: the conductor started no long command (%s: %s)", kind, a.uuid, n.ProvisionState, n.LastError)
		}
		if code, raw, err := t.heartbeat(client, a); err != nil || code != 202 {
			return agent{}, fmt.Errorf("first heartbeat %s (%s): %d %s %v", a.uuid, kind, code, raw, err)
		}
		for range 10 {
			if t.fa.busy(a.uuid) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return a, nil
}

// provision asks for target and waits until the node is in state want.
func (t *target) provision(uuid, target, want string) error {
	for try := 0; ; try++ {
		code, raw, err := t.call("PUT", "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": target}, nil)
		if err == nil && code == 202 {
			break
		}
		if code != 409 || try > 100 {
			return fmt.Errorf("%s %s: %d %s %v", target, uuid, code, raw, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		var n struct {
			ProvisionState string `json:"provision_state"`
			LastError      string `json:"last_error"`
		}
		if _, _, err := t.call("GET", "/v1/nodes/"+uuid, nil, &n); err == nil {
			if n.ProvisionState == want {
				return nil
			}
			if strings.Contains(n.ProvisionState, "fail") {
				return fmt.Errorf("%s %s: %s (%s)", target, uuid, n.ProvisionState, n.LastError)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s %s: not %s after 3m", target, uuid, want)
}

// states counts the agents' nodes by state and provision state after the
// rounds: every one should still be where it heartbeats.
func (t *target) states() string {
	count := map[string]int{}
	for _, a := range t.agents {
		var n struct {
			ProvisionState string `json:"provision_state"`
		}
		if code, _, err := t.call("GET", "/v1/nodes/"+a.uuid+"?fields=provision_state", nil, &n); err != nil || code != 200 {
			n.ProvisionState = fmt.Sprintf("error %d", code)
		}
		count[a.kind+"/"+n.ProvisionState]++
	}
	return fmt.Sprint(count)
}

func (t *target) heartbeat(cl *http.Client, a agent) (int, []byte, error) {
	body := map[string]any{"callback_url": a.callback, "agent_token": a.token, "agent_version": "10.0.0"}
	return t.callWith(cl, "POST", "/v1/heartbeat/"+a.uuid, body, nil)
}

// round heartbeats for -dur and measures.
func (t *target) round() result {
	cpu0 := cpuTicks(t.pids)
	calls0 := t.fa.polls.Load() + t.fa.cmds.Load()
	var count, errs atomic.Int64
	type sample struct {
		d    time.Duration
		kind string
	}
	lats := make([][]sample, t.conc)
	t0 := time.Now()
	stop := t0.Add(*dur)
	var wg sync.WaitGroup
	for w := range t.conc {
		wg.Add(1)
		cl := t.agentClient(w / 64)
		go func() {
			defer wg.Done()
			// Client w is the agents w, w+conc, ...: an agent sends one
			// heartbeat at a time.
			for j := w; time.Now().Before(stop); j += t.conc {
				if j >= len(t.agents) {
					j = w
				}
				a := t.agents[j]
				s := time.Now()
				code, raw, err := t.heartbeat(cl, a)
				lats[w] = append(lats[w], sample{time.Since(s), a.kind})
				if err != nil || code != 202 {
					if errs.Add(1) <= 5 {
						fmt.Fprintf(os.Stderr, "%s: heartbeat %s (%s): %d %s %v\n", t.name, a.uuid, a.kind, code, raw, err)
					}
					continue
				}
				count.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	cpu := cpuTicks(t.pids) - cpu0
	calls := t.fa.polls.Load() + t.fa.cmds.Load() - calls0
	var all []time.Duration
	kinds := map[string][]time.Duration{}
	for _, l := range lats {
		for _, s := range l {
			all = append(all, s.d)
			kinds[s.kind] = append(kinds[s.kind], s.d)
		}
	}
	r := result{n: count.Load(), errs: errs.Load(), secs: el.Seconds(), p50: pct(all, .5), p99: pct(all, .99),
		byKind: map[string]time.Duration{}, agentCall: float64(calls) / el.Seconds()}
	for k, l := range kinds {
		r.byKind[k] = pct(l, .99)
	}
	r.rate = float64(r.n) / r.secs
	if len(t.pids) > 0 && r.n > 0 {
		sec := float64(cpu) / clockTicks
		r.cores = sec / r.secs
		r.cpuPer = sec / float64(r.n) * 1e6
	}
	return r
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(p*float64(len(d))))]
}

// agentClient is the HTTP client of the k-th group of 64 agents: agents are
// machines, each its own client address, and a server bounds the
// connections of one address (ferric: --max-connections-per-client). On a
// loopback URL each group dials from its own 127.0.0.0/8 address.
func (t *target) agentClient(k int) *http.Client {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.clients == nil {
		t.clients = map[int]*http.Client{}
	}
	if c := t.clients[k]; c != nil {
		return c // the same connections every round
	}
	c := t.newAgentClient(k)
	t.clients[k] = c
	return c
}

func (t *target) newAgentClient(k int) *http.Client {
	u, err := url.Parse(t.base)
	if err != nil {
		return client
	}
	ip := net.ParseIP(u.Hostname())
	if ip == nil || ip.To4() == nil || !ip.IsLoopback() {
		return client
	}
	local := net.IPv4(127, 1, byte(k/250), byte(2+k%250))
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: local}, Timeout: 10 * time.Second}
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64, DialContext: d.DialContext}}
}

func (t *target) call(method, path string, body any, out any) (int, []byte, error) {
	return t.callWith(client, method, path, body, out)
}

func (t *target) callWith(client *http.Client, method, path string, body any, out any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, t.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-OpenStack-Ironic-API-Version", *micro)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, raw, err
		}
	}
	return resp.StatusCode, raw, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTicks = 100

func parsePIDs(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if p, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && p > 0 {
			out = append(out, p)
		}
	}
	return out
}

// cpuTicks is the user+system time of the processes and their children.
func cpuTicks(pids []int) int64 {
	var t int64
	for _, p := range pids {
		t += treeTicks(p)
	}
	return t
}

func treeTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	var t int64
	if len(f) > 12 {
		u, _ := strconv.ParseInt(f[11], 10, 64) // utime is field 14
		k, _ := strconv.ParseInt(f[12], 10, 64) // stime is field 15
		t = u + k
	}
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, c := range strings.Fields(string(kids)) {
		if p, err := strconv.Atoi(c); err == nil {
			t += treeTicks(p)
		}
	}
	return t
}
