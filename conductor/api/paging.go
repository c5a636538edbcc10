package api

import (
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
)

// MaxLimit is the largest page (Ironic's [api]max_limit).
const MaxLimit = 1000

type paging struct {
	limit   int
	marker  string
	sortKey string
	desc    bool
}

func cmpInt(a, b int64) int { return int(min(max(a-b, -1), 1)) }
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
func cmpTime(a, b *time.Time) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	return a.Compare(*b)
}

func parsePaging[T any](c echo.Context, keys map[string]func(a, b T) int, unsortable map[string]bool, visible func(string) bool) (paging, *Error) {
	q := c.QueryParams()
	p := paging{limit: MaxLimit, sortKey: "id", marker: q.Get("marker")}
	if l := q.Get("limit"); l != "" {
		i, e := ironichttp.ArgInt("limit", l)
		if e != nil {
			return p, e
		}
		if *i <= 0 {
			return p, badRequest("Limit must be positive")
		}
		n := int(min(*i, int64(MaxLimit)))
		p.limit = min(n, MaxLimit)
	}
	if sk := q.Get("sort_key"); sk != "" {
		if unsortable[sk] {
			return p, badRequest("The sort_key value \"%s\" is an invalid field for sorting", sk)
		}
		if visible != nil && sk != "id" && !visible(sk) {
			if _, known := keys[sk]; known {
				return p, notAcceptable("The sort_key value %s is not supported by this version.", sk)
			}
		}
		if _, ok := keys[sk]; !ok {
			return p, badRequest("The sort_key value \"%s\" is an invalid field for sorting", sk)
		}
		p.sortKey = sk
	}
	switch strings.ToLower(q.Get("sort_dir")) {
	case "", "asc":
	case "desc":
		p.desc = true
	default:
		return p, badRequest("Invalid sort direction: %s. Acceptable values are 'asc' or 'desc'", q.Get("sort_dir"))
	}
	return p, nil
}

// paginate sorts items (already in id order), applies marker and limit,
// and returns the page and the next link when the page is full.
func paginate[T any](c echo.Context, items []T, p paging, keys map[string]func(a, b T) int, key func(T) string, byMarker func(string) (T, error)) ([]T, string, *Error) {
	if p.sortKey != "id" || p.desc {
		cmp := keys[p.sortKey]
		idCmp := keys["id"]
		slices.SortStableFunc(items, func(a, b T) int {
			r := cmp(a, b)
			if r == 0 {
				r = idCmp(a, b)
			}
			if p.desc {
				return -r
			}
			return r
		})
	}
	if p.marker != "" {
		m, err := byMarker(p.marker)
		var ae *Error
		if errors.As(err, &ae) {
			return nil, "", ae
		}
		if err != nil {
			return nil, "", badRequest("Marker %s could not be found.", p.marker)
		}
		cmp := keys[p.sortKey]
		idCmp := keys["id"]
		i, _ := slices.BinarySearchFunc(items, m, func(a, b T) int {
			r := cmp(a, b)
			if r == 0 {
				r = idCmp(a, b)
			}
			if p.desc {
				return -r
			}
			return r
		})
		if i < len(items) && key(items[i]) == key(m) {
			i++
		}
		items = items[i:]
	}
	next := ""
	if len(items) > p.limit {
		items = items[:p.limit]
	}
	if len(items) == p.limit && len(items) > 0 {
		next = nextLink(c, p, key(items[len(items)-1]))
	}
	return items, next, nil
}

// nextLink is the URL of the page after the one ending with marker: the
// request's query with limit and marker replaced.
func nextLink(c echo.Context, p paging, marker string) string {
	q := url.Values{}
	for k, v := range c.QueryParams() {
		if k != "marker" && k != "limit" {
			q[k] = v
		}
	}
	q.Set("limit", strconv.Itoa(p.limit))
	q.Set("marker", marker)
	path := strings.TrimSuffix(c.Request().URL.Path, "/")
	return baseURL(c) + path + "?" + q.Encode()
}

var provisionStates = []string{"enroll", "verifying", "manageable", "inspecting", "inspect wait", "inspect failed",
	"cleaning", "clean wait", "clean failed", "clean hold", "available", "deploying", "wait call-back", "deploy failed",
	"deploy hold", "active", "deleting", "deleted", "error", "rebuild", "rescuing", "rescue wait", "rescue failed",
	"rescue", "unrescuing", "unrescue failed", "adopting", "adopt failed", "servicing", "service wait",
	"service failed", "service hold"}

func knownState(s string) bool { return slices.Contains(provisionStates, s) }
