package auth

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func quiet() *slog.Logger            { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
func hash(t *testing.T, p string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func htpasswd(t *testing.T, lines ...string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(f, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

var ctx = context.Background()

func newAuth(t *testing.T, cfg Config) (*Authenticator, *clock) {
	t.Helper()
	cfg.Log = quiet()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	a.now = c.now
	a.checkedAt = c.now()
	return a, c
}

// TestCredentialCache: a verified credential costs one bcrypt check until
// its TTL ends; a wrong password is never cached.
func TestCredentialCache(t *testing.T) {
	a, c := newAuth(t, Config{Htpasswd: htpasswd(t, "admin:"+hash(t, "pw")), CacheTTL: time.Minute})
	for i := 0; i < 50; i++ {
		if res, _ := a.Check(ctx, "10.0.0.1", "admin", "pw"); res != OK {
			t.Fatalf("check %d: %v", i, res)
		}
	}
	if n := a.BcryptChecks(); n != 1 {
		t.Errorf("50 checks of one credential ran bcrypt %d times, want 1", n)
	}
	// Another client with the same credential hits the cache too.
	a.Check(ctx, "10.0.0.2", "admin", "pw")
	if n := a.BcryptChecks(); n != 1 {
		t.Errorf("bcrypt ran %d times", n)
	}
	c.add(time.Minute + time.Second)
	a.Check(ctx, "10.0.0.1", "admin", "pw")
	if n := a.BcryptChecks(); n != 2 {
		t.Errorf("after the TTL bcrypt ran %d times in all, want 2", n)
	}
	for i := 0; i < 3; i++ {
		if res, _ := a.Check(ctx, "10.0.0.3", "admin", "wrong"); res != Denied {
			t.Errorf("wrong password: %v", res)
		}
	}
	if n := a.BcryptChecks(); n != 5 {
		t.Errorf("wrong passwords ran bcrypt %d times in all, want 5 (never cached)", n)
	}
}

// TestCacheBounded: the cache never holds more than CacheSize entries.
func TestCacheBounded(t *testing.T) {
	var lines []string
	for i := 0; i < 40; i++ {
		lines = append(lines, fmt.Sprintf("u%d:%s", i, hash(t, "pw")))
	}
	a, _ := newAuth(t, Config{Htpasswd: htpasswd(t, lines...), CacheSize: 16})
	for i := 0; i < 40; i++ {
		if res, _ := a.Check(ctx, "10.0.0.1", fmt.Sprintf("u%d", i), "pw"); res != OK {
			t.Fatalf("u%d: %v", i, res)
		}
		if len(a.cache) > 16 {
			t.Fatalf("cache holds %d entries, limit 16", len(a.cache))
		}
	}
}

// TestUnknownUserRunsBcrypt: an unknown user's password is compared with a
// dummy hash of the real hashes' cost, so the refusal costs as much.
func TestUnknownUserRunsBcrypt(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), 8)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := newAuth(t, Config{Htpasswd: htpasswd(t, "admin:"+string(h))})
	if c, _ := bcrypt.Cost(a.dummy); c != 8 {
		t.Errorf("dummy hash cost %d, want 8", c)
	}
	if res, _ := a.Check(ctx, "10.0.0.1", "nobody", "pw"); res != Denied {
		t.Errorf("unknown user: %v", res)
	}
	if n := a.BcryptChecks(); n != 1 {
		t.Errorf("unknown user ran bcrypt %d times, want 1", n)
	}
	// The dummy hash's password is not a way in either.
	if res, _ := a.Check(ctx, "10.0.0.1", "nobody", "ferric-no-such-user"); res != Denied {
		t.Errorf("dummy password accepted: %v", res)
	}
}

// TestFailureBackoff: after FreeFails failures a source waits, doubling
// with each failure up to MaxBackoff; other sources are not affected; a
// cached credential still passes; the wait ends.
func TestFailureBackoff(t *testing.T) {
	a, c := newAuth(t, Config{Htpasswd: htpasswd(t, "admin:"+hash(t, "pw")), FreeFails: 3,
		Backoff: time.Second, MaxBackoff: 8 * time.Second})
	if res, _ := a.Check(ctx, "10.0.0.9", "admin", "pw"); res != OK {
		t.Fatal("good credential refused")
	}
	for i := 0; i < 3; i++ {
		if res, _ := a.Check(ctx, "10.0.0.1", "admin", "x"); res != Denied {
			t.Fatalf("failure %d: %v", i, res)
		}
	}
	wants := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	for i, want := range wants {
		res, wait := a.Check(ctx, "10.0.0.1", "admin", "x")
		if res != Limited || wait != want {
			t.Errorf("round %d: %v wait %v, want Limited %v", i, res, wait, want)
		}
		before := a.BcryptChecks()
		a.Check(ctx, "10.0.0.1", "admin", "pw-other")
		if a.BcryptChecks() != before {
			t.Errorf("a limited source still runs bcrypt")
		}
		// A credential verified before passes even from the limited source.
		if res, _ := a.Check(ctx, "10.0.0.1", "admin", "pw"); res != OK {
			t.Errorf("cached credential from a limited source: %v", res)
		}
		if res, _ := a.Check(ctx, "10.0.0.2", "admin", "y"); res != Denied {
			t.Errorf("another source: %v", res)
		}
		// Once the wait is over, one more failure doubles it.
		c.add(want)
		if res, _ := a.Check(ctx, "10.0.0.1", "admin", "x"); res != Denied {
			t.Fatalf("round %d after the wait: %v, want Denied", i, res)
		}
	}
	// A success forgets the failures.
	c.add(time.Hour)
	a.Check(ctx, "10.0.0.1", "admin", "x")
	if _, ok := a.fails["10.0.0.1"]; !ok {
		t.Fatal("failure not recorded")
	}
	a.cache = map[[32]byte]time.Time{}
	if res, _ := a.Check(ctx, "10.0.0.1", "admin", "pw"); res != OK {
		t.Fatal("good credential refused")
	}
	if _, ok := a.fails["10.0.0.1"]; ok {
		t.Error("failures kept after a success")
	}
}

// TestReload: a changed htpasswd file is read again and empties the
// cache; a broken one keeps the previous users.
func TestReload(t *testing.T) {
	f := htpasswd(t, "admin:"+hash(t, "pw"))
	a, c := newAuth(t, Config{Htpasswd: f})
	if res, _ := a.Check(ctx, "10.0.0.1", "admin", "pw"); res != OK {
		t.Fatal("refused")
	}
	if err := os.WriteFile(f, []byte("other:"+hash(t, "pw2")+"\n# a comment\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.add(3 * time.Second)
	if res, _ := a.Check(ctx, "10.0.0.1", "admin", "pw"); res != Denied {
		t.Errorf("removed user still accepted: %v", res)
	}
	if res, _ := a.Check(ctx, "10.0.0.1", "other", "pw2"); res != OK {
		t.Errorf("new user refused: %v", res)
	}
	if err := os.WriteFile(f, []byte("broken:$apr1$x$y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.add(3 * time.Second)
	if res, _ := a.Check(ctx, "10.0.0.1", "other", "pw2"); res != OK {
		t.Errorf("broken file dropped the users: %v", res)
	}
}

func TestLoadHtpasswdErrors(t *testing.T) {
	for name, content := range map[string]string{
		"md5":      "u:$apr1$abc$def",
		"no colon": "justaname",
		"bad cost": "u:$2y$99$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234",
	} {
		if _, err := New(Config{Htpasswd: htpasswd(t, content)}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(Config{Htpasswd: "/nonexistent"}); err == nil {
		t.Error("missing file accepted")
	}
	if _, err := New(Config{}); err == nil {
		t.Error("no file accepted")
	}
}

// TestWrap: public rules by method and path over a real socket; dot
// segments are never public; refusals carry the challenge and Retry-After.
func TestWrap(t *testing.T) {
	a, _ := newAuth(t, Config{Htpasswd: htpasswd(t, "admin:"+hash(t, "pw")), FreeFails: 2})
	a.now = time.Now
	h := a.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) }), Policy{
		Realm: "Test API",
		Public: []Rule{{Path: "/"}, {Path: "/v1"}, {Path: "/v1/heartbeat/[a-z0-9-]+"},
			{Methods: []string{"GET", "HEAD"}, Path: "/boot/.+"}},
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	cases := []struct {
		method, path, user, pass string
		code                     int
	}{
		{"GET", "/", "", "", 299},
		{"GET", "/v1", "", "", 299},
		{"GET", "/v1/", "", "", 299},
		{"POST", "/v1/heartbeat/1be26c0b-03f2-4d2e-ae87-c02d7f33c123", "", "", 299},
		{"POST", "/v1/heartbeat/UPPER", "", "", 401},
		{"POST", "/v1/heartbeat/a/b", "", "", 401},
		{"GET", "/v1/nodes", "", "", 401},
		{"GET", "/v1/nodes", "admin", "pw", 299},
		{"GET", "/v1x", "", "", 401},
		{"GET", "/boot/ipxe/script", "", "", 299},
		{"HEAD", "/boot/files/kernel", "", "", 299},
		{"PUT", "/boot/files/kernel", "", "", 401},
		{"GET", "/boot/../v1/nodes", "", "", 401},
		{"GET", "/boot/x/../../metrics", "", "", 401},
		{"GET", "/boot//x", "", "", 401},
		{"GET", "/metrics", "", "", 401},
		{"GET", "/metrics", "admin", "wrong", 401},
		{"GET", "/metrics", "admin", "wrong", 401},
		{"GET", "/metrics", "admin", "wrong", 429},
		{"GET", "/metrics", "admin", "pw", 299},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, srv.URL, nil)
		req.URL.Path = tc.path
		req.URL.RawPath = ""
		if tc.user != "" {
			req.SetBasicAuth(tc.user, tc.pass)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.code {
			t.Errorf("%s %s (user %q): %d %s, want %d", tc.method, tc.path, tc.user, res.StatusCode, body, tc.code)
		}
		switch res.StatusCode {
		case 401:
			if res.Header.Get("WWW-Authenticate") != `Basic realm="Test API"` {
				t.Errorf("%s %s: WWW-Authenticate %q", tc.method, tc.path, res.Header.Get("WWW-Authenticate"))
			}
			if !strings.Contains(string(body), `"code": 401`) {
				t.Errorf("%s %s: body %s", tc.method, tc.path, body)
			}
		case 429:
			if res.Header.Get("Retry-After") == "" {
				t.Errorf("%s %s: 429 without Retry-After", tc.method, tc.path)
			}
		}
	}
	// noauth: a nil Authenticator passes everything.
	var none *Authenticator
	if none.Wrap(h, Policy{}) == nil {
		t.Error("nil wrap")
	}
}

// TestLimiter: a burst, then the rate; per address; a nil limiter allows.
func TestLimiter(t *testing.T) {
	l := NewLimiter(2, 3)
	c := newClock()
	l.now = c.now
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("burst request %d refused", i)
		}
	}
	ok, wait := l.Allow("a")
	if ok || wait != 500*time.Millisecond {
		t.Errorf("past the burst: %v, wait %v; want refused, 500ms", ok, wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Error("another address refused")
	}
	c.add(500 * time.Millisecond)
	if ok, _ := l.Allow("a"); !ok {
		t.Error("refilled token refused")
	}
	if NewLimiter(0, 1) != nil {
		t.Error("rate 0 is not off")
	}
	var off *Limiter
	if ok, _ := off.Allow("a"); !ok {
		t.Error("nil limiter refused")
	}
	// Over a socket: 429 with Retry-After, and read-only. The limiter's
	// clock is the test's, so that a slow machine refills no token.
	sl := NewLimiter(1, 2)
	sc := newClock()
	sl.now = sc.now
	srv := httptest.NewServer(sl.Wrap(ReadOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))))
	defer srv.Close()
	var codes []int
	for _, m := range []string{"GET", "HEAD", "GET"} {
		req, _ := http.NewRequest(m, srv.URL+"/x", nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		codes = append(codes, res.StatusCode)
		if res.StatusCode == 429 && res.Header.Get("Retry-After") != "1" {
			t.Errorf("Retry-After %q", res.Header.Get("Retry-After"))
		}
	}
	if fmt.Sprint(codes) != "[200 200 429]" {
		t.Errorf("codes %v, want [200 200 429]", codes)
	}
	sc.add(time.Second)
	res, err := http.Post(srv.URL+"/x", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 405 {
		t.Errorf("POST: %d, want 405", res.StatusCode)
	}
}

// TestBcryptBounded: at most Concurrency comparisons run at once, at most
// 32 times as many wait (the rest are Limited at once), and a waiting check
// ends with its context.
func TestBcryptBounded(t *testing.T) {
	a, _ := newAuth(t, Config{Htpasswd: htpasswd(t, "admin:"+hash(t, "pw")), Concurrency: 1})
	a.sem <- struct{}{} // a comparison in progress
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan Result)
	go func() { r, _ := a.Check(cctx, "10.0.0.1", "admin", "x"); done <- r }()
	for a.waiting.Load() != 1 {
		time.Sleep(time.Millisecond)
	}
	a.waiting.Store(32) // as if 32 more were queued
	if res, wait := a.Check(ctx, "10.0.0.2", "admin", "pw"); res != Limited || wait != busyWait {
		t.Errorf("past the queue: %v %v, want Limited %v", res, wait, busyWait)
	}
	a.waiting.Store(1)
	cancel()
	if r := <-done; r != Denied {
		t.Errorf("cancelled wait: %v", r)
	}
	if a.waiting.Load() != 0 || a.BcryptChecks() != 0 {
		t.Errorf("waiting %d, bcrypts %d after the cancelled check", a.waiting.Load(), a.BcryptChecks())
	}
	if _, ok := a.fails["10.0.0.1"]; ok {
		t.Error("a cancelled check counted as a failure")
	}
	<-a.sem
	if res, _ := a.Check(ctx, "10.0.0.2", "admin", "pw"); res != OK {
		t.Errorf("free slot: %v", res)
	}
}

// BenchmarkCheck: a request's credential check at bcrypt cost 10, cached
// (every request but a client's first) and uncached (what every request
// cost before the cache).
func BenchmarkCheck(b *testing.B) {
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), 10)
	if err != nil {
		b.Fatal(err)
	}
	f := filepath.Join(b.TempDir(), "htpasswd")
	if err := os.WriteFile(f, []byte("admin:"+string(h)+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	a, err := New(Config{Htpasswd: f, Log: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cached", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if res, _ := a.Check(ctx, "10.0.0.1", "admin", "pw"); res != OK {
				b.Fatal(res)
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			a.mu.Lock()
			clear(a.cache)
			a.mu.Unlock()
			if res, _ := a.Check(ctx, "10.0.0.1", "admin", "pw"); res != OK {
				b.Fatal(res)
			}
		}
	})
}

func TestSource(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.7:4242":                 "192.0.2.7",
		"[2001:db8:1:2:aaaa::1]:4242":    "2001:db8:1:2::/64",
		"[2001:db8:1:2:bbbb:cc::9]:4243": "2001:db8:1:2::/64",
		"[::ffff:192.0.2.8]:1":           "::ffff:192.0.2.8",
		"not-an-address":                 "not-an-address",
	} {
		r := &http.Request{RemoteAddr: remote}
		if got := Source(r); got != want {
			t.Errorf("Source(%q) = %q, want %q", remote, got, want)
		}
	}
}
