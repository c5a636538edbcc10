package compute

import (
	"net/http"
	"net/url"
	"strconv"
)

// maxLimit is the most items a listing answers at once (Nova's
// [api]max_limit default); more need the next link.
const maxLimit = 1000

// pageParams reads a listing's limit and marker: the limit a
// non-negative integer (0 or none: maxLimit, and never above it).
func pageParams(r *http.Request) (limit int, marker string, hasMarker bool, err error) {
	q := r.URL.Query()
	limit = maxLimit
	if s, ok := q["limit"]; ok {
		n, cerr := strconv.Atoi(s[0])
		if cerr != nil || n < 0 {
			return 0, "", false, faultf(http.StatusBadRequest, "Invalid input for query parameters limit. Value: %s. It must be a non-negative integer", s[0])
		}
		if n > 0 && n < maxLimit {
			limit = n
		}
	}
	if s, ok := q["marker"]; ok {
		marker, hasMarker = s[0], true
	}
	return limit, marker, hasMarker, nil
}

// page cuts ids (the listing's order) to the request's page: after the
// marker, at most the limit. It returns the index range; a marker that is
// not in ids is a fault with notFound's message.
func page(r *http.Request, ids []string, notFound string) (from, to int, err error) {
	limit, marker, hasMarker, err := pageParams(r)
	if err != nil {
		return 0, 0, err
	}
	if hasMarker {
		from = -1
		for i, id := range ids {
			if id == marker {
				from = i + 1
				break
			}
		}
		if from < 0 {
			return 0, 0, faultf(http.StatusBadRequest, notFound, marker)
		}
	}
	to = min(len(ids), from+limit)
	return from, to, nil
}

// nextLinks is a listing's "<collection>_links": a next link (the
// request's query with the marker set to the page's last id) when the
// page is full, as Nova's: when the page holds as many items as the
// limit (or maxLimit).
func nextLinks(r *http.Request, collection string, n int, last string) []map[string]string {
	limit, _, _, _ := pageParams(r)
	if n == 0 || n != limit {
		return nil
	}
	q := url.Values{}
	for k, v := range r.URL.Query() {
		q[k] = v
	}
	q.Set("marker", last)
	// Encode sorts by key, as Nova does.
	return []map[string]string{{"rel": "next", "href": baseURL(r) + base + "/" + collection + "?" + q.Encode()}}
}
