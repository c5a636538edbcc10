// Command heartbeat measures how many agent heartbeats an Ironic-compatible
// API (ferric or the real Ironic) takes: it enrolls -n fake-hardware nodes
// with fast-track on, moves them to manageable (and every other one on to
// available, with automated cleaning off), looks each one up as its agent
// would (GET /v1/lookup?node_uuid=, which issues the agent token), then
// POSTs /v1/heartbeat/{uuid} with the token from -conc concurrent clients
// for -dur, every node in turn. It prints heartbeats/s, p50/p99 and, with
// -pid, the server's CPU time per heartbeat (from /proc, the processes
// named and their children).
//
// Nodes in fast-track idle (manageable, available) are the agents that
// heartbeat most: a machine that finished inspection or cleaning keeps its
// ramdisk up and heartbeats until it is deployed.
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
	nNodes  = flag.Int("n", 1000, "nodes with an agent")
	conc    = flag.Int("conc", 32, "concurrent heartbeat clients")
	dur     = flag.Duration("dur", 20*time.Second, "length of the heartbeat phase")
	setConc = flag.Int("setup-conc", 8, "clients enrolling nodes")
	pids    = flag.String("pid", "", "comma-separated server PIDs whose CPU time is measured (with children)")
	micro   = flag.String("microversion", "1.68", "X-OpenStack-Ironic-API-Version (tokens need 1.62)")
	prefix  = flag.String("prefix", "", "node name prefix (default hb-<time>)")
	agentsF = flag.String("agents", "", "file keeping the agents (node and token): read when it exists (no set-up), else written after the set-up")
)

var (
	base   string
	client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: time.Minute}
)

func main() {
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: heartbeat [flags] BASE_URL")
		os.Exit(2)
	}
	base = strings.TrimSuffix(flag.Arg(0), "/")
	if *prefix == "" {
		*prefix = fmt.Sprintf("hb-%d", time.Now().Unix())
	}
	agents, err := loadAgents(*agentsF)
	if err == nil && agents == nil {
		if agents, err = setup(*nNodes); err == nil && *agentsF != "" {
			err = saveAgents(*agentsF, agents)
		}
	}
	if err == nil && len(agents) == 0 {
		err = fmt.Errorf("no agents")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "heartbeat:", err)
		os.Exit(1)
	}
	run(agents)
}

type agent struct{ uuid, token string }

// loadAgents reads the agents of an earlier set-up (nil when the file does
// not exist).
func loadAgents(path string) ([]agent, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []agent
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if u, t, ok := strings.Cut(l, " "); ok {
			out = append(out, agent{uuid: u, token: t})
		}
	}
	fmt.Printf("setup    %d agents read from %s\n", len(out), path)
	return out, nil
}

func saveAgents(path string, agents []agent) error {
	var b strings.Builder
	for _, a := range agents {
		fmt.Fprintf(&b, "%s %s\n", a.uuid, a.token)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// setup enrolls n nodes and brings them to fast-track idle with a token.
func setup(n int) ([]agent, error) {
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
				a, err := prepare(i)
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
	fmt.Printf("setup    %d nodes manageable/available with agent tokens in %.1fs\n", n, time.Since(t0).Seconds())
	return agents, nil
}

// prepare enrolls node i, manages it (and provides every other one), and
// looks it up as its agent.
func prepare(i int) (agent, error) {
	var out struct{ UUID string }
	body := map[string]any{"driver": "fake-hardware", "name": fmt.Sprintf("%s-%d", *prefix, i),
		"driver_info": map[string]any{"fast_track": true}, "automated_clean": false,
		"properties": map[string]any{"cpus": 8, "memory_mb": 16384, "local_gb": 100, "cpu_arch": "x86_64"}}
	if code, raw, err := call("POST", "/v1/nodes", body, &out); err != nil || code != 201 {
		return agent{}, fmt.Errorf("create: %d %s %v", code, raw, err)
	}
	targets := []string{"manage"}
	if i%2 == 1 {
		targets = append(targets, "provide")
	}
	for _, t := range targets {
		want := map[string]string{"manage": "manageable", "provide": "available"}[t]
		if err := provision(out.UUID, t, want); err != nil {
			return agent{}, err
		}
	}
	var lk struct {
		Config struct {
			Token string `json:"agent_token"`
		} `json:"config"`
	}
	if code, raw, err := call("GET", "/v1/lookup?node_uuid="+out.UUID, nil, &lk); err != nil || code != 200 || lk.Config.Token == "" {
		return agent{}, fmt.Errorf("lookup %s: %d %s %v", out.UUID, code, raw, err)
	}
	return agent{uuid: out.UUID, token: lk.Config.Token}, nil
}

// provision asks for target and waits until the node is in state want.
func provision(uuid, target, want string) error {
	for try := 0; ; try++ {
		code, raw, err := call("PUT", "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": target}, nil)
		if err == nil && code == 202 {
			break
		}
		if code != 409 || try > 100 {
			return fmt.Errorf("%s %s: %d %s %v", target, uuid, code, raw, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var n struct {
			ProvisionState string `json:"provision_state"`
			LastError      string `json:"last_error"`
		}
		if _, _, err := call("GET", "/v1/nodes/"+uuid, nil, &n); err == nil {
			if n.ProvisionState == want {
				return nil
			}
			if strings.Contains(n.ProvisionState, "failed") {
				return fmt.Errorf("%s %s: %s (%s)", target, uuid, n.ProvisionState, n.LastError)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s %s: not %s after 2m", target, uuid, want)
}

// run heartbeats for -dur and prints the figures.
func run(agents []agent) {
	pidList := parsePIDs(*pids)
	cpu0 := cpuTicks(pidList)
	var count, errs atomic.Int64
	var next atomic.Int64
	lats := make([][]time.Duration, *conc)
	t0 := time.Now()
	stop := t0.Add(*dur)
	var wg sync.WaitGroup
	for w := range *conc {
		wg.Add(1)
		cl := agentClient(w / 64)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				a := agents[int(next.Add(1)-1)%len(agents)]
				body := map[string]any{"callback_url": "http://127.0.0.1:9999", "agent_token": a.token, "agent_version": "10.0.0"}
				s := time.Now()
				code, raw, err := callWith(cl, "POST", "/v1/heartbeat/"+a.uuid, body, nil)
				lats[w] = append(lats[w], time.Since(s))
				if err != nil || code != 202 {
					if errs.Add(1) <= 5 {
						fmt.Fprintf(os.Stderr, "heartbeat %s: %d %s %v\n", a.uuid, code, raw, err)
					}
					continue
				}
				count.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	cpu := cpuTicks(pidList) - cpu0
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(p*float64(len(all))))]
	}
	n := count.Load()
	fmt.Printf("heartbeat %d agents, %d clients, %.1fs: %d ok (%.0f/s), p50 %.2fms p99 %.2fms, errors %d\n",
		len(agents), *conc, el.Seconds(), n, float64(n)/el.Seconds(),
		float64(pct(.5).Microseconds())/1000, float64(pct(.99).Microseconds())/1000, errs.Load())
	if len(pidList) > 0 && n > 0 {
		sec := float64(cpu) / clockTicks
		fmt.Printf("heartbeat server CPU %.1fs in %.1fs (%.2f cores): %.0fµs a heartbeat\n",
			sec, el.Seconds(), sec/el.Seconds(), sec/float64(n)*1e6)
	}
}

// agentClient is the HTTP client of the k-th group of 64 agents: agents are
// machines, each its own client address, and a server bounds the
// connections of one address (ferric: --max-connections-per-client). On a
// loopback URL each group dials from its own 127.0.0.0/8 address.
func agentClient(k int) *http.Client {
	u, err := url.Parse(base)
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

func call(method, path string, body any, out any) (int, []byte, error) {
	return callWith(client, method, path, body, out)
}

func callWith(client *http.Client, method, path string, body any, out any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
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
