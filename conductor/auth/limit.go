package auth

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Limiter is a token bucket per client address: each address may make
// Burst requests at once and Rate per second after that. It guards what
// is served without credentials (boot files, iPXE scripts, image
// downloads), which firmware and agents fetch anonymously.
type Limiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets bounds the table; idle full buckets are dropped first.
const maxBuckets = 65536

// NewLimiter returns a limiter of rate requests per second with the given
// burst per client address. rate <= 0 disables it (nil Limiter).
func NewLimiter(rate float64, burst int) *Limiter {
	if rate <= 0 {
		return nil
	}
	if burst < 1 {
		burst = 1
	}
	return &Limiter{rate: rate, burst: float64(burst), now: time.Now, buckets: map[string]*bucket{}}
}

// Allow takes a token for source; when none is left it reports how long
// until one is.
func (l *Limiter) Allow(source string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buckets) >= maxBuckets || now.Sub(l.swept) > time.Minute {
		l.sweep(now)
	}
	b := l.buckets[source]
	if b == nil {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[source] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// sweep drops buckets that have refilled (they hold no state); l.mu is
// held.
func (l *Limiter) sweep(now time.Time) {
	l.swept = now
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst || len(l.buckets) >= maxBuckets {
			delete(l.buckets, k)
		}
	}
}

// Wrap answers 429 with Retry-After to a client past its rate.
func (l *Limiter) Wrap(next http.Handler) http.Handler { return l.WrapIf(next, nil) }

// WrapIf limits the requests only names (all when nil); others pass.
func (l *Limiter) WrapIf(next http.Handler, only func(*http.Request) bool) http.Handler {
	if l == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if only != nil && !only(r) {
			next.ServeHTTP(w, r)
			return
		}
		if ok, wait := l.Allow(Source(r)); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
			http.Error(w, "Too many requests from this address, retry later", http.StatusTooManyRequests)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ReadOnly answers 405 to any method but GET and HEAD.
func ReadOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "Method not allowed: read-only", http.StatusMethodNotAllowed)
			return
		}
		next.ServeHTTP(w, r)
	})
}
