package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// conductorEnv is a whole conductor (service.Run) on loopback sockets.
type conductorEnv struct {
	api, inspector, metrics string // base URLs
	user, pass              string
}

// freeAddr returns a loopback address with a free TCP port.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// writeHtpasswd writes an htpasswd file with one bcrypt user.
func writeHtpasswd(t *testing.T, user, pass string, cost int) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), cost)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(f, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// startConductor runs a conductor with http_basic (bcrypt cost) until the
// test ends; mut adjusts the configuration.
func startConductor(t *testing.T, cost int, mut func(*Config)) *conductorEnv {
	t.Helper()
	env := &conductorEnv{user: "admin", pass: "s3cret-pa55"}
	dir := t.TempDir()
	cfg := Config{
		APIListen: "127.0.0.1:0", StateDir: dir, Hostname: "auth-test",
		Auth: "http_basic", Htpasswd: writeHtpasswd(t, env.user, env.pass, cost),
		InspectorListen: freeAddr(t),
		Log:             slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mut != nil {
		mut(&cfg)
	}
	ready := make(chan string, 1)
	cfg.Ready = func(addr string) { ready <- addr }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("conductor did not stop")
		}
	})
	select {
	case addr := <-ready:
		env.api = "http://" + addr
	case err := <-done:
		t.Fatalf("conductor: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("conductor not ready")
	}
	env.inspector = "http://" + cfg.InspectorListen
	if cfg.MetricsListen != "" {
		env.metrics = "http://" + cfg.MetricsListen
	}
	// The inspector listens in its own goroutine: wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", cfg.InspectorListen)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("inspector: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return env
}

// do sends one request; creds "" sends none, "good" the right ones,
// anything else as the password of the known user.
func (e *conductorEnv) do(t *testing.T, method, url, creds, body string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	switch creds {
	case "":
	case "good":
		req.SetBasicAuth(e.user, e.pass)
	default:
		req.SetBasicAuth(e.user, creds)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		// A stream (the change feed) lasts as long as its reader: the
		// status and headers are the answer.
		return res.StatusCode, res.Header, nil
	}
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

// TestAnonymousWritesRefused (issue 17 findings 1, 2 and 5): without
// credentials the inspector's rules and introspection list, the image
// store's writes and /metrics answer 401, and nothing is created.
func TestAnonymousWritesRefused(t *testing.T) {
	e := startConductor(t, bcrypt.MinCost, nil)
	rule := `{"conditions":[{"op":"eq","field":"data://x","value":1}],"actions":[{"action":"fail","message":"x"}]}`
	cases := []struct {
		name, method, url, body string
	}{
		{"inspector create rule", "POST", e.inspector + "/v1/rules", rule},
		{"inspector delete rules", "DELETE", e.inspector + "/v1/rules", ""},
		{"inspector list introspection", "GET", e.inspector + "/v1/introspection", ""},
		{"image create", "POST", e.api + "/images/v2/images", `{"name":"evil","disk_format":"raw","container_format":"bare"}`},
		{"image list", "GET", e.api + "/images/v2/images", ""},
		{"metrics", "GET", e.api + "/metrics", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, h, b := e.do(t, tc.method, tc.url, "", tc.body)
			if code != http.StatusUnauthorized {
				t.Errorf("%s %s without credentials: %d %s, want 401", tc.method, tc.url, code, b)
			}
			if !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("WWW-Authenticate %q", h.Get("WWW-Authenticate"))
			}
		})
	}
	// Nothing was created: the admin sees no rule and no image.
	if code, _, b := e.do(t, "GET", e.inspector+"/v1/rules", "good", ""); code != 200 || strings.Contains(string(b), "uuid") {
		t.Errorf("rules after anonymous writes: %d %s", code, b)
	}
	if code, _, b := e.do(t, "GET", e.api+"/images/v2/images", "good", ""); code != 200 || strings.Contains(string(b), "evil") {
		t.Errorf("images after anonymous writes: %d %s", code, b)
	}
}

// TestMetricsLabelsBounded (issue 17 finding 5): 1,000 requests with
// made-up methods, with and without credentials, do not grow /metrics.
func TestMetricsLabelsBounded(t *testing.T) {
	e := startConductor(t, bcrypt.MinCost, nil)
	scrape := func() int {
		code, _, b := e.do(t, "GET", e.api+"/metrics", "good", "")
		if code != 200 {
			t.Fatalf("/metrics: %d %s", code, b)
		}
		return strings.Count(string(b), "ferric_api_request")
	}
	// Warm up the label sets a legitimate client makes.
	for _, m := range []string{"GET", "FOO0"} {
		for _, creds := range []string{"", "good"} {
			e.do(t, m, e.api+"/v1/nodes", creds, "")
			e.do(t, m, e.api+"/v1/nodes/x-"+m, creds, "")
		}
	}
	scrape() // the scrape itself is a series
	before := scrape()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 1000; i += 4 {
				creds := ""
				if i%2 == 0 {
					creds = "good"
				}
				e.do(t, fmt.Sprintf("M%dX", i), fmt.Sprintf("%s/v1/nodes/n%d", e.api, i), creds, "")
			}
		}()
	}
	wg.Wait()
	if after := scrape(); after != before {
		t.Errorf("/metrics series lines grew from %d to %d after 1,000 made-up methods", before, after)
	}
}

// clientFrom is an HTTP client whose connections come from 127.0.0.<ip>
// (all of 127/8 is loopback), another source address for the server.
func clientFrom(ip byte) *http.Client {
	src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, ip)}
	return &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: src}).DialContext}}
}

// median returns the median duration of n runs of f.
func median(n int, f func()) time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		start := time.Now()
		f()
		ds[i] = time.Since(start)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[n/2]
}

// bcryptTime is how long one bcrypt check of the given cost takes here.
func bcryptTime(t *testing.T, cost int) time.Duration {
	hash, err := bcrypt.GenerateFromPassword([]byte("x"), cost)
	if err != nil {
		t.Fatal(err)
	}
	return median(3, func() { _ = bcrypt.CompareHashAndPassword(hash, []byte("y")) })
}

// TestCredentialCostsOnce (issue 17 finding 8): with a bcrypt cost of 12,
// 30 authenticated requests of one client take far less than 30 bcrypt
// checks: the verified credential is cached.
func TestCredentialCostsOnce(t *testing.T) {
	const cost = 12
	e := startConductor(t, cost, nil)
	one := bcryptTime(t, cost)
	e.do(t, "GET", e.api+"/v1/nodes", "good", "", "X-OpenStack-Ironic-API-Version", "1.78")
	start := time.Now()
	for i := 0; i < 30; i++ {
		if code, _, b := e.do(t, "GET", e.api+"/v1/nodes", "good", "", "X-OpenStack-Ironic-API-Version", "1.78"); code != 200 {
			t.Fatalf("GET /v1/nodes: %d %s", code, b)
		}
	}
	took := time.Since(start)
	t.Logf("30 authenticated GETs: %v (one bcrypt check: %v)", took, one)
	if took > 10*one {
		t.Errorf("30 authenticated GETs took %v, over 10 bcrypt checks (%v each): credentials are not cached", took, one)
	}
}

// TestUnknownUserTakesAsLong (issue 17 finding 8): a user not in the
// htpasswd file is refused in about the time of a wrong password, so
// answers do not tell which users exist.
func TestUnknownUserTakesAsLong(t *testing.T) {
	const cost = 10
	e := startConductor(t, cost, nil)
	src := byte(10)
	get := func(user string) func() {
		return func() {
			// Each attempt from its own loopback address, under the
			// failure limit.
			src++
			c := clientFrom(src)
			req, _ := http.NewRequest("GET", e.api+"/v1/nodes", nil)
			req.SetBasicAuth(user, "wrong")
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized {
				t.Errorf("status %d", res.StatusCode)
			}
		}
	}
	known := median(5, get(e.user))
	unknown := median(5, get("nobody"))
	one := bcryptTime(t, cost)
	t.Logf("wrong password %v, unknown user %v, one bcrypt %v", known, unknown, one)
	if unknown*3 < known {
		t.Errorf("unknown user answered in %v, a known user's wrong password in %v (bcrypt %v): user names can be probed", unknown, known, one)
	}
}

// TestFailedAttemptsLimited (issue 17 finding 8): repeated wrong passwords
// from one source are answered 429 with Retry-After, while the right
// credentials, once verified, still pass.
func TestFailedAttemptsLimited(t *testing.T) {
	e := startConductor(t, bcrypt.MinCost, nil)
	if code, _, b := e.do(t, "GET", e.api+"/v1/nodes", "good", ""); code != 200 {
		t.Fatalf("good credentials: %d %s", code, b)
	}
	limited := 0
	var retry string
	for i := 0; i < 30; i++ {
		code, h, _ := e.do(t, "GET", e.api+"/v1/nodes", fmt.Sprintf("guess%d", i), "")
		switch code {
		case http.StatusTooManyRequests:
			limited++
			retry = h.Get("Retry-After")
		case http.StatusUnauthorized:
		default:
			t.Fatalf("wrong password %d answered %d", i, code)
		}
	}
	if limited == 0 {
		t.Fatalf("30 wrong passwords in a row were never answered 429")
	}
	if retry == "" {
		t.Errorf("429 without Retry-After")
	}
	// The inspector shares the limiter: the source is limited there too.
	if code, _, _ := e.do(t, "GET", e.inspector+"/v1/rules", "guess-again", ""); code != http.StatusTooManyRequests {
		t.Errorf("inspector after 30 failures: %d, want 429", code)
	}
	if code, _, b := e.do(t, "GET", e.api+"/v1/nodes", "good", ""); code != 200 {
		t.Errorf("verified credentials while the source is limited: %d %s", code, b)
	}
}

// TestAuthLoadFigures measures, on loopback with bcrypt cost 10,
// authenticated GETs per second (4 clients) and the p50 of a legitimate
// GET alone and under a wrong-password flood from 16 clients. It prints
// figures and asserts nothing about them; run it with
// FERRIC_AUTH_FIGURES=1.
func TestAuthLoadFigures(t *testing.T) {
	if os.Getenv("FERRIC_AUTH_FIGURES") == "" {
		t.Skip("set FERRIC_AUTH_FIGURES=1 to measure")
	}
	e := startConductor(t, 10, nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	get := func(user, pass string) int {
		req, _ := http.NewRequest("GET", e.api+"/v1/nodes", nil)
		req.Header.Set("X-OpenStack-Ironic-API-Version", "1.78")
		req.SetBasicAuth(user, pass)
		res, err := client.Do(req)
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	// Requests per second, 4 clients, 3 s.
	var mu sync.Mutex
	n, codes := 0, map[int]int{}
	stop := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				c := get(e.user, e.pass)
				mu.Lock()
				n++
				codes[c]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("authenticated GET /v1/nodes, 4 clients, 3 s: %d requests, %.0f req/s, codes %v", n, float64(n)/3, codes)
	p50 := func(k int) (time.Duration, map[int]int) {
		cs := map[int]int{}
		d := median(k, func() { cs[get(e.user, e.pass)]++ })
		return d, cs
	}
	alone, cs := p50(21)
	t.Logf("legitimate GET p50 alone: %v (codes %v)", alone, cs)
	// The flood: 16 clients, each from its own loopback address
	// (127.0.0.2-17), sending wrong passwords as fast as answered.
	flood := make(chan struct{})
	var fl sync.WaitGroup
	fcodes := make([]map[int]int, 16)
	for w := 0; w < 16; w++ {
		fl.Add(1)
		fcodes[w] = map[int]int{}
		fc := clientFrom(byte(2 + w))
		go func() {
			defer fl.Done()
			for i := 0; ; i++ {
				select {
				case <-flood:
					return
				default:
				}
				req, _ := http.NewRequest("GET", e.api+"/v1/nodes", nil)
				req.SetBasicAuth(e.user, fmt.Sprintf("wrong%d", i))
				code := 0
				if res, err := fc.Do(req); err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					code = res.StatusCode
				}
				fcodes[w][code]++
			}
		}()
	}
	time.Sleep(6 * time.Second)
	cs = map[int]int{}
	under := median(21, func() { cs[get(e.user, e.pass)]++; time.Sleep(50 * time.Millisecond) }) - 50*time.Millisecond
	close(flood)
	fl.Wait()
	all := map[int]int{}
	for _, m := range fcodes {
		for k, v := range m {
			all[k] += v
		}
	}
	t.Logf("legitimate GET p50 under a 16-client wrong-password flood: %v (codes %v); flood answers %v", under, cs, all)
}

// TestPublicFilesRateLimited: what is served without credentials (boot
// files, image downloads) is limited per client address (429 with
// Retry-After past the burst); the authenticated API is not.
func TestPublicFilesRateLimited(t *testing.T) {
	e := startConductor(t, bcrypt.MinCost, func(c *Config) { c.PublicRate, c.PublicBurst = 0.5, 5 })
	var codes []int
	for i := 0; i < 7; i++ {
		path := "/boot/boot.ipxe"
		if i%2 == 1 {
			path = "/images/cache/no-such-key"
		}
		code, h, _ := e.do(t, "GET", e.api+path, "", "")
		codes = append(codes, code)
		if code == http.StatusTooManyRequests && h.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
	}
	for i, c := range codes {
		if limited := c == http.StatusTooManyRequests; limited != (i >= 5) {
			t.Errorf("public GETs answered %v: want the 6th and 7th 429, the first 5 served", codes)
			break
		}
	}
	// An image read by id is public and limited; the source is past its
	// rate.
	if code, _, b := e.do(t, "GET", e.api+"/images/v2/images/0b6b5b8e-9f0e-4a3e-9d7c-2f1d8c1e6a11", "", ""); code != http.StatusTooManyRequests {
		t.Errorf("public image read past the rate: %d %s", code, b)
	}
	// What needs credentials is not limited.
	for i := 0; i < 10; i++ {
		for _, path := range []string{"/v1/nodes", "/images/v2/images"} {
			if code, _, b := e.do(t, "GET", e.api+path, "good", ""); code != 200 {
				t.Fatalf("authenticated GET %s %d: %d %s", path, i, code, b)
			}
		}
	}
}
