// Package soak runs three ferric-conductor binaries on one etcd server
// under steady load from concurrent clients (node creates, PATCH updates,
// provision cycles on fake-hardware nodes, agent heartbeats) while one
// conductor after another is killed (SIGKILL) and started again. It checks
// correctness only, never rates, so it passes on a loaded machine: no
// acknowledged write is lost, no node is left stuck once the load stops,
// and a dead conductor's nodes are taken over within a generous bound. It
// reports the takeover times, the requests that failed, each conductor's
// RSS and etcd's database size over time (the conductors compact etcd
// with a short retention, -soak.etcd-retention, and defragment it).
//
// The default run is short (make test); a real soak sets the flags:
//
//	go test -run TestSoak -timeout 0 ./test/soak/ -soak.duration 30m -soak.nodes 2000
package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/storage/mvcc"

	"github.com/ferric-metal/ferric/conductor/store/etcdtest"
	"github.com/ferric-metal/ferric/test/harness"
)

var (
	soakDuration = flag.Duration("soak.duration", 75*time.Second, "length of the load")
	soakNodes    = flag.Int("soak.nodes", 60, "nodes enrolled before the load starts")
	soakKill     = flag.Duration("soak.kill-every", 25*time.Second, "period of the conductor kills")
	soakClients  = flag.Int("soak.clients", 6, "clients of each kind (creates, patches, provision cycles)")
	soakRetain   = flag.Duration("soak.etcd-retention", 15*time.Second, "the conductors' --etcd-compact-retention")
	soakDefrag   = flag.Duration("soak.etcd-defrag", 30*time.Second, "the conductors' --etcd-defrag-interval (0: none)")
)

const (
	hbTimeout     = 3 * time.Second  // the conductors' --heartbeat-timeout
	takeoverBound = 60 * time.Second // asserted
	settleBound   = 90 * time.Second // after the load, every node is stable within this
	opBound       = 60 * time.Second // a client gives up an operation after retrying this long
	staleBound    = 5 * time.Second  // a 404 is retried this long (a node created through another conductor)
)

// conductor is one ferric-conductor binary, started again after a kill on
// the same address and state directory.
type conductor struct {
	name, addr, state string

	mu   sync.Mutex
	proc *harness.Process
	down bool
	errs atomic.Int64 // ERROR lines in its log
}

func (c *conductor) pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil || c.down {
		return 0
	}
	return c.proc.Cmd.Process.Pid
}

type cluster struct {
	t     *testing.T
	bin   string
	etcd  *etcdtest.Server
	cs    []*conductor
	http  *http.Client
	stats *stats

	errMu    sync.Mutex
	errLines map[string]int // the conductors' ERROR log lines by message
}

func (cl *cluster) start(c *conductor) error {
	args := []string{"--api-listen", c.addr, "--state-dir", c.state, "--hostname", c.name,
		"--etcd-endpoints", cl.etcd.Endpoint, "--etcd-prefix", "/soak",
		"--heartbeat-interval", "500ms", "--heartbeat-timeout", hbTimeout.String(),
		"--inspector-listen", "",
		"--etcd-compact-retention", soakRetain.String(), "--etcd-compact-interval", (*soakRetain / 3).String(),
		"--etcd-defrag-interval", soakDefrag.String()}
	p, err := harness.StartBinary(exec.Command(cl.bin, args...), func(l string) {
		if strings.Contains(l, "level=ERROR") {
			c.errs.Add(1)
			cl.errMsg(l)
		}
	})
	if err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	c.mu.Lock()
	c.proc, c.down = p, false
	c.mu.Unlock()
	return nil
}

// errMsg counts a conductor's ERROR log line by its msg and err.
func (cl *cluster) errMsg(line string) {
	key := line
	if i := strings.Index(line, "msg="); i >= 0 {
		key = line[i:]
	}
	if i := strings.Index(key, " node="); i >= 0 {
		if j := strings.Index(key[i+1:], " "); j >= 0 {
			key = key[:i] + key[i+1+j:]
		}
	}
	cl.errMu.Lock()
	defer cl.errMu.Unlock()
	if cl.errLines == nil {
		cl.errLines = map[string]int{}
	}
	cl.errLines[key]++
}

// stats are the clients' counts.
type stats struct {
	ok, retried, failed, conflicts, stale, redone, creates, patches, cycles, interrupted, heartbeats atomic.Int64
	mu                                                                                               sync.Mutex
	codes                                                                                            map[string]int
	failures                                                                                         []string
}

func (s *stats) code(op string, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.codes == nil {
		s.codes = map[string]int{}
	}
	s.codes[fmt.Sprintf("%s %d", op, code)]++
}

func (s *stats) fail(what string) {
	s.failed.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) < 20 {
		s.failures = append(s.failures, what)
	}
}

// do sends a request as a client behind a load balancer: to a random
// conductor, and on a connection error (the conductor is down or died
// mid-request) to the next one. It returns the status and the decoded body;
// err is set only when no conductor answered.
func (cl *cluster) do(method, path string, body any) (int, map[string]any, error) {
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(body)
	}
	first := rand.IntN(len(cl.cs))
	var lastErr error
	for round := range 3 {
		for i := range cl.cs {
			c := cl.cs[(first+i)%len(cl.cs)]
			req, _ := http.NewRequest(method, "http://"+c.addr+path, bytes.NewReader(raw))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-OpenStack-Ironic-API-Version", "1.87")
			resp, err := cl.http.Do(req)
			if err != nil {
				lastErr = err
				cl.stats.retried.Add(1)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var out map[string]any
			_ = json.Unmarshal(b, &out)
			if out == nil {
				out = map[string]any{"raw": string(b)}
			}
			return resp.StatusCode, out, nil
		}
		time.Sleep(time.Duration(round+1) * 200 * time.Millisecond)
	}
	return 0, nil, lastErr
}

// until retries op (a request whose success is ok) for up to opBound: 409
// (node locked) and 5xx (the node's conductor died and is not yet taken
// over) are retried, anything else fails the operation at once. It
// reports whether op succeeded.
func (cl *cluster) until(ctx context.Context, what, method, path string, body any, ok int) (map[string]any, bool) {
	return cl.untilOr(ctx, what, method, path, body, ok, nil)
}

// untilOr is until where a refusal after which settled reports true
// counts as success: a request retried on another conductor after the
// first one died mid-request may have been done already.
func (cl *cluster) untilOr(ctx context.Context, what, method, path string, body any, ok int, settled func() bool) (map[string]any, bool) {
	t0 := time.Now()
	end := t0.Add(opBound)
	for {
		code, out, err := cl.do(method, path, body)
		if err == nil {
			cl.stats.code(method, code)
		}
		switch {
		case err == nil && code == ok:
			cl.stats.ok.Add(1)
			return out, true
		case err == nil && code == 409:
			cl.stats.conflicts.Add(1)
		case err == nil && code >= 500:
		case err == nil && code == 404 && time.Since(t0) < staleBound:
			// Another conductor's write not yet in this one's cache.
			cl.stats.stale.Add(1)
		case err == nil && settled != nil && settled():
			cl.stats.redone.Add(1)
			return out, true
		case err == nil:
			cl.stats.fail(fmt.Sprintf("%s: %d %v", what, code, out))
			return out, false
		}
		if ctx.Err() != nil {
			return out, false // the load stopped: not a failure
		}
		if time.Now().After(end) {
			cl.stats.fail(fmt.Sprintf("%s: gave up after %s: %d %v %v", what, opBound, code, out, err))
			return out, false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// listNodes pages through GET /v1/nodes with these fields.
func (cl *cluster) listNodes(fields string) ([]map[string]any, error) {
	var all []map[string]any
	path := "/v1/nodes?limit=1000&fields=" + fields
	for path != "" {
		code, out, err := cl.do("GET", path, nil)
		if err != nil || code != 200 {
			return nil, fmt.Errorf("list nodes: %d %v %v", code, out, err)
		}
		list, _ := out["nodes"].([]any)
		for _, n := range list {
			all = append(all, n.(map[string]any))
		}
		next, _ := out["next"].(string)
		path = ""
		if i := strings.Index(next, "/v1/nodes"); next != "" && i >= 0 && len(list) > 0 {
			path = next[i:]
			if !strings.Contains(path, "fields=") {
				path += "&fields=" + fields
			}
		}
	}
	return all, nil
}

// waitState polls the node until its provision state is one of want
// (true) or a failed state (false) within opBound.
func (cl *cluster) waitState(ctx context.Context, uuid string, want ...string) (string, bool) {
	end := time.Now().Add(opBound)
	last := ""
	for time.Now().Before(end) && ctx.Err() == nil {
		code, n, err := cl.do("GET", "/v1/nodes/"+uuid, nil)
		if err == nil && code == 200 {
			last, _ = n["provision_state"].(string)
			if slices.Contains(want, last) {
				return last, true
			}
			if strings.HasSuffix(last, "failed") {
				return last, false
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return last, false
}

// provision asks target (retrying locks) and waits for want.
func (cl *cluster) provision(ctx context.Context, uuid, target string, want ...string) (string, bool) {
	settled := func() bool {
		code, n, err := cl.do("GET", "/v1/nodes/"+uuid, nil)
		st, _ := n["provision_state"].(string)
		return err == nil && code == 200 && slices.Contains(want, st)
	}
	if out, ok := cl.untilOr(ctx, "provision "+target+" "+uuid, "PUT", "/v1/nodes/"+uuid+"/states/provision", map[string]any{"target": target}, 202, settled); !ok {
		return fmt.Sprintf("refused: %v", out), false
	}
	return cl.waitState(ctx, uuid, want...)
}

func TestSoakThreeConductors(t *testing.T) {
	if testing.Short() {
		t.Skip("soak")
	}
	bin := harness.Build(t)
	cl := &cluster{t: t, bin: bin, etcd: etcdtest.Start(t),
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}, stats: &stats{}}
	for i := range 3 {
		c := &conductor{name: fmt.Sprintf("soak-%d", i), addr: harness.FreeAddr(t, "127.0.0.1"), state: filepath.Join(t.TempDir(), "state")}
		if err := cl.start(c); err != nil {
			t.Fatal(err)
		}
		cl.cs = append(cl.cs, c)
	}
	t.Cleanup(func() {
		for _, c := range cl.cs {
			c.mu.Lock()
			if p := c.proc; p != nil && !c.down {
				_ = p.Stop(syscall.SIGTERM, 10*time.Second)
			}
			c.mu.Unlock()
		}
	})
	bg := context.Background()

	// Enroll the nodes; every one gets to available, a sixth of them stay
	// manageable with an agent that heartbeats (fast-track idle).
	t0 := time.Now()
	n := *soakNodes
	uuids := make([]string, n)
	var wg sync.WaitGroup
	var setupErr atomic.Value
	next := atomic.Int64{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				out, ok := cl.until(bg, "enroll", "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware",
					"name": fmt.Sprintf("soak-%d", i), "automated_clean": false,
					"driver_info": map[string]any{"fast_track": true}}, 201)
				if !ok {
					setupErr.Store(fmt.Errorf("enroll %d: %v", i, out))
					return
				}
				uuids[i] = out["uuid"].(string)
				if st, ok := cl.provision(bg, uuids[i], "manage", "manageable"); !ok {
					setupErr.Store(fmt.Errorf("manage %d: %s", i, st))
					return
				}
				if i%6 != 0 {
					if st, ok := cl.provision(bg, uuids[i], "provide", "available"); !ok {
						setupErr.Store(fmt.Errorf("provide %d: %s", i, st))
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := setupErr.Load().(error); err != nil {
		t.Fatal(err)
	}
	t.Logf("setup: %d nodes in %.1fs", n, time.Since(t0).Seconds())
	var agents [][2]string // uuid, token
	for i := 0; i < n; i += 6 {
		out, ok := cl.until(bg, "lookup", "GET", "/v1/lookup?node_uuid="+uuids[i], nil, 200)
		cfg, _ := out["config"].(map[string]any)
		tok, _ := cfg["agent_token"].(string)
		if !ok || tok == "" {
			t.Fatalf("lookup %s: %v", uuids[i], out)
		}
		agents = append(agents, [2]string{uuids[i], tok})
	}
	cl.stats = &stats{} // count the load only

	ctx, stop := context.WithTimeout(bg, *soakDuration)
	defer stop()
	var load sync.WaitGroup
	clients := *soakClients

	// Creates: each acknowledged node must exist at the end.
	var createdMu sync.Mutex
	var created []string
	for w := range clients {
		load.Add(1)
		go func() {
			defer load.Done()
			for i := 0; ctx.Err() == nil; i++ {
				name := fmt.Sprintf("soak-new-%d-%d", w, i)
				code, out, err := cl.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": name})
				switch {
				case err == nil && code == 201:
					cl.stats.ok.Add(1)
				case err == nil && code == 409 && strings.Contains(fmt.Sprint(out), "already exists"):
					// a retry after a conductor died mid-request: it was written.
				default:
					if ctx.Err() == nil {
						cl.stats.fail(fmt.Sprintf("create %s: %d %v %v", name, code, out, err))
					}
					continue
				}
				cl.stats.creates.Add(1)
				createdMu.Lock()
				created = append(created, name)
				createdMu.Unlock()
				time.Sleep(100 * time.Millisecond)
			}
		}()
	}

	// PATCH updates of extra/<client>: the value acknowledged last must be
	// the node's (or one sent after it) at the end.
	acks := make([]map[string]int, clients) // per client: uuid -> last acknowledged value
	sent := make([]map[string]int, clients) // per client: uuid -> last value sent
	for w := range clients {
		acks[w], sent[w] = map[string]int{}, map[string]int{}
		load.Add(1)
		go func() {
			defer load.Done()
			key := fmt.Sprintf("soak_%d", w)
			for v := 1; ctx.Err() == nil; v++ {
				u := uuids[rand.IntN(n)]
				sent[w][u] = v
				if _, ok := cl.until(ctx, "patch "+u, "PATCH", "/v1/nodes/"+u,
					[]map[string]any{{"op": "add", "path": "/extra/" + key, "value": v}}, 200); ok {
					acks[w][u] = v
					cl.stats.patches.Add(1)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}

	// Provision cycles on the available nodes (each client its own):
	// deploy, undeploy, manage, provide. A cycle a takeover interrupts
	// (deploy failed: "took over node") is recovered and counted.
	for w := range clients {
		var mine []string
		for i := range n {
			if i%6 != 0 && i%clients == w {
				mine = append(mine, uuids[i])
			}
		}
		if len(mine) == 0 {
			continue
		}
		load.Add(1)
		go func() {
			defer load.Done()
			for i := 0; ctx.Err() == nil; i++ {
				u := mine[i%len(mine)]
				cycle := []struct{ target, want string }{{"active", "active"}, {"deleted", "available"}, {"manage", "manageable"}, {"provide", "available"}}
				done := true
				for _, s := range cycle {
					if st, ok := cl.provision(ctx, u, s.target, s.want); !ok {
						done = false
						if ctx.Err() != nil {
							break
						}
						cl.stats.interrupted.Add(1)
						t.Logf("cycle of %s interrupted at %s: %s", u, s.target, st)
						cl.recover(ctx, u)
						break
					}
				}
				if done {
					cl.stats.cycles.Add(1)
				}
			}
		}()
	}

	// Agent heartbeats of the fast-track idle nodes.
	if len(agents) > 0 {
		for range 2 {
			load.Add(1)
			go func() {
				defer load.Done()
				for ctx.Err() == nil {
					a := agents[rand.IntN(len(agents))]
					if _, ok := cl.until(ctx, "heartbeat "+a[0], "POST", "/v1/heartbeat/"+a[0],
						map[string]any{"callback_url": "http://127.0.0.1:9", "agent_token": a[1], "agent_version": "10.0.0"}, 202); ok {
						cl.stats.heartbeats.Add(1)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
		}
	}

	// Samples of RSS and etcd's size.
	load.Add(1)
	go func() {
		defer load.Done()
		every := max(*soakDuration/10, 5*time.Second)
		for {
			cl.sample()
			select {
			case <-ctx.Done():
				return
			case <-time.After(every):
			}
		}
	}()

	// Kills: one conductor after another, SIGKILL, takeover, restart.
	var takeovers []time.Duration
	for k := 0; ; k++ {
		select {
		case <-ctx.Done():
		case <-time.After(*soakKill):
		}
		if ctx.Err() != nil {
			break
		}
		victim := cl.cs[k%len(cl.cs)]
		d, err := cl.kill(victim)
		if err != nil {
			t.Error(err)
			break
		}
		takeovers = append(takeovers, d)
	}
	load.Wait()
	t.Logf("load stopped after %s", *soakDuration)

	// Every node settled within settleBound: in a stable state with no
	// target, or in a failed state (whose target Ironic keeps) or error
	// (an undeploy a takeover interrupted), and no reservation.
	stable := map[string]bool{"enroll": true, "manageable": true, "available": true, "active": true, "error": true}
	var stuck []string
	end := time.Now().Add(settleBound)
	for {
		nodes, err := cl.listNodes("uuid,name,provision_state,target_provision_state,reservation,extra,conductor")
		if err != nil {
			t.Fatal(err)
		}
		stuck = stuck[:0]
		byUUID, byName := map[string]map[string]any{}, map[string]bool{}
		for _, nd := range nodes {
			byUUID[nd["uuid"].(string)] = nd
			name, _ := nd["name"].(string)
			byName[name] = true
			ps, _ := nd["provision_state"].(string)
			settled := stable[ps] && nd["target_provision_state"] == nil || strings.HasSuffix(ps, " failed")
			if !settled || nd["reservation"] != nil {
				stuck = append(stuck, fmt.Sprintf("%s %s target=%v reservation=%v", name, ps, nd["target_provision_state"], nd["reservation"]))
			}
		}
		if len(stuck) == 0 || time.Now().After(end) {
			// Lost writes: acknowledged creates and patches.
			lost := 0
			for _, name := range created {
				if !byName[name] {
					lost++
					t.Errorf("created node %s (acknowledged) is missing", name)
				}
			}
			for w := range acks {
				key := fmt.Sprintf("soak_%d", w)
				for u, v := range acks[w] {
					extra, _ := byUUID[u]["extra"].(map[string]any)
					got, _ := extra[key].(float64)
					if int(got) < v || int(got) > sent[w][u] {
						lost++
						t.Errorf("node %s extra/%s = %v, acknowledged %d (last sent %d)", u, key, extra[key], v, sent[w][u])
					}
				}
			}
			cl.sample()
			cl.report(t, len(nodes), takeovers, lost, stuck)
			break
		}
		time.Sleep(time.Second)
	}
	for _, s := range stuck {
		t.Errorf("stuck after %s: %s", settleBound, s)
	}
	for i, d := range takeovers {
		if d > takeoverBound {
			t.Errorf("takeover %d took %s (bound %s)", i, d, takeoverBound)
		}
	}
	// Failed requests are reported (the summary and "failed:" lines), not
	// asserted: a refusal a takeover explains (a request the dead
	// conductor had half done) is not a lost write.
}

// recover brings a node whose cycle failed back to available.
func (cl *cluster) recover(ctx context.Context, u string) {
	for range 5 {
		st, _ := cl.waitState(ctx, u, "available", "active", "manageable", "deploy failed", "clean failed", "enroll", "error")
		switch st {
		case "available":
			return
		case "active", "deploy failed", "error":
			cl.provision(ctx, u, "deleted", "available")
		case "manageable":
			cl.provision(ctx, u, "provide", "available")
		case "clean failed":
			cl.provision(ctx, u, "manage", "manageable")
		case "enroll":
			cl.provision(ctx, u, "manage", "manageable")
		default:
			return
		}
	}
}

// kill SIGKILLs c, waits until its nodes are served by another conductor
// (their conductor field names another one and validate answers), and
// starts it again. It returns the takeover time.
func (cl *cluster) kill(c *conductor) (time.Duration, error) {
	nodes, err := cl.listNodes("uuid,conductor")
	if err != nil {
		return 0, err
	}
	var its []string
	for _, nd := range nodes {
		if nd["conductor"] == c.name {
			its = append(its, nd["uuid"].(string))
		}
	}
	c.mu.Lock()
	p := c.proc
	c.down = true
	c.mu.Unlock()
	_ = p.Cmd.Process.Kill()
	<-p.Done()
	t0 := time.Now()
	rand.Shuffle(len(its), func(i, j int) { its[i], its[j] = its[j], its[i] })
	pending := slices.Clone(its[:min(len(its), 20)])
	for len(pending) > 0 {
		if time.Since(t0) > 2*takeoverBound {
			return 0, fmt.Errorf("%s's %d nodes: %d not taken over after %s", c.name, len(its), len(pending), 2*takeoverBound)
		}
		u := pending[0]
		code, nd, err := cl.do("GET", "/v1/nodes/"+u, nil)
		if err == nil && code == 200 && nd["conductor"] != c.name && nd["conductor"] != nil {
			if code, _, err := cl.do("GET", "/v1/nodes/"+u+"/validate", nil); err == nil && code == 200 {
				pending = pending[1:]
				continue
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	d := time.Since(t0)
	cl.t.Logf("kill %s at %s: its nodes (%d, %d of them checked) taken over and served in %.2fs", c.name, t0.Format("15:04:05"), len(its), min(len(its), 20), d.Seconds())
	if err := cl.start(c); err != nil {
		return d, err
	}
	return d, nil
}

// sample logs each conductor's RSS and etcd's database size.
func (cl *cluster) sample() {
	var parts []string
	for _, c := range cl.cs {
		rss := "down"
		if pid := c.pid(); pid != 0 {
			rss = fmt.Sprintf("%d MiB", rssKiB(pid)/1024)
		}
		parts = append(parts, c.name+" "+rss)
	}
	db := "?"
	if b := cl.etcd.Etcd.Server.Backend(); b != nil {
		db = fmt.Sprintf("%.1f MiB (in use %.1f MiB)", float64(b.Size())/(1<<20), float64(b.SizeInUse())/(1<<20))
	}
	// The revisions etcd still holds (compaction raises the first) and
	// the size of the current values alone.
	kv := cl.etcd.Etcd.Server.KV()
	if r, err := kv.Range(context.Background(), []byte("/soak/"), []byte("/soak0"), mvcc.RangeOptions{}); err == nil {
		live := 0
		for _, x := range r.KVs {
			live += len(x.Key) + len(x.Value)
		}
		db += fmt.Sprintf(", revisions %d-%d, current values %.1f MiB", kv.FirstRev(), kv.Rev(), float64(live)/(1<<20))
	}
	cl.t.Logf("sample: RSS %s; etcd db %s", strings.Join(parts, ", "), db)
}

func rssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.Atoi(f[1])
			return v
		}
	}
	return 0
}

func (cl *cluster) report(t *testing.T, nodes int, takeovers []time.Duration, lost int, stuck []string) {
	s := cl.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	codes := make([]string, 0, len(s.codes))
	for k, v := range s.codes {
		codes = append(codes, fmt.Sprintf("%s: %d", k, v))
	}
	slices.Sort(codes)
	t.Logf("responses: %s", strings.Join(codes, ", "))
	for _, f := range s.failures {
		t.Logf("failed: %s", f)
	}
	cl.errMu.Lock()
	for k, v := range cl.errLines {
		t.Logf("conductor ERROR log lines (%d): %s", v, k)
	}
	cl.errMu.Unlock()
	var tk []string
	worst := time.Duration(0)
	for _, d := range takeovers {
		tk = append(tk, fmt.Sprintf("%.2fs", d.Seconds()))
		worst = max(worst, d)
	}
	errLines := 0
	for _, c := range cl.cs {
		errLines += int(c.errs.Load())
	}
	t.Logf("SOAK SUMMARY: %s, 3 conductors, %d nodes at the end; kills %d, takeover %s (worst %.2fs); "+
		"ok requests %d, failed %d, retried on another conductor %d, 409 retries %d, 404 retries (write through another conductor not yet seen) %d, provision requests found done after a retry %d; creates %d, patches %d, "+
		"provision cycles %d (interrupted by a takeover %d), heartbeats %d; lost writes %d; stuck nodes %d; conductor ERROR log lines %d",
		*soakDuration, nodes, len(takeovers), strings.Join(tk, " "), worst.Seconds(),
		s.ok.Load(), s.failed.Load(), s.retried.Load(), s.conflicts.Load(), s.stale.Load(), s.redone.Load(), s.creates.Load(), s.patches.Load(),
		s.cycles.Load(), s.interrupted.Load(), s.heartbeats.Load(), lost, len(stuck), errLines)
}
