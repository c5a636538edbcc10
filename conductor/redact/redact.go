// Package redact hides secrets the way Ironic does (oslo.utils'
// mask_dict_password and mask_password): a value whose key names a secret
// (a password, a token, a private key...) is replaced by Mask, nested
// objects are walked, and secrets written inside strings ("password=x",
// "--password x", `"token": "x"`) are masked too. The API's views, node
// history and the logs use it.
package redact

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
)

// Mask is what a secret is shown as.
const Mask = "******"

// keys are the fragments of key names that mark a secret: a key holding
// any of them (case-insensitively) is masked. This is oslo.utils' list,
// which Ironic masks driver_info, instance_info and step arguments with.
var keys = []string{
	"adminpass", "admin_pass", "password", "admin_password", "auth_token", "new_pass",
	"auth_password", "secret_uuid", "secret", "sys_pswd", "token", "configdrive",
	"chappassword", "encrypted_key", "private_key", "encryption_key_id", "fernetkey",
	"sslkey", "passphrase", "cephclusterfsid", "octaviaheartbeatkey", "rabbitcookie",
	"cephmanilaclientkey", "pacemakerremoteauthkey", "designaterndckey", "cephadminkey",
	"heatauthencryptionkey", "cephclientkey", "keystonecredential",
	"barbicansimplecryptokek", "cephrgwkey", "swifthashsuffix", "migrationsshkey",
	"cephmdskey", "cephmonkey",
}

// Key reports whether a key names a secret.
func Key(k string) bool {
	k = strings.ToLower(k)
	for _, s := range keys {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// Patterns of secrets inside strings; group 1 is kept, the secret after it
// masked, group 2 (a closing quote) kept.
var (
	keyAlt = func() string {
		q := make([]string, len(keys))
		for i, k := range keys {
			q[i] = regexp.QuoteMeta(k)
		}
		return `[\w-]*(?:` + strings.Join(q, "|") + `)[\w-]*`
	}()
	// key="x", key: 'x', "key": "x"
	quoted = regexp.MustCompile(`(?i)(` + keyAlt + `["']?\s*[=:]\s*["'])[^"']*(["'])`)
	// key=x
	bare = regexp.MustCompile(`(?i)(` + keyAlt + `\s*=\s*)[^\s'"]+`)
	// --key x, -key x
	option = regexp.MustCompile(`(?i)(--?` + keyAlt + `\s+)[^\s'"=-][^\s'"]*`)
)

// String masks secrets written inside s.
func String(s string) string {
	if !mayHold(s) {
		return s
	}
	s = quoted.ReplaceAllString(s, "${1}"+Mask+"${2}")
	s = bare.ReplaceAllString(s, "${1}"+Mask)
	return option.ReplaceAllString(s, "${1}"+Mask)
}

// mayHold is a quick test that s names one of the keys.
func mayHold(s string) bool {
	l := strings.ToLower(s)
	for _, k := range keys {
		if strings.Contains(l, k) {
			return true
		}
	}
	return false
}

// Map returns m with its secrets masked: values under secret keys become
// Mask, nested objects and lists are walked, strings pass through String.
// m itself is never changed; it is returned as is when it holds no secret.
func Map(m map[string]any) map[string]any {
	out, _ := mapOf(m)
	return out
}

func mapOf(m map[string]any) (map[string]any, bool) {
	var out map[string]any
	for k, v := range m {
		var nv any = Mask
		changed := true
		if !Key(k) {
			nv, changed = value(v)
		} else if v == Mask {
			changed = false
		}
		if !changed {
			continue
		}
		if out == nil {
			out = make(map[string]any, len(m))
			for k2, v2 := range m {
				out[k2] = v2
			}
		}
		out[k] = nv
	}
	if out == nil {
		return m, false
	}
	return out, true
}

// Value masks the secrets in a decoded JSON value (see Map) and reports
// whether it had any (v is then left as is and a copy returned).
func Value(v any) (masked any, changed bool) { return value(v) }

func value(v any) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		return mapOf(x)
	case []any:
		var out []any
		for i, e := range x {
			ne, changed := value(e)
			if !changed {
				continue
			}
			if out == nil {
				out = append([]any(nil), x...)
			}
			out[i] = ne
		}
		if out == nil {
			return x, false
		}
		return out, true
	case string:
		s := String(x)
		return s, s != x
	}
	return v, false
}

// Handler wraps a slog.Handler so that no record carries a secret:
// attributes under secret keys are masked, string values and messages
// pass through String, and maps through Map.
func Handler(h slog.Handler) slog.Handler { return handler{h} }

type handler struct{ next slog.Handler }

func (h handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	nr := slog.NewRecord(r.Time, r.Level, String(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		nr.AddAttrs(attr(a))
		return true
	})
	return h.next.Handle(ctx, nr)
}

func (h handler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = attr(a)
	}
	return handler{h.next.WithAttrs(out)}
}

func (h handler) WithGroup(name string) slog.Handler { return handler{h.next.WithGroup(name)} }

func attr(a slog.Attr) slog.Attr {
	if Key(a.Key) {
		return slog.String(a.Key, Mask)
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, String(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]any, len(g))
		for i, ga := range g {
			out[i] = attr(ga)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case map[string]any:
			return slog.Any(a.Key, Map(x))
		case error:
			return slog.String(a.Key, String(x.Error()))
		}
	}
	return a
}
