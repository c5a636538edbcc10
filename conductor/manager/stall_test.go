package manager

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// scriptedAgent answers Run with RUNNING and each Status with the next
// of its answers (the last one repeated); an answer with a nil result is
// an unreachable agent.
type scriptedAgent struct {
	mu      sync.Mutex
	answers []*protocol.CommandResult
	polls   int
}

func (a *scriptedAgent) Run(context.Context, AgentRef, string, any) (*protocol.CommandResult, error) {
	return &protocol.CommandResult{ID: "c1", CommandStatus: protocol.StatusRunning}, nil
}

func (a *scriptedAgent) Status(ctx context.Context, _ AgentRef, _ string) (*protocol.CommandResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.answers[min(a.polls, len(a.answers)-1)]
	a.polls++
	if r == nil {
		return nil, errors.New("dial tcp 10.99.0.100:9999: connect: no route to host")
	}
	return r, nil
}

func running(phase string, written, total int64) *protocol.CommandResult {
	b, _ := json.Marshal(protocol.ProgressResult{Progress: protocol.Progress{Phase: phase, BytesWritten: written, TotalBytes: total}})
	return &protocol.CommandResult{ID: "c1", CommandStatus: protocol.StatusRunning, CommandResult: b}
}

// TestRunAgentStalls runs an agent command whose agent stops moving or
// answering: it fails after the stall limit (not the wait timeout) with
// the phase, the bytes written of the total and when the agent was last
// heard; one that moves and ends succeeds, and with detection off an
// unreachable agent fails at once as before.
func TestRunAgentStalls(t *testing.T) {
	const total = 64 << 20
	done := &protocol.CommandResult{ID: "c1", CommandStatus: protocol.StatusSucceeded}
	tests := []struct {
		name    string
		limit   time.Duration
		answers []*protocol.CommandResult
		want    []string // in the error; nil: success
		maxTime time.Duration
	}{
		{"write stuck", 3 * time.Second, []*protocol.CommandResult{running("writing", 1<<20, total), running("writing", 12<<20, total)},
			[]string{"made no progress for", "phase writing: 12582912 of 67108864 bytes written (18.8%)", "agent last heard at"}, 8 * time.Second},
		{"agent gone", 3 * time.Second, []*protocol.CommandResult{running("writing", 5<<20, total), nil},
			[]string{"has not been heard from for", "phase writing: 5242880 of 67108864 bytes written", "no route to host"}, 8 * time.Second},
		{"moves and ends", 3 * time.Second, []*protocol.CommandResult{running("writing", 1<<20, total), running("writing", 30<<20, total),
			running("writing", 60<<20, total), done}, nil, 8 * time.Second},
		{"detection off", -1, []*protocol.CommandResult{nil}, []string{"no route to host"}, 3 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := store.OpenBolt(t.TempDir() + "/db")
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			ctx := context.Background()
			a := &scriptedAgent{answers: tc.answers}
			m := New(Config{Store: st, Hostname: "c", Agent: a, StallTimeout: tc.limit})
			n := fakeNode("61111111-2222-3333-4444-555555555555")
			n.DriverInternalInfo["agent_url"] = "http://10.99.0.100:9999"
			if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = m.runAgent(ctx, n.UUID, "standby.prepare_image", nil)
			took := time.Since(start)
			if took > tc.maxTime {
				t.Errorf("runAgent took %s, want under %s", took, tc.maxTime)
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("runAgent = %v, want success", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("runAgent succeeded, want an error with %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tc.limit > 0 {
				var se *StallError
				if !errors.As(err, &se) {
					t.Errorf("error %T is not a StallError", err)
				}
				if took < tc.limit {
					t.Errorf("failed after %s, before the stall limit %s", took, tc.limit)
				}
				got, _ := st.Node(n.UUID)
				p, _ := got.DriverInternalInfo[agentProgressKey].(map[string]any)
				if p["phase"] != "writing" || p["total_bytes"] != float64(total) || p["last_heard"] == nil {
					t.Errorf("agent_progress %v, want the last progress and last_heard", p)
				}
			}
		})
	}
}

func TestCommandWatchRecord(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := newCommandWatch("standby.prepare_image", time.Minute, t0)
	w.update(protocol.Progress{Phase: "writing", BytesWritten: 0, TotalBytes: 100 << 20}, t0)
	w.heard(t0.Add(10 * time.Second))
	w.update(protocol.Progress{Phase: "writing", BytesWritten: 20 << 20, TotalBytes: 100 << 20}, t0.Add(10*time.Second))
	r := w.record(t0.Add(10 * time.Second))
	if r["rate_bytes_per_second"] != int64(2<<20) || r["estimated_end"] != "2026-01-01T00:00:50Z" || r["bytes_written"] != int64(20<<20) {
		t.Errorf("record = %v, want 2 MiB/s and the end 40 s later", r)
	}
	if err := w.stalled(t0.Add(65 * time.Second)); err != nil {
		t.Errorf("stalled 55 s after the last move with a 1 min limit: %v", err)
	}
	if err := w.stalled(t0.Add(71 * time.Second)); err == nil {
		t.Errorf("not stalled 61 s after the last move and the last answer")
	}
}
