package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/ipa/hints"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// Defaults of the inspection post (IPA: 5 attempts, backoff 5–30 s).
const (
	DefaultInspectionAttempts = 5
	DefaultInspectionRetryMin = 5 * time.Second
	DefaultInspectionRetryMax = 30 * time.Second
)

// continueInspectionPath ends Ironic's inspection callback URL; the API URL
// is what comes before it.
const continueInspectionPath = "/v1/continue_inspection"

// apiFromCallback derives the Ironic API URL from an inspection callback
// URL of Ironic's built-in inspection ("" for ironic-inspector's).
func apiFromCallback(u string) string {
	base, _, _ := strings.Cut(u, "?")
	base = strings.TrimRight(base, "/")
	if api, ok := strings.CutSuffix(base, continueInspectionPath); ok && api != "" {
		return api
	}
	return ""
}

// inspectionData collects what inspection posts: the inventory, the
// agent's own root disk guess, the boot interface and the collection
// errors.
func (a *Agent) inspectionData(ctx context.Context) protocol.InspectionData {
	var errs []string
	inv, err := a.cfg.Inventory(ctx)
	if err != nil {
		errs = append(errs, "collecting the inventory: "+err.Error())
	}
	if inv.Disks == nil {
		inv.Disks = []protocol.Disk{}
	}
	if inv.Interfaces == nil {
		inv.Interfaces = []protocol.Interface{}
	}
	d := protocol.InspectionData{Inventory: inv, Configuration: protocol.InspectionConfiguration{
		Collectors: []string{"default", "logs"},
		Managers:   []protocol.InspectionManager{{Name: "ferric", Version: Version}},
	}}
	if disk, err := hints.Select(inv.Disks, nil, nil, a.cfg.MinRootSize); err == nil {
		d.RootDisk = &disk
	} else {
		a.log.Warn("inspection: no root disk candidate", "error", err)
	}
	if m := inv.PXEMAC(); m != "" {
		bi := "01-" + strings.ReplaceAll(m, ":", "-")
		d.BootInterface = &bi
	}
	// IPA's "logs" collector: the ramdisk's logs ride along, so that a
	// failed inspection leaves them on the conductor.
	if logs, err := a.systemLogs(ctx); err == nil {
		d.Logs = logs
	}
	if len(errs) > 0 {
		e := strings.Join(errs, "; ")
		d.Error = &e
	}
	return d
}

// inspect posts the inspection data to the callback URL, retrying network
// errors, 409 and 5xx with random exponential backoff, up to
// InspectionAttempts times. A node UUID and agent token in the answer
// (Ironic ≥ 1.84) are kept for the lookup that follows.
func (a *Agent) inspect(ctx context.Context) error {
	url := a.cfg.InspectionCallbackURL
	data := a.inspectionData(ctx)
	a.log.Info("inspection: posting inventory", "url", url, "interfaces", len(data.Inventory.Interfaces),
		"disks", len(data.Inventory.Disks))
	delay := a.cfg.InspectionRetryMin
	for attempt := 1; ; attempt++ {
		st, body, err := a.call(ctx, url, http.MethodPost, "", protocol.VersionContinueInspection, data)
		if err == nil && st/100 == 2 {
			var resp protocol.InspectionResponse
			json.Unmarshal(body, &resp)
			uuid := resp.UUID
			if uuid == "" {
				uuid = resp.Node.UUID
			}
			if tok := resp.Config.AgentToken; tok != "" && tok != protocol.MaskedToken {
				a.mu.Lock()
				a.token = tok
				a.mu.Unlock()
			}
			a.log.Info("inspection: inventory accepted", "node", uuid, "status", st)
			return nil
		}
		if err == nil && st != http.StatusConflict && st < 500 {
			return fmt.Errorf("agent: inspection: %s refused the inventory with HTTP %d: %s", url, st, truncate(body, 300))
		}
		why := fmt.Sprintf("HTTP %d: %s", st, truncate(body, 300))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			why = err.Error()
		}
		if attempt >= a.cfg.InspectionAttempts {
			return fmt.Errorf("agent: inspection: posting to %s failed %d times, last: %s", url, attempt, why)
		}
		a.log.Warn("inspection: post failed, retrying", "attempt", attempt, "error", why, "in", delay)
		if err := sleep(ctx, jitter(delay, 0.5, 1.0)); err != nil {
			return err
		}
		delay = min(delay*2, a.cfg.InspectionRetryMax)
	}
}
