package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/store"
)

// The change feed, GET /v1/events/stream (its opening snapshot:
// stream_snapshot.go): Server-Sent Events
// (text/event-stream), one event per committed change of a node, port,
// portgroup, allocation or conductor, in commit order. SSE rather than
// ?watch=true on the listings: one stream carries every kind of record,
// browsers read it natively (EventSource) and reconnect by themselves
// with Last-Event-ID, and curl shows it as text.
//
// Records are rendered at the request's microversion, the latest when it
// names none (a browser's EventSource cannot send the header). Each event:
//
//	id: <position>          (opaque; "rev" or "rev.sub")
//	event: node|port|portgroup|allocation|conductor
//	data: {"type", "op" (create|update|delete), "uuid" (hostname for a
//	       conductor), the record's identifiers (name, node_uuid, address),
//	       "revision" (the record's), "changed" (API field names),
//	       "fields" (their new values, as GET shows them at the request's
//	       microversion; every field for a create), "time"}
//
// The stream opens with a "ready" event whose id is the position it starts
// after: list, then apply the events (a record's revision tells whether
// an event is newer than the listed copy). A client resumes after its last
// id (Last-Event-ID, or ?since=) with no change lost or repeated; a
// position the feed no longer holds is a 410 in Ironic's error format: list
// again. Filters: types=node,port,...; node=<uuid|name>; the node
// listing's filters (provision_state, owner, lessee, project, maintenance,
// conductor_group, resource_class, ...), which a node's event passes when
// the node matched before or after the change, and a port's, portgroup's
// or allocation's when its node matches now; fields=a,b: only updates that
// changed one of them, showing only those.
//
// Access (--auth keystone): a project's caller sees its project's nodes'
// changes only, as on the listings, and below Ironic's filter threshold
// the guarded node fields (access.go's nodeFieldGuards) redacted as its
// GET shows them, in events and in the snapshot.
//
// Bounded: a client more than StreamClientBuffer changes behind, or whose
// connection takes more than StreamWriteTimeout to take a write, is cut
// off with an "error" event (code 503) that names where to resume; the
// publisher never waits for a client.

// StreamClientBuffer is how many changes a client of the feed may fall
// behind before it is cut off.
const StreamClientBuffer = 2000

// StreamWriteTimeout bounds one write to a client of the feed.
const StreamWriteTimeout = 10 * time.Second

// StreamFlushInterval is the shortest time between two writes to one
// client while few clients are open: changes that come closer together go
// out in one write (fewer system calls per client under a high rate of
// changes, at most this much latency added).
const StreamFlushInterval = 50 * time.Millisecond

// StreamWritesPerSecond bounds the writes to all the feed's clients
// together under a high rate of changes: with many clients open, each
// waits longer between writes (StreamFlushInterval at most 250 clients,
// up to StreamMaxFlushInterval), so that a thousand watchers cost the
// conductor about as many system calls as 250 do.
const StreamWritesPerSecond = 5000

// StreamMaxFlushInterval is the longest wait between two writes to one
// client (the latency a change may get under a high rate of changes with
// many clients).
const StreamMaxFlushInterval = 250 * time.Millisecond

// openStreams counts the feed's open clients (of every Server in the
// process: it only sets how long writes are batched).
var openStreams atomic.Int64

// flushInterval is the wait between two writes to one client now, give
// or take a quarter at random: clients that started together (or that one
// change woke together) drift apart instead of all writing at the same
// instant, which would queue a commit's goroutines behind a thousand of
// theirs.
func flushInterval() time.Duration {
	d := time.Duration(openStreams.Load()) * time.Second / StreamWritesPerSecond
	d = min(max(d, StreamFlushInterval), StreamMaxFlushInterval)
	return d*3/4 + rand.N(d/2)
}

// StreamKeepalive is the period of the comment lines that keep an idle
// stream (and the proxies on its way) alive.
const StreamKeepalive = 15 * time.Second

// StreamLimits bound one client of the change feed.
type StreamLimits struct {
	// Buffer is how many changes the client may fall behind.
	Buffer int
	// WriteTimeout bounds one write to it.
	WriteTimeout time.Duration
}

func (l StreamLimits) orDefaults() StreamLimits {
	if l.Buffer <= 0 {
		l.Buffer = StreamClientBuffer
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = StreamWriteTimeout
	}
	return l
}

// streamTypes maps an event type to its table.
var streamTypes = map[string]string{"node": "nodes", "port": "ports", "portgroup": "portgroups",
	"allocation": "allocations", "conductor": "conductors"}

// nodeFilterParams are the query parameters that scope a stream to nodes.
func nodeFilterParams() []string {
	out := []string{"node"}
	for _, f := range nodeListFilters {
		out = append(out, f.name)
	}
	return out
}

// streamQuery is a client's view of the feed.
type streamQuery struct {
	tables map[string]bool
	node   string // uuid
	filter func(*store.Node) bool
	scoped bool // a node filter was given: conductor events are left out
	fields map[string]bool
	// fieldsKey memoizes the rendering with only those fields;
	// fieldsMemo is it with no redaction, made an interface value once
	// (a struct key is otherwise boxed on every event for every client).
	fieldsKey  streamFieldsMemo
	fieldsMemo any
	// renderMemo is the streamMemo of the request's version, boxed once.
	renderMemo any
	// redact masks node fields for a caller below Ironic's filter
	// threshold (nil: none are masked).
	redact *fieldRedactor
}

// streamFieldsMemo keys a change's data rendered with only some fields,
// with the guarded fields in mask redacted.
type streamFieldsMemo struct {
	v      Version
	fields string
	mask   uint8
}

// streamMaskMemo keys a node change's rendering with the guarded fields
// in mask (a bit set over nodeGuardNames) redacted, shared by the clients
// that see the same redactions.
type streamMaskMemo struct {
	v    Version
	mask uint8
}

func (s *Server) parseStreamQuery(c echo.Context) (*streamQuery, error) {
	q := c.QueryParams()
	sq := &streamQuery{tables: map[string]bool{}}
	if t := q.Get("types"); t != "" {
		for _, name := range splitList(t) {
			table, ok := streamTypes[name]
			if !ok {
				return nil, badRequest("Invalid value for types: %s (known: allocation, conductor, node, port, portgroup)", name)
			}
			sq.tables[table] = true
		}
	} else {
		for _, table := range streamTypes {
			sq.tables[table] = true
		}
	}
	if n := q.Get("node"); n != "" {
		node, err := s.findNode(c, n)
		if err != nil {
			return nil, err
		}
		sq.node = node.UUID
	}
	f, ferr := s.nodeFilter(c, ver(c))
	if ferr != nil {
		return nil, ferr
	}
	sq.filter = f
	for _, p := range nodeFilterParams() {
		if q.Has(p) {
			sq.scoped = true
		}
	}
	sq.scoped = sq.scoped || s.projectScoped(c) // no conductor events for a project (access.go)
	if fl := q.Get("fields"); fl != "" {
		sq.fields = map[string]bool{}
		names := splitList(fl)
		for _, name := range names {
			sq.fields[name] = true
		}
		slices.Sort(names)
		sq.fieldsKey = streamFieldsMemo{v: ver(c), fields: strings.Join(names, ",")}
		sq.fieldsMemo = sq.fieldsKey
	}
	return sq, nil
}

// streamEvent is a change rendered for the feed (once per change and
// microversion, shared by every client).
type streamEvent struct {
	typ string
	ids map[string]any
	// nodeUUID is the node the record belongs to ("" for conductors).
	nodeUUID      string
	before, after *store.Node // node changes only
	changed       []string
	fields        map[string]any
	revision      int64
	op            string
	time          time.Time
	// frame is the event as written (sseFrame) with every changed field.
	frame []byte
}

// streamMemo keys a change's rendering at a microversion.
type streamMemo struct{ v Version }

// renderChange renders ch at the request's version (key: its streamMemo),
// once for every client.
func (s *Server) renderChange(c echo.Context, key any, ch *store.Change) *streamEvent {
	return ch.Memo(key, func() any {
		ev := &streamEvent{}
		s.renderChangeOnce(c, ch, ev)
		return ev
	}).(*streamEvent)
}

func (s *Server) renderChangeOnce(c echo.Context, ch *store.Change, ev *streamEvent) {
	v := ver(c)
	ev.op, ev.revision, ev.time = ch.Op, ch.Revision, ch.Time
	var before, after map[string]any
	switch ch.Table {
	case "nodes":
		ev.typ = "node"
		b, a := new(store.Node), new(store.Node)
		if json.Unmarshal(ch.Before(), b) != nil || json.Unmarshal(ch.Value, a) != nil {
			return
		}
		ev.before, ev.after, ev.nodeUUID = b, a, a.UUID
		ev.ids = map[string]any{"uuid": a.UUID, "name": strPtr(a.Name)}
		before, after = render(c, nodeFields, b, v, nil), render(c, nodeFields, a, v, nil)
	case "ports":
		ev.typ = "port"
		b, a := new(store.Port), new(store.Port)
		if json.Unmarshal(ch.Before(), b) != nil || json.Unmarshal(ch.Value, a) != nil {
			return
		}
		ev.nodeUUID = a.NodeUUID
		ev.ids = map[string]any{"uuid": a.UUID, "node_uuid": a.NodeUUID, "address": a.Address}
		before, after = render(c, portFields, b, v, nil), render(c, portFields, a, v, nil)
	case "portgroups":
		ev.typ = "portgroup"
		b, a := new(store.Portgroup), new(store.Portgroup)
		if json.Unmarshal(ch.Before(), b) != nil || json.Unmarshal(ch.Value, a) != nil {
			return
		}
		ev.nodeUUID = a.NodeUUID
		ev.ids = map[string]any{"uuid": a.UUID, "node_uuid": a.NodeUUID, "name": strPtr(a.Name)}
		before, after = render(c, portgroupFields, b, v, nil), render(c, portgroupFields, a, v, nil)
	case "allocations":
		ev.typ = "allocation"
		b, a := new(store.Allocation), new(store.Allocation)
		if json.Unmarshal(ch.Before(), b) != nil || json.Unmarshal(ch.Value, a) != nil {
			return
		}
		ev.nodeUUID = deref(a.NodeUUID)
		ev.ids = map[string]any{"uuid": a.UUID, "node_uuid": strPtr(a.NodeUUID), "name": strPtr(a.Name)}
		before, after = render(c, allocationFields, b, v, nil), render(c, allocationFields, a, v, nil)
	case "conductors":
		ev.typ = "conductor"
		b, a := new(store.Conductor), new(store.Conductor)
		if json.Unmarshal(ch.Before(), b) != nil || json.Unmarshal(ch.Value, a) != nil {
			return
		}
		ev.ids = map[string]any{"hostname": a.Hostname}
		before, after = s.conductorDoc(c, b, true), s.conductorDoc(c, a, true)
	default:
		return
	}
	delete(before, "links")
	delete(after, "links")
	ev.fields = map[string]any{}
	switch ch.Op {
	case store.OpCreate:
		for k, val := range after {
			ev.changed = append(ev.changed, k)
			ev.fields[k] = val
		}
	case store.OpUpdate:
		for k, val := range after {
			x, _ := json.Marshal(before[k])
			y, _ := json.Marshal(val)
			if !bytes.Equal(x, y) {
				ev.changed = append(ev.changed, k)
				ev.fields[k] = val
			}
		}
	}
	slices.Sort(ev.changed)
	ev.frame = sseFrame(ch.Pos, ev.typ, ev.marshal(nil))
}

// marshal renders the event's data, with only the fields in want (nil:
// every changed field).
func (ev *streamEvent) marshal(want map[string]bool) []byte {
	doc := make(map[string]any, len(ev.ids)+6)
	for k, v := range ev.ids {
		doc[k] = v
	}
	doc["type"], doc["op"], doc["revision"] = ev.typ, ev.op, ev.revision
	doc["time"] = ironicTime(ev.time)
	changed, fields := ev.changed, ev.fields
	if want != nil {
		changed, fields = nil, map[string]any{}
		for _, k := range ev.changed {
			if want[k] {
				changed = append(changed, k)
				fields[k] = ev.fields[k]
			}
		}
	}
	if changed == nil {
		changed = []string{}
	}
	doc["changed"], doc["fields"] = changed, fields
	out, _ := json.Marshal(doc)
	return out
}

// masked is ev with the guarded fields in mask redacted, as GET shows
// them to the caller: a create shows the redaction, an update does not
// name a masked field as changed (its redaction stays the same).
func (ev *streamEvent) masked(ch *store.Change, mask uint8) *streamEvent {
	m := *ev
	m.fields = make(map[string]any, len(ev.fields))
	m.changed = make([]string, 0, len(ev.changed))
	for _, k := range ev.changed {
		i := slices.Index(nodeGuardNames, k)
		if i < 0 || mask&(1<<i) == 0 {
			m.changed = append(m.changed, k)
			m.fields[k] = ev.fields[k]
			continue
		}
		if ev.op == store.OpCreate {
			m.changed = append(m.changed, k)
			m.fields[k] = nodeFieldGuards[k].redacted
		}
	}
	m.frame = sseFrame(ch.Pos, m.typ, m.marshal(nil))
	return &m
}

// pass reports whether the client sees the event, and its frame (a
// rendering with only the client's fields, or with the client's
// redactions, is shared by the clients that ask for the same ones).
func (s *Server) pass(c echo.Context, sq *streamQuery, ch *store.Change, ev *streamEvent) ([]byte, bool) {
	if !sq.tables[ch.Table] || ev.typ == "" {
		return nil, false
	}
	if ev.typ == "conductor" {
		if sq.scoped {
			return nil, false
		}
	} else {
		if sq.node != "" && ev.nodeUUID != sq.node {
			return nil, false
		}
		if sq.filter != nil {
			if ev.typ == "node" {
				if !sq.filter(ev.before) && !sq.filter(ev.after) {
					return nil, false
				}
			} else {
				n, err := s.st.Node(ev.nodeUUID)
				if err != nil || !sq.filter(n) {
					return nil, false
				}
			}
		}
	}
	var mask uint8
	if sq.redact != nil && ev.typ == "node" && len(ev.fields) > 0 {
		n := ev.after
		if n.UUID == "" {
			n = ev.before
		}
		if mask = sq.redact.mask(n); mask != 0 {
			ev = ch.Memo(streamMaskMemo{ver(c), mask}, func() any { return ev.masked(ch, mask) }).(*streamEvent)
		}
	}
	if sq.fields == nil {
		return ev.frame, true
	}
	if ev.op == store.OpUpdate && !slices.ContainsFunc(ev.changed, func(k string) bool { return sq.fields[k] }) {
		return nil, false
	}
	key := sq.fieldsMemo
	if mask != 0 {
		k := sq.fieldsKey
		k.mask = mask
		key = k
	}
	return ch.Memo(key, func() any { return sseFrame(ch.Pos, ev.typ, ev.marshal(sq.fields)) }).([]byte), true
}

// sseFrame is an event as written to every client that sees it (id,
// event and data lines): encoded once per change and shared.
func sseFrame(pos store.Position, typ string, data []byte) []byte {
	b := make([]byte, 0, len(data)+len(typ)+32)
	b = append(b, "id: "...)
	b = append(b, pos.String()...)
	b = append(b, "\nevent: "...)
	b = append(b, typ...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// errFeedTooOld is the answer to a resume from a position the feed no
// longer holds.
func errFeedTooOld(err error) *Error {
	return errf(http.StatusGone, "The change feed no longer holds the changes after the position asked for (%v); list the resources again and open the stream without Last-Event-ID.", err)
}

func (s *Server) eventStream(c echo.Context) error {
	feed, ok := s.st.(store.Feed)
	if !ok {
		return notFound("The change feed is not available with this store.")
	}
	if h := c.Request().Header; h.Get(hdrVersion) == "" && h.Get(hdrLegacyVersion) == "" {
		// A browser's EventSource sends no headers of its own: without a
		// version, the feed renders at the latest.
		c.Set(versionKey, Version(MaxMinor))
	}
	sq, err := s.parseStreamQuery(c)
	if err != nil {
		return err
	}
	// Changes are rendered once for every client, unmasked; a masked
	// caller's redactions are applied to them per client (pass) and to
	// its snapshot's rows.
	sq.redact, _ = c.Get(redactKey).(*fieldRedactor)
	sq.renderMemo = streamMemo{ver(c)}
	c.Set(redactKey, nil)
	snapshot, snapFields, err := streamSnapshot(c, sq)
	if err != nil {
		return err
	}
	var from *store.Position
	last := c.Request().Header.Get("Last-Event-ID")
	if since := c.QueryParam("since"); since != "" {
		last = since
	}
	if last != "" {
		p, err := store.ParsePosition(last)
		if err != nil {
			return badRequest("Invalid Last-Event-ID (or since): %q is not a position of the change feed", last)
		}
		from = &p
		snapshot = false // a client that resumes has its records
	}
	cur, err := feed.Watch(from)
	if errors.Is(err, store.ErrTooOld) {
		return errFeedTooOld(err)
	}
	if err != nil {
		return err
	}
	w := c.Response()
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	// HTTP/1.1: no chunked encoding, the body ends when the connection
	// closes (as the SSE specification recommends; net/http then sends
	// Connection: close). Each batch of events is then one write(2): a
	// chunked batch past the server's 4 KiB buffer took three (the chunk
	// header, the data, and the trailing CRLF at the flush), which with a
	// thousand watchers was a third of the conductor's CPU. HTTP/2 has no
	// transfer encoding and ignores it.
	if c.Request().ProtoMajor == 1 {
		h.Set("Transfer-Encoding", "identity")
	}
	w.WriteHeader(http.StatusOK)
	lim := s.cfg.Stream.orDefaults()
	rc := http.NewResponseController(w)
	// The stream outlives the server's read and write timeouts: no read
	// deadline (a gone client fails a write), one per write instead.
	_ = rc.SetReadDeadline(time.Time{})
	write := func(b []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(lim.WriteTimeout))
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "retry: 1000\nid: %s\nevent: ready\ndata: {\"position\":%q}\n\n", cur.Position(), cur.Position())
	if snapshot {
		s.writeSnapshot(c, &buf, sq, cur.Position(), snapFields)
	}
	if err := write(buf.Bytes()); err != nil {
		return nil
	}
	ctx := c.Request().Context()
	openStreams.Add(1)
	defer openStreams.Add(-1)
	tick := time.NewTicker(StreamKeepalive)
	defer tick.Stop()
	sent := cur.Position()
	told, wrote := sent, time.Now() // the last id written, and when
	pause := flushInterval()        // the wait after a write
	for {
		if d := pause - time.Since(wrote); d > 0 {
			time.Sleep(d)
		}
		cs, rest, err := cur.Next(ctx.Done(), tick.C, 256)
		pause = flushInterval()
		buf.Reset()
		switch {
		case err != nil:
			// The changes after the client's position are gone: it must
			// list again (a reconnect with its last id gets the 410).
			writeStreamError(&buf, errFeedTooOld(err), sent)
			_ = write(buf.Bytes())
			return nil
		case ctx.Err() != nil:
			return nil
		case cs == nil:
			buf.WriteString(": keepalive\n\n")
			if sent != told {
				fmt.Fprintf(&buf, "id: %s\n\n", sent)
				told = sent
			}
		}
		for _, ch := range cs {
			ev := s.renderChange(c, sq.renderMemo, ch)
			sent = ch.Pos
			frame, ok := s.pass(c, sq, ch, ev)
			if !ok {
				continue
			}
			buf.Write(frame)
			told = sent
		}
		if rest > lim.Buffer {
			writeStreamError(&buf, errf(http.StatusServiceUnavailable,
				"This client fell %d changes behind the change feed (the bound is %d) and is cut off; reconnect with Last-Event-ID %s to resume.", rest, lim.Buffer, sent), sent)
			_ = write(buf.Bytes())
			return nil
		}
		if buf.Len() == 0 && sent != told && time.Since(wrote) > time.Second {
			// Changes this client does not see: an id alone (no event)
			// moves its resume point on, now and then.
			fmt.Fprintf(&buf, "id: %s\n\n", sent)
			told = sent
		}
		if buf.Len() == 0 {
			continue
		}
		if err := write(buf.Bytes()); err != nil {
			return nil
		}
		wrote = time.Now()
	}
}

// writeStreamError writes an "error" event with Ironic's error document
// and the position to resume from.
func writeStreamError(buf *bytes.Buffer, e *Error, resume store.Position) {
	body, _ := json.Marshal(e.Body())
	var doc map[string]any
	_ = json.Unmarshal(body, &doc)
	if doc == nil {
		doc = map[string]any{}
	}
	doc["code"], doc["resume"] = e.Code, resume.String()
	data, _ := json.Marshal(doc)
	fmt.Fprintf(buf, "event: error\ndata: %s\n\n", strings.ReplaceAll(string(data), "\n", " "))
}
