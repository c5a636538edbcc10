package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeKeystone answers the two identity calls the validator makes: a
// service token by password, and the validation of subject tokens
// ("good-*" valid, anything else 404). TestKeystone (test/nova) runs the
// real Keystone.
type fakeKeystone struct {
	issued, validated atomic.Int64
	revokeService     atomic.Bool // the next validation's service token is refused
	expires           time.Time
}

func (f *fakeKeystone) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	doc := func(user string) []byte {
		b, _ := json.Marshal(map[string]any{"token": map[string]any{
			"expires_at": f.expires.UTC().Format(time.RFC3339Nano), "audit_ids": []string{"a"},
			"user":    map[string]any{"id": "u-" + user, "name": user, "domain": map[string]any{"id": "default"}},
			"project": map[string]any{"id": "p-demo", "name": "demo", "domain": map[string]any{"id": "default"}},
			"roles":   []any{map[string]any{"name": "member"}, map[string]any{"name": "reader"}}}})
		return b
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v3/auth/tokens":
		f.issued.Add(1)
		w.Header().Set("X-Subject-Token", "service-token")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(doc("ferric"))
	case r.Method == http.MethodGet && r.URL.Path == "/v3/auth/tokens":
		if r.Header.Get("X-Auth-Token") != "service-token" || f.revokeService.Swap(false) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		f.validated.Add(1)
		if !strings.HasPrefix(r.Header.Get("X-Subject-Token"), "good-") {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		_, _ = w.Write(doc("operator"))
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func TestKeystoneValidationCache(t *testing.T) {
	fk := &fakeKeystone{expires: time.Now().Add(time.Hour)}
	srv := httptest.NewServer(fk)
	defer srv.Close()
	now := time.Now()
	k, err := NewKeystone(KeystoneConfig{URL: srv.URL + "/v3/", Username: "ferric", Password: "pw", ProjectName: "service",
		CacheTTL: time.Minute, CacheSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	k.now = func() time.Time { return now }
	ctx := context.Background()
	steps := []struct {
		name          string
		advance       time.Duration
		token         string
		revokeService bool
		wantErr       error
		validations   int64 // asked of Keystone so far
	}{
		{"first validation", 0, "good-1", false, nil, 1},
		{"cached", 0, "good-1", false, nil, 1},
		{"another token", 0, "good-2", false, nil, 2},
		{"invalid token", 0, "bad", false, ErrInvalidToken, 3},
		{"invalid cached too", 0, "bad", false, ErrInvalidToken, 3},
		{"still cached after 59s", 59 * time.Second, "good-1", false, nil, 3},
		{"TTL over: asked again", 2 * time.Second, "good-1", false, nil, 4},
		{"service token refused: renewed and retried", 2 * time.Minute, "good-2", true, nil, 5},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		fk.revokeService.Store(s.revokeService)
		id, err := k.Validate(ctx, s.token)
		if !errors.Is(err, s.wantErr) {
			t.Fatalf("%s: error %v, want %v", s.name, err, s.wantErr)
		}
		if err == nil && (id.UserName != "operator" || id.ProjectID != "p-demo" || !id.HasRole("member") || id.System) {
			t.Errorf("%s: identity %+v", s.name, id)
		}
		if got := fk.validated.Load(); got != s.validations {
			t.Errorf("%s: %d validations, want %d", s.name, got, s.validations)
		}
	}
	if fk.issued.Load() != 2 {
		t.Errorf("service tokens issued %d, want 2 (first, and the renewal)", fk.issued.Load())
	}
	// The cache never holds more than CacheSize entries.
	for i := range 20 {
		_, _ = k.Validate(ctx, "good-many-"+string(rune('a'+i)))
	}
	if n := len(k.cache); n > 4 {
		t.Errorf("cache holds %d entries, bound 4", n)
	}
	// A token expiring before the TTL is not reused past its expiry.
	fk.expires = now.Add(10 * time.Second)
	before := fk.validated.Load()
	_, _ = k.Validate(ctx, "good-short")
	now = now.Add(11 * time.Second)
	_, _ = k.Validate(ctx, "good-short")
	if fk.validated.Load()-before != 2 {
		t.Errorf("a token past its expiry was served from the cache")
	}
}

// TestKeystoneWrap: the middleware's answers over a real socket.
func TestKeystoneWrap(t *testing.T) {
	fk := &fakeKeystone{expires: time.Now().Add(time.Hour)}
	ks := httptest.NewServer(fk)
	defer ks.Close()
	k, err := NewKeystone(KeystoneConfig{URL: ks.URL + "/v3", Username: "ferric", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	a := NewKeystoneAuthenticator(k, nil)
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := IdentityFrom(r.Context())
		if id == nil {
			_, _ = w.Write([]byte("public"))
			return
		}
		_, _ = w.Write([]byte(id.UserName))
	})
	srv := httptest.NewServer(a.Wrap(app, Policy{Public: []Rule{{Path: "/"}}}))
	defer srv.Close()
	for _, tc := range []struct {
		name, path, token string
		code              int
		body              string
	}{
		{"public", "/", "", 200, "public"},
		{"no token", "/v1/nodes", "", 401, MsgTokenRequired},
		{"bad token", "/v1/nodes", "nope", 401, MsgTokenRequired},
		{"good token", "/v1/nodes", "good-x", 200, "operator"},
	} {
		req, _ := http.NewRequest("GET", srv.URL+tc.path, nil)
		if tc.token != "" {
			req.Header.Set("X-Auth-Token", tc.token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		buf := make([]byte, 512)
		n, _ := res.Body.Read(buf)
		b.Write(buf[:n])
		res.Body.Close()
		if res.StatusCode != tc.code || !strings.Contains(b.String(), tc.body) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, res.StatusCode, b.String(), tc.code, tc.body)
		}
		if tc.code == 401 && res.Header.Get("WWW-Authenticate") != `Keystone uri="`+ks.URL+`/v3"` {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, res.Header.Get("WWW-Authenticate"))
		}
	}
}
