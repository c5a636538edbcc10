package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/ipa/protocol"
)

// call performs one request against the current Ironic API URL.
func (a *Agent) call(ctx context.Context, base, method, path string, ver protocol.APIVersion, body any) (int, []byte, error) {
	var rb io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rb = bytes.NewReader(b)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, method, base+path, rb)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", Version)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if ver != (protocol.APIVersion{}) {
		req.Header.Set(protocol.VersionHeader, ver.String())
	}
	if a.cfg.RequestID != "" {
		req.Header.Set(protocol.RequestIDHeader, a.cfg.RequestID)
	}
	resp, err := a.cfg.APIClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, out, err
}

// discover finds a working API URL and its maximum microversion.
func (a *Agent) discover(ctx context.Context) (string, protocol.APIVersion, error) {
	var lastErr error
	for _, base := range a.cfg.APIURLs {
		st, body, err := a.call(ctx, base, http.MethodGet, "/", protocol.APIVersion{}, nil)
		if err != nil {
			lastErr = err
			continue
		}
		if st != http.StatusOK {
			lastErr = fmt.Errorf("GET %s/: HTTP %d", base, st)
			continue
		}
		var root protocol.RootResponse
		if err := json.Unmarshal(body, &root); err != nil {
			lastErr = fmt.Errorf("GET %s/: %w", base, err)
			continue
		}
		v, err := protocol.ParseAPIVersion(root.DefaultVersion.Version)
		if err != nil {
			// Very old Ironic: assume the oldest version that has tokens.
			v = protocol.VersionAgentToken
		}
		return base, v, nil
	}
	return "", protocol.APIVersion{}, fmt.Errorf("agent: no Ironic API reachable: %w", lastErr)
}

// lookup retries forever (bounded random exponential backoff) until Ironic
// returns the node and the agent holds a token. It fails only when ctx ends.
func (a *Agent) lookup(ctx context.Context) error {
	delay := a.cfg.LookupMin
	backoff := func(reason string, args ...any) error {
		a.log.Debug("lookup: retrying", append([]any{"reason", reason, "in", delay}, args...)...)
		if err := sleep(ctx, jitter(delay, 0.5, 1.0)); err != nil {
			return err
		}
		delay = min(delay*2, a.cfg.LookupMax)
		return nil
	}
	lastReason := ""
	for {
		base, ver, err := a.discover(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if r := err.Error(); r != lastReason {
				a.log.Warn("lookup: Ironic API not reachable", "error", err)
				lastReason = r
			}
			if err := backoff("api unreachable"); err != nil {
				return err
			}
			continue
		}
		q := url.Values{"addresses": {strings.Join(a.cfg.MACs, ",")}}
		if a.cfg.NodeUUID != "" {
			q.Set("node_uuid", a.cfg.NodeUUID)
		}
		st, body, err := a.call(ctx, base, http.MethodGet, "/v1/lookup?"+q.Encode(),
			protocol.MinVersion(ver, protocol.VersionAgentToken), nil)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			err = backoff("request failed", "error", err)
		case st == http.StatusOK:
			var lr protocol.LookupResponse
			if jerr := json.Unmarshal(body, &lr); jerr != nil || lr.Node.UUID == "" {
				a.log.Warn("lookup: malformed response", "error", jerr)
				err = backoff("malformed")
				break
			}
			a.mu.Lock()
			tok := lr.Config.AgentToken
			if tok != "" && tok != protocol.MaskedToken {
				a.token = tok
			}
			have := a.token != ""
			if have {
				a.nodeUUID, a.node, a.apiURL, a.apiVersion = lr.Node.UUID, lr.Node, base, ver
				a.hbTimeout = lr.Config.HeartbeatTimeout
				if a.hbTimeout <= 0 {
					a.hbTimeout = DefaultHeartbeatTimout.Seconds()
				}
				a.md5Disabled = lr.Config.AgentMD5ChecksumEnable != nil && !*lr.Config.AgentMD5ChecksumEnable
			}
			a.mu.Unlock()
			if !have {
				// IPA locks down here; we keep trying so that a new
				// deploy or clean (which issues a fresh token) finds us.
				if lastReason != "masked" {
					a.log.Warn("lookup: node found but its token was already handed out; waiting for a new one", "node", lr.Node.UUID)
					lastReason = "masked"
				}
				err = backoff("token masked")
				break
			}
			if len(a.token) < protocol.MinTokenLength {
				a.log.Warn("lookup: agent token shorter than expected", "length", len(a.token))
			}
			a.log.Info("lookup: found node", "node", lr.Node.UUID, "api", base, "api_version", ver.String(),
				"heartbeat_timeout", lr.Config.HeartbeatTimeout)
			return nil
		default:
			if r := fmt.Sprint(st); r != lastReason {
				a.log.Info("lookup: node not found yet", "status", st, "macs", strings.Join(a.cfg.MACs, ","))
				lastReason = r
			}
			err = backoff("status", "status", st)
		}
		if err != nil {
			return err
		}
	}
}

// heartbeatLoop heartbeats until the heartbeat is refused (token wiped, node
// gone), the generation changes (simulated reboot) or ctx ends.
func (a *Agent) heartbeatLoop(ctx context.Context, gen int) {
	interval := time.Duration(0) // first heartbeat at once
	for {
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-a.forceHB:
			t.Stop()
			a.mu.Lock()
			wait := a.cfg.ForcedHeartbeatGap - time.Since(a.lastHB)
			a.mu.Unlock()
			if wait > 0 && sleep(ctx, wait) != nil {
				return
			}
		}
		a.mu.Lock()
		if a.generation != gen {
			a.mu.Unlock()
			return
		}
		base, uuid, ver, hbt := a.apiURL, a.nodeUUID, a.apiVersion, a.hbTimeout
		hb := protocol.HeartbeatRequest{CallbackURL: a.CallbackURL(), AgentToken: a.token, AgentVersion: Version}
		a.lastHB = time.Now()
		a.mu.Unlock()
		hver := protocol.MinVersion(ver, protocol.VersionAgentVerifyCA)
		if a.tlsPEM != "" && !hver.Less(protocol.VersionAgentVerifyCA) {
			hb.AgentVerifyCA = a.tlsPEM
		}
		st, body, err := a.call(ctx, base, http.MethodPost, "/v1/heartbeat/"+uuid, hver, hb)
		switch {
		case err != nil:
			a.log.Warn("heartbeat failed", "node", uuid, "error", err)
			interval = jitter(5*time.Second, 1, 2)
		case st == http.StatusAccepted || st == http.StatusOK:
			a.log.Debug("heartbeat accepted", "node", uuid)
			interval = jitter(time.Duration(hbt*float64(time.Second)), 0.3, 0.6)
			if a.cfg.HeartbeatInterval > 0 {
				interval = a.cfg.HeartbeatInterval
			}
		case st == http.StatusConflict:
			interval = jitter(5*time.Second, 1, 2)
		case st == http.StatusBadRequest || st == http.StatusNotFound || st == http.StatusForbidden:
			a.log.Warn("heartbeat refused; the node moved on", "node", uuid, "status", st, "body", truncate(body, 300))
			a.reset(gen, fmt.Sprintf("heartbeat refused with HTTP %d", st))
			return
		default:
			a.log.Warn("heartbeat: unexpected status", "node", uuid, "status", st, "body", truncate(body, 300))
			interval = jitter(5*time.Second, 1, 2)
		}
	}
}

// kick forces a heartbeat soon (an asynchronous command finished).
func (a *Agent) kick() {
	select {
	case a.forceHB <- struct{}{}:
	default:
	}
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
