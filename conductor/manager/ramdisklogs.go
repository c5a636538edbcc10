package manager

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// Ramdisk logs, as Ironic's [agent]deploy_logs_collect: when a deploy,
// cleaning, inspection or rescue fails while the node's agent is up (and,
// with "always", also at the end of a deploy and of a cleaning) the
// conductor asks the agent for its logs (log.collect_system_logs) and
// keeps them in its RamdiskLogs store. A failed collection is logged and
// never changes the node's outcome.

// The values of Config.DeployLogsCollect.
const (
	LogsOnFailure = "on_failure"
	LogsAlways    = "always"
	LogsNever     = "never"
)

// RamdiskLogsTimeout bounds one collection.
const RamdiskLogsTimeout = 30 * time.Second

// RamdiskLogStore keeps collected archives (gzip'd tar).
type RamdiskLogStore interface {
	SaveRamdiskLogs(n *store.Node, label string, data []byte) (name string, err error)
}

// ValidDeployLogsCollect checks a deploy_logs_collect value.
func ValidDeployLogsCollect(v string) error {
	switch v {
	case "", LogsOnFailure, LogsAlways, LogsNever:
		return nil
	}
	return fmt.Errorf("deploy_logs_collect must be %s, %s or %s, not %q", LogsOnFailure, LogsAlways, LogsNever, v)
}

// logsLabel is the label of a collection in state st ("" for a state
// without a running agent).
func logsLabel(st sm.State) string {
	switch st {
	case sm.Deploying, sm.DeployWait:
		return "deploy"
	case sm.Cleaning, sm.CleanWait:
		return "cleaning"
	case sm.Inspecting, sm.InspectWait:
		return "inspection"
	case sm.Rescuing, sm.RescueWait:
		return "rescue"
	case sm.Servicing, sm.ServiceWait:
		return "servicing"
	}
	return ""
}

// collectLogsOnFailure collects the node's ramdisk logs before a failure
// (cause) is recorded, unless deploy_logs_collect is never or the cause is
// a stall (an agent not heard from, or stuck: asking it would only delay
// the failure).
func (m *Manager) collectLogsOnFailure(ctx context.Context, uuid string, cause error) {
	var stall *StallError
	if m.cfg.DeployLogsCollect == LogsNever || errors.As(cause, &stall) {
		return
	}
	n, err := m.st.Node(uuid)
	if err != nil {
		return
	}
	if label := logsLabel(sm.State(n.ProvisionState)); label != "" {
		m.collectRamdiskLogs(ctx, n, label)
	}
}

// collectLogsAlways collects the node's ramdisk logs when
// deploy_logs_collect is always (the end of a deploy or cleaning).
func (m *Manager) collectLogsAlways(ctx context.Context, n *store.Node, label string) {
	if m.cfg.DeployLogsCollect == LogsAlways {
		m.collectRamdiskLogs(ctx, n, label)
	}
}

// collectRamdiskLogs asks n's agent for its logs and stores them.
func (m *Manager) collectRamdiskLogs(ctx context.Context, n *store.Node, label string) {
	if m.cfg.RamdiskLogs == nil || m.cfg.Agent == nil {
		return
	}
	ref := agentRef(n)
	if ref.URL == "" || !agentAlive(n) {
		return // no agent to ask, or a silent one (a wait timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, RamdiskLogsTimeout)
	defer cancel()
	res, err := m.cfg.Agent.Run(ctx, ref, "log.collect_system_logs", map[string]any{})
	if err == nil && res.CommandError != nil {
		err = fmt.Errorf("agent: %w", res.CommandError)
	}
	if err != nil {
		m.log.Error("manager: failed to invoke collect_system_logs agent command", "node", n.UUID, "label", label, "err", err)
		return
	}
	var r protocol.SystemLogsResult
	if err := json.Unmarshal(res.CommandResult, &r); err != nil || r.SystemLogs == "" {
		m.log.Error("manager: collect_system_logs returned no logs", "node", n.UUID, "label", label, "err", err)
		return
	}
	data, err := base64.StdEncoding.DecodeString(r.SystemLogs)
	if err != nil {
		m.log.Error("manager: collect_system_logs returned bad base64", "node", n.UUID, "label", label, "err", err)
		return
	}
	name, err := m.cfg.RamdiskLogs.SaveRamdiskLogs(n, label, data)
	if err != nil {
		m.log.Error("manager: failed to store the ramdisk logs", "node", n.UUID, "label", label, "err", err)
		return
	}
	m.log.Info("manager: ramdisk logs stored", "node", n.UUID, "label", label, "file", name, "bytes", len(data))
}

// agentAlive reports whether n's agent heartbeated within two agent
// heartbeat timeouts (a node without a recorded heartbeat counts as
// alive: its agent answered a command).
func agentAlive(n *store.Node) bool {
	s, _ := n.DriverInternalInfo["agent_last_heartbeat"].(string)
	at, err := time.Parse(time.RFC3339, s)
	return err != nil || time.Since(at) < 2*HeartbeatTimeout*time.Second
}

// splitInspectionLogs takes the ramdisk's logs (IPA's "logs" collector)
// out of posted inspection data: they are kept as ramdisk logs, never
// with the inspection data.
func splitInspectionLogs(body []byte) ([]byte, string) {
	if !bytes.Contains(body, []byte(`"logs"`)) {
		return body, ""
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil {
		return body, ""
	}
	raw, ok := doc["logs"]
	if !ok {
		return body, ""
	}
	delete(doc, "logs")
	out, err := json.Marshal(doc)
	if err != nil {
		return body, ""
	}
	var logs string
	_ = json.Unmarshal(raw, &logs)
	return out, logs
}

// keepInspectionLogs stores the logs posted with inspection data when the
// inspection failed (unless deploy_logs_collect is never) or always, as
// Ironic's inspection does.
func (m *Manager) keepInspectionLogs(n *store.Node, logs string, failed bool) {
	if logs == "" || m.cfg.RamdiskLogs == nil {
		return
	}
	if p := m.cfg.DeployLogsCollect; p == LogsNever || (!failed && p != LogsAlways) {
		return
	}
	data, err := base64.StdEncoding.DecodeString(logs)
	if err != nil {
		m.log.Error("manager: inspection logs are not base64", "node", n.UUID, "err", err)
		return
	}
	name, err := m.cfg.RamdiskLogs.SaveRamdiskLogs(n, "inspection", data)
	if err != nil {
		m.log.Error("manager: failed to store the ramdisk logs", "node", n.UUID, "label", "inspection", "err", err)
		return
	}
	m.log.Info("manager: ramdisk logs stored", "node", n.UUID, "label", "inspection", "file", name, "bytes", len(data))
}
