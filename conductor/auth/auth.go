// Package auth authenticates the requests of every conductor listener (the
// Ironic API, the inspector API, the image store, /metrics) with HTTP basic
// credentials checked against an htpasswd file of bcrypt hashes, as
// Ironic's and ironic-inspector's http_basic auth strategy does, or with
// Keystone tokens validated by a Keystone identity service (keystone.go),
// as their keystone strategy does.
//
// It is plain net/http middleware. Each listener wraps its whole handler
// with Wrap and a Policy naming the few routes it serves without
// credentials; every other route, including any added later, needs them.
//
// Checking a password costs one bcrypt comparison (tens of milliseconds at
// cost 10), so the Authenticator
//   - caches verified credentials in memory for a short time (keyed by a
//     hash of user and password), so a client pays bcrypt once, not per
//     request;
//   - compares an unknown user's password against a dummy hash of the same
//     cost, so answers take as long whether the user exists or not;
//   - limits failed attempts per client address with an exponential
//     backoff, answered 429 with Retry-After;
//   - runs few bcrypt comparisons at a time, so a flood of wrong passwords
//     cannot take every core from the requests it serves.
package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Defaults of Config.
const (
	DefaultCacheTTL    = 5 * time.Minute
	DefaultCacheSize   = 4096
	DefaultFreeFails   = 5
	DefaultBackoff     = time.Second
	DefaultMaxBackoff  = 5 * time.Minute
	DefaultFailMemory  = 15 * time.Minute
	defaultReloadCheck = 2 * time.Second
	maxTrackedSources  = 65536
)

// Config configures an Authenticator.
type Config struct {
	// Htpasswd is the file of user:bcrypt-hash lines (htpasswd -B). It is
	// read again when it changes; the credential cache is then emptied.
	Htpasswd string
	// CacheTTL is how long a verified credential is trusted without
	// bcrypt (DefaultCacheTTL; negative: not cached); CacheSize bounds
	// the cache (DefaultCacheSize).
	CacheTTL  time.Duration
	CacheSize int
	// FreeFails is how many failed attempts a client address makes before
	// it must wait (DefaultFreeFails); each further failure doubles the
	// wait, from Backoff up to MaxBackoff. A source's failures are
	// forgotten after FailMemory without one.
	FreeFails           int
	Backoff, MaxBackoff time.Duration
	FailMemory          time.Duration
	// Concurrency bounds the bcrypt comparisons run at once (default:
	// half the CPUs, at least 1); at most 32 times as many wait, others
	// are answered Limited at once.
	Concurrency int
	Log         *slog.Logger
}

// Authenticator checks basic credentials. A nil *Authenticator is noauth:
// Wrap returns the handler unchanged.
type Authenticator struct {
	cfg Config
	log *slog.Logger
	sem chan struct{}

	mu        sync.Mutex
	users     map[string][]byte
	dummy     []byte
	fileStamp fileStamp
	checkedAt time.Time
	cache     map[[32]byte]time.Time
	fails     map[string]*failure
	// keystone, when set, validates Keystone tokens instead of basic
	// credentials (--auth keystone).
	keystone *Keystone

	// bcrypts counts bcrypt comparisons (tests and logs); waiting the
	// checks queued for a bcrypt slot.
	bcrypts atomic.Int64
	waiting atomic.Int64
	now     func() time.Time
}

type fileStamp struct {
	mod  time.Time
	size int64
}

type failure struct {
	count int
	last  time.Time
	until time.Time
}

// New loads cfg.Htpasswd and returns the Authenticator.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Htpasswd == "" {
		return nil, errors.New("auth: http_basic needs an htpasswd file")
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.FreeFails <= 0 {
		cfg.FreeFails = DefaultFreeFails
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.FailMemory <= 0 {
		cfg.FailMemory = DefaultFailMemory
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = max(1, runtime.NumCPU()/2)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	a := &Authenticator{cfg: cfg, log: cfg.Log, sem: make(chan struct{}, cfg.Concurrency),
		cache: map[[32]byte]time.Time{}, fails: map[string]*failure{}, now: time.Now}
	if err := a.load(); err != nil {
		return nil, err
	}
	return a, nil
}

// LoadHtpasswd reads an htpasswd file of bcrypt hashes (htpasswd -B).
func LoadHtpasswd(file string) (map[string][]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("auth: htpasswd: %w", err)
	}
	defer f.Close()
	users := map[string][]byte{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(hash, "$2") {
			return nil, fmt.Errorf("auth: htpasswd %s: only bcrypt entries are supported (user %q)", file, user)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("auth: htpasswd %s: user %q: %w", file, user, err)
		}
		users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("auth: htpasswd %s: %w", file, err)
	}
	return users, nil
}

// load (re)reads the htpasswd file; the caller need not hold a.mu.
func (a *Authenticator) load() error {
	st, err := os.Stat(a.cfg.Htpasswd)
	if err != nil {
		return fmt.Errorf("auth: htpasswd: %w", err)
	}
	users, err := LoadHtpasswd(a.cfg.Htpasswd)
	if err != nil {
		return err
	}
	// The dummy hash for unknown users costs as much as the most costly
	// real one, so a refusal takes as long either way.
	cost := 0
	for _, h := range users {
		if c, _ := bcrypt.Cost(h); c > cost {
			cost = c
		}
	}
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	a.mu.Lock()
	same := a.dummy != nil && dummyCost(a.dummy) == cost
	a.mu.Unlock()
	var dummy []byte
	if !same {
		if dummy, err = bcrypt.GenerateFromPassword([]byte("ferric-no-such-user"), cost); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.users = users
	if dummy != nil {
		a.dummy = dummy
	}
	a.fileStamp = fileStamp{st.ModTime(), st.Size()}
	a.checkedAt = a.now()
	clear(a.cache)
	return nil
}

func dummyCost(h []byte) int { c, _ := bcrypt.Cost(h); return c }

// reloadIfChanged rereads the file at most every few seconds when its
// size or time changed. A bad new file keeps the old users.
func (a *Authenticator) reloadIfChanged() {
	a.mu.Lock()
	if a.now().Sub(a.checkedAt) < defaultReloadCheck {
		a.mu.Unlock()
		return
	}
	a.checkedAt = a.now()
	old := a.fileStamp
	a.mu.Unlock()
	st, err := os.Stat(a.cfg.Htpasswd)
	if err != nil || (st.ModTime().Equal(old.mod) && st.Size() == old.size) {
		return
	}
	if err := a.load(); err != nil {
		a.log.Error("auth: htpasswd changed but cannot be used; keeping the previous users", "err", err)
		return
	}
	a.log.Info("auth: htpasswd reloaded", "file", a.cfg.Htpasswd)
}

// Result is the outcome of a check.
type Result int

// Results of Check.
const (
	OK Result = iota
	// Denied: no or wrong credentials (401).
	Denied
	// Limited: too many failures from this source; retry later (429).
	Limited
)

// busyWait is the Retry-After of a check refused because too many wait
// for bcrypt.
const busyWait = time.Second

// Check verifies user and password for a request from source (a client
// address). When the result is Limited, wait is how long the source must
// wait. A check waiting for bcrypt ends with ctx (Denied, not counted as
// a failure).
func (a *Authenticator) Check(ctx context.Context, source, user, pass string) (res Result, wait time.Duration) {
	a.reloadIfChanged()
	key := credKey(user, pass)
	now := a.now()
	a.mu.Lock()
	if exp, ok := a.cache[key]; ok {
		if now.Before(exp) {
			a.mu.Unlock()
			return OK, 0
		}
		delete(a.cache, key)
	}
	if f := a.fails[source]; f != nil && now.Before(f.until) {
		a.mu.Unlock()
		return Limited, f.until.Sub(now)
	}
	hash, known := a.users[user]
	if !known {
		hash = a.dummy
	}
	a.mu.Unlock()

	if a.waiting.Add(1) > int64(32*cap(a.sem)) {
		a.waiting.Add(-1)
		return Limited, busyWait
	}
	select {
	case a.sem <- struct{}{}:
		a.waiting.Add(-1)
	case <-ctx.Done():
		a.waiting.Add(-1)
		return Denied, 0
	}
	err := bcrypt.CompareHashAndPassword(hash, []byte(pass))
	<-a.sem
	a.bcrypts.Add(1)

	now = a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil && known {
		a.remember(key, now)
		delete(a.fails, source)
		return OK, 0
	}
	return Denied, a.fail(source, now)
}

// remember caches a verified credential; a.mu is held.
func (a *Authenticator) remember(key [32]byte, now time.Time) {
	if len(a.cache) >= a.cfg.CacheSize {
		for k, exp := range a.cache {
			if !now.Before(exp) {
				delete(a.cache, k)
			}
		}
		// Still full: drop entries at random (map order) down to 3/4.
		for k := range a.cache {
			if len(a.cache) < a.cfg.CacheSize*3/4+1 {
				break
			}
			delete(a.cache, k)
		}
	}
	a.cache[key] = now.Add(a.cfg.CacheTTL)
}

// fail records a failed attempt from source and returns how long it must
// now wait (0 for its first FreeFails-1 failures); a.mu is held.
func (a *Authenticator) fail(source string, now time.Time) time.Duration {
	f := a.fails[source]
	if f == nil || now.Sub(f.last) > a.cfg.FailMemory {
		if len(a.fails) >= maxTrackedSources {
			a.forgetOldFailures(now)
		}
		f = &failure{}
		a.fails[source] = f
	}
	f.count++
	f.last = now
	over := f.count - a.cfg.FreeFails + 1
	if over <= 0 {
		return 0
	}
	wait := a.cfg.MaxBackoff
	if over < 32 {
		if d := a.cfg.Backoff << (over - 1); d > 0 && d < wait {
			wait = d
		}
	}
	f.until = now.Add(wait)
	return wait
}

// forgetOldFailures bounds the failure table; a.mu is held.
func (a *Authenticator) forgetOldFailures(now time.Time) {
	for k, f := range a.fails {
		if now.Sub(f.last) > a.cfg.FailMemory || len(a.fails) >= maxTrackedSources {
			delete(a.fails, k)
		}
	}
}

// credKey is the cache key of a credential: its password never stays in
// memory in the clear.
func credKey(user, pass string) [32]byte {
	h := sha256.New()
	h.Write([]byte(user))
	h.Write([]byte{0})
	h.Write([]byte(pass))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// BcryptChecks is the number of bcrypt comparisons made so far.
func (a *Authenticator) BcryptChecks() int64 { return a.bcrypts.Load() }

// Rule names requests served without credentials: a method (empty: any)
// and a regular expression the whole request path must match (a trailing
// slash is ignored, as Ironic does).
type Rule struct {
	Methods []string
	Path    string
}

// Messages of the refusals (Ironic's for 401).
const (
	MsgNoCredentials    = "Authorization required"
	MsgWrongCredentials = "Incorrect username or password"
	MsgLimited          = "Too many failed authentication attempts, retry later"
)

// DenyFunc writes a refusal in the listener's error format: status is 401
// or 429, msg a short reason. Wrap has set WWW-Authenticate or
// Retry-After already.
type DenyFunc func(w http.ResponseWriter, r *http.Request, status int, msg string)

// Policy is how one listener is authenticated.
type Policy struct {
	// Realm of the WWW-Authenticate challenge.
	Realm string
	// Public lists the requests served without credentials.
	Public []Rule
	// Deny renders refusals; nil writes a JSON {"error": {"message"}}.
	Deny DenyFunc
}

// Wrap authenticates every request to next except those p.Public names.
// With a nil Authenticator (noauth) it returns next.
func (a *Authenticator) Wrap(next http.Handler, p Policy) http.Handler {
	if a == nil {
		return next
	}
	public := Compile(p.Public)
	deny := p.Deny
	if deny == nil {
		deny = DefaultDeny
	}
	if a.keystone != nil {
		return a.wrapKeystone(next, public, deny)
	}
	realm := p.Realm
	if realm == "" {
		realm = "ferric"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if public.Match(r) {
			next.ServeHTTP(w, r)
			return
		}
		user, pass, ok := r.BasicAuth()
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
			deny(w, r, http.StatusUnauthorized, MsgNoCredentials)
			return
		}
		switch res, wait := a.Check(r.Context(), Source(r), user, pass); res {
		case OK:
			next.ServeHTTP(w, r)
		case Limited:
			w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
			deny(w, r, http.StatusTooManyRequests, MsgLimited)
		default:
			a.log.Warn("auth: credentials refused", "user", truncate(user, 64), "source", ClientAddr(r),
				"method", truncate(r.Method, 16), "path", truncate(r.URL.Path, 128))
			w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
			deny(w, r, http.StatusUnauthorized, MsgWrongCredentials)
		}
	})
}

// DefaultDeny writes {"error": {"message": msg, "code": status}}.
func DefaultDeny(w http.ResponseWriter, _ *http.Request, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"error": {"message": %q, "code": %d}}`, msg, status)
	_, _ = w.Write(b.Bytes())
}

type rule struct {
	methods []string
	re      *regexp.Regexp
}

// Rules are compiled Rule values.
type Rules []rule

// Compile compiles rules (their paths must be valid regular expressions).
func Compile(rs []Rule) Rules {
	out := make(Rules, 0, len(rs))
	for _, r := range rs {
		out = append(out, rule{methods: r.Methods, re: regexp.MustCompile("^(?:" + r.Path + ")$")})
	}
	return out
}

// Match reports whether a rule names r. Paths with dot segments or empty
// segments match none, so a public prefix cannot reach elsewhere.
func (rs Rules) Match(r *http.Request) bool {
	p := r.URL.Path
	if p != "/" {
		p = strings.TrimSuffix(p, "/")
	}
	if p == "" || path.Clean(p) != p {
		return false
	}
	for _, x := range rs {
		if len(x.methods) > 0 && !contains(x.methods, r.Method) {
			continue
		}
		if x.re.MatchString(p) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ClientAddr is the request's source IP address (without the port).
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Source is the key limits count a request's attempts under: its IPv4
// address, or the /64 of its IPv6 address (one host usually holds a
// whole /64, so limiting single IPv6 addresses would not limit it).
func Source(r *http.Request) string {
	host := ClientAddr(r)
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() != nil {
		return host
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
