package api

import (
	"bytes"
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/store"
)

// The feed's snapshot: GET /v1/events/stream?snapshot=true opens (when it
// does not resume: no Last-Event-ID, no since) with a "snapshot" event
// right after "ready": every node the stream's filters let through, in
// one event, sorted by name (then UUID). A client that shows a fleet needs
// no paged listing then, and no race between the listing and the feed:
// each record carries its revision, and an event whose revision is not
// above the record's is already in the snapshot (the snapshot is read
// after the ready position, so it may hold some of the changes that
// follow it). The records are rows, their fields named once (10,000
// nodes are half the bytes and parse faster than as objects):
//
//	event: snapshot
//	data: {"position": "<the ready id>", "columns": ["uuid", ..., "revision"],
//	       "nodes": [["<uuid>", ..., 7], ...]}
//
// snapshot_fields=a,b (the node listing's fields=) chooses the columns
// (uuid always among them); without it they are the stream's fields= when
// given, else every field the request's version shows; "revision" is
// always the last.

// streamSnapshot reports whether the request asks for a snapshot, and
// the fields its records show (nil: every field), checked as the
// listing checks fields=.
func streamSnapshot(c echo.Context, sq *streamQuery) (bool, map[string]bool, error) {
	q := c.QueryParams()
	if !q.Has("snapshot") {
		return false, nil, nil
	}
	on, e := ironichttp.ArgBool("snapshot", q.Get("snapshot"))
	if e != nil {
		return false, nil, e
	}
	raw := q.Get("snapshot_fields")
	if raw == "" && sq.fields != nil {
		raw = strings.Join(sortedKeys(sq.fields), ",")
	}
	want, ferr := fieldSet(nodeFields, ver(c), raw)
	if ferr != nil {
		return false, nil, ferr
	}
	if want != nil {
		want["uuid"] = true // what the events name the records by
	}
	return *on, want, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// writeSnapshot appends the snapshot event of the nodes sq sees to buf.
func (s *Server) writeSnapshot(c echo.Context, buf *bytes.Buffer, sq *streamQuery, pos store.Position, want map[string]bool) {
	if sq.redact != nil {
		// The rows show the caller's redactions, as its GET does.
		c.Set(redactKey, sq.redact)
		defer c.Set(redactKey, nil)
	}
	var nodes []*store.Node
	if sq.tables["nodes"] {
		nodes = s.st.Nodes(func(n *store.Node) bool {
			return (sq.node == "" || n.UUID == sq.node) && (sq.filter == nil || sq.filter(n))
		})
	}
	slices.SortFunc(nodes, func(a, b *store.Node) int {
		return cmp.Or(cmp.Compare(deref(a.Name), deref(b.Name)), cmp.Compare(a.UUID, b.UUID))
	})
	v := ver(c)
	var cols []field[*store.Node]
	for _, f := range snapshotNodeFields() {
		if f.min <= v && (want == nil || want[f.name]) {
			cols = append(cols, f)
		}
	}
	b := make([]byte, 0, 64+len(nodes)*(16+16*len(cols)))
	b = append(b, "event: snapshot\ndata: {\"position\":"...)
	b = appendString(b, pos.String())
	b = append(b, `,"columns":[`...)
	for _, f := range cols {
		b = appendString(b, f.name)
		b = append(b, ',')
	}
	b = append(b, `"revision"],"nodes":[`...)
	for i, n := range nodes {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for _, f := range cols {
			b = appendJSON(b, f.get(c, n))
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, n.Revision, 10)
		b = append(b, ']')
	}
	b = append(b, "]}\n\n"...)
	buf.Write(b)
}

// snapshotNodeFields are the node's fields in the listing's order,
// without links (a fleet of records needs none).
var snapshotNodeFields = sync.OnceValue(func() []field[*store.Node] {
	var out []field[*store.Node]
	for _, f := range nodeFieldsSorted {
		if f.name != "links" {
			out = append(out, f)
		}
	}
	return out
})
