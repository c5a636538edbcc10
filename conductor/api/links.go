package api

import (
	"strings"

	"github.com/labstack/echo/v4"
)

// selfLinks are a resource's self and bookmark links, which Ironic renders
// as [{"href": ..., "rel": "self"}, {"href": ..., "rel": "bookmark"}]. A
// detailed node carries five such lists: written straight to the buffer
// from their parts, they cost no maps nor concatenated strings (half of a
// node's rendering when built as maps).
type selfLinks struct{ base, path string }

// nodeLinks are the links of a node's sub-resource (sub empty: the node).
func nodeLinks(c echo.Context, uuid, sub string) selfLinks {
	l := selfLinks{base: requestBase(c), path: "/nodes/" + uuid}
	if sub != "" {
		l.path += "/" + sub
	}
	return l
}

// requestBase is baseURL(c), worked out once per request.
func requestBase(c echo.Context) string {
	if b, ok := c.Get("ferric.baseURL").(string); ok {
		return b
	}
	b := baseURL(c)
	c.Set("ferric.baseURL", b)
	return b
}

func (l selfLinks) appendJSON(b []byte) []byte {
	b = append(b, `[{"href":"`...)
	b = appendEscaped(b, l.base)
	b = append(b, "/v1"...)
	b = appendEscaped(b, l.path)
	b = append(b, `","rel":"self"},{"href":"`...)
	b = appendEscaped(b, l.base)
	b = appendEscaped(b, l.path)
	return append(b, `","rel":"bookmark"}]`...)
}

// MarshalJSON renders the links as Ironic does.
func (l selfLinks) MarshalJSON() ([]byte, error) { return l.appendJSON(nil), nil }

// String is the self link (for logs and tests).
func (l selfLinks) String() string { return strings.Join([]string{l.base, "/v1", l.path}, "") }
