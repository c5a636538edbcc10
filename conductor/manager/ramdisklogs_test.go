package manager

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
)

// logsAgent is an agent's command API on a real socket: finalize_rescue
// succeeds or fails (finalizeOK), log.collect_system_logs answers an
// archive.
type logsAgent struct {
	finalizeOK bool
	archive    []byte
}

func (a *logsAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct{ Name string }
	json.NewDecoder(r.Body).Decode(&body)
	res := map[string]any{"id": "1", "command_name": body.Name, "command_status": "SUCCEEDED"}
	switch body.Name {
	case "log.collect_system_logs":
		res["command_result"] = map[string]any{"system_logs": base64.StdEncoding.EncodeToString(a.archive)}
	case "rescue.finalize_rescue":
		if !a.finalizeOK {
			res["command_status"] = "FAILED"
			res["command_error"] = map[string]any{"type": "CommandExecutionError", "message": "no /etc"}
		}
	}
	json.NewEncoder(w).Encode(res)
}

// savedLogs records what the manager stores.
type savedLogs struct {
	mu    sync.Mutex
	saved []string // node/label
	data  [][]byte
}

func (s *savedLogs) SaveRamdiskLogs(n *store.Node, label string, data []byte) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saved = append(s.saved, n.UUID+"/"+label)
	s.data = append(s.data, data)
	return "x.tar.gz", nil
}

func (s *savedLogs) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.saved...)
}

// TestRamdiskLogsOnFailure: a rescue whose agent fails finalize_rescue
// has the agent's logs collected and stored (label rescue) before the
// failure is recorded, unless deploy_logs_collect is never; a successful
// rescue collects nothing with on_failure; an agent silent for longer
// than two heartbeat timeouts is not asked.
func TestRamdiskLogsOnFailure(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("agent log"))
	zw.Close()
	for _, c := range []struct {
		name, policy string
		finalizeOK   bool
		want         int
		state        sm.State
	}{
		{"on_failure, failed", LogsOnFailure, false, 1, sm.RescueFailed},
		{"default, failed", "", false, 1, sm.RescueFailed},
		{"never, failed", LogsNever, false, 0, sm.RescueFailed},
		{"on_failure, rescued", LogsOnFailure, true, 0, sm.Rescue},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, err := store.OpenBolt(filepath.Join(t.TempDir(), "db"))
			if err != nil {
				t.Fatal(err)
			}
			logs := &savedLogs{}
			ctx, cancel := context.WithCancel(context.Background())
			m := New(Config{Store: st, Hostname: "test-conductor", Drivers: fakeDrivers("boot", "redfish-virtual-media", &recordingBooter{}),
				RescueWaitTimeout: time.Hour, DeployLogsCollect: c.policy, RamdiskLogs: logs})
			done := run(t, ctx, m)
			defer func() { cancel(); <-done; st.Close() }()
			srv := httptest.NewServer(&logsAgent{finalizeOK: c.finalizeOK, archive: gz.Bytes()})
			defer srv.Close()
			const u = "71111111-2222-3333-4444-555555555555"
			activeNode(t, st, u, nil)
			pw := "pw"
			if err := m.Provision(ctx, u, ProvisionRequest{Target: "rescue", RescuePassword: &pw, Version: 38}); err != nil {
				t.Fatal(err)
			}
			waitNode(t, st, u, func(n *store.Node) bool { return n.ProvisionState == string(sm.RescueWait) })
			_, token, err := m.Lookup(ctx, nil, u)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Heartbeat(ctx, u, Heartbeat{CallbackURL: srv.URL, AgentToken: token, AgentVersion: "1"}); err != nil {
				t.Fatal(err)
			}
			waitNode(t, st, u, func(n *store.Node) bool { return n.ProvisionState == string(c.state) })
			got := logs.list()
			if len(got) != c.want || (c.want == 1 && (got[0] != u+"/rescue" || !bytes.Equal(logs.data[0], gz.Bytes()))) {
				t.Errorf("stored logs %v, want %d of %s/rescue with the agent's archive", got, c.want, u)
			}
		})
	}
	// An agent silent for longer than two heartbeat timeouts (a wait
	// timeout) is not asked; one heard recently is.
	srv := httptest.NewServer(&logsAgent{archive: gz.Bytes()})
	defer srv.Close()
	for _, c := range []struct {
		name string
		last time.Time
		want int
	}{{"silent", time.Now().Add(-time.Hour), 0}, {"heard", time.Now().Add(-time.Minute), 1}} {
		logs := &savedLogs{}
		m := New(Config{Hostname: "test-conductor", RamdiskLogs: logs})
		n := fakeNode("81111111-2222-3333-4444-555555555555")
		n.DriverInternalInfo = store.Object{"agent_url": srv.URL, "agent_secret_token": "t", "agent_last_heartbeat": c.last.UTC().Format(time.RFC3339)}
		m.collectRamdiskLogs(context.Background(), n, "deploy")
		if got := logs.list(); len(got) != c.want {
			t.Errorf("%s agent: stored %v, want %d", c.name, got, c.want)
		}
	}
	if err := ValidDeployLogsCollect("sometimes"); err == nil {
		t.Error("deploy_logs_collect sometimes accepted")
	}
}
