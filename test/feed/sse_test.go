package feed

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// event is one Server-Sent Event.
type event struct {
	ID   string // the stream's last event id once this event was read
	Type string
	Data map[string]any
	// Raw is the data as sent (a stream opened raw decodes no JSON).
	Raw string
	// At is when the event was read.
	At time.Time
}

// stream is an open GET /v1/events/stream, read as a browser's
// EventSource reads it: an "id:" line sets the last event id even in a
// block without data, a block with data is an event.
type stream struct {
	resp   *http.Response
	events chan event
	done   chan struct{}

	mu     sync.Mutex
	lastID string
	err    error
	raw    bool
}

// open starts a stream; lastID, when set, is sent as Last-Event-ID. A
// status other than 200 returns the response with its body read.
func open(ctx context.Context, base, query, lastID string) (*stream, int, []byte, error) {
	return openMode(ctx, base, query, lastID, false)
}

// openMode is open; raw streams keep each event's data undecoded.
func openMode(ctx context.Context, base, query, lastID string, raw bool) (*stream, int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/v1/events/stream"+query, nil)
	if err != nil {
		return nil, 0, nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := streamClient.Do(req)
	if err != nil {
		return nil, 0, nil, err
	}
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, resp.StatusCode, body, nil
	}
	s := &stream{resp: resp, events: make(chan event, 1<<12), done: make(chan struct{}), lastID: lastID, raw: raw}
	go s.read()
	return s, 200, nil, nil
}

// streamClient has no overall timeout and enough idle connections for
// many streams.
var streamClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2000, MaxConnsPerHost: 0, DisableCompression: true}}

func (s *stream) read() {
	defer close(s.done)
	defer close(s.events)
	r := bufio.NewReaderSize(s.resp.Body, 64<<10)
	var typ, id string
	var data bytes.Buffer
	hasID := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			s.mu.Lock()
			if hasID {
				s.lastID = id
			}
			last := s.lastID
			s.mu.Unlock()
			if data.Len() > 0 {
				ev := event{ID: last, Type: typ, Raw: string(bytes.TrimSuffix(data.Bytes(), []byte("\n"))), At: time.Now()}
				if ev.Type == "" {
					ev.Type = "message"
				}
				if !s.raw {
					_ = json.Unmarshal([]byte(ev.Raw), &ev.Data)
				}
				s.events <- ev
			}
			typ, hasID = "", false
			data.Reset()
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, val, _ := strings.Cut(line, ":")
		val = strings.TrimPrefix(val, " ")
		switch field {
		case "event":
			typ = val
		case "data":
			data.WriteString(val)
			data.WriteByte('\n')
		case "id":
			id, hasID = val, true
		}
	}
}

// LastID is the stream's last event id (what a reconnect sends).
func (s *stream) LastID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastID
}

func (s *stream) Close() { s.resp.Body.Close(); <-s.done }

// next returns the next event within d (ok false: none, or the stream
// ended).
func (s *stream) next(d time.Duration) (event, bool) {
	select {
	case ev, ok := <-s.events:
		return ev, ok
	case <-time.After(d):
		return event{}, false
	}
}

// nextOf returns the next event of type typ, skipping others, failing
// the test after d.
func (s *stream) nextOf(t *testing.T, typ string, d time.Duration) event {
	t.Helper()
	end := time.Now().Add(d)
	for {
		ev, ok := s.next(time.Until(end))
		if !ok {
			t.Fatalf("no %s event within %s", typ, d)
		}
		if ev.Type == typ {
			return ev
		}
	}
}

// mustOpen is open failing the test on anything but a 200, and reads the
// ready event.
func mustOpen(t *testing.T, base, query, lastID string) *stream {
	t.Helper()
	s, code, body, err := open(context.Background(), base, query, lastID)
	if err != nil || code != 200 {
		t.Fatalf("GET /v1/events/stream%s: %d %s %v", query, code, body, err)
	}
	t.Cleanup(s.Close)
	s.nextOf(t, "ready", 5*time.Second)
	return s
}
