package api

import (
	"bytes"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/store"
)

// The feed's snapshot: GET /v1/events/stream?snapshot=true opens (when it
// does not resume: no Last-Event-ID, no since) with a "snapshot" event
// right after "ready": every node the stream's filters let through, as the
// node listing renders them, in one event. A client that shows a fleet
// needs no paged listing then, and no race between the listing and the
// feed: each record carries its "revision", and an event whose revision is
// not above the record's is already in the snapshot (the snapshot is read
// after the ready position, so it may hold some of the changes that
// follow it).
//
//	event: snapshot
//	data: {"position": "<the ready id>", "nodes": [{...fields, "revision": n}, ...]}
//
// snapshot_fields=a,b (the node listing's fields=) narrows the records;
// without it they have the stream's fields= when given, else every field.

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
	var nodes []*store.Node
	if sq.tables["nodes"] {
		nodes = s.st.Nodes(func(n *store.Node) bool {
			return (sq.node == "" || n.UUID == sq.node) && (sq.filter == nil || sq.filter(n))
		})
	}
	v := ver(c)
	fields := snapshotNodeFields()
	b := make([]byte, 0, 64+len(nodes)*256)
	b = append(b, "event: snapshot\ndata: {\"position\":"...)
	b = appendString(b, pos.String())
	b = append(b, `,"nodes":[`...)
	for i, n := range nodes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendItem(b, c, fields, n, v, want)
		// The record's revision, in the object's last place.
		if b[len(b)-2] != '{' {
			b[len(b)-1] = ','
		} else {
			b = b[:len(b)-1]
		}
		b = append(b, `"revision":`...)
		b = strconv.AppendInt(b, n.Revision, 10)
		b = append(b, '}')
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
