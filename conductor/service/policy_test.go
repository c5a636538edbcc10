package service

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPolicyFileRefused: a policy file that cannot be used stops the
// conductor at start, naming the file, the rule and the reason.
func TestPolicyFileRefused(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(bad, []byte("\"baremetal:node:get\": \"role:reader and (project_id:%(node.owner)s\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, want string }{
		{bad, `--policy-file: policy: rule "baremetal:node:get"`},
		{filepath.Join(dir, "missing.yaml"), "--policy-file: policy: open"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := Run(ctx, Config{StateDir: t.TempDir(), APIListen: "127.0.0.1:0", InspectorListen: "", PolicyFile: tc.file, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run with --policy-file %s = %v, want an error containing %q", tc.file, err, tc.want)
		}
	}
}
