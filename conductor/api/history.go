package api

import (
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/redact"
	"github.com/ferric-metal/ferric/conductor/store"
)

// Node history (API 1.78): the errors journaled whenever a node's
// last_error was set (see store.HistoryEvent).

var historySortKeys = map[string]func(a, b *store.HistoryEvent) int{
	"id":         func(a, b *store.HistoryEvent) int { return cmpInt(a.ID, b.ID) },
	"uuid":       func(a, b *store.HistoryEvent) int { return strings.Compare(a.UUID, b.UUID) },
	"created_at": func(a, b *store.HistoryEvent) int { return a.CreatedAt.Compare(b.CreatedAt) },
	"severity":   func(a, b *store.HistoryEvent) int { return strings.Compare(a.Severity, b.Severity) },
	"event_type": func(a, b *store.HistoryEvent) int { return strings.Compare(a.EventType, b.EventType) },
	"event":      func(a, b *store.HistoryEvent) int { return strings.Compare(a.Event, b.Event) },
	"conductor":  func(a, b *store.HistoryEvent) int { return strings.Compare(a.Conductor, b.Conductor) },
}

// maxEventSummary is the length of an event's text in a list without
// detail (Ironic cuts longer ones to 251 characters and "...").
const maxEventSummary = 255

func (s *Server) nodeHistory(c echo.Context, n *store.Node) error {
	detail := false
	if q := c.QueryParams(); q.Has("detail") {
		var ok bool
		if detail, ok = ironichttp.ParseBool(q.Get("detail")); !ok {
			return badRequest("Invalid value for detail: %s", q.Get("detail"))
		}
	}
	page, perr := parsePaging(c, historySortKeys, nil, nil)
	if perr != nil {
		return perr
	}
	all, err := s.st.NodeHistory(n.UUID)
	if err != nil {
		return err
	}
	items, next, perr := paginate(c, all, page, historySortKeys, func(e *store.HistoryEvent) string { return e.UUID },
		func(id string) (*store.HistoryEvent, error) { return findEvent(all, id) })
	if perr != nil {
		return perr
	}
	out := make([]map[string]any, len(items))
	for i, e := range items {
		out[i] = historyEntry(c, n.UUID, e, detail)
	}
	return c.JSON(http.StatusOK, collection("history", out, next))
}

func (s *Server) nodeHistoryEvent(c echo.Context, n *store.Node) error {
	all, err := s.st.NodeHistory(n.UUID)
	if err != nil {
		return err
	}
	e, err := findEvent(all, c.Param("event"))
	if err != nil {
		return notFound("Node history record %s could not be found.", c.Param("event"))
	}
	return c.JSON(http.StatusOK, historyEntry(c, n.UUID, e, true))
}

func findEvent(all []*store.HistoryEvent, id string) (*store.HistoryEvent, error) {
	for _, e := range all {
		if strings.EqualFold(e.UUID, id) {
			return e, nil
		}
	}
	return nil, store.ErrNotFound
}

// historyEntry renders an event: uuid, created_at, severity and event (cut
// to maxEventSummary characters) in lists; event_type, conductor and user
// too, with the whole event, in detail.
func historyEntry(c echo.Context, node string, e *store.HistoryEvent, detail bool) map[string]any {
	event := redact.String(e.Event)
	m := map[string]any{
		"uuid": e.UUID, "created_at": ironicTime(e.CreatedAt), "severity": e.Severity, "event": event,
		"links": []map[string]string{{"href": baseURL(c) + "/v1/nodes/" + node + "/history/" + e.UUID, "rel": "self"}},
	}
	if detail {
		m["event_type"], m["conductor"], m["user"] = e.EventType, e.Conductor, e.User
	} else if utf8.RuneCountInString(event) > maxEventSummary {
		m["event"] = string([]rune(event)[:maxEventSummary-4]) + "..."
	}
	return m
}
