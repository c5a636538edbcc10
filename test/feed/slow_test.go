package feed

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/api"
	"github.com/ferric-metal/ferric/conductor/service"
)

// TestStreamSlowReader: a client that stops reading (a 4 KiB receive
// buffer, nothing read) is cut off once a write to it waits past the
// bound, while the conductor goes on answering; it then resumes with
// its last id and gets every change, once.
func TestStreamSlowReader(t *testing.T) {
	_, c := startBolt(t, func(cfg *service.Config) {
		cfg.Stream = api.StreamLimits{Buffer: 50, WriteTimeout: 2 * time.Second}
	})
	c.do("POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "slow"}, 201)

	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(c.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/events/stream?types=node HTTP/1.1\r\nHost: ferric\r\nAccept: text/event-stream\r\n\r\n")

	// 100 changes of ~64 KiB each: more than the socket buffers hold.
	blob := strings.Repeat("x", 64<<10)
	const changes = 100
	var slowest time.Duration
	for i := range changes {
		t0 := time.Now()
		c.do("PATCH", "/v1/nodes/slow", []map[string]any{{"op": "add", "path": "/extra/blob", "value": blob},
			{"op": "add", "path": "/extra/seq", "value": i}}, 200)
		slowest = max(slowest, time.Since(t0))
	}
	// Past the write bound, the conductor gives up on the client.
	time.Sleep(4 * time.Second)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &stream{resp: resp, events: make(chan event, 1<<12), done: make(chan struct{}), raw: true}
	go s.read()
	seen := map[int]int{}
	record := func(ev event) {
		var seq int
		if i := strings.Index(ev.Raw, `"seq":`); i >= 0 {
			fmt.Sscanf(ev.Raw[i+6:], "%d", &seq)
			seen[seq]++
		}
	}
	var last string
	for {
		ev, ok := s.next(10 * time.Second)
		if !ok {
			break
		}
		if ev.Type == "node" {
			record(ev)
			last = ev.ID
		}
	}
	select {
	case <-s.done:
	default:
		t.Fatalf("the stalled client's stream is still open after %d changes", len(seen))
	}
	if len(seen) >= changes {
		t.Fatalf("the stalled client got all %d changes: it was not cut off", changes)
	}
	t.Logf("stalled client: cut off after %d of %d changes (slowest PATCH meanwhile %s)", len(seen), changes, slowest)

	// It resumes from its last id and gets the rest, once.
	s2, code, body, err := openMode(context.Background(), c.base, "?types=node", last, true)
	if err != nil || code != 200 {
		t.Fatalf("resume from %s: %d %s %v", last, code, body, err)
	}
	defer s2.Close()
	for len(seen) < changes {
		ev, ok := s2.next(10 * time.Second)
		if !ok {
			t.Fatalf("after the resume: %d of %d changes", len(seen), changes)
		}
		if ev.Type == "node" {
			record(ev)
		}
	}
	for i := range changes {
		if seen[i] != 1 {
			t.Errorf("change %d seen %d times, want once", i, seen[i])
		}
	}
}
