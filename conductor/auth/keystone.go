package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Keystone authentication (--auth keystone): every request but the public
// ones carries a Keystone token in X-Auth-Token, which is validated with
// Keystone's identity API (GET /v3/auth/tokens, the service's own token in
// X-Auth-Token and the user's in X-Subject-Token), as Ironic's
// keystonemiddleware does. Validations, valid and invalid, are cached for
// a bounded time (at most the token's own expiry), so a client reusing a
// token costs Keystone one validation per CacheTTL; a token revoked in
// Keystone is thus refused at the latest CacheTTL later, as with
// keystonemiddleware's token_cache_time.

// Defaults of KeystoneConfig.
const (
	DefaultKeystoneCacheTTL  = 5 * time.Minute // keystonemiddleware's token_cache_time
	DefaultKeystoneCacheSize = 10000
	keystoneTimeout          = 30 * time.Second
)

// KeystoneConfig configures token validation.
type KeystoneConfig struct {
	// URL is Keystone's identity v3 endpoint, e.g.
	// http://keystone:5000/v3 (also announced to clients refused for
	// lack of a token, keystonemiddleware's www_authenticate_uri).
	URL string
	// The service user validating tokens (keystone_authtoken's
	// username, password, user_domain_name, project_name,
	// project_domain_name). Without ProjectName the token is
	// system-scoped. The user needs a role Keystone's policy lets
	// validate others' tokens (service, or admin).
	Username, Password, UserDomain string
	ProjectName, ProjectDomain     string
	// CacheTTL bounds how long a validation is reused
	// (DefaultKeystoneCacheTTL; negative: every request is validated);
	// CacheSize bounds the cache (DefaultKeystoneCacheSize).
	CacheTTL  time.Duration
	CacheSize int
	// HTTP is the client used to reach Keystone (default: one with a
	// 30 s timeout).
	HTTP *http.Client
}

// Identity is what a validated token says about its caller.
type Identity struct {
	UserID, UserName     string
	UserDomainID         string
	ProjectID, Project   string
	ProjectDomainID      string
	DomainID             string // domain scope
	System               bool   // system scope ("all")
	Roles                []string
	ExpiresAt            time.Time
	AuditIDs             []string
	IsServiceCredentials bool
}

// HasRole reports whether the token carries role.
func (id *Identity) HasRole(role string) bool {
	for _, r := range id.Roles {
		if r == role {
			return true
		}
	}
	return false
}

type identityKey struct{}

// WithIdentity returns ctx carrying the caller's identity.
func WithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom is the caller's identity under keystone auth (nil under
// noauth and http_basic).
func IdentityFrom(ctx context.Context) *Identity {
	id, _ := ctx.Value(identityKey{}).(*Identity)
	return id
}

// ErrInvalidToken is a token Keystone does not accept (unknown, expired,
// revoked).
var ErrInvalidToken = errors.New("auth: invalid token")

// Keystone validates tokens with a Keystone identity service.
type Keystone struct {
	cfg  KeystoneConfig
	http *http.Client

	mu       sync.Mutex
	svcToken string
	svcExp   time.Time
	cache    map[[32]byte]tokenEntry

	// validations counts the validations asked of Keystone.
	validations atomic.Int64
	now         func() time.Time
}

type tokenEntry struct {
	id  *Identity // nil: invalid
	exp time.Time
}

// NewKeystone checks cfg and returns the validator; it reaches Keystone
// only when the first token is validated.
func NewKeystone(cfg KeystoneConfig) (*Keystone, error) {
	if cfg.URL == "" || cfg.Username == "" || cfg.Password == "" {
		return nil, errors.New("auth: keystone needs the identity URL and a service user and password")
	}
	cfg.URL = strings.TrimRight(cfg.URL, "/")
	if cfg.UserDomain == "" {
		cfg.UserDomain = "Default"
	}
	if cfg.ProjectDomain == "" {
		cfg.ProjectDomain = "Default"
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultKeystoneCacheTTL
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultKeystoneCacheSize
	}
	hc := cfg.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: keystoneTimeout}
	}
	return &Keystone{cfg: cfg, http: hc, cache: map[[32]byte]tokenEntry{}, now: time.Now}, nil
}

// URL is the identity endpoint clients are sent to.
func (k *Keystone) URL() string { return k.cfg.URL }

// Validations is the number of validations asked of Keystone so far.
func (k *Keystone) Validations() int64 { return k.validations.Load() }

// Validate returns the identity of token, from the cache or from
// Keystone; ErrInvalidToken when Keystone refuses it, another error when
// Keystone cannot be asked.
func (k *Keystone) Validate(ctx context.Context, token string) (*Identity, error) {
	key := sha256.Sum256([]byte(token))
	now := k.now()
	k.mu.Lock()
	if e, ok := k.cache[key]; ok {
		if now.Before(e.exp) {
			k.mu.Unlock()
			if e.id == nil {
				return nil, ErrInvalidToken
			}
			return e.id, nil
		}
		delete(k.cache, key)
	}
	k.mu.Unlock()
	id, err := k.validate(ctx, token)
	if err != nil && !errors.Is(err, ErrInvalidToken) {
		return nil, err
	}
	if k.cfg.CacheTTL > 0 {
		exp := now.Add(k.cfg.CacheTTL)
		if id != nil && id.ExpiresAt.Before(exp) {
			exp = id.ExpiresAt
		}
		k.mu.Lock()
		k.remember(key, tokenEntry{id: id, exp: exp}, now)
		k.mu.Unlock()
	}
	return id, err
}

// remember caches an entry, evicting expired ones (then arbitrary ones)
// when full; k.mu is held.
func (k *Keystone) remember(key [32]byte, e tokenEntry, now time.Time) {
	if len(k.cache) >= k.cfg.CacheSize {
		for x, old := range k.cache {
			if !now.Before(old.exp) {
				delete(k.cache, x)
			}
		}
		for x := range k.cache {
			if len(k.cache) < k.cfg.CacheSize*3/4+1 {
				break
			}
			delete(k.cache, x)
		}
	}
	k.cache[key] = e
}

// validate asks Keystone, getting (or renewing once, if Keystone no
// longer accepts it) the service token first.
func (k *Keystone) validate(ctx context.Context, token string) (*Identity, error) {
	for attempt := 0; ; attempt++ {
		svc, err := k.serviceToken(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		k.validations.Add(1)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.cfg.URL+"/auth/tokens", nil)
		if err != nil {
			return nil, fmt.Errorf("auth: keystone: %w", err)
		}
		req.Header.Set("X-Auth-Token", svc)
		req.Header.Set("X-Subject-Token", token)
		req.Header.Set("Accept", "application/json")
		res, err := k.http.Do(req)
		if err != nil {
			return nil, fmt.Errorf("auth: keystone: %w", err)
		}
		body, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
		res.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("auth: keystone: %w", err)
		}
		switch {
		case res.StatusCode == http.StatusOK:
			return parseToken(body)
		case res.StatusCode == http.StatusNotFound:
			return nil, ErrInvalidToken
		case res.StatusCode == http.StatusUnauthorized && attempt == 0:
			continue // the service token expired or was revoked: renew it
		default:
			return nil, fmt.Errorf("auth: keystone: validating a token: %s: %s", res.Status, truncate(string(body), 200))
		}
	}
}

// serviceToken returns the service's own token, asking Keystone for a new
// one when there is none, it expires within a minute, or renew is set.
func (k *Keystone) serviceToken(ctx context.Context, renew bool) (string, error) {
	k.mu.Lock()
	if !renew && k.svcToken != "" && k.now().Add(time.Minute).Before(k.svcExp) {
		t := k.svcToken
		k.mu.Unlock()
		return t, nil
	}
	k.mu.Unlock()
	scope := map[string]any{"system": map[string]any{"all": true}}
	if k.cfg.ProjectName != "" {
		scope = map[string]any{"project": map[string]any{"name": k.cfg.ProjectName,
			"domain": map[string]any{"name": k.cfg.ProjectDomain}}}
	}
	body, _ := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": k.cfg.Username, "password": k.cfg.Password,
				"domain": map[string]any{"name": k.cfg.UserDomain}}}},
		"scope": scope}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.cfg.URL+"/auth/tokens?nocatalog", bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("auth: keystone: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := k.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("auth: keystone: service token: %w", err)
	}
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("auth: keystone: service token for %s: %s: %s", k.cfg.Username, res.Status, truncate(string(raw), 200))
	}
	id, err := parseToken(raw)
	if err != nil {
		return "", err
	}
	t := res.Header.Get("X-Subject-Token")
	k.mu.Lock()
	k.svcToken, k.svcExp = t, id.ExpiresAt
	k.mu.Unlock()
	return t, nil
}

// parseToken reads Keystone's token document.
func parseToken(raw []byte) (*Identity, error) {
	var doc struct {
		Token struct {
			ExpiresAt string   `json:"expires_at"`
			AuditIDs  []string `json:"audit_ids"`
			User      struct {
				ID, Name string
				Domain   struct{ ID string }
			}
			Project *struct {
				ID, Name string
				Domain   struct{ ID string }
			}
			Domain *struct{ ID string }
			System map[string]any
			Roles  []struct{ Name string }
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("auth: keystone: token document: %w", err)
	}
	t := doc.Token
	exp, err := time.Parse(time.RFC3339Nano, t.ExpiresAt)
	if err != nil {
		return nil, fmt.Errorf("auth: keystone: token expires_at %q: %w", t.ExpiresAt, err)
	}
	id := &Identity{UserID: t.User.ID, UserName: t.User.Name, UserDomainID: t.User.Domain.ID,
		ExpiresAt: exp, AuditIDs: t.AuditIDs, System: t.System["all"] == true}
	if t.Project != nil {
		id.ProjectID, id.Project, id.ProjectDomainID = t.Project.ID, t.Project.Name, t.Project.Domain.ID
	}
	if t.Domain != nil {
		id.DomainID = t.Domain.ID
	}
	for _, r := range t.Roles {
		id.Roles = append(id.Roles, r.Name)
	}
	return id, nil
}

// Messages of keystone refusals (keystonemiddleware's).
const (
	MsgTokenRequired = "The request you have made requires authentication."
)

// NewKeystoneAuthenticator returns an Authenticator whose Wrap checks
// Keystone tokens with k instead of basic credentials.
func NewKeystoneAuthenticator(k *Keystone, log *slog.Logger) *Authenticator {
	if log == nil {
		log = slog.Default()
	}
	return &Authenticator{cfg: Config{FreeFails: DefaultFreeFails, Backoff: DefaultBackoff,
		MaxBackoff: DefaultMaxBackoff, FailMemory: DefaultFailMemory, Log: log},
		log: log, keystone: k, fails: map[string]*failure{}, now: time.Now}
}

// wrapKeystone is Wrap under keystone auth: a missing or refused token is
// answered 401 with Keystone's address in WWW-Authenticate; a source
// sending bad tokens again and again is limited as with wrong passwords.
func (a *Authenticator) wrapKeystone(next http.Handler, public Rules, deny DenyFunc) http.Handler {
	challenge := `Keystone uri="` + a.keystone.URL() + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if public.Match(r) {
			next.ServeHTTP(w, r)
			return
		}
		token := r.Header.Get("X-Auth-Token")
		if token == "" {
			w.Header().Set("WWW-Authenticate", challenge)
			deny(w, r, http.StatusUnauthorized, MsgTokenRequired)
			return
		}
		source := Source(r)
		now := a.now()
		a.mu.Lock()
		if f := a.fails[source]; f != nil && now.Before(f.until) {
			wait := f.until.Sub(now)
			a.mu.Unlock()
			w.Header().Set("Retry-After", fmt.Sprint(int((wait+time.Second-1)/time.Second)))
			deny(w, r, http.StatusTooManyRequests, MsgLimited)
			return
		}
		a.mu.Unlock()
		id, err := a.keystone.Validate(r.Context(), token)
		switch {
		case err == nil:
			next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
		case errors.Is(err, ErrInvalidToken):
			a.mu.Lock()
			a.fail(source, a.now())
			a.mu.Unlock()
			a.log.Warn("auth: token refused", "source", ClientAddr(r), "method", truncate(r.Method, 16), "path", truncate(r.URL.Path, 128))
			w.Header().Set("WWW-Authenticate", challenge)
			deny(w, r, http.StatusUnauthorized, MsgTokenRequired)
		default:
			a.log.Error("auth: cannot validate a token", "err", err)
			deny(w, r, http.StatusServiceUnavailable, "Failed to validate the token with Keystone")
		}
	})
}
