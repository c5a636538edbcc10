package manager_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"sync"
	"testing"

	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/inspector/process"
)

type inspLogs struct {
	mu    sync.Mutex
	saved []string
}

func (l *inspLogs) SaveRamdiskLogs(n *store.Node, label string, data []byte) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.saved = append(l.saved, label+":"+string(data))
	return "x", nil
}

// TestInspectionLogs: the logs the ramdisk posts with its inspection data
// (IPA's "logs" collector) are kept as ramdisk logs (label inspection)
// when the inspection fails, or always with deploy_logs_collect always,
// and never go into the node's plugin data.
func TestInspectionLogs(t *testing.T) {
	for _, c := range []struct {
		name, policy, ramdiskErr string
		want                     []string
		state                    string
	}{
		{"failed, on_failure", "", "lshw failed", []string{"inspection:LOGS"}, "inspect failed"},
		{"failed, never", manager.LogsNever, "lshw failed", nil, "inspect failed"},
		{"inspected, on_failure", manager.LogsOnFailure, "", nil, "manageable"},
		{"inspected, always", manager.LogsAlways, "", []string{"inspection:LOGS"}, "manageable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newInspectEnv(t)
			logs := &inspLogs{}
			e.mgr = manager.New(manager.Config{Store: e.st, Hostname: "test", DeployLogsCollect: c.policy, RamdiskLogs: logs,
				Inspect: process.New(process.Config{Store: e.st, Rules: e.rules})})
			e.startInspection(t)
			var body map[string]any
			_ = json.Unmarshal(inspectFixture(t), &body)
			body["logs"] = base64.StdEncoding.EncodeToString([]byte("LOGS"))
			if c.ramdiskErr != "" {
				body["error"] = c.ramdiskErr
			}
			raw, _ := json.Marshal(body)
			_, _ = e.mgr.ContinueInspection(context.Background(), raw)
			n := e.waitState(t, c.state)
			logs.mu.Lock()
			got := append([]string(nil), logs.saved...)
			logs.mu.Unlock()
			if len(got) != len(c.want) || (len(got) == 1 && got[0] != c.want[0]) {
				t.Errorf("stored %v, want %v", got, c.want)
			}
			if bytes.Contains(n.PluginData, []byte("LOGS")) || bytes.Contains(n.PluginData, []byte(`"logs"`)) {
				t.Errorf("the logs went into plugin_data: %.300s", n.PluginData)
			}
		})
	}
}
