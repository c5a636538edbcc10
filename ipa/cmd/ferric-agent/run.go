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

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ferric-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		apiURLs, macs listFlag
		disks         pathsFlag
		initMode      = fs.Bool("init", os.Getpid() == 1, "run as the ramdisk's /init: mount, load modules, DHCP, read the kernel command line (default when PID 1)")
		cmdlinePath   = fs.String("cmdline", "", "read kernel parameters from this file (default /proc/cmdline in init mode)")
		listen        = fs.String("listen", agent.DefaultListen, "command API listen address")
		advHost       = fs.String("advertise-host", "", "address put in the callback URL (ipa-advertise-host)")
		advPort       = fs.Int("advertise-port", protocol.DefaultAgentPort, "port put in the callback URL (ipa-advertise-port)")
		autoTLS       = fs.Bool("auto-tls", false, "serve the command API over TLS with a self-signed certificate sent as agent_verify_ca (ipa-enable-auto-tls)")
		insecure      = fs.Bool("insecure", false, "do not verify the Ironic API and image servers' TLS certificates (ipa-insecure)")
		minRoot       = fs.Int64("min-root-size", hints.MinDefaultSize, "smallest disk (bytes) chosen as root device without hints")
		hbInterval    = fs.Duration("heartbeat-interval", 0, "fixed heartbeat interval (default heartbeat_timeout × U(0.3,0.6))")
		forcedGap     = fs.Duration("forced-heartbeat-gap", agent.DefaultForcedHBGap, "minimum gap before the heartbeat forced by a finished command")
		lookupMin     = fs.Duration("lookup-min", agent.DefaultLookupMin, "first lookup retry delay")
		lookupMax     = fs.Duration("lookup-max", agent.DefaultLookupMax, "longest lookup retry delay")
		nodeUUID      = fs.String("node-uuid", "", "node UUID sent with lookup")
		inspectURL    = fs.String("inspection-callback-url", "", "post the inventory here before the first lookup (ipa-inspection-callback-url; Ironic's /v1/continue_inspection or ironic-inspector's /v1/continue)")
		debug         = fs.Bool("debug", false, "debug logging (ipa-debug)")
		modulesDir    = fs.String("modules-dir", "", "directory with modules.dep (init mode; default /lib/modules/<release>)")
	)
	fs.Var(&apiURLs, "api-url", "Ironic API URL(s), comma separated or repeated (ipa-api-url)")
	fs.Var(&macs, "mac", "MAC address(es) for lookup (default: all NICs, BOOTIF first)")
	fs.Var(&disks, "disk", "file or device used as a disk (repeatable); with it, /sys/block is not scanned")
	fs.VisitAll(func(f *flag.Flag) {
		env := "FERRIC_AGENT_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			fs.Set(f.Name, v)
		}
		f.Usage += " [$" + env + "]"
	})
	if err := fs.Parse(args); err != nil {
		return err
	}

	ring := agent.NewLogRing(1 << 20)
	level := new(slog.LevelVar)
	log := slog.New(slog.NewTextHandler(io.MultiWriter(stderr, ring), &slog.HandlerOptions{Level: level}))
	fatal := func(err error) error {
		if *initMode {
			initsys.Halt(log, err) // never returns
		}
		return err
	}

	var params cmdline.Params
	if *initMode && *cmdlinePath == "" {
		*cmdlinePath = "/proc/cmdline"
	}
	if *initMode {
		if err := initsys.MountAll(); err != nil {
			log.Warn("mounts", "error", err)
		}
		log = slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, ring), &slog.HandlerOptions{Level: level}))
	}
	if *cmdlinePath != "" {
		b, err := os.ReadFile(*cmdlinePath)
		if err != nil {
			return fatal(fmt.Errorf("kernel command line: %w", err))
		}
		if params, err = cmdline.FromMap(cmdline.Parse(string(b))); err != nil {
			return fatal(err)
		}
		if len(apiURLs) == 0 {
			apiURLs = params.APIURLs
		}
		if *inspectURL == "" {
			*inspectURL = params.InspectionCallbackURL
		}
		if *advHost == "" {
			*advHost = params.AdvertiseHost
		}
		if params.AdvertisePort != 0 {
			*advPort = params.AdvertisePort
		}
		if params.ListenPort != 0 {
			*listen = fmt.Sprintf(":%d", params.ListenPort)
		}
		if params.EnableAutoTLS != nil {
			*autoTLS = *params.EnableAutoTLS
		}
		*insecure = *insecure || params.Insecure
		*debug = *debug || params.Debug
	}
	if *debug {
		level.Set(slog.LevelDebug)
	}
	// EFI boot entries are written only by the ramdisk's agent: a process
	// on a test host must never touch the host's firmware variables.
	efiVars := ""
	if *initMode {
		var uname unix.Utsname
		unix.Uname(&uname)
		dir := *modulesDir
		if dir == "" {
			dir = "/lib/modules/" + unix.ByteSliceToString(uname.Release[:])
		}
		if _, err := os.Stat("/etc/modules.order"); err == nil && *modulesDir == "" {
			// The ramdisk of ipa/ramdisk/build.sh: flat /lib/modules/NAME.ko
			// and the load order in /etc/modules.order (no modules.dep).
			if err := initsys.LoadModuleOrder(log, "/lib/modules", "/etc/modules.order"); err != nil {
				log.Warn("modules", "error", err)
			}
		} else if err := initsys.LoadModules(log, dir); err != nil {
			log.Warn("modules", "error", err)
		}
		time.Sleep(500 * time.Millisecond) // let drivers register devices
		if initsys.MountEFIVars() {
			efiVars = efiboot.DefaultVarsDir
		}
		initsys.MountPstore() // erase_pstore finds it in /proc/mounts
		// Software RAID arrays built by an earlier clean (the root device
		// of a deploy onto them), as udev assembles them in IPA's ramdisk.
		if arrays, err := (&swraid.Manager{Log: log}).Assemble(ctx); err == nil && len(arrays) > 0 {
			log.Info("software RAID arrays assembled", "count", len(arrays))
		}
		leases, err := configureNetwork(ctx, log, params)
		if err != nil {
			return fatal(err)
		}
		if *advHost == "" {
			*advHost = leases[0].Addr.IP.String()
			for _, l := range leases {
				if l.MAC == params.BootIF {
					*advHost = l.Addr.IP.String()
				}
			}
		}
	}

	coll := &inventory.Collector{Root: "/", BootIF: params.BootIF, ExtraDisks: disks, NoBlockDevices: len(disks) > 0,
		BMC: bmcinfo.InBand{}, Logger: log}
	if len(macs) > 0 && !*initMode {
		// Process mode: the machine is the one with these MACs, booted
		// from the first.
		coll.MACs = macs
		if coll.BootIF == "" {
			coll.BootIF = macs[0]
		}
	}
	if len(macs) == 0 {
		inv, err := coll.Collect(ctx)
		if err != nil {
			return fatal(err)
		}
		macs = inventory.MACs(inv, params.BootIF)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	fetch.BatchReads(tr)
	if *insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // operator asked (ipa-insecure)
	}
	var power agent.Powerer = processPower{log: log}
	if *initMode {
		power = initsys.Power{}
	}
	a, err := agent.New(agent.Config{
		APIURLs: apiURLs, Listen: *listen, AdvertiseHost: *advHost, AdvertisePort: *advPort, MACs: macs,
		NodeUUID: *nodeUUID, InspectionCallbackURL: *inspectURL, AutoTLS: *autoTLS, APIClient: &http.Client{Transport: tr},
		Inventory: coll.Collect, MinRootSize: *minRoot, Power: power,
		LookupMin: *lookupMin, LookupMax: *lookupMax, ForcedHeartbeatGap: *forcedGap, HeartbeatInterval: *hbInterval,
		RequestID: params.GlobalRequestID, Token: params.AgentToken, Logger: log, LogBuffer: ring, EFIVarsDir: efiVars,
	})
	if err != nil {
		return fatal(err)
	}
	log.Info("ferric-agent starting", "version", agent.Version, "init", *initMode, "api", strings.Join(apiURLs, ","),
		"macs", strings.Join(macs, ","), "callback", a.CallbackURL(), "inspection_callback", *inspectURL)
	err = a.Run(ctx)
	if err != nil || *initMode {
		if err == nil {
			err = errors.New("agent stopped")
		}
		return fatal(err)
	}
	return nil
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
	res, err := netconfig.Configure(ctx, log, netconfig.Finder{}, wait, "/etc/resolv.conf")
	if errors.Is(err, netconfig.ErrNotFound) {
		log.Info("no network data, configuring links by DHCP", "detail", err)
		return initsys.ConfigureNetwork(ctx, log, 30*time.Second)
	}
	if err != nil {
		// The links are as they were: DHCP may still reach the conductor.
		log.Error("network data not applied, configuring links by DHCP", "error", err)
		leases, derr := initsys.ConfigureNetwork(ctx, log, 30*time.Second)
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
		more, err := initsys.ConfigureNetworkOn(ctx, log, 30*time.Second, dh)
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
