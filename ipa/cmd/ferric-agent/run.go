package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferric-metal/ferric/ipa/hints"
	"github.com/ferric-metal/ferric/ipa/internal/agent"
	"github.com/ferric-metal/ferric/ipa/internal/bmcinfo"
	"github.com/ferric-metal/ferric/ipa/internal/cmdline"
	"github.com/ferric-metal/ferric/ipa/internal/efiboot"
	"github.com/ferric-metal/ferric/ipa/internal/fetch"
	"github.com/ferric-metal/ferric/ipa/internal/initsys"
	"github.com/ferric-metal/ferric/ipa/internal/inventory"
	"github.com/ferric-metal/ferric/ipa/internal/netconfig"
	"github.com/ferric-metal/ferric/ipa/internal/sshd"
	"github.com/ferric-metal/ferric/ipa/protocol"
	"github.com/ferric-metal/ferric/ipa/swraid"
)

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// pathsFlag collects repeated path flags (paths may contain commas).
type pathsFlag []string

func (l *pathsFlag) String() string     { return strings.Join(*l, " ") }
func (l *pathsFlag) Set(v string) error { *l = append(*l, v); return nil }

// processPower simulates power actions in process mode: the agent starts
// over with a lookup, as a freshly booted ramdisk would.
type processPower struct{ log *slog.Logger }

func (p processPower) PowerOff(ctx context.Context, reboot bool) error {
	unix.Sync()
	p.log.Info("power action simulated (process mode)", "reboot", reboot)
	return nil
}

// options are the agent's flags, completed by the kernel command line.
type options struct {
	apiURLs, macs listFlag
	disks         pathsFlag
	initMode      bool
	cmdlinePath   string
	etcDir        string
	rescueSSH     string
	listen        string
	advHost       string
	advPort       int
	autoTLS       bool
	insecure      bool
	minRoot       int64
	hbInterval    time.Duration
	forcedGap     time.Duration
	lookupMin     time.Duration
	lookupMax     time.Duration
	nodeUUID      string
	inspectURL    string
	debug         bool
	modulesDir    string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ring := agent.NewLogRing(1 << 20)
	level := new(slog.LevelVar)
	log := slog.New(slog.NewTextHandler(io.MultiWriter(stderr, ring), &slog.HandlerOptions{Level: level}))
	fatal := func(err error) error {
		if o.initMode {
			initsys.Halt(log, err) // never returns
		}
		return err
	}

	if o.initMode && o.cmdlinePath == "" {
		o.cmdlinePath = "/proc/cmdline"
	}
	if o.initMode {
		if err := initsys.MountAll(); err != nil {
			log.Warn("mounts", "error", err)
		}
		log = slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, ring), &slog.HandlerOptions{Level: level}))
	}
	params, err := o.readCmdline()
	if err != nil {
		return fatal(err)
	}
	if o.debug {
		level.Set(slog.LevelDebug)
	}
	// EFI boot entries are written only by the ramdisk's agent: a process
	// on a test host must never touch the host's firmware variables.
	efiVars := ""
	if o.initMode {
		if efiVars, err = o.initMachine(ctx, log, params); err != nil {
			return fatal(err)
		}
	}
	coll, err := o.collector(ctx, log, params)
	if err != nil {
		return fatal(err)
	}
	var power agent.Powerer = processPower{log: log}
	if o.initMode {
		power = initsys.Power{}
		if o.etcDir == "" {
			o.etcDir = "/etc"
		}
		if o.rescueSSH == "" {
			o.rescueSSH = sshd.DefaultListen
		}
	}
	a, err := agent.New(agent.Config{
		APIURLs: o.apiURLs, Listen: o.listen, AdvertiseHost: o.advHost, AdvertisePort: o.advPort, MACs: o.macs,
		NodeUUID: o.nodeUUID, InspectionCallbackURL: o.inspectURL, AutoTLS: o.autoTLS, APIClient: &http.Client{Transport: apiTransport(o.insecure)},
		Inventory: coll.Collect, MinRootSize: o.minRoot, Power: power,
		LookupMin: o.lookupMin, LookupMax: o.lookupMax, ForcedHeartbeatGap: o.forcedGap, HeartbeatInterval: o.hbInterval,
		RequestID: params.GlobalRequestID, Token: params.AgentToken, Logger: log, LogBuffer: ring, EFIVarsDir: efiVars,
		EtcDir: o.etcDir, RescueSSHListen: o.rescueSSH, RescueHome: rescueHome(o.initMode),
	})
	if err != nil {
		return fatal(err)
	}
	log.Info("ferric-agent starting", "version", agent.Version, "init", o.initMode, "api", strings.Join(o.apiURLs, ","),
		"macs", strings.Join(o.macs, ","), "callback", a.CallbackURL(), "inspection_callback", o.inspectURL)
	err = a.Run(ctx)
	if err != nil || o.initMode {
		if err == nil {
			err = errors.New("agent stopped")
		}
		return fatal(err)
	}
	return nil
}

// parseFlags reads the agent's flags from args, each also settable by an
// environment variable FERRIC_AGENT_<NAME>.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("ferric-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.BoolVar(&o.initMode, "init", os.Getpid() == 1, "run as the ramdisk's /init: mount, load modules, DHCP, read the kernel command line (default when PID 1)")
	fs.StringVar(&o.cmdlinePath, "cmdline", "", "read kernel parameters from this file (default /proc/cmdline in init mode)")
	fs.StringVar(&o.listen, "listen", agent.DefaultListen, "command API listen address")
	fs.StringVar(&o.advHost, "advertise-host", "", "address put in the callback URL (ipa-advertise-host)")
	fs.IntVar(&o.advPort, "advertise-port", protocol.DefaultAgentPort, "port put in the callback URL (ipa-advertise-port)")
	fs.BoolVar(&o.autoTLS, "auto-tls", false, "serve the command API over TLS with a self-signed certificate sent as agent_verify_ca (ipa-enable-auto-tls)")
	fs.BoolVar(&o.insecure, "insecure", false, "do not verify the Ironic API and image servers' TLS certificates (ipa-insecure)")
	fs.Int64Var(&o.minRoot, "min-root-size", hints.MinDefaultSize, "smallest disk (bytes) chosen as root device without hints")
	fs.DurationVar(&o.hbInterval, "heartbeat-interval", 0, "fixed heartbeat interval (default heartbeat_timeout × U(0.3,0.6))")
	fs.DurationVar(&o.forcedGap, "forced-heartbeat-gap", agent.DefaultForcedHBGap, "minimum gap before the heartbeat forced by a finished command")
	fs.DurationVar(&o.lookupMin, "lookup-min", agent.DefaultLookupMin, "first lookup retry delay")
	fs.DurationVar(&o.lookupMax, "lookup-max", agent.DefaultLookupMax, "longest lookup retry delay")
	fs.StringVar(&o.nodeUUID, "node-uuid", "", "node UUID sent with lookup")
	fs.StringVar(&o.inspectURL, "inspection-callback-url", "", "post the inventory here before the first lookup (ipa-inspection-callback-url; Ironic's /v1/continue_inspection or ironic-inspector's /v1/continue)")
	fs.BoolVar(&o.debug, "debug", false, "debug logging (ipa-debug)")
	fs.StringVar(&o.modulesDir, "modules-dir", "", "directory with modules.dep (init mode; default /lib/modules/<release>)")
	fs.Var(&o.apiURLs, "api-url", "Ironic API URL(s), comma separated or repeated (ipa-api-url)")
	fs.Var(&o.macs, "mac", "MAC address(es) for lookup (default: all NICs, BOOTIF first)")
	fs.StringVar(&o.etcDir, "etc-dir", "", "the /etc where a rescue sets the rescue user's password (default /etc in init mode; none, rescue refused, otherwise)")
	fs.StringVar(&o.rescueSSH, "rescue-ssh-listen", "", "serve SSH here once a rescue set the rescue user's password (default :22 in init mode; none otherwise)")
	fs.Var(&o.disks, "disk", "file or device used as a disk (repeatable); with it, /sys/block is not scanned")
	fs.VisitAll(func(f *flag.Flag) {
		env := "FERRIC_AGENT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			fs.Set(f.Name, v)
		}
		f.Usage += " [$" + env + "]"
	})
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return o, nil
}

// readCmdline reads the kernel command line file, if one is named, and
// lets its ipa-* parameters complete (API URLs, inspection callback,
// advertised host) or override (ports, TLS) the flags.
func (o *options) readCmdline() (cmdline.Params, error) {
	var params cmdline.Params
	if o.cmdlinePath == "" {
		return params, nil
	}
	b, err := os.ReadFile(o.cmdlinePath)
	if err != nil {
		return params, fmt.Errorf("kernel command line: %w", err)
	}
	if params, err = cmdline.FromMap(cmdline.Parse(string(b))); err != nil {
		return params, err
	}
	if len(o.apiURLs) == 0 {
		o.apiURLs = params.APIURLs
	}
	if o.inspectURL == "" {
		o.inspectURL = params.InspectionCallbackURL
	}
	if o.advHost == "" {
		o.advHost = params.AdvertiseHost
	}
	if params.AdvertisePort != 0 {
		o.advPort = params.AdvertisePort
	}
	if params.ListenPort != 0 {
		o.listen = fmt.Sprintf(":%d", params.ListenPort)
	}
	if params.EnableAutoTLS != nil {
		o.autoTLS = *params.EnableAutoTLS
	}
	o.insecure = o.insecure || params.Insecure
	o.debug = o.debug || params.Debug
	return params, nil
}

// initMachine readies the ramdisk as its /init: kernel modules, EFI
// variables, pstore, software RAID arrays and the network (the advertised host defaults to the
// boot interface's address). It returns the EFI variables directory ("" if
// the firmware has none).
func (o *options) initMachine(ctx context.Context, log *slog.Logger, params cmdline.Params) (string, error) {
	efiVars := ""
	loadModules(log, o.modulesDir)
	time.Sleep(500 * time.Millisecond) // let drivers register devices
	if initsys.MountEFIVars() {
		efiVars = efiboot.DefaultVarsDir
	}
	initsys.MountPstore() // erase_pstore finds it in /proc/mounts
	// Software RAID arrays built by an earlier clean (the root device of a
	// deploy onto them), as udev assembles them in IPA's ramdisk.
	if arrays, err := (&swraid.Manager{Log: log}).Assemble(ctx); err == nil && len(arrays) > 0 {
		log.Info("software RAID arrays assembled", "count", len(arrays))
	}
	leases, err := configureNetwork(ctx, log, params)
	if err != nil {
		return "", err
	}
	if o.advHost == "" {
		o.advHost = leases[0].Addr.IP.String()
		for _, l := range leases {
			if l.MAC == params.BootIF {
				o.advHost = l.Addr.IP.String()
			}
		}
	}
	return efiVars, nil
}

// loadModules loads the ramdisk's kernel modules: in the order of
// /etc/modules.order when the ramdisk has one and no directory is named,
// else by modules.dep of dir (default /lib/modules/<release>).
func loadModules(log *slog.Logger, dir string) {
	if _, err := os.Stat("/etc/modules.order"); err == nil && dir == "" {
		// The ramdisk of ipa/ramdisk/build.sh: flat /lib/modules/NAME.ko
		// and the load order in /etc/modules.order (no modules.dep).
		if err := initsys.LoadModuleOrder(log, "/lib/modules", "/etc/modules.order"); err != nil {
			log.Warn("modules", "error", err)
		}
		return
	}
	if dir == "" {
		var uname unix.Utsname
		unix.Uname(&uname)
		dir = "/lib/modules/" + unix.ByteSliceToString(uname.Release[:])
	}
	if err := initsys.LoadModules(log, dir); err != nil {
		log.Warn("modules", "error", err)
	}
}

// collector returns the machine's inventory collector and settles the MACs
// the agent looks itself up by: the flags' (a process standing for the
// machine with those MACs, booted from the first) or all NICs', boot
// interface first.
func (o *options) collector(ctx context.Context, log *slog.Logger, params cmdline.Params) (*inventory.Collector, error) {
	coll := &inventory.Collector{Root: "/", BootIF: params.BootIF, ExtraDisks: o.disks, NoBlockDevices: len(o.disks) > 0,
		BMC: bmcinfo.InBand{}, Logger: log}
	if len(o.macs) > 0 && !o.initMode {
		coll.MACs = o.macs
		if coll.BootIF == "" {
			coll.BootIF = o.macs[0]
		}
	}
	if len(o.macs) == 0 {
		inv, err := coll.Collect(ctx)
		if err != nil {
			return nil, err
		}
		o.macs = inventory.MACs(inv, params.BootIF)
	}
	return coll, nil
}

// apiTransport is the HTTP transport to Ironic and the image servers
// (batched reads; no certificate checks if the operator asked so).
func apiTransport(insecure bool) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	fetch.BatchReads(tr)
	if insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // operator asked (ipa-insecure)
	}
	return tr
}

// configureNetwork gives the ramdisk its addresses: from the
// network_data.json of a config-2 medium when there is one (static
// addresses, and DHCP only on the links it leaves to DHCP), else by DHCP on
// every link, also when the network data cannot be applied (the error is
// logged, and returned with DHCP's when DHCP fails too). A ramdisk booted from virtual media (boot_method=vmedia)
// waits a little for its CD drive to appear.
func configureNetwork(ctx context.Context, log *slog.Logger, params cmdline.Params) ([]initsys.Lease, error) {
	wait := time.Duration(0)
	if params.BootMethod == "vmedia" {
		wait = 10 * time.Second
	}
	dhcpOn := initsys.ConfigureNetworkOn
	if ipv6API(params) {
		dhcpOn = initsys.ConfigureNetworkIPv6On
	}
	res, err := netconfig.Configure(ctx, log, netconfig.Finder{}, wait, "/etc/resolv.conf")
	if errors.Is(err, netconfig.ErrNotFound) {
		log.Info("no network data, configuring links by DHCP", "detail", err)
		return dhcpOn(ctx, log, 30*time.Second, nil)
	}
	if err != nil {
		// The links are as they were: DHCP may still reach the conductor.
		log.Error("network data not applied, configuring links by DHCP", "error", err)
		leases, derr := dhcpOn(ctx, log, 30*time.Second, nil)
		if derr != nil {
			return nil, errors.Join(err, derr)
		}
		return leases, nil
	}
	var leases []initsys.Lease
	for _, c := range res.Interfaces {
		for _, a := range c.Addrs {
			leases = append(leases, initsys.Lease{Interface: c.Interface, MAC: c.MAC,
				Addr: net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}})
		}
	}
	if dh := res.DHCPInterfaces(); len(dh) > 0 {
		more, err := dhcpOn(ctx, log, 30*time.Second, dh)
		if err != nil && len(leases) == 0 {
			return nil, err
		}
		leases = append(leases, more...)
	}
	if len(leases) == 0 {
		return nil, fmt.Errorf("network data configured no address")
	}
	return leases, nil
}

// rescueHome is the rescue user's home in SSH sessions: /home/rescue in
// the ramdisk, the temporary directory of a process agent.
func rescueHome(initMode bool) string {
	if initMode {
		return "/home/" + agent.RescueUser
	}
	return os.TempDir()
}
