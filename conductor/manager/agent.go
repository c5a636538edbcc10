package manager

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/conductor/driver"
	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/ipa/protocol"
)

// AgentClient runs commands on a node's ramdisk agent.
type AgentClient interface {
	// Run starts a command and returns its result (RUNNING when async).
	Run(ctx context.Context, a AgentRef, name string, params any) (*protocol.CommandResult, error)
	// Status returns the current result of a command.
	Status(ctx context.Context, a AgentRef, id string) (*protocol.CommandResult, error)
}

// AgentRef is where and how to reach one node's agent.
type AgentRef struct {
	URL      string
	Token    string
	VerifyCA string // PEM; empty for plain HTTP
}

// ImageResolver turns a node's instance_info into the image_info the agent
// downloads (image store ids, URLs, cached copies).
type ImageResolver interface {
	Resolve(ctx context.Context, n *store.Node) (*protocol.ImageInfo, error)
}

// imageChecker is an ImageResolver that can validate a node's image
// without fetching it (deploy validation must answer at once).
type imageChecker interface {
	Check(ctx context.Context, n *store.Node) error
}

// InspectProcessor turns a posted inventory into node changes.
type InspectProcessor interface {
	// Match finds the node the inventory belongs to.
	Match(ctx context.Context, body []byte) (nodeUUID string, err error)
	// Apply processes the inventory for the node inside tx.
	Apply(ctx context.Context, tx store.Tx, n *store.Node, body []byte) error
}

// Heartbeat is the body of POST /v1/heartbeat/{node}.
type Heartbeat = protocol.HeartbeatRequest

type httpAgent struct {
	base *http.Client
	// poll keeps connections for the status polls of running commands
	// (plain HTTP): one a second for every running command would
	// otherwise be a new connection each, on both sides.
	poll *http.Client
}

// NewHTTPAgentClient returns the IPA-compatible HTTP agent client.
func NewHTTPAgentClient(c *http.Client) AgentClient {
	if c != nil {
		return &httpAgent{base: c, poll: c}
	}
	// No keep-alive for commands: a machine that reboots into a new
	// ramdisk often gets the same IP and port, and a pooled connection to
	// the previous agent would be reset on the next (non-retried) POST.
	// Status polls are GETs, which net/http sends again on a new
	// connection when a kept one turns out closed, so they keep theirs.
	return &httpAgent{
		base: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, DisableKeepAlives: true}},
		poll: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment,
			MaxIdleConns: 4096, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second}},
	}
}

func (h *httpAgent) client(a AgentRef, method string) (*http.Client, error) {
	if a.VerifyCA == "" {
		if method == http.MethodGet {
			return h.poll, nil
		}
		return h.base, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(a.VerifyCA)) {
		return nil, errors.New("agent: agent_verify_ca is not a PEM certificate")
	}
	return &http.Client{Timeout: h.base.Timeout, Transport: &http.Transport{DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}, nil
}

func (h *httpAgent) do(ctx context.Context, a AgentRef, method, path string, body any) (*protocol.CommandResult, error) {
	c, err := h.client(a, method)
	if err != nil {
		return nil, err
	}
	u := strings.TrimRight(a.URL, "/") + path
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	u += sep + "agent_token=" + url.QueryEscape(a.Token)
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("agent: %s %s: %w", method, a.URL+path, redact(err, a.Token))
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode == http.StatusConflict {
		return nil, fmt.Errorf("agent: %s is busy with another command: %w", a.URL, ErrConflict)
	}
	if resp.StatusCode >= 300 {
		return nil, fmt.Errorf("agent: %s %s: HTTP %d: %s", method, a.URL+path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	var res protocol.CommandResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("agent: decoding command result: %w", err)
	}
	return &res, nil
}

func redact(err error, token string) error {
	if token == "" {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), url.QueryEscape(token), "***"))
}

func (h *httpAgent) Run(ctx context.Context, a AgentRef, name string, params any) (*protocol.CommandResult, error) {
	return h.do(ctx, a, http.MethodPost, "/v1/commands/?wait=false", map[string]any{"name": name, "params": params})
}

func (h *httpAgent) Status(ctx context.Context, a AgentRef, id string) (*protocol.CommandResult, error) {
	return h.do(ctx, a, http.MethodGet, "/v1/commands/"+url.PathEscape(id), nil)
}

// ---- lookup and heartbeat ----

// Lookup finds the node of a booting ramdisk by MAC or uuid and issues its
// agent token the first time (returned once; "" afterwards).
func (m *Manager) Lookup(ctx context.Context, macs []string, nodeUUID string) (*store.Node, string, error) {
	var n *store.Node
	if nodeUUID != "" {
		n, _ = m.st.Node(nodeUUID)
	}
	for _, mac := range macs {
		if n != nil {
			break
		}
		if p, err := m.st.PortByAddress(mac); err == nil {
			n, _ = m.st.Node(p.NodeUUID)
		}
	}
	if n == nil {
		return nil, "", userErr(ErrNotFound, "Resource could not be found.")
	}
	if !sm.LookupAllowed(sm.State(n.ProvisionState), m.fastTrackEnabled(n)) {
		return nil, "", userErr(ErrNotFound, "Resource could not be found.")
	}
	out, token, err := m.issueToken(ctx, n.UUID)
	if err != nil {
		return nil, "", err
	}
	m.log.Info("manager: agent lookup", "node", out.UUID, "state", out.ProvisionState, "token_issued", token != "")
	return out, token, nil
}

// Heartbeat records an agent's heartbeat and continues the node's work.
func (m *Manager) Heartbeat(ctx context.Context, uuid string, hb Heartbeat) error {
	n, err := m.st.Node(uuid)
	if err != nil {
		return userErr(ErrNotFound, "Node %s could not be found.", uuid)
	}
	stored, _ := n.DriverInternalInfo["agent_secret_token"].(string)
	if hb.AgentToken == "" {
		return userErr(ErrInvalidInput, "Agent token is required for heartbeat processing.")
	}
	if stored == "" || !tokenEqual(stored, hb.AgentToken) {
		return userErr(ErrInvalidInput, "Invalid or missing agent token received.")
	}
	if hb.AgentVersion == "" && hb.AgentStatus == "" {
		return userErr(ErrInvalidInput, "Missing agent_version in the heartbeat.")
	}
	if caChanged(n, hb.AgentVerifyCA) {
		m.log.Error("manager: agent_verify_ca changed", "node", n.UUID)
		return errCAChanged()
	}
	if old, _ := n.DriverInternalInfo["agent_url"].(string); old == "" && n.Reservation != nil {
		return lockErr(n)
	}
	// The node's driver_internal_info alone changes: written without
	// copying the node (n is the committed node, only read).
	err = m.st.Update(ctx, func(tx store.Tx) error {
		return tx.UpdateNodeInfo(uuid, func(n *store.Node, d store.Object) error {
			return recordHeartbeat(m, n, d, hb)
		})
	})
	if err != nil {
		return err
	}
	m.heartbeated(uuid)
	return m.continueAfterHeartbeat(ctx, uuid, n)
}

// recordHeartbeat notes an agent's heartbeat in d, node n's
// driver_internal_info to be written (n is only read).
func recordHeartbeat(m *Manager, n *store.Node, d store.Object, hb Heartbeat) error {
	d["agent_url"] = hb.CallbackURL
	d["agent_version"] = hb.AgentVersion
	d["agent_last_heartbeat"] = time.Now().UTC().Format(heartbeatTimeFormat)
	if caChanged(n, hb.AgentVerifyCA) {
		m.log.Error("manager: agent_verify_ca changed", "node", n.UUID)
		return errCAChanged()
	}
	if hb.AgentVerifyCA != "" {
		d["agent_verify_ca"] = hb.AgentVerifyCA
	}
	if hb.AgentStatus != "" {
		d["agent_status"] = hb.AgentStatus
	}
	return nil
}

// continueAfterHeartbeat continues the work of node uuid (n as it was
// before the heartbeat) when it waits for its agent.
func (m *Manager) continueAfterHeartbeat(ctx context.Context, uuid string, n *store.Node) error {
	var cont func(context.Context, string) error
	switch sm.State(n.ProvisionState) {
	case sm.DeployWait:
		cont = m.continueDeploy
	case sm.CleanWait:
		cont = m.continueClean
	case sm.RescueWait:
		cont = m.finalizeRescue
	default:
		return nil
	}
	if n.Maintenance {
		return nil
	}
	if err := m.slot(); err != nil {
		return nil // busy: the next heartbeat retries
	}
	if err := m.acquire(ctx, uuid, func(n *store.Node) error {
		if s := sm.State(n.ProvisionState); s != sm.DeployWait && s != sm.CleanWait && s != sm.RescueWait {
			return userErr(ErrConflict, "node %s moved on", n.UUID)
		}
		return nil
	}); err != nil {
		m.release()
		return nil // someone else is working on the node; skip silently
	}
	m.spawn(uuid, func(ctx context.Context) error { return cont(ctx, uuid) })
	return nil
}

// caChanged reports whether a heartbeat's agent_verify_ca differs from
// the certificate the ramdisk sent first: the agent's auto-TLS
// certificate is pinned until the ramdisk's state is wiped (a new boot),
// so a forged heartbeat cannot swap it, as in Ironic.
func caChanged(n *store.Node, ca string) bool {
	old, _ := n.DriverInternalInfo["agent_verify_ca"].(string)
	return ca != "" && old != "" && strings.TrimSpace(old) != strings.TrimSpace(ca)
}

func errCAChanged() error {
	return userErr(ErrInvalidInput, "Detected change in ramdisk provided \"agent_verify_ca\"")
}

func agentRef(n *store.Node) AgentRef {
	u, _ := n.DriverInternalInfo["agent_url"].(string)
	t, _ := n.DriverInternalInfo["agent_secret_token"].(string)
	ca, _ := n.DriverInternalInfo["agent_verify_ca"].(string)
	return AgentRef{URL: u, Token: t, VerifyCA: ca}
}

// runAgent runs one agent command to completion, recording progress on the
// node's driver_internal_info while it runs.
func (m *Manager) runAgent(ctx context.Context, uuid, name string, params any) (*protocol.CommandResult, error) {
	n, err := m.st.Node(uuid)
	if err != nil {
		return nil, err
	}
	ref := agentRef(n)
	res, err := m.cfg.Agent.Run(ctx, ref, name, params)
	if err != nil {
		return nil, err
	}
	res, err = m.waitCommand(ctx, uuid, name, ref, res)
	if err != nil {
		return nil, err
	}
	if res.CommandStatus != protocol.StatusSucceeded {
		msg := string(res.CommandStatus)
		if res.CommandError != nil {
			msg = res.CommandError.Error()
		}
		return res, fmt.Errorf("agent command %s failed: %s", name, msg)
	}
	return res, nil
}

// continueDeploy writes the image through the agent and boots the node
// from disk (wait call-back -> deploying -> active).
func (m *Manager) continueDeploy(ctx context.Context, uuid string) error {
	if err := m.fire(ctx, uuid, sm.EventResume, nil); err != nil {
		return err
	}
	n, err := m.st.Node(uuid)
	if err != nil {
		return err
	}
	if m.customAgent(n) {
		return m.continueCustomAgent(ctx, n)
	}
	if m.cfg.Images == nil {
		return fmt.Errorf("deploy: no image resolver configured")
	}
	info, err := m.cfg.Images.Resolve(ctx, n)
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	before, after, version, err := m.userDeploySteps(ctx, n)
	if err != nil {
		return err
	}
	// The deploy's steps in order. A step that reboots the machine (the
	// bios and firmware interfaces') resumes where it stopped, with the
	// next agent.
	writeImage := map[string]any{"interface": "deploy", "step": "write_image", "priority": writeImagePriority, "args": map[string]any{}}
	plan := append(append(append([]map[string]any{}, before...), writeImage), after...)
	for i := stepIndex(n, "deploy_step_index"); i < len(plan); i++ {
		st := plan[i]
		m.enterStep(ctx, uuid, false, i, st)
		step := m.rebootingStep(n, st)
		switch {
		case i == len(before): // write_image
			cd, _ := n.InstanceInfo["configdrive"].(string)
			info.NodeUUID = n.UUID
			started := time.Now()
			m.log.Info("manager: writing image", "node", uuid, "image", info.ID)
			if _, err := m.runAgent(ctx, uuid, "standby.prepare_image", protocol.WriteImageArgs{ImageInfo: *info, Configdrive: cd}); err != nil {
				//lint:ignore ST1005 Ironic's last_error text, word for word
				return fmt.Errorf("Deploy step deploy.write_image failed on node %s: %w", uuid, err)
			}
			m.log.Info("manager: image written", "node", uuid, "seconds", time.Since(started).Seconds())
		case step != nil:
			m.log.Info("manager: deploy step", "node", uuid, "step", stepID(st), "priority", st["priority"])
			wait, err := step(ctx, uuid, st)
			if err != nil {
				//lint:ignore ST1005 Ironic's last_error text, word for word
				return fmt.Errorf("Deploy step %s failed on node %s: %w", stepID(st), uuid, err)
			}
			if wait {
				return nil // rebooting into the ramdisk; its agent's heartbeat resumes
			}
		default:
			if err := m.runDeployStep(ctx, n, st, version); err != nil {
				return err
			}
		}
	}
	if m.softwareRAIDTarget(n) {
		// As Ironic: the bootloader goes on every member of the array, and
		// a deploy whose disks cannot boot fails.
		if err := m.installRAIDBootloader(ctx, uuid, n); err != nil {
			return err
		}
	} else if bootsUEFI(n) {
		m.installBootloader(ctx, uuid)
	}
	return m.bootFromDisk(ctx, uuid, n)
}

// bootFromDisk ends an agent deploy: the machine boots from its disk from
// now on (persistently), is powered off (the agent synced first) and on
// again, and the node is active.
func (m *Manager) bootFromDisk(ctx context.Context, uuid string, n *store.Node) error {
	mg, err := m.management(n)
	if err != nil {
		return err
	}
	if err := mg.SetBootDevice(ctx, driverNode(n), driver.BootDisk, true); err != nil {
		return fmt.Errorf("deploy: setting boot device to disk: %w", err)
	}
	pw, err := m.power(n)
	if err != nil {
		return err
	}
	m.collectLogsAlways(ctx, n, "")
	// Ask the agent to power off cleanly, then power on from disk.
	_, _ = m.cfg.Agent.Run(ctx, agentRef(n), "standby.sync", map[string]any{})
	if err := pw.SetPowerState(ctx, driverNode(n), driver.TargetPowerOff, m.cfg.PowerTimeout); err != nil {
		return fmt.Errorf("deploy: powering off: %w", err)
	}
	if err := m.toTenant(ctx, n); err != nil {
		return err
	}
	if err := pw.SetPowerState(ctx, driverNode(n), driver.TargetPowerOn, m.cfg.PowerTimeout); err != nil {
		return fmt.Errorf("deploy: powering on from disk: %w", err)
	}
	return m.fire(ctx, uuid, sm.EventDone, func(n *store.Node) {
		on := driver.PowerOn
		n.PowerState = &on
		n.DeployStep = store.Object{}
		delete(n.InstanceInfo, "configdrive")
		delete(n.DriverInternalInfo, "agent_progress")
		delete(n.DriverInternalInfo, "user_deploy_steps")
		delete(n.DriverInternalInfo, "deploy_step_index")
		clearAgent(n)
		m.log.Info("manager: deployed", "node", uuid)
	})
}

// userDeploySteps returns the in-band user deploy steps to run before and
// after the image write, checked against the steps the agent offers.
// The agent's hardware manager versions come along, to be sent back with
// every step.
func (m *Manager) userDeploySteps(ctx context.Context, n *store.Node) (before, after []map[string]any, version protocol.HardwareManagerVersion, err error) {
	user := userDeploySteps(n)
	if len(user) == 0 {
		return nil, nil, nil, nil
	}
	res, err := m.runAgent(ctx, n.UUID, "deploy.get_deploy_steps", map[string]any{"node": agentNode(n), "ports": []any{}})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("getting deploy steps from the agent of node %s: %w", n.UUID, err)
	}
	var gs protocol.GetStepsResult
	if err := json.Unmarshal(res.CommandResult, &gs); err != nil {
		return nil, nil, nil, fmt.Errorf("deploy steps of node %s: %w", n.UUID, err)
	}
	var offered []protocol.Step
	for _, steps := range gs.Steps {
		offered = append(offered, steps...)
	}
	before, after, err = agentDeploySteps(user, offered, func(st map[string]any) bool {
		b, _ := m.bios(n)
		return b != nil && isBIOSStep(st) || m.updatesFirmware(n) && isFirmwareInterfaceUpdate(st) ||
			m.raidController(n) != nil && isRAIDStep(st) && st["step"] != "create_configuration"
	})
	if err != nil {
		//lint:ignore ST1005 Ironic's last_error text
		return nil, nil, nil, fmt.Errorf("Validation of deploy steps failed for node %s: %w", n.UUID, err)
	}
	return before, after, gs.HardwareManagerVersion, nil
}

// runDeployStep runs a user deploy step in-band (the caller recorded it
// as the node's deploy_step).
func (m *Manager) runDeployStep(ctx context.Context, n *store.Node, step map[string]any, version protocol.HardwareManagerVersion) error {
	m.log.Info("manager: deploy step", "node", n.UUID, "step", stepID(step), "priority", step["priority"])
	params := map[string]any{"step": step, "node": agentNode(n), "ports": []any{}, "deploy_version": version}
	res, err := m.runAgent(ctx, n.UUID, "deploy.execute_deploy_step", params)
	if err == nil {
		err = m.afterAgentRAIDStep(ctx, n.UUID, step, res)
	}
	if err != nil {
		//lint:ignore ST1005 Ironic's last_error text, word for word
		return fmt.Errorf("Deploy step %s failed on node %s: %w", stepID(step), n.UUID, err)
	}
	return nil
}

// rebootingStep returns the conductor's runner of st when st is a step of
// the bios or firmware interfaces (they may reboot the machine into the
// ramdisk and report wait) or a raid step the BMC runs, nil otherwise.
func (m *Manager) rebootingStep(n *store.Node, st map[string]any) func(context.Context, string, map[string]any) (wait bool, err error) {
	switch {
	case isRAIDStep(st) && m.raidController(n) != nil:
		return m.raidStep
	case isBIOSStep(st):
		return m.biosStep
	case isFirmwareUpdate(st):
		return m.firmwareStep
	}
	return nil
}

// enterStep records the step a clean (or deploy) is at, and its index,
// where it resumes after a step that reboots the machine.
func (m *Manager) enterStep(ctx context.Context, uuid string, clean bool, i int, st map[string]any) {
	_ = m.update(ctx, uuid, func(n *store.Node) error {
		if clean {
			n.CleanStep = st
			n.DriverInternalInfo["clean_step_index"] = i
		} else {
			n.DeployStep = st
			n.DriverInternalInfo["deploy_step_index"] = i
		}
		return nil
	})
}

// stepIndex reads the index a clean or deploy resumes at (key in
// driver_internal_info), 0 when it starts.
func stepIndex(n *store.Node, key string) int {
	switch v := n.DriverInternalInfo[key].(type) {
	case int:
		return v
	case float64: // read back from JSON
		return int(v)
	}
	return 0
}

// agentNode is the node as steps commands carry it to the agent.
func agentNode(n *store.Node) map[string]any {
	return map[string]any{"uuid": n.UUID, "properties": n.Properties, "driver_info": map[string]any{}, "instance_info": map[string]any{},
		"target_raid_config": n.TargetRAIDConfig}
}

// installBootloader asks the agent, as Ironic does for whole-disk images
// on UEFI nodes, to register the image's boot loader with the firmware
// (image.install_bootloader with the EFI system partition the agent
// found). A failure is logged and the deploy goes on: the firmware's
// removable-media path may still boot the disk.
func (m *Manager) installBootloader(ctx context.Context, uuid string) {
	var pu protocol.PartitionUUIDs
	res, err := m.runAgent(ctx, uuid, "standby.get_partition_uuids", map[string]any{})
	if err == nil && len(res.CommandResult) > 0 {
		err = json.Unmarshal(res.CommandResult, &pu)
	}
	if err != nil {
		m.log.Warn("manager: no partition UUIDs from the agent, no UEFI boot entry", "node", uuid, "error", err)
		return
	}
	params := protocol.InstallBootloaderParams{RootUUID: pu.RootUUID, TargetBootMode: "uefi"}
	if pu.EFISystemPartitionUUID != "" {
		params.EFISystemPartUUID = &pu.EFISystemPartitionUUID
	}
	if _, err := m.runAgent(ctx, uuid, "image.install_bootloader", params); err != nil {
		m.log.Warn("manager: could not register a UEFI boot entry; the firmware's removable-media path must boot the disk", "node", uuid, "error", err)
		return
	}
	m.log.Info("manager: UEFI boot entry requested", "node", uuid, "efi_system_partition", pu.EFISystemPartitionUUID)
}

// bootsUEFI reports whether a node boots in UEFI mode (driver.Node.UEFI).
func bootsUEFI(n *store.Node) bool { return driverNode(n).UEFI() }

// continueClean runs the clean steps through the agent (clean wait ->
// cleaning -> available, or back to manageable for manual cleaning).
func (m *Manager) continueClean(ctx context.Context, uuid string) error {
	if err := m.fire(ctx, uuid, sm.EventResume, nil); err != nil {
		return err
	}
	n, err := m.st.Node(uuid)
	if err != nil {
		return err
	}
	steps := []map[string]any{{"interface": "deploy", "step": "erase_devices_metadata", "priority": 99, "args": map[string]any{}}}
	if raw, ok := n.DriverInternalInfo["clean_steps"]; ok {
		b, _ := json.Marshal(raw)
		_ = json.Unmarshal(b, &steps)
	}
	// As Ironic does: ask the agent for its steps first, and send its
	// hardware manager versions back with every step.
	node := agentNode(n)
	res, err := m.runAgent(ctx, uuid, "clean.get_clean_steps", map[string]any{"node": node, "ports": []any{}})
	if err != nil {
		return fmt.Errorf("getting clean steps from the agent of node %s: %w", uuid, err)
	}
	var gs protocol.GetStepsResult
	if err := json.Unmarshal(res.CommandResult, &gs); err != nil {
		return fmt.Errorf("clean steps of node %s: %w", uuid, err)
	}
	// A step that rebooted the machine (the bios and firmware
	// interfaces') resumes where it stopped, with the next agent.
	for i := stepIndex(n, "clean_step_index"); i < len(steps); i++ {
		st := steps[i]
		m.enterStep(ctx, uuid, true, i, st)
		m.log.Info("manager: clean step", "node", uuid, "step", st["step"], "interface", st["interface"])
		if wait, handled, err := m.flowStep(ctx, uuid, st, i); handled {
			if err != nil {
				//lint:ignore ST1005 Ironic's last_error text, word for word
				return fmt.Errorf("Clean step %v failed on node %s: %w", st["step"], uuid, err)
			}
			if wait {
				return nil // held or waiting; the next heartbeat (after unhold) resumes
			}
			continue
		}
		if step := m.rebootingStep(n, st); step != nil {
			wait, err := step(ctx, uuid, st)
			if err != nil {
				//lint:ignore ST1005 Ironic's last_error text, word for word
				return fmt.Errorf("Clean step %v failed on node %s: %w", st["step"], uuid, err)
			}
			if wait {
				return nil // rebooting; the next agent's heartbeat resumes
			}
			continue
		}
		params := map[string]any{"step": st, "node": node, "ports": []any{}, "clean_version": gs.HardwareManagerVersion}
		res, err := m.runAgent(ctx, uuid, "clean.execute_clean_step", params)
		if err == nil {
			err = m.afterAgentRAIDStep(ctx, uuid, st, res)
		}
		if err != nil {
			//lint:ignore ST1005 Ironic's last_error text, word for word
			return fmt.Errorf("Clean step %v failed on node %s: %w", st["step"], uuid, err)
		}
	}
	// As Ironic's tear-down of in-band cleaning: with fast-track the
	// machine stays on and its agent keeps heartbeating for the deploy.
	// (The node again: its agent heartbeated while the steps ran.)
	if cur, err := m.st.Node(uuid); err == nil {
		n = cur
	}
	m.collectLogsAlways(ctx, n, "cleaning")
	fast := m.isFastTrack(ctx, n)
	if !fast {
		if err := m.powerOff(ctx, n); err != nil {
			return err
		}
		if err := m.removeNetwork(ctx, n, driver.NetCleaning); err != nil {
			return err
		}
	}
	return m.fire(ctx, uuid, cleanDone(n), func(n *store.Node) {
		n.CleanStep = store.Object{}
		delete(n.DriverInternalInfo, "clean_steps")
		delete(n.DriverInternalInfo, "agent_progress")
		delete(n.DriverInternalInfo, "clean_step_index")
		if !fast {
			clearAgent(n)
		}
	})
}

// ContinueInspection processes an inventory posted by the ramdisk.
func (m *Manager) ContinueInspection(ctx context.Context, body []byte) (*store.Node, error) {
	if m.cfg.Inspect == nil {
		return nil, userErr(ErrInvalidInput, "Inspection is not enabled on this conductor.")
	}
	uuid, err := m.cfg.Inspect.Match(ctx, body)
	if err != nil {
		return nil, userErr(ErrNotFound, "%v", err)
	}
	return m.continueMatched(ctx, uuid, body)
}

// continueMatched continues the inspection of node uuid, which the
// posted data belongs to.
func (m *Manager) continueMatched(ctx context.Context, uuid string, body []byte) (*store.Node, error) {
	n, err := m.st.Node(uuid)
	if err != nil {
		return nil, userErr(ErrNotFound, "Node %s could not be found.", uuid)
	}
	if n.ProvisionState == string(sm.Enroll) && autoDiscovered(n) {
		return n, nil // a machine enrolled by discovery: nothing to continue
	}
	if s := sm.State(n.ProvisionState); s != sm.InspectWait && s != sm.Inspecting {
		return nil, userErr(ErrInvalidState, "Node %s is not waiting for inspection (state %q).", uuid, s)
	}
	body, logs := splitInspectionLogs(body)
	err = m.applyInspection(ctx, uuid, body, true)
	m.keepInspectionLogs(n, logs, err != nil)
	if err != nil {
		var ie *inspectionError
		if errors.As(err, &ie) {
			return nil, userErr(ErrInvalidInput, "%s", ie.msg)
		}
		return nil, err
	}
	n, _ = m.st.Node(uuid)
	// As Ironic, power the machine off under the node's lock, in state
	// inspecting, and only then make the node manageable: an operator's
	// next action (provide, right after manageable) must not race a power
	// off that lands after its own power on. With fast-track the machine
	// stays on and its agent goes on to lookup and heartbeat, for the
	// cleaning or deploy that follows.
	fast := m.fastTrackEnabled(n)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ctx := m.ctx()
		if err := m.removeNetwork(ctx, n, driver.NetInspection); err != nil {
			m.fail(ctx, uuid, fmt.Errorf("Inspection of node %s failed: %w", uuid, err)) //lint:ignore ST1005 Ironic's last_error text
			return
		}
		if fast {
			m.log.Info("manager: fast-track: inspection done, the machine stays on", "node", uuid)
			err := m.fire(ctx, uuid, sm.EventDone, func(n *store.Node) {
				now := time.Now().UTC()
				n.InspectionFinishedAt = &now
				n.Reservation = nil
			})
			if err != nil {
				m.log.Error("manager: finishing inspection", "node", uuid, "err", err)
				m.unlock(ctx, uuid)
			}
			return
		}
		if err := m.powerOff(ctx, n); err != nil {
			//lint:ignore ST1005 Ironic's last_error text, word for word
			m.fail(ctx, uuid, fmt.Errorf("Inspection of node %s failed: the machine could not be powered off after inspection: %w", uuid, err))
			return
		}
		err := m.fire(ctx, uuid, sm.EventDone, func(n *store.Node) {
			now := time.Now().UTC()
			n.InspectionFinishedAt = &now
			n.Reservation = nil
			clearAgent(n)
		})
		if err != nil {
			m.log.Error("manager: finishing inspection", "node", uuid, "err", err)
			m.unlock(ctx, uuid)
		}
	}()
	return n, nil
}

// inspectionError is a failed processing of inspection data; the node has
// been moved to inspect failed with msg as last_error.
type inspectionError struct{ msg string }

func (e *inspectionError) Error() string { return e.msg }

// applyInspection processes inspection data (in-band from the ramdisk or
// out of band from the BMC) for a node being inspected, in one store
// transaction: hooks and rules change the node, which moves to manageable
// or, with hold, stays inspecting and locked by this conductor (the caller
// finishes). When processing fails the node moves to inspect failed.
func (m *Manager) applyInspection(ctx context.Context, uuid string, body []byte, hold bool) error {
	var perr error
	err := m.st.Update(ctx, func(tx store.Tx) error {
		n, err := tx.Node(uuid)
		if err != nil {
			return err
		}
		if err := m.cfg.Inspect.Apply(ctx, tx, n, body); err != nil {
			perr = err
			return err
		}
		next, tgt, err := sm.Next(sm.State(n.ProvisionState), sm.EventResume)
		if err == nil {
			setState(n, next, tgt)
		}
		if hold {
			h := m.host
			n.Reservation = &h
			return tx.PutNode(n)
		}
		next, tgt, err = sm.Next(sm.State(n.ProvisionState), sm.EventDone)
		if err != nil {
			return err
		}
		setState(n, next, tgt)
		now := time.Now().UTC()
		n.InspectionFinishedAt = &now
		n.Reservation = nil
		return tx.PutNode(n)
	})
	if perr != nil {
		msg := fmt.Sprintf("Inspection of node %s failed: %v", uuid, perr)
		_ = m.fire(ctx, uuid, sm.EventFail, func(n *store.Node) { n.LastError = &msg; n.Reservation = nil })
		return &inspectionError{msg}
	}
	return err
}

// autoDiscovered reports whether the node was created by inspection of an
// unknown machine.
func autoDiscovered(n *store.Node) bool {
	var pd map[string]any
	if len(n.PluginData) == 0 || json.Unmarshal(n.PluginData, &pd) != nil {
		return false
	}
	v, _ := pd["auto_discovered"].(bool)
	return v
}

// issueToken gives node uuid an agent token unless it has one, as Ironic's
// lookup does: token is the new token, shown once, or "" when the node
// already had one.
func (m *Manager) issueToken(ctx context.Context, uuid string) (n *store.Node, token string, err error) {
	err = m.update(ctx, uuid, func(x *store.Node) error {
		if x.DriverInternalInfo == nil {
			x.DriverInternalInfo = store.Object{}
		}
		if _, ok := x.DriverInternalInfo["agent_secret_token"]; !ok {
			token = newToken()
			x.DriverInternalInfo["agent_secret_token"] = token
		}
		n = x
		return nil
	})
	return n, token, err
}
