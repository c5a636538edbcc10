package api

import (
	"encoding/json"
	"math"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// Listing thousands of nodes is where Ironic users suffer, so collections
// are encoded by hand: fields are appended straight to one buffer in a
// fixed (sorted) order instead of building a map per item and letting
// encoding/json reflect over it. Values of unusual types fall back to
// encoding/json.

// appendJSON appends the JSON encoding of v.
func appendJSON(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case string:
		return appendString(b, x)
	case bool:
		return strconv.AppendBool(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			break
		}
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.AppendInt(b, int64(x), 10)
		}
		return strconv.AppendFloat(b, x, 'g', -1, 64)
	case []string:
		b = append(b, '[')
		for i, s := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		return append(b, ']')
	case selfLinks:
		return x.appendJSON(b)
	case []map[string]string:
		b = append(b, '[')
		for i, m := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendStringMap(b, m)
		}
		return append(b, ']')
	case map[string]any:
		return appendMap(b, x, appendJSON)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, e)
		}
		return append(b, ']')
	case json.RawMessage:
		if len(x) > 0 && json.Valid(x) {
			return append(b, x...)
		}
		return append(b, "null"...)
	case time.Time:
		return appendString(b, ironicTime(x))
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return append(b, "null"...)
	}
	return append(b, raw...)
}

func appendStringMap(b []byte, m map[string]string) []byte { return appendMap(b, m, appendString) }

// appendMap appends m as a JSON object with sorted keys.
func appendMap[V any](b []byte, m map[string]V, appendValue func([]byte, V) []byte) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendValue(b, m[k])
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping as encoding/json does
// (including <, > and & for HTML safety; invalid UTF-8 becomes U+FFFD).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendEscaped(b, s)
	return append(b, '"')
}

// appendEscaped appends the inside of s's JSON string (no quotes).
func appendEscaped(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			switch r {
			case utf8.RuneError:
				b = append(b, `\ufffd`...)
			case '\u2028':
				b = append(b, `\u2028`...)
			default:
				b = append(b, `\u2029`...)
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}

// sortedFields returns fields ordered by name (computed once per table).
func sortedFields[T any](fields []field[T]) []field[T] {
	out := append([]field[T](nil), fields...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// appendItem appends the JSON object of x with the fields visible at v
// (and, when want is set, only those plus links).
func appendItem[T any](b []byte, c echo.Context, sorted []field[T], x T, v Version, want map[string]bool) []byte {
	b = append(b, '{')
	first := true
	for _, f := range sorted {
		if f.min > v || (want != nil && !want[f.name] && f.name != "links") {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, f.name)
		b = append(b, ':')
		b = appendJSON(b, f.get(c, x))
	}
	return append(b, '}')
}

// itemCache keeps the last rendering of each item (a node's JSON for one
// version, host and field set), valid while the item's revision is the
// same: repeated listings (Nova polls every node every few seconds) copy
// bytes instead of rendering again. One entry per item, and at most
// itemCacheBytes of JSON in all (a 100,000-node fleet's detailed JSON
// alone is ~250 MiB, more than a listing's speed is worth in memory).
// When full, new items are rendered but not kept (a walk over more items
// than fit would otherwise evict each one before its next visit), except
// that every itemCacheTurn refusals an eighth is dropped at random, so
// the entries of deleted items do not hold the room forever.
type itemCache struct {
	mu      sync.RWMutex
	m       map[string]cachedItem
	bytes   int
	refused int
}

type cachedItem struct {
	rev  int64
	key  string // version, host and field set
	json []byte
}

const (
	// itemCacheBytes bounds the JSON an itemCache holds.
	itemCacheBytes = 64 << 20
	// itemCacheTurn is how many refused items make room.
	itemCacheTurn = 4096
)

func (ic *itemCache) get(id string, rev int64, key string) []byte {
	ic.mu.RLock()
	defer ic.mu.RUnlock()
	if e, ok := ic.m[id]; ok && e.rev == rev && e.key == key {
		return e.json
	}
	return nil
}

// room reports whether an item of n bytes would be kept (its JSON need
// not be copied otherwise).
func (ic *itemCache) room(id string, n int) bool {
	ic.mu.RLock()
	defer ic.mu.RUnlock()
	return ic.bytes-len(ic.m[id].json)+n <= itemCacheBytes
}

func (ic *itemCache) put(id string, rev int64, key string, b []byte) {
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if ic.m == nil {
		ic.m = map[string]cachedItem{}
	}
	if e, ok := ic.m[id]; ok {
		ic.bytes -= len(e.json)
		delete(ic.m, id)
	}
	if ic.bytes+len(b) > itemCacheBytes {
		if ic.refused++; ic.refused < itemCacheTurn {
			return
		}
		ic.refused = 0
		goal := itemCacheBytes - itemCacheBytes/8
		for k, e := range ic.m { // map order: random
			if ic.bytes+len(b) <= goal {
				break
			}
			ic.bytes -= len(e.json)
			delete(ic.m, k)
		}
	}
	ic.m[id] = cachedItem{rev: rev, key: key, json: b}
	ic.bytes += len(b)
}

// cacheKey identifies a rendering: version, base URL and wanted fields.
func cacheKey(c echo.Context, v Version, want map[string]bool) string {
	k := v.String() + "|" + baseURL(c) + "|"
	if want == nil {
		return k + "*"
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		k += n + ","
	}
	return k
}

// cached is how writeCollection finds an item's identity and revision for
// the item cache; nil disables caching.
type cached[T any] func(x T) (id string, rev int64)

// writeCollection writes {"<key>": [...items], "next": ..., "<key>_links": [...]}.
func writeCollection[T any](c echo.Context, key string, sorted []field[T], items []T, v Version, want map[string]bool, next string) error {
	return writeCachedCollection(c, key, sorted, items, v, want, next, nil, nil)
}

// streamFlush is how many bytes of a collection are gathered before they
// are written out: large listings are streamed, never built whole.
const streamFlush = 64 << 10

func writeCachedCollection[T any](c echo.Context, key string, sorted []field[T], items []T, v Version, want map[string]bool, next string, ic *itemCache, ident cached[T]) error {
	bp := streamBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 4*streamFlush {
			streamBufs.Put(bp)
		}
	}()
	b := (*bp)[:0]
	started := false
	flush := func() error {
		if !started {
			started = true
			c.Response().Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
			c.Response().WriteHeader(http.StatusOK)
		}
		_, err := c.Response().Write(b)
		b = b[:0]
		return err
	}
	b = append(b, '{')
	b = appendString(b, key)
	b = append(b, ':', '[')
	ck := ""
	if ic != nil {
		ck = cacheKey(c, v, want)
	}
	for i, x := range items {
		if i > 0 {
			b = append(b, ',')
		}
		if len(b) >= streamFlush {
			if err := flush(); err != nil {
				return err
			}
		}
		if ic == nil {
			b = appendItem(b, c, sorted, x, v, want)
			continue
		}
		id, rev := ident(x)
		if js := ic.get(id, rev, ck); js != nil {
			b = append(b, js...)
			continue
		}
		start := len(b)
		b = appendItem(b, c, sorted, x, v, want)
		if ic.room(id, len(b)-start) {
			ic.put(id, rev, ck, append([]byte(nil), b[start:]...))
		}
	}
	b = append(b, ']')
	if next != "" {
		b = append(b, `,"next":`...)
		b = appendString(b, next)
		b = append(b, ',')
		b = appendString(b, key+"_links")
		b = append(b, ':')
		b = appendJSON(b, []map[string]string{{"href": next, "rel": "next"}})
	}
	b = append(b, '}')
	if !started {
		// Small enough for one write: sent as a whole (with its length).
		err := c.Blob(http.StatusOK, echo.MIMEApplicationJSON, b)
		*bp = b
		return err
	}
	err := flush()
	*bp = b
	return err
}

// streamBufs are the buffers collections are rendered into.
var streamBufs = sync.Pool{New: func() any { b := make([]byte, 0, streamFlush+16<<10); return &b }}
