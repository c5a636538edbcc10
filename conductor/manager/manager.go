// Package manager is the conductor's task manager: it turns API requests
// into work on machines. It takes node locks (the node's reservation, held
// in the store), fires provision state transitions (conductor/statemachine)
// before answering, runs the work on a bounded pool of workers through the
// node's drivers, and runs the periodic tasks (conductor liveness, power
// state sync, wait-state timeouts). On start it recovers nodes that a
// previous process left locked or in a transient state.
package manager

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferric-metal/ferric/conductor/console"
	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/driver/hardware"
	sm "github.com/ferric-metal/ferric/conductor/statemachine"
	"github.com/ferric-metal/ferric/conductor/store"
)

// Defaults.
const (
	DefaultWorkers         = 300
	DefaultWaitTimeout     = 1800 * time.Second
	DefaultPowerSync       = 60 * time.Second
	DefaultPowerTimeout    = 60 * time.Second
	DefaultHeartbeatPeriod = 10 * time.Second
	DefaultTimeoutCheck    = 60 * time.Second
	HeartbeatTimeout       = 300 // seconds, sent to the agent at lookup
	// LockRetries and LockRetryWait are how often and how long a
	// request waits for a node another task holds before NodeLocked
	// (Ironic's node_locked_retry_attempts and _interval, shortened).
	// The API's PATCH waits the same.
	LockRetries   = 3
	LockRetryWait = 200 * time.Millisecond
)

// Config configures the manager.
type Config struct {
	Store    store.Store
	Log      *slog.Logger
	Hostname string
	// Workers bounds concurrent tasks (503 when all are busy).
	Workers int
	// Drivers are the hardware types this conductor serves and the
	// implementations behind their interfaces (default: hardware.New).
	Drivers *driver.Registry
	// Agent talks to the ramdisk agent (nil: the built-in HTTP client).
	Agent AgentClient
	// Images resolves instance_info.image_source into what the agent
	// downloads; nil accepts only HTTP(S) URLs.
	Images ImageResolver
	// ConfigDrive builds an ISO from the dict form of configdrive; nil
	// refuses dict config drives.
	ConfigDrive func(n *store.Node, dict map[string]any) (string, error)
	// Inspect processes an inventory posted by the ramdisk.
	Inspect InspectProcessor
	// MediaPublisher serves images the vmedia API attaches with
	// image_download_source local (nil: only http is accepted).
	MediaPublisher MediaPublisher

	DeployCallbackTimeout time.Duration
	CleanWaitTimeout      time.Duration
	InspectWaitTimeout    time.Duration
	RescueWaitTimeout     time.Duration
	PowerSyncInterval     time.Duration
	PowerTimeout          time.Duration
	// AutomatedClean is the default for nodes without automated_clean.
	AutomatedClean bool
	// ForcePowerStateDuringSync makes the power sync drive a machine back
	// to the recorded power state when it drifted (Ironic's
	// [conductor]force_power_state_during_sync); off, the drift is logged
	// and the actual state recorded.
	ForcePowerStateDuringSync bool
	// ConductorGroup is this conductor's group: it serves the nodes of
	// that conductor_group ("" by default, as the nodes').
	ConductorGroup string
	// HeartbeatTimeout: a conductor whose last heartbeat is older is dead
	// and its nodes are taken over (default DefaultHeartbeatTimeout).
	HeartbeatTimeout time.Duration
	// HeartbeatInterval is the period of this conductor's heartbeat and
	// of its check for nodes to take over (default DefaultHeartbeatPeriod).
	HeartbeatInterval time.Duration
	// DeployLogsCollect is Ironic's [agent]deploy_logs_collect:
	// on_failure (default), always or never; RamdiskLogs keeps what is
	// collected (nil: nothing is collected).
	DeployLogsCollect string
	RamdiskLogs       RamdiskLogStore
	// FastTrack keeps a machine's ramdisk running between inspection,
	// cleaning and deploy (Ironic's [deploy]fast_track); a node's
	// driver_info.fast_track overrides it.
	FastTrack bool
	// FastTrackTimeout is how recent the agent's last heartbeat must be
	// for fast-track to reuse it (default DefaultFastTrackTimeout).
	FastTrackTimeout time.Duration
	// StallTimeout fails a deploy or cleaning whose agent has not been
	// heard from, or whose image write made no progress, for this long
	// (default DefaultStallTimeout; negative: off, only the wait
	// timeouts apply).
	StallTimeout time.Duration
	// Console configures the serial consoles this conductor serves
	// (address, port range, idle timeout).
	Console console.Config
}

// Manager runs tasks on nodes.
type Manager struct {
	cfg  Config
	st   store.Store
	log  *slog.Logger
	host string
	sem  chan struct{}
	wg   sync.WaitGroup
	// drivers is cfg.Drivers.
	drivers *driver.Registry
	// consoles serves the serial consoles of the nodes this conductor
	// serves (console.go).
	consoles *console.Server

	mu           sync.Mutex
	runCtx       context.Context
	syncFailures map[string]int // consecutive power sync failures by node
	ringCache    *ring
	ringAt       time.Time
	apiURL       string
	// recovered is set once Recover ran: Run does not run it again (a
	// second run would fail the tasks started since the first).
	recovered bool
	// polls maps a node's uuid to the channel of the waiter of its
	// running agent command, told when the agent heartbeats (stall.go).
	polls     sync.Map
	pollTimes pollTimes
}

// New returns a manager; call Run to start its periodic work.
func New(cfg Config) *Manager {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	for _, d := range []*time.Duration{&cfg.DeployCallbackTimeout, &cfg.CleanWaitTimeout, &cfg.InspectWaitTimeout, &cfg.RescueWaitTimeout} {
		if *d <= 0 {
			*d = DefaultWaitTimeout
		}
	}
	if cfg.PowerSyncInterval <= 0 {
		cfg.PowerSyncInterval = DefaultPowerSync
	}
	if cfg.PowerTimeout <= 0 {
		cfg.PowerTimeout = DefaultPowerTimeout
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatPeriod
	}
	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if cfg.FastTrackTimeout <= 0 {
		cfg.FastTrackTimeout = DefaultFastTrackTimeout
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = DefaultStallTimeout
	}
	if cfg.Agent == nil {
		cfg.Agent = NewHTTPAgentClient(nil)
	}
	if cfg.Drivers == nil {
		cfg.Drivers = hardware.New(hardware.Config{Log: cfg.Log})
	}
	return &Manager{cfg: cfg, st: cfg.Store, log: cfg.Log, host: cfg.Hostname,
		sem: make(chan struct{}, cfg.Workers), runCtx: context.Background(), drivers: cfg.Drivers,
		consoles: console.New(consoleConfig(cfg)), pollTimes: defaultPollTimes}
}

// Drivers is the registry of the hardware types this conductor serves.
func (m *Manager) Drivers() *driver.Registry { return m.drivers }

// TasksRunning is the number of tasks holding a worker.
func (m *Manager) TasksRunning() int { return len(m.sem) }

// Hostname is this conductor's name (shown as reservation and conductor).
func (m *Manager) Hostname() string { return m.host }

// Run registers the conductor, recovers stale work (unless the caller ran
// Recover before serving requests) and runs the periodic tasks until ctx
// ends, then waits for running tasks.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	m.runCtx = ctx
	recovered := m.recovered
	m.mu.Unlock()
	if err := m.register(ctx); err != nil {
		return err
	}
	if !recovered {
		if err := m.Recover(ctx); err != nil {
			return err
		}
	}
	m.takeOverInstanceBoots(ctx, true)
	m.reconcileConsoles(ctx, true)
	defer m.consoles.Close()
	hb := time.NewTicker(m.cfg.HeartbeatInterval)
	ps := time.NewTicker(m.cfg.PowerSyncInterval)
	to := time.NewTicker(min(DefaultTimeoutCheck, m.cfg.DeployCallbackTimeout/2))
	defer hb.Stop()
	defer ps.Stop()
	defer to.Stop()
	m.syncPower(ctx)
	for {
		select {
		case <-ctx.Done():
			m.wg.Wait()
			return nil
		case <-hb.C:
			if err := m.register(ctx); err != nil && ctx.Err() == nil {
				m.log.Warn("manager: conductor heartbeat failed", "err", err)
			}
			m.takeOver(ctx)
			m.takeOverInstanceBoots(ctx, false)
			m.reconcileConsoles(ctx, false)
		case <-ps.C:
			m.syncPower(ctx)
		case <-to.C:
			m.checkTimeouts(ctx)
			m.recoverRamdiskMedia(ctx)
		}
	}
}

func (m *Manager) ctx() context.Context {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runCtx
}

func (m *Manager) register(ctx context.Context) error {
	names := m.drivers.Names()
	return m.st.Update(ctx, func(tx store.Tx) error {
		c, err := tx.Conductor(m.host)
		if err != nil {
			c = &store.Conductor{Hostname: m.host}
		}
		c.Drivers = names
		c.ConductorGroup = m.cfg.ConductorGroup
		m.mu.Lock()
		c.APIURL = m.apiURL
		m.mu.Unlock()
		c.HeartbeatAt = time.Now().UTC()
		return tx.PutConductor(c)
	})
}

// Recover releases locks left by a previous run of this conductor and
// moves nodes caught in a transient state to the failed state Ironic uses.
// With other conductors on the store, it leaves alone the nodes that live
// conductors hold; those of dead ones it takes over when it owns them.
// Call it once, before serving requests (Run calls it when it was not).
func (m *Manager) Recover(ctx context.Context) error {
	m.mu.Lock()
	m.recovered = true
	m.mu.Unlock()
	orphaned, r := m.orphanCheck(), m.ring()
	for _, n := range m.st.Nodes(func(n *store.Node) bool {
		switch {
		case deref(n.Reservation) == m.host:
			return true
		case n.Reservation != nil:
			return orphaned(n) != "" && r.owner(n.ConductorGroup, n.UUID) == m.host
		}
		return sm.FailOnRestart(sm.State(n.ProvisionState)) && r.owner(n.ConductorGroup, n.UUID) == m.host
	}) {
		holder := n.Reservation
		err := m.recoverNode(ctx, n.UUID, func(n *store.Node) bool { return deref(n.Reservation) == deref(holder) },
			"Conductor %[1]s was restarted while node %[2]s was in state %[3]q (lock held by %[4]q); the operation was aborted.")
		if err != nil {
			return fmt.Errorf("manager: recover node %s: %w", n.UUID, err)
		}
		m.log.Warn("manager: recovered node after restart", "node", n.UUID, "state", n.ProvisionState)
	}
	m.recoverRamdiskMedia(ctx)
	return nil
}

// recoverNode releases the node's reservation and fails a transient
// provision state, if still recoverable (still holds the same lock).
// format gets this conductor, the node, its state and the lock holder.
func (m *Manager) recoverNode(ctx context.Context, uuid string, still func(*store.Node) bool, format string) error {
	return m.update(ctx, uuid, func(n *store.Node) error {
		if !still(n) {
			return errUnchanged
		}
		holder := deref(n.Reservation)
		n.Reservation = nil
		st := sm.State(n.ProvisionState)
		if sm.FailOnRestart(st) {
			if fail, ok := sm.FailState(st); ok {
				next, tgt, err := sm.Next(st, sm.EventFail)
				if err != nil {
					next, tgt = fail, sm.NoState
				}
				setState(n, next, tgt)
				msg := fmt.Sprintf(format, m.host, n.UUID, st, holder)
				n.LastError = &msg
				if st == sm.Cleaning {
					f := "clean failure"
					n.Fault = &f
				}
			}
		}
		return nil
	})
}

// update is a read-modify-write of one node in one transaction (the
// store re-runs a transaction that loses a race).
func (m *Manager) update(ctx context.Context, uuid string, fn func(*store.Node) error) error {
	err := m.st.Update(ctx, func(tx store.Tx) error {
		n, err := tx.Node(uuid)
		if err != nil {
			return err
		}
		if err := fn(n); err != nil {
			return err
		}
		return tx.PutNode(n)
	})
	if errors.Is(err, errUnchanged) {
		return nil
	}
	return err
}

// errUnchanged from an update function skips the write.
var errUnchanged = errors.New("unchanged")

func setState(n *store.Node, st, target sm.State) {
	n.ProvisionState = string(st)
	if target == sm.NoState {
		n.TargetProvisionState = nil
	} else {
		t := string(target)
		n.TargetProvisionState = &t
	}
	now := time.Now().UTC()
	n.ProvisionUpdatedAt = &now
}

// fire moves a node on ev, keeping a manual target (manual cleaning)
// across steps, and applies mutate in the same write.
func (m *Manager) fire(ctx context.Context, uuid string, ev sm.Event, mutate func(*store.Node)) error {
	defer m.cleanUpRamdiskMedia(ctx, uuid)
	return m.update(ctx, uuid, func(n *store.Node) error {
		next, tgt, err := sm.NextTo(sm.State(n.ProvisionState), ev, sm.State(deref(n.TargetProvisionState)))
		if err != nil {
			next, tgt, err = sm.Next(sm.State(n.ProvisionState), ev)
			if err != nil {
				return err
			}
		}
		setState(n, next, tgt)
		if mutate != nil {
			mutate(n)
		}
		return nil
	})
}

func (m *Manager) fail(ctx context.Context, uuid string, err error) {
	msg := err.Error()
	m.log.Error("manager: task failed", "node", uuid, "err", msg)
	m.collectLogsOnFailure(ctx, uuid, err)
	ferr := m.fire(ctx, uuid, sm.EventFail, func(n *store.Node) {
		n.LastError = &msg
		n.Reservation = nil
		if n.ProvisionState == string(sm.CleanFailed) {
			f := "clean failure"
			n.Fault = &f
		}
		clearAgent(n)
	})
	if ferr != nil {
		m.log.Error("manager: cannot record failure", "node", uuid, "err", ferr)
		m.unlock(ctx, uuid)
	}
}

func clearAgent(n *store.Node) {
	for _, k := range []string{"agent_url", "agent_secret_token", "agent_secret_token_pregenerated", "agent_verify_ca", "agent_last_command"} {
		delete(n.DriverInternalInfo, k)
	}
}

// lockErr is Ironic's NodeLocked message.
func lockErr(n *store.Node) error {
	return userErr(ErrNodeLocked, "Node %s is locked by host %s, please retry after the current operation is completed.", n.UUID, deref(n.Reservation))
}

// acquire takes the node's lock and applies fn in the same write; it
// retries briefly before answering NodeLocked, as Ironic does.
func (m *Manager) acquire(ctx context.Context, uuid string, fn func(*store.Node) error) error {
	var err error
	for i := 0; i < LockRetries; i++ {
		err = m.update(ctx, uuid, func(n *store.Node) error {
			if n.Reservation != nil {
				return lockErr(n)
			}
			h := m.host
			n.Reservation = &h
			if fn != nil {
				return fn(n)
			}
			return nil
		})
		if !errors.Is(err, ErrNodeLocked) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(LockRetryWait):
		}
	}
	return err
}

func (m *Manager) unlock(ctx context.Context, uuid string) {
	err := m.update(ctx, uuid, func(n *store.Node) error {
		if deref(n.Reservation) == m.host {
			n.Reservation = nil
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		m.log.Error("manager: release lock", "node", uuid, "err", err)
	}
}

// spawn runs fn on a worker; the node must already be locked. The lock is
// released when fn returns (fn may release it earlier itself).
func (m *Manager) spawn(uuid string, fn func(ctx context.Context) error) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer func() { <-m.sem }()
		ctx := m.ctx()
		defer m.cleanUpRamdiskMedia(ctx, uuid)
		if err := fn(ctx); err != nil {
			m.fail(ctx, uuid, err)
			return
		}
		m.unlock(ctx, uuid)
	}()
}

// slot reserves a worker or answers 503.
func (m *Manager) slot() error {
	select {
	case m.sem <- struct{}{}:
		return nil
	default:
		return userErr(ErrNoWorkers, "Requested action cannot be performed due to lack of free conductor workers.")
	}
}

func (m *Manager) release() { <-m.sem }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func strp(s string) *string { return &s }

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func shuffle[T any](s []T) {
	for i := len(s) - 1; i > 0; i-- {
		j, _ := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		s[i], s[j.Int64()] = s[j.Int64()], s[i]
	}
}

func tokenEqual(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// driverNode is the driver's view of a node.
func driverNode(n *store.Node) *driver.Node {
	return &driver.Node{UUID: n.UUID, DriverInfo: n.DriverInfo, Properties: n.Properties, InstanceInfo: n.InstanceInfo,
		PowerState: deref(n.PowerState), NetworkData: n.NetworkData, InstanceUUID: deref(n.InstanceUUID)}
}

// ---- power ----

// SetPowerState takes the lock, records target_power_state and changes the
// power state on a worker.
func (m *Manager) SetPowerState(ctx context.Context, uuid, target string, timeout int) error {
	n, err := m.st.Node(uuid)
	if err != nil {
		return userErr(ErrNotFound, "Node %s could not be found.", uuid)
	}
	if n.DisablePowerOff && (target == driver.TargetPowerOff || target == driver.TargetSoftPowerOff) {
		return userErr(ErrConflict, "Node %s has disable_power_off set; it cannot be powered off.", uuid)
	}
	if st := sm.State(n.ProvisionState); st == sm.Cleaning || st == sm.CleanWait {
		return userErr(ErrInvalidState, "The requested action \"%s\" can not be performed on node \"%s\" while it is in state \"%s\".", target, uuid, st)
	}
	pw, err := m.power(n)
	if err != nil {
		return userErr(ErrInvalidInput, "%v", err)
	}
	if err := pw.Validate(driverNode(n)); err != nil {
		return userErr(ErrInvalidInput, "Failed to validate power driver interface for node %s. Error: %v", uuid, err)
	}
	if err := m.slot(); err != nil {
		return err
	}
	want := driver.PowerOn
	if target == driver.TargetPowerOff || target == driver.TargetSoftPowerOff {
		want = driver.PowerOff
	}
	err = m.acquire(ctx, uuid, func(n *store.Node) error {
		n.TargetPowerState = &want
		n.LastError = nil
		return nil
	})
	if err != nil {
		m.release()
		return err
	}
	d := m.cfg.PowerTimeout
	if timeout > 0 {
		d = time.Duration(timeout) * time.Second
	}
	m.spawn(uuid, func(ctx context.Context) error {
		n, err := m.st.Node(uuid)
		if err != nil {
			return err
		}
		perr := pw.SetPowerState(ctx, driverNode(n), target, d)
		return m.update(ctx, uuid, func(n *store.Node) error {
			n.TargetPowerState = nil
			if perr != nil {
				msg := fmt.Sprintf("Failed to change power state to '%s' by '%s'. Error: %v", want, target, perr)
				n.LastError = &msg
				m.log.Error("manager: power change failed", "node", uuid, "target", target, "err", perr)
				return nil
			}
			n.PowerState = &want
			return nil
		})
	})
	return nil
}

// nodeManagement returns a node and its management interface, with the
// API's errors.
func (m *Manager) nodeManagement(uuid string) (*store.Node, driver.Management, error) {
	n, err := m.st.Node(uuid)
	if err != nil {
		return nil, nil, userErr(ErrNotFound, "Node %s could not be found.", uuid)
	}
	mg, err := m.management(n)
	if err != nil {
		return nil, nil, userErr(ErrInvalidInput, "%v", err)
	}
	return n, mg, nil
}

// SetBootDevice sets the next boot device (synchronously, under the lock).
func (m *Manager) SetBootDevice(ctx context.Context, uuid, device string, persistent bool) error {
	n, mg, err := m.nodeManagement(uuid)
	if err != nil {
		return err
	}
	if !slices.Contains(mg.SupportedBootDevices(), device) {
		return userErr(ErrInvalidInput, "Invalid boot device %s specified, supported are %s.", device, strings.Join(mg.SupportedBootDevices(), ", "))
	}
	if err := m.acquire(ctx, uuid, nil); err != nil {
		return err
	}
	defer m.unlock(ctx, uuid)
	if err := mg.SetBootDevice(ctx, driverNode(n), device, persistent); err != nil {
		return userErr(ErrInvalidInput, "Failed to set boot device for node %s: %v", uuid, err)
	}
	return m.update(ctx, uuid, func(n *store.Node) error {
		if n.DriverInternalInfo == nil {
			n.DriverInternalInfo = store.Object{}
		}
		n.DriverInternalInfo["boot_device"] = device
		n.DriverInternalInfo["boot_device_persistent"] = persistent
		return nil
	})
}

// BootDevice reports the last boot device set through this conductor.
func (m *Manager) BootDevice(ctx context.Context, uuid string) (string, *bool, error) {
	n, err := m.st.Node(uuid)
	if err != nil {
		return "", nil, userErr(ErrNotFound, "Node %s could not be found.", uuid)
	}
	dev, _ := n.DriverInternalInfo["boot_device"].(string)
	if p, ok := n.DriverInternalInfo["boot_device_persistent"].(bool); ok {
		return dev, &p, nil
	}
	return dev, nil, nil
}

// SupportedBootDevices lists what the node's management interface accepts.
func (m *Manager) SupportedBootDevices(ctx context.Context, uuid string) ([]string, error) {
	n, err := m.st.Node(uuid)
	if err != nil {
		return nil, userErr(ErrNotFound, "Node %s could not be found.", uuid)
	}
	mg, err := m.management(n)
	if err != nil {
		return nil, userErr(ErrInvalidInput, "%v", err)
	}
	return mg.SupportedBootDevices(), nil
}

// ValidateResult is one interface's validation result (Result nil means
// the interface is not supported).
type ValidateResult struct {
	Result *bool
	Reason string
}

// Validate checks each of the node's interfaces.
func (m *Manager) Validate(ctx context.Context, uuid string) (map[string]ValidateResult, error) {
	n, err := m.st.Node(uuid)
	if err != nil {
		return nil, userErr(ErrNotFound, "Node %s could not be found.", uuid)
	}
	t, f := true, false
	ok := ValidateResult{Result: &t}
	bad := func(reason string) ValidateResult { return ValidateResult{Result: &f, Reason: reason} }
	unsupported := func(kind string) ValidateResult {
		return ValidateResult{Reason: fmt.Sprintf("%s interface is not supported by this driver", kind)}
	}
	out := map[string]ValidateResult{}
	for _, kind := range driver.InterfaceKinds {
		if m.offersNothing(n, kind) {
			out[kind] = unsupported(kind)
		} else {
			out[kind] = ok
		}
	}
	if pw, err := m.power(n); err != nil {
		out["power"] = bad(err.Error())
	} else if err := pw.Validate(driverNode(n)); err != nil {
		out["power"] = bad(err.Error())
	}
	if mg, err := m.management(n); err != nil {
		out["management"] = bad(err.Error())
	} else if err := mg.Validate(driverNode(n)); err != nil {
		out["management"] = bad(err.Error())
	}
	if b, ok := capability[driver.Boot](m, n, "boot"); ok {
		if err := b.Validate(driverNode(n)); err != nil {
			out["boot"] = bad(err.Error())
		}
	}
	if _, serial, err := m.serialConsole(n); serial && err != nil {
		out["console"] = bad(err.Error())
	}
	if !m.offersNothing(n, "raid") && len(n.TargetRAIDConfig) > 0 {
		// As Ironic's raid interfaces validate the target config.
		if err := m.CheckRAIDConfig(n, n.TargetRAIDConfig); err != nil {
			out["raid"] = bad(err.Error())
		}
	}
	switch {
	case m.ramdiskDeploy(n):
		if reason := m.validateRamdiskDeploy(n); reason != "" {
			out["deploy"] = bad(reason)
		}
	case m.customAgent(n):
		// The agent's own steps deploy: no image to check.
	case m.usesAgent(n):
		if src, _ := n.InstanceInfo["image_source"].(string); src == "" {
			out["deploy"] = bad("Some parameters were missing in node's instance_info. Missing are: ['image_source']")
		} else if ic, ok := m.cfg.Images.(imageChecker); ok {
			if err := ic.Check(ctx, n); err != nil {
				out["deploy"] = bad(err.Error())
			}
		} else if m.cfg.Images != nil {
			if _, err := m.cfg.Images.Resolve(ctx, n); err != nil {
				out["deploy"] = bad(err.Error())
			}
		}
	}
	// A network interface that switches networks validates its
	// provisioning and cleaning networks, and the agent rescue its
	// rescuing network (Ironic's neutron interface).
	if sw, ok := capability[driver.NetworkSwitcher](m, n, "network"); ok {
		if err := sw.ValidateNetworks(ctx, driverNode(n)); err != nil {
			out["network"] = bad(err.Error())
		}
	}
	if v, ok := capability[driver.RescueNetworkValidator](m, n, "network"); ok && m.agentRescue(n) {
		if err := v.ValidateRescueNetwork(ctx, driverNode(n)); err != nil {
			out["rescue"] = bad(err.Error())
		}
	}
	// As Ironic, once the deploy interface validates: the instance
	// traits and the deploy templates' steps.
	if r := out["deploy"]; r.Result != nil && *r.Result {
		if reason := m.validateDeploySteps(n); reason != "" {
			out["deploy"] = bad(reason)
		}
	}
	return out, nil
}

// ---- periodic ----

// Power sync tuning (Ironic's defaults).
const (
	powerSyncWorkers     = 8
	powerSyncMaxFailures = 3
	faultPowerFailure    = "power failure"
)

// syncPower reads the power state of every node not being worked on,
// with a few workers. A node whose BMC fails powerSyncMaxFailures syncs in
// a row goes into maintenance with fault "power failure"; such nodes keep
// being tried and leave maintenance when their BMC answers again.
func (m *Manager) syncPower(ctx context.Context) {
	r := m.ring()
	nodes := m.st.Nodes(func(n *store.Node) bool {
		return n.Reservation == nil && !m.isFake(n, "power") &&
			(!n.Maintenance || deref(n.Fault) == faultPowerFailure) && r.owner(n.ConductorGroup, n.UUID) == m.host
	})
	work := make(chan *store.Node)
	var wg sync.WaitGroup
	for range min(powerSyncWorkers, len(nodes)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				m.syncNodePower(ctx, n)
			}
		}()
	}
	for _, n := range nodes {
		select {
		case work <- n:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
}

func (m *Manager) syncNodePower(ctx context.Context, n *store.Node) {
	pw, err := m.power(n)
	if err != nil || pw.Validate(driverNode(n)) != nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	st, perr := pw.PowerState(cctx, driverNode(n))
	cancel()
	m.mu.Lock()
	if m.syncFailures == nil {
		m.syncFailures = map[string]int{}
	}
	if perr != nil {
		m.syncFailures[n.UUID]++
	} else {
		delete(m.syncFailures, n.UUID)
	}
	failures := m.syncFailures[n.UUID]
	m.mu.Unlock()
	if perr != nil {
		m.log.Warn("manager: power sync failed", "node", n.UUID, "failures", failures, "err", perr)
		if failures < powerSyncMaxFailures || n.Maintenance {
			return
		}
		reason := fmt.Sprintf("During sync_power_state, max retries exceeded for node %s, node state %s does not match expected state 'None'. Updating DB state to 'None' Switching node to maintenance mode. Error: %v",
			n.UUID, deref(n.PowerState), perr)
		_ = m.update(ctx, n.UUID, func(n *store.Node) error {
			if n.Reservation != nil || n.Maintenance {
				return errUnchanged
			}
			f := faultPowerFailure
			n.Maintenance, n.MaintenanceReason, n.Fault, n.PowerState = true, &reason, &f, nil
			return nil
		})
		m.log.Error("manager: node moved to maintenance: its BMC does not answer", "node", n.UUID)
		return
	}
	m.cacheHealth(ctx, n)
	recovered := n.Maintenance && deref(n.Fault) == faultPowerFailure
	if deref(n.PowerState) == st && !recovered {
		return
	}
	if n.PowerState != nil && deref(n.PowerState) != st {
		m.log.Warn("manager: power state drift", "node", n.UUID, "recorded", deref(n.PowerState), "actual", st,
			"forcing", m.cfg.ForcePowerStateDuringSync && !n.Maintenance)
		if m.cfg.ForcePowerStateDuringSync && !n.Maintenance && !n.DisablePowerOff {
			target := driver.TargetPowerOn
			if *n.PowerState == driver.PowerOff {
				target = driver.TargetPowerOff
			}
			if err := pw.SetPowerState(ctx, driverNode(n), target, m.cfg.PowerTimeout); err != nil {
				m.log.Error("manager: forcing the recorded power state failed", "node", n.UUID, "err", err)
			}
			return
		}
	}
	_ = m.update(ctx, n.UUID, func(n *store.Node) error {
		if n.Reservation != nil {
			return errUnchanged
		}
		n.PowerState = &st
		if n.Maintenance && deref(n.Fault) == faultPowerFailure {
			n.Maintenance, n.MaintenanceReason, n.Fault = false, nil, nil
			m.log.Info("manager: BMC answers again; node leaves maintenance", "node", n.UUID)
		}
		return nil
	})
}

func (m *Manager) checkTimeouts(ctx context.Context) {
	now := time.Now()
	limits := map[sm.State]time.Duration{sm.DeployWait: m.cfg.DeployCallbackTimeout, sm.CleanWait: m.cfg.CleanWaitTimeout,
		sm.InspectWait: m.cfg.InspectWaitTimeout, sm.RescueWait: m.cfg.RescueWaitTimeout}
	r := m.ring()
	for _, n := range m.st.Nodes(func(n *store.Node) bool {
		lim, ok := limits[sm.State(n.ProvisionState)]
		return ok && n.Reservation == nil && n.ProvisionUpdatedAt != nil && now.Sub(*n.ProvisionUpdatedAt) > lim &&
			r.owner(n.ConductorGroup, n.UUID) == m.host
	}) {
		state := n.ProvisionState
		msg := fmt.Sprintf("Timeout reached while waiting for the ramdisk of node %s in state %q (no progress for %s).", n.UUID, state, limits[sm.State(state)])
		if state == string(sm.RescueWait) {
			msg = rescueTimeoutMsg
		}
		err := m.fire(ctx, n.UUID, sm.EventFail, func(n *store.Node) {
			n.LastError = &msg
			if state == string(sm.RescueWait) {
				removeRescuePassword(n)
			}
			if state == string(sm.CleanWait) {
				f := "clean failure"
				n.Fault = &f
			}
			clearAgent(n)
		})
		if err != nil {
			m.log.Error("manager: timeout transition", "node", n.UUID, "err", err)
			continue
		}
		m.log.Warn("manager: wait state timed out", "node", n.UUID, "state", state)
		if pw, err := m.power(n); err == nil {
			_ = pw.SetPowerState(ctx, driverNode(n), driver.TargetPowerOff, m.cfg.PowerTimeout)
		}
		// The ramdisk's network ports go, as Ironic's clean-up of a
		// rescue (and a managed inspection) that timed out.
		if netType, ok := map[sm.State]string{sm.RescueWait: driver.NetRescuing, sm.InspectWait: driver.NetInspection}[sm.State(state)]; ok {
			if err := m.removeNetwork(ctx, n, netType); err != nil {
				m.log.Warn("manager: removing the ramdisk's network after a timeout", "node", n.UUID, "err", err)
			}
		}
	}
}
