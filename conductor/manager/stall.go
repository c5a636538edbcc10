package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// DefaultStallTimeout is how long a running agent command may go without
// the agent being heard from, or without its write making progress,
// before the deploy or cleaning fails: the agent's heartbeat_timeout.
const DefaultStallTimeout = HeartbeatTimeout * time.Second

// agentProgressKey is the driver_internal_info key where a deploy or
// cleaning shows its running agent command: command, phase,
// bytes_written, total_bytes, rate_bytes_per_second, estimated_end,
// last_heard, updated_at.
const agentProgressKey = "agent_progress"

// commandWatch follows one running agent command: when the agent was last
// heard from (an answered poll or a heartbeat) and when its reported
// progress last moved.
type commandWatch struct {
	command string
	limit   time.Duration // <= 0: no stall detection
	started time.Time

	lastHeard   time.Time
	lastErr     error
	progress    protocol.Progress
	hasProgress bool
	lastMoved   time.Time
	// rate window: bytes and time at the start of the current phase.
	phaseStart      time.Time
	phaseStartBytes int64
}

func newCommandWatch(command string, limit time.Duration, now time.Time) *commandWatch {
	return &commandWatch{command: command, limit: limit, started: now, lastHeard: now, lastMoved: now}
}

// heard records an answer from the agent at now.
func (w *commandWatch) heard(now time.Time) {
	if now.After(w.lastHeard) {
		w.lastHeard = now
	}
	w.lastErr = nil
}

// heartbeat records the agent's last heartbeat (RFC 3339), if newer.
func (w *commandWatch) heartbeat(s string) {
	if at, err := time.Parse(time.RFC3339Nano, s); err == nil && at.After(w.lastHeard) {
		w.lastHeard = at
	}
}

// update records the progress a poll reported; it reports whether it
// moved (new phase or more bytes).
func (w *commandWatch) update(p protocol.Progress, now time.Time) bool {
	if p.Phase == "" {
		return false
	}
	moved := !w.hasProgress || p.Phase != w.progress.Phase || p.BytesWritten != w.progress.BytesWritten
	switch {
	case !w.hasProgress: // the first phase: written since the command started
		w.phaseStart, w.phaseStartBytes = w.started, 0
	case p.Phase != w.progress.Phase:
		w.phaseStart, w.phaseStartBytes = now, p.BytesWritten
	}
	if moved {
		w.lastMoved = now
	}
	w.progress, w.hasProgress = p, true
	return moved
}

// rate is the phase's average write rate in bytes per second (0 unknown).
func (w *commandWatch) rate(now time.Time) float64 {
	d := now.Sub(w.phaseStart).Seconds()
	if !w.hasProgress || d < 1 {
		return 0
	}
	return float64(w.progress.BytesWritten-w.phaseStartBytes) / d
}

// record is what the node shows in driver_internal_info.agent_progress.
func (w *commandWatch) record(now time.Time) map[string]any {
	r := map[string]any{"command": w.command, "started_at": w.started.UTC().Format(time.RFC3339),
		"last_heard": w.lastHeard.UTC().Format(time.RFC3339), "updated_at": now.UTC().Format(time.RFC3339)}
	if !w.hasProgress {
		r["phase"] = "running"
		return r
	}
	p := w.progress
	r["phase"], r["bytes_written"], r["total_bytes"] = p.Phase, p.BytesWritten, p.TotalBytes
	if rate := w.rate(now); rate > 0 {
		r["rate_bytes_per_second"] = int64(rate)
		if p.TotalBytes > p.BytesWritten {
			eta := now.Add(time.Duration(float64(p.TotalBytes-p.BytesWritten) / rate * float64(time.Second)))
			r["estimated_end"] = eta.UTC().Format(time.RFC3339)
		}
	}
	return r
}

// stalled returns the error that fails the command when the agent has
// not been heard from, or its progress has not moved, for the limit.
func (w *commandWatch) stalled(now time.Time) error {
	if w.limit <= 0 {
		return nil
	}
	silent, still := now.Sub(w.lastHeard), now.Sub(w.lastMoved)
	switch {
	case silent > w.limit:
		msg := fmt.Sprintf("the agent has not been heard from for %s (limit %s) during %s, %s; agent last heard at %s",
			silent.Round(time.Second), w.limit, w.command, w.progressText(), w.lastHeard.UTC().Format(time.RFC3339))
		if w.lastErr != nil {
			msg += fmt.Sprintf("; last error: %v", w.lastErr)
		}
		return &StallError{msg}
	case w.hasProgress && still > w.limit:
		return &StallError{fmt.Sprintf("the agent's %s made no progress for %s (limit %s), %s; agent last heard at %s (%s ago)",
			w.command, still.Round(time.Second), w.limit, w.progressText(), w.lastHeard.UTC().Format(time.RFC3339),
			now.Sub(w.lastHeard).Round(time.Second))}
	}
	return nil
}

func (w *commandWatch) progressText() string {
	if !w.hasProgress {
		return "no progress reported"
	}
	p := w.progress
	if p.TotalBytes > 0 {
		return fmt.Sprintf("phase %s: %d of %d bytes written (%.1f%%)", p.Phase, p.BytesWritten, p.TotalBytes,
			100*float64(p.BytesWritten)/float64(p.TotalBytes))
	}
	return fmt.Sprintf("phase %s: %d bytes written", p.Phase, p.BytesWritten)
}

// pollTimeout bounds one status request, so that an agent that vanished
// is noticed within the stall limit.
func (w *commandWatch) pollTimeout() time.Duration {
	if w.limit <= 0 {
		return 0
	}
	return min(max(w.limit/3, 2*time.Second), 30*time.Second)
}

// A running command is polled pollFirst after it started, then at
// intervals that double up to pollMax (at most a quarter of the stall
// limit, so that a stalled write is seen in time). The agent's heartbeat
// brings the next poll forward, as Ironic checks a running command on
// every heartbeat: the agent heartbeats as soon as a command ends (a
// forced heartbeat, at least 5 s after its last one, as IPA's), so a
// long command's end is seen at once while it is polled rarely.
// pollWakeGap only keeps agents that heartbeat far more often than a
// real one (the heartbeat benchmark's) from being polled on every beat;
// it must stay short, since every second of it can be a second added to
// each deploy and cleaning step.
const (
	pollFirst   = time.Second
	pollMax     = 10 * time.Second
	pollWakeGap = time.Second
)

// pollTimes are a manager's pollFirst, pollMax and pollWakeGap (shorter
// in tests).
type pollTimes struct{ first, max, wakeGap time.Duration }

var defaultPollTimes = pollTimes{pollFirst, pollMax, pollWakeGap}

// pollSchedule says when a running command is polled next.
type pollSchedule struct {
	interval, max, wakeGap time.Duration
	last                   time.Time // the last poll (or the command's start)
}

func newPollSchedule(pt pollTimes, limit time.Duration, start time.Time) *pollSchedule {
	m := pt.max
	if limit > 0 {
		m = min(pt.max, max(pt.first, limit/4))
	}
	return &pollSchedule{interval: pt.first, max: m, wakeGap: pt.wakeGap, last: start}
}

// next is when the command is polled unless its agent heartbeats.
func (p *pollSchedule) next() time.Time { return p.last.Add(p.interval) }

// woken is when the command is polled after its agent heartbeated at
// now: at once, but not sooner than the wake gap after the last poll,
// nor later than next.
func (p *pollSchedule) woken(now time.Time) time.Time {
	t := p.last.Add(p.wakeGap)
	if t.Before(now) {
		t = now
	}
	if n := p.next(); n.Before(t) {
		t = n
	}
	return t
}

// polled records a poll at now; the next one waits twice as long.
func (p *pollSchedule) polled(now time.Time) {
	p.last = now
	p.interval = min(2*p.interval, p.max)
}

// untilPoll waits until the next poll of ps is due (ctx's error when ctx
// ends first); beats tell it the agent heartbeated.
func untilPoll(ctx context.Context, ps *pollSchedule, beats <-chan struct{}) error {
	due := ps.next()
	for {
		t := time.NewTimer(time.Until(due))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-beats:
			t.Stop()
			due = ps.woken(time.Now())
		case <-t.C:
			return nil
		}
	}
}

// watchHeartbeats returns the channel that tells the waiter of node
// uuid's running command that its agent heartbeated; unwatch with the
// function returned.
func (m *Manager) watchHeartbeats(uuid string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	m.polls.Store(uuid, ch)
	return ch, func() { m.polls.CompareAndDelete(uuid, ch) }
}

// heartbeated tells the waiter of node uuid's running command, if any,
// that its agent heartbeated.
func (m *Manager) heartbeated(uuid string) {
	if v, ok := m.polls.Load(uuid); ok {
		select {
		case v.(chan struct{}) <- struct{}{}:
		default:
		}
	}
}

// StallError is a running agent command given up on: the agent went
// silent or its write stopped moving.
type StallError struct{ msg string }

func (e *StallError) Error() string { return e.msg }

// waitCommand polls a running agent command until it ends (on the
// pollSchedule, and when its agent heartbeats), recording its progress on
// the node and failing it when it stalls.
func (m *Manager) waitCommand(ctx context.Context, uuid, name string, ref AgentRef, res *protocol.CommandResult) (*protocol.CommandResult, error) {
	start := time.Now()
	w := newCommandWatch(name, m.cfg.StallTimeout, start)
	ps := newPollSchedule(m.pollTimes, m.cfg.StallTimeout, start)
	beats, unwatch := m.watchHeartbeats(uuid)
	defer unwatch()
	lastRecord := time.Time{}
	for res.CommandStatus == protocol.StatusRunning {
		if err := untilPoll(ctx, ps, beats); err != nil {
			return nil, err
		}
		ps.polled(time.Now())
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if d := w.pollTimeout(); d > 0 {
			pctx, cancel = context.WithTimeout(ctx, d)
		}
		r, err := m.cfg.Agent.Status(pctx, ref, res.ID)
		cancel()
		now := time.Now()
		if err != nil {
			if ctx.Err() != nil || w.limit <= 0 {
				return nil, err
			}
			w.lastErr = err
			if n, nerr := m.st.Node(uuid); nerr == nil {
				hb, _ := n.DriverInternalInfo["agent_last_heartbeat"].(string)
				w.heartbeat(hb)
			}
			m.log.Warn("manager: agent did not answer a status poll", "node", uuid, "command", name, "err", err,
				"silent", now.Sub(w.lastHeard).Round(time.Second), "limit", w.limit)
			if serr := w.stalled(now); serr != nil {
				m.recordProgress(ctx, uuid, w, now)
				return nil, serr
			}
			continue
		}
		res = r
		w.heard(now)
		var pr protocol.ProgressResult
		moved := false
		if res.CommandStatus == protocol.StatusRunning && len(res.CommandResult) > 0 && json.Unmarshal(res.CommandResult, &pr) == nil {
			moved = w.update(pr.Progress, now)
		}
		if serr := w.stalled(now); serr != nil {
			m.recordProgress(ctx, uuid, w, now)
			return nil, serr
		}
		if now.Sub(lastRecord) >= 2*time.Second && (moved || now.Sub(lastRecord) >= 10*time.Second) {
			lastRecord = now
			m.recordProgress(ctx, uuid, w, now)
			if w.hasProgress {
				m.log.Info("manager: agent progress", "node", uuid, "command", name, "phase", w.progress.Phase,
					"bytes", w.progress.BytesWritten, "total", w.progress.TotalBytes)
			}
		}
	}
	return res, nil
}

// recordProgress shows w on the node (driver_internal_info.agent_progress)
// and, when the command moved, touches provision_updated_at.
func (m *Manager) recordProgress(ctx context.Context, uuid string, w *commandWatch, now time.Time) {
	_ = m.update(ctx, uuid, func(n *store.Node) error {
		if n.DriverInternalInfo == nil {
			n.DriverInternalInfo = store.Object{}
		}
		n.DriverInternalInfo[agentProgressKey] = w.record(now)
		t := now.UTC()
		n.ProvisionUpdatedAt = &t
		return nil
	})
}
