package manager

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// A running command is polled 1 s after it started, then at intervals
// that double up to 10 s (a quarter of a short stall limit); a heartbeat
// brings the next poll forward, but not sooner than 1 s after the last.
func TestPollSchedule(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := func(d float64) time.Duration { return time.Duration(d * float64(time.Second)) }
	for _, tc := range []struct {
		name  string
		limit time.Duration
		want  []time.Duration // the polls' times after the start, without heartbeats
	}{
		{"default limit", DefaultStallTimeout, []time.Duration{s(1), s(3), s(7), s(15), s(25), s(35)}},
		{"detection off", -1, []time.Duration{s(1), s(3), s(7), s(15), s(25)}},
		{"20 s limit", 20 * time.Second, []time.Duration{s(1), s(3), s(7), s(12), s(17)}},
		{"3 s limit", 3 * time.Second, []time.Duration{s(1), s(2), s(3), s(4)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := newPollSchedule(defaultPollTimes, tc.limit, t0)
			for i, w := range tc.want {
				if got := ps.next().Sub(t0); got != w {
					t.Fatalf("poll %d at %s, want %s", i+1, got, w)
				}
				ps.polled(ps.next())
			}
		})
	}
	ps := newPollSchedule(defaultPollTimes, DefaultStallTimeout, t0)
	for range 4 {
		ps.polled(ps.next()) // polls at 1, 3, 7, 15 s; the next at 25 s
	}
	for _, tc := range []struct{ beat, want time.Duration }{
		{s(15.5), s(16)}, // 1 s after the last poll
		{s(16), s(16)},   // at once
		{s(21), s(21)},   // at once
		{s(30), s(25)},   // a poll due before the heartbeat: at once
	} {
		if got := ps.woken(t0.Add(tc.beat)).Sub(t0); got != tc.want {
			t.Errorf("heartbeat at %s: poll at %s, want %s", tc.beat, got, tc.want)
		}
	}
}

// finishingAgent runs one long command that ends when told; it counts
// the status polls.
type finishingAgent struct {
	mu    sync.Mutex
	done  bool
	polls int
}

func (a *finishingAgent) Run(context.Context, AgentRef, string, any) (*protocol.CommandResult, error) {
	return &protocol.CommandResult{ID: "c1", CommandStatus: protocol.StatusRunning}, nil
}

func (a *finishingAgent) Status(context.Context, AgentRef, string) (*protocol.CommandResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.polls++
	if a.done {
		return &protocol.CommandResult{ID: "c1", CommandStatus: protocol.StatusSucceeded}, nil
	}
	return &protocol.CommandResult{ID: "c1", CommandStatus: protocol.StatusRunning}, nil
}

func (a *finishingAgent) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.polls
}

// The agent's heartbeats drive the polls of its running command, as in
// Ironic: an agent that heartbeats all the time gets a poll per wake gap,
// not one per heartbeat; one that heartbeats when its command ended (long
// after the last poll) gets a poll at once, not at the next, backed-off
// poll. (Times are scaled down: the first poll at 50 ms, at most 4 s
// apart, heartbeats 200 ms apart at the soonest.)
func TestHeartbeatPollsRunningCommand(t *testing.T) {
	st, err := store.OpenBolt(t.TempDir() + "/db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	a := &finishingAgent{}
	m := New(Config{Store: st, Hostname: "c", Agent: a})
	m.pollTimes = pollTimes{first: 50 * time.Millisecond, max: 4 * time.Second, wakeGap: 200 * time.Millisecond}
	n := fakeNode("71111111-2222-3333-4444-555555555555")
	n.ProvisionState = "deploying"
	n.DriverInternalInfo["agent_url"] = "http://10.99.0.100:9999"
	n.DriverInternalInfo["agent_secret_token"] = "tok"
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutNode(n) }); err != nil {
		t.Fatal(err)
	}
	heartbeat := func() {
		t.Helper()
		if err := m.Heartbeat(ctx, n.UUID, Heartbeat{CallbackURL: "http://10.99.0.100:9999", AgentToken: "tok", AgentVersion: "10.0.0"}); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { _, err := m.runAgent(ctx, n.UUID, "standby.prepare_image", nil); done <- err }()

	// Heartbeats every 10 ms for 2 s: polls at 50, 150, 350, 750 ms and
	// 1.55 s on the timer, the heartbeats' at most one per 200 ms.
	beats := 0
	for time.Since(start) < 2*time.Second {
		heartbeat()
		beats++
		time.Sleep(10 * time.Millisecond)
	}
	polls := a.count()
	if max := 2*time.Second/(200*time.Millisecond) + 2; polls > int(max) || polls < 5 {
		t.Errorf("%d heartbeats in 2 s: %d polls, want 5 to %d", beats, polls, max)
	}
	// Quiet: after ten polls or more the timer's interval is at its cap,
	// the next poll 4 s after the last.
	time.Sleep(1500 * time.Millisecond)
	before := a.count()
	// The command ends and the agent heartbeats: polled at once.
	a.mu.Lock()
	a.done = true
	a.mu.Unlock()
	beat := time.Now()
	heartbeat()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("runAgent = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("runAgent did not return")
	}
	if got := a.count(); got != before+1 {
		t.Errorf("%d polls after the last heartbeat, want 1", got-before)
	}
	// The poll the heartbeat asked for, not the timer's (due over 2 s
	// after the heartbeat).
	if took := time.Since(beat); took > time.Second {
		t.Errorf("the command's end was seen %s after the heartbeat", took)
	}
	if _, ok := m.polls.Load(n.UUID); ok {
		t.Error("the waiter is still registered after the command ended")
	}
}
