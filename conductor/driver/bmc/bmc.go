// Package bmc implements the conductor's driver.Power and driver.Management
// interfaces for Ironic's ipmi and redfish hardware types on top of bmclib v2.
//
// IPMI goes through bmclib's ipmitool provider (the ipmitool binary must be
// installed); Redfish goes through bmclib's gofish provider. Every call to the
// BMC runs under its own deadline (Config.CallTimeout), so a dead BMC gives an
// error such as "bmc: 10.0.0.1:623 did not answer within 15s" instead of a hang.
// Power changes are followed by polling until the requested state is reached.
//
// The *Result methods also report which bmclib provider acted, for the node's
// driver_internal_info. Passwords are never logged; bmclib's own logger is
// discarded.
//
// What bmclib does not offer on Redfish (BIOS settings, firmware, boot mode,
// out-of-band inventory, RAID volumes, event subscriptions, virtual media)
// goes through gofish v0.20.0 directly. Where gofish lacks the call it is
// written here over gofish's client (its authentication, TLS and error
// decoding): the creation and deletion of a RAID volume and a storage's
// Volumes link (gofish has no volume create and keeps that link private),
// and the creation and reads of event subscriptions (gofish's create
// requires a non-empty Context and an event type where Ironic sends
// Context "" and leaves the rest to the BMC, and its reads return no JSON,
// which the vendor methods answer with). Virtual media (InsertMedia,
// EjectMedia, Media) is all gofish's VirtualMedia; only the BMC's message
// is read out of gofish's error by hand, so that errors carry it.
package bmc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	bmclib "github.com/bmc-toolbox/bmclib/v2"
	"github.com/go-logr/logr"

	"github.com/ferric-metal/ferric/conductor/driver"
)

// Defaults of Config.
const (
	DefaultCallTimeout  = 15 * time.Second
	DefaultPollInterval = time.Second
	DefaultPowerTimeout = 60 * time.Second
)

// bmclib provider names.
const (
	ProviderIPMITool = "ipmitool"
	ProviderGofish   = "gofish"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrNoAnswer means the BMC did not answer one call within Config.CallTimeout.
	ErrNoAnswer = errors.New("BMC did not answer")
	// ErrPowerTimeout means the machine did not reach the requested power
	// state within the timeout given to SetPowerState.
	ErrPowerTimeout = errors.New("power state not reached")
	// ErrInvalidTarget is returned for an unknown power target or boot device.
	ErrInvalidTarget = errors.New("unsupported request")
)

// Config tunes both hardware types. The zero value uses the defaults.
type Config struct {
	// CallTimeout bounds each single exchange with the BMC (open, get, set).
	// Default DefaultCallTimeout.
	CallTimeout time.Duration
	// PollInterval is the wait between power state reads while waiting for
	// a change. Default DefaultPollInterval.
	PollInterval time.Duration
	// PowerTimeout is used when SetPowerState is given a zero timeout.
	// Default DefaultPowerTimeout.
	PowerTimeout time.Duration
	// IPMIToolPath is the ipmitool binary; "" looks it up in $PATH.
	IPMIToolPath string
	// Logger receives one line per BMC action; nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.PowerTimeout <= 0 {
		c.PowerTimeout = DefaultPowerTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// target is one BMC to talk to, resolved from a node's driver_info.
type target struct {
	addr     string // for messages: "host:port" or the Redfish endpoint
	host     string // as bmclib wants it
	user     string
	pass     string
	provider string
	opts     []bmclib.Option
	reboot   func(ctx context.Context, s *session) error
	// prepare, when set, runs before connecting and may add options (the
	// Redfish system name lookup).
	prepare func(ctx context.Context) ([]bmclib.Option, error)
}

// session is an opened bmclib client for one operation.
type session struct {
	t   target
	cfg Config
	c   *bmclib.Client
}

// core holds what both hardware types share.
type core struct {
	cfg   Config
	hw    string // "ipmi" or "redfish"
	parse func(n *driver.Node) (target, error)
}

// open connects to the node's BMC through exactly one bmclib provider.
func (d *core) open(ctx context.Context, n *driver.Node) (*session, error) {
	t, err := d.parse(n)
	if err != nil {
		return nil, err
	}
	opts := append([]bmclib.Option{
		bmclib.WithLogger(logr.Discard()),
		bmclib.WithPerProviderTimeout(d.cfg.CallTimeout),
	}, t.opts...)
	if t.prepare != nil {
		more, err := t.prepare(ctx)
		if err != nil {
			return nil, err
		}
		opts = append(opts, more...)
	}
	c := bmclib.NewClient(t.host, t.user, t.pass, opts...)
	c.Registry.Drivers = c.Registry.For(t.provider)
	if len(c.Registry.Drivers) == 0 {
		if t.provider == ProviderIPMITool {
			return nil, fmt.Errorf("bmc: %s: bmclib provider ipmitool is not available: install ipmitool", t.addr)
		}
		return nil, fmt.Errorf("bmc: %s: bmclib provider %s is not available", t.addr, t.provider)
	}
	s := &session{t: t, cfg: d.cfg, c: c}
	err = s.call(ctx, "open", func(ctx context.Context) error { return c.Open(ctx) })
	if err != nil {
		return nil, err
	}
	return s, nil
}

// close ends the session (logs out of Redfish session auth) within CallTimeout.
func (s *session) close() {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CallTimeout)
	defer cancel()
	_ = s.c.Close(ctx)
}

// call runs f under CallTimeout and turns a deadline into a clear error.
func (s *session) call(ctx context.Context, what string, f func(ctx context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bmc: %s: %s: %w", s.t.addr, what, err)
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f(cctx) }()
	var err error
	select {
	case err = <-done:
	case <-cctx.Done():
		// bmclib normally returns on its own; this guards against a provider
		// that ignores its context.
		err = cctx.Err()
	}
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("bmc: %s: %s: %w", s.t.addr, what, ctx.Err())
	}
	if cctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("bmc: %s did not answer within %s (%s): %w", s.t.addr, s.cfg.CallTimeout, what, ErrNoAnswer)
	}
	return fmt.Errorf("bmc: %s: %s: %s", s.t.addr, what, cleanErr(err))
}

// cleanErr flattens bmclib's multi-line multierror text into one line.
func cleanErr(err error) string {
	f := strings.Fields(err.Error())
	return strings.Join(f, " ")
}

func (s *session) provider() string {
	if p := s.c.GetMetadata().SuccessfulProvider; p != "" {
		return p
	}
	return s.t.provider
}

// powerState reads and normalizes the power state.
func (s *session) powerState(ctx context.Context) (string, error) {
	var raw string
	err := s.call(ctx, "get power state", func(ctx context.Context) error {
		var err error
		raw, err = s.c.GetPowerState(ctx)
		return err
	})
	if err != nil {
		return "", err
	}
	st, ok := normalizePower(raw)
	if !ok {
		return "", fmt.Errorf("bmc: %s: unknown power state %q", s.t.addr, strings.TrimSpace(raw))
	}
	return st, nil
}

// setPower asks bmclib for one of its power actions: on, off, soft, reset, cycle.
func (s *session) setPower(ctx context.Context, action string) error {
	return s.call(ctx, "power "+action, func(ctx context.Context) error {
		_, err := s.c.SetPowerState(ctx, action)
		if err != nil && action == "soft" && s.t.provider == ProviderGofish {
			// bmclib v2.3.5's gofish provider answers (false, nil) after a
			// successful GracefulShutdown request, which bmclib reports as
			// "failed to set power state" with no provider error detail. The
			// request was sent: the caller's wait for "power off" decides.
			md := s.c.GetMetadata()
			if len(md.FailedProviderDetail) == 0 && len(md.ProvidersAttempted) > 0 {
				return nil
			}
		}
		return err
	})
}

// normalizePower maps ipmitool output ("Chassis Power is on") and Redfish
// PowerState values ("On", "PoweringOff") to driver.PowerOn / driver.PowerOff.
func normalizePower(raw string) (string, bool) {
	s := strings.ToLower(strings.TrimSpace(raw))
	s = strings.TrimPrefix(s, "chassis power is ")
	switch s {
	case "on", "poweringon", "powering on":
		return driver.PowerOn, true
	case "off", "poweringoff", "powering off":
		return driver.PowerOff, true
	}
	return "", false
}

// waitPower polls until the machine is in want or the deadline passes.
func (s *session) waitPower(ctx context.Context, want string, deadline time.Time, timeout time.Duration) error {
	var last string
	var lastErr error
	for {
		st, err := s.powerState(ctx)
		if err == nil && st == want {
			return nil
		}
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				return err
			}
		} else {
			last, lastErr = st, nil
		}
		wait := s.cfg.PollInterval
		left := time.Until(deadline)
		if left <= 0 {
			if lastErr != nil {
				return fmt.Errorf("bmc: %s: %q not reached within %s: %w (last error: %v)", s.t.addr, want, timeout, ErrPowerTimeout, lastErr)
			}
			return fmt.Errorf("bmc: %s: %q not reached within %s, still %q: %w", s.t.addr, want, timeout, last, ErrPowerTimeout)
		}
		if wait > left {
			wait = left
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bmc: %s: waiting for %q: %w", s.t.addr, want, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// Validate checks the node's driver_info for this hardware type.
func (d *core) Validate(n *driver.Node) error {
	_, err := d.parse(n)
	return err
}

// PowerState returns driver.PowerOn or driver.PowerOff.
func (d *core) PowerState(ctx context.Context, n *driver.Node) (string, error) {
	st, _, err := d.PowerStateResult(ctx, n)
	return st, err
}

// InjectNMI sends the machine a diagnostic interrupt (IPMI chassis power
// diag, Redfish ComputerSystem.Reset with ResetType Nmi).
func (d *core) InjectNMI(ctx context.Context, n *driver.Node) error {
	s, err := d.open(ctx, n)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.call(ctx, "inject NMI", func(ctx context.Context) error { return s.c.SendNMI(ctx) }); err != nil {
		return err
	}
	d.cfg.Logger.Info("bmc: NMI injected", "node", n.UUID, "bmc", s.t.addr, "provider", s.provider())
	return nil
}

// PowerStateResult is PowerState that also reports the provider that answered.
func (d *core) PowerStateResult(ctx context.Context, n *driver.Node) (string, driver.Result, error) {
	s, err := d.open(ctx, n)
	if err != nil {
		return "", driver.Result{}, err
	}
	defer s.close()
	st, err := s.powerState(ctx)
	if err != nil {
		return "", driver.Result{}, err
	}
	return st, driver.Result{Provider: s.provider()}, nil
}

// SetPowerState drives the machine to target and waits for it.
func (d *core) SetPowerState(ctx context.Context, n *driver.Node, target string, timeout time.Duration) error {
	_, err := d.SetPowerStateResult(ctx, n, target, timeout)
	return err
}

// SetPowerStateResult is SetPowerState that also reports the provider that acted.
// Reboot of an ipmi node is a hard off then on (as Ironic's ipmitool driver);
// of a redfish node ForceRestart when on, On when off. Soft reboot is a soft
// power off, a wait for off, then on. timeout covers the whole operation.
func (d *core) SetPowerStateResult(ctx context.Context, n *driver.Node, target string, timeout time.Duration) (driver.Result, error) {
	switch target {
	case driver.TargetPowerOn, driver.TargetPowerOff, driver.TargetReboot, driver.TargetSoftPowerOff, driver.TargetSoftReboot:
	default:
		return driver.Result{}, fmt.Errorf("bmc: power target %q: %w (want one of %q, %q, %q, %q, %q)", target, ErrInvalidTarget,
			driver.TargetPowerOn, driver.TargetPowerOff, driver.TargetReboot, driver.TargetSoftPowerOff, driver.TargetSoftReboot)
	}
	if timeout <= 0 {
		timeout = d.cfg.PowerTimeout
	}
	deadline := time.Now().Add(timeout)
	s, err := d.open(ctx, n)
	if err != nil {
		return driver.Result{}, err
	}
	defer s.close()
	log := d.cfg.Logger.With("node", n.UUID, "bmc", s.t.addr, "hardware_type", d.hw)
	log.InfoContext(ctx, "bmc: power change", "target", target)

	switch target {
	case driver.TargetPowerOn:
		err = s.setAndWait(ctx, "on", driver.PowerOn, deadline, timeout)
	case driver.TargetPowerOff:
		err = s.setAndWait(ctx, "off", driver.PowerOff, deadline, timeout)
	case driver.TargetSoftPowerOff:
		err = s.setAndWait(ctx, "soft", driver.PowerOff, deadline, timeout)
	case driver.TargetSoftReboot:
		if err = s.setAndWait(ctx, "soft", driver.PowerOff, deadline, timeout); err == nil {
			err = s.setAndWait(ctx, "on", driver.PowerOn, deadline, timeout)
		}
	case driver.TargetReboot:
		if err = s.t.reboot(ctx, s); err == nil {
			err = s.waitPower(ctx, driver.PowerOn, deadline, timeout)
		}
	}
	if err != nil {
		log.WarnContext(ctx, "bmc: power change failed", "target", target, "error", err)
		return driver.Result{}, err
	}
	res := driver.Result{Provider: s.provider()}
	log.InfoContext(ctx, "bmc: power change done", "target", target, "provider", res.Provider)
	return res, nil
}

func (s *session) setAndWait(ctx context.Context, action, want string, deadline time.Time, timeout time.Duration) error {
	if err := s.setPower(ctx, action); err != nil {
		return err
	}
	return s.waitPower(ctx, want, deadline, timeout)
}

// rebootOffOn is the ipmi reboot: hard off, wait for off, then on.
func rebootOffOn(ctx context.Context, s *session) error {
	st, err := s.powerState(ctx)
	if err != nil {
		return err
	}
	if st == driver.PowerOn {
		if err := s.setPower(ctx, "off"); err != nil {
			return err
		}
		if err := s.waitPower(ctx, driver.PowerOff, time.Now().Add(s.cfg.PowerTimeout), s.cfg.PowerTimeout); err != nil {
			return err
		}
	}
	return s.setPower(ctx, "on")
}

// rebootRestart is the redfish reboot: ForceRestart when on, On when off.
func rebootRestart(ctx context.Context, s *session) error {
	st, err := s.powerState(ctx)
	if err != nil {
		return err
	}
	if st == driver.PowerOn {
		return s.setPower(ctx, "cycle")
	}
	return s.setPower(ctx, "on")
}

var supportedBootDevices = []string{driver.BootPXE, driver.BootDisk, driver.BootCDROM, driver.BootBIOS}

// SupportedBootDevices lists the devices SetBootDevice accepts.
func (d *core) SupportedBootDevices() []string {
	return append([]string(nil), supportedBootDevices...)
}

// SetBootDevice sets the next boot device (or every boot when persistent), in
// UEFI mode when the node's capabilities say boot_mode:uefi.
func (d *core) SetBootDevice(ctx context.Context, n *driver.Node, device string, persistent bool) error {
	_, err := d.SetBootDeviceResult(ctx, n, device, persistent)
	return err
}

// SetBootDeviceResult is SetBootDevice that also reports the provider that acted.
func (d *core) SetBootDeviceResult(ctx context.Context, n *driver.Node, device string, persistent bool) (driver.Result, error) {
	ok := false
	for _, dev := range supportedBootDevices {
		ok = ok || dev == device
	}
	if !ok {
		return driver.Result{}, fmt.Errorf("bmc: boot device %q: %w (want one of %s)", device, ErrInvalidTarget, strings.Join(supportedBootDevices, ", "))
	}
	s, err := d.open(ctx, n)
	if err != nil {
		return driver.Result{}, err
	}
	defer s.close()
	efi := n.UEFI()
	log := d.cfg.Logger.With("node", n.UUID, "bmc", s.t.addr, "hardware_type", d.hw)
	err = s.call(ctx, "set boot device "+device, func(ctx context.Context) error {
		_, err := s.c.SetBootDevice(ctx, device, persistent, efi)
		return err
	})
	if err != nil {
		log.WarnContext(ctx, "bmc: set boot device failed", "device", device, "error", err)
		return driver.Result{}, err
	}
	res := driver.Result{Provider: s.provider()}
	log.InfoContext(ctx, "bmc: boot device set", "device", device, "persistent", persistent, "uefi", efi, "provider", res.Provider)
	return res, nil
}
