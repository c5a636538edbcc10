package manager

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/ferric-metal/ferric/ipa/protocol"
)

// The HTTP agent client keeps one connection for the status polls of a
// running command (GETs), opens a new one for every command (POSTs, not
// retried), and a poll whose kept connection the agent closed (a ramdisk
// restarted) is sent again on a new one.
func TestHTTPAgentPollsKeepConnection(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("agent_token") != "tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(protocol.CommandResult{ID: "c1", CommandName: "prepare_image", CommandStatus: protocol.StatusRunning})
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	ctx := context.Background()
	ag := NewHTTPAgentClient(nil)
	ref := AgentRef{URL: srv.URL, Token: "tok"}
	for i := range 5 {
		res, err := ag.Status(ctx, ref, "c1")
		if err != nil || res.CommandStatus != protocol.StatusRunning {
			t.Fatalf("poll %d: %v %+v", i, err, res)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("5 polls opened %d connections, want 1", n)
	}
	for range 2 {
		if _, err := ag.Run(ctx, ref, "standby.prepare_image", map[string]any{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("2 commands after the polls: %d connections in all, want 3", n)
	}
	srv.CloseClientConnections()
	if res, err := ag.Status(ctx, ref, "c1"); err != nil || res.ID != "c1" {
		t.Fatalf("poll after the agent closed the connection: %v %+v", err, res)
	}
}
