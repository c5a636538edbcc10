// Package service assembles a ferric conductor from its parts (store, task
// manager, drivers, Ironic API) and runs it until its context ends.
//
// Full-mode DHCPv4 leases: a conductor with its own store (bbolt) keeps
// them in the crash-safe lease log in its state directory (pxe/dhcp
// LogLeases: the ACK waits for one write(2), fdatasync runs in group
// commits, Config.DHCPLeaseSync makes the ACK wait for it); leases an
// earlier version kept in the store are moved into the log on the first
// start. Conductors sharing an etcd store keep the leases in etcd: one
// conductor per range serves at a time, and the next one must see every
// lease the last one ACKed, so a local log is refused there
// (Config.DHCPLeases, leaselog.go). DHCPv6 leases (--dhcp6-range) go
// the same way, to a lease log of their own.
package service

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferric-metal/ferric/conductor/api"
	"github.com/ferric-metal/ferric/conductor/auth"
	"github.com/ferric-metal/ferric/conductor/compute"
	"github.com/ferric-metal/ferric/conductor/console"
	"github.com/ferric-metal/ferric/conductor/driver/hardware"
	"github.com/ferric-metal/ferric/conductor/driver/vmedia"
	"github.com/ferric-metal/ferric/conductor/httpserver"
	"github.com/ferric-metal/ferric/conductor/ironichttp"
	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/metrics"
	"github.com/ferric-metal/ferric/conductor/policy"
	"github.com/ferric-metal/ferric/conductor/store"
	"github.com/ferric-metal/ferric/conductor/ui"
	"github.com/ferric-metal/ferric/images/cache"
	imgstore "github.com/ferric-metal/ferric/images/store"
	"github.com/ferric-metal/ferric/inspector/introspection"
	"github.com/ferric-metal/ferric/inspector/process"
	"github.com/ferric-metal/ferric/inspector/ruleapi"
	"github.com/ferric-metal/ferric/pxe/ipxe"
	"golang.org/x/sync/errgroup"
)

// Defaults.
const (
	DefaultAPIListen = "127.0.0.1:6385"
	DefaultStateDir  = "./var"
	// DefaultPublicRate and DefaultPublicBurst: a machine booting fetches
	// a few files; an operator's loop of image downloads stays far below.
	DefaultPublicRate  = 20
	DefaultPublicBurst = 100
)

// publicRoutes are what the assembly serves without credentials besides
// the API's own (api.PublicRoutes): boot files and iPXE scripts, which
// firmware fetches, and reads of an image by id and of cached images,
// which agents download (and peers look images up by id). All read-only.
var publicRoutes = []auth.Rule{
	{Methods: readMethods, Path: "/boot/.+"},
	{Methods: readMethods, Path: "/images/v2/images/[0-9a-fA-F-]+(/file)?"},
	{Methods: readMethods, Path: "/images/cache/[^/]+"},
	// The deployed servers' phone-home (compute): its own token.
	{Methods: []string{http.MethodGet, http.MethodPost}, Path: "/compute/phone-home/[^/]+"},
}

var readMethods = []string{http.MethodGet, http.MethodHead}

// onRoutes, when set (tests), receives each listener's routes once they
// are assembled.
var onRoutes func(listener string, routes []ironichttp.Route)

// Config configures a conductor.
type Config struct {
	APIListen string
	StateDir  string
	Auth      string // noauth | http_basic | keystone
	Htpasswd  string
	// Keystone is the identity service and service user validating
	// tokens under --auth keystone.
	Keystone auth.KeystoneConfig
	Hostname string
	Workers  int
	// AutomatedClean is the default for nodes without automated_clean.
	AutomatedClean bool
	// ForcePowerStateDuringSync drives drifted machines back to the
	// recorded power state (Ironic's force_power_state_during_sync).
	ForcePowerStateDuringSync bool
	// PowerSyncInterval is the period of the power state sync (default
	// manager.DefaultPowerSync).
	PowerSyncInterval time.Duration
	// WaitTimeout bounds deploy/clean/inspect wait states.
	WaitTimeout time.Duration
	// FastTrack keeps machines' ramdisks running between inspection,
	// cleaning and deploy (Ironic's [deploy]fast_track); nodes override it
	// with driver_info.fast_track.
	FastTrack bool
	// FastTrackTimeout: an agent heard from longer ago is not reused
	// (default manager.DefaultFastTrackTimeout).
	FastTrackTimeout time.Duration
	// StallTimeout fails a deploy or cleaning whose agent is silent, or
	// whose write does not move, this long (default
	// manager.DefaultStallTimeout; negative: off).
	StallTimeout time.Duration
	Log          *slog.Logger
	// Ready, when set, receives the API's bound address once serving.
	Ready func(addr string)

	// PublicURL is the API URL as machines reach it (kernel parameter
	// ipa-api-url, iPXE script URLs). Default: http://<bound API address>.
	PublicURL string
	// BootDir holds deploy kernels/ramdisks served under /boot/files/.
	// Default <state-dir>/boot.
	BootDir string
	// FirmwareDir holds iPXE binaries for UEFI HTTP boot (/boot/firmware/).
	FirmwareDir string
	// KernelAppendParams are extra kernel parameters for every deploy
	// ramdisk boot ("key=value flag ..."); nodes add their own with
	// driver_info.kernel_append_params.
	KernelAppendParams string
	// DHCPMode is "none" (default), "proxy" or "full".
	DHCPMode string
	// DHCPInterface is the interface DHCP serves on.
	DHCPInterface string
	// DHCPRange is "first-last" (full mode).
	DHCPRange string
	// DHCPLeases is where full-mode DHCPv4 and DHCPv6 keep their leases:
	// DHCPLeasesLog (crash-safe lease logs in StateDir), DHCPLeasesStore (the store)
	// or DHCPLeasesAuto (default: the log on bbolt, the store on etcd; see
	// leaselog.go).
	DHCPLeases string
	// DHCPLeaseSync makes a DHCP ACK wait for the lease log's fdatasync
	// (a lease survives a power loss, not only a crash of the conductor),
	// at the cost of one fdatasync of latency per ACK.
	DHCPLeaseSync bool
	// AllowUnknownMACs answers DHCP from machines with no enrolled port.
	AllowUnknownMACs bool
	// RouterAdvertisements answers IPv6 router solicitations on
	// DHCPInterface with an empty RA (no prefix, lifetime 0), so that iPXE
	// does not wait ~16 s for an IPv6 router on segments without one.
	RouterAdvertisements bool
	// DHCP6Range is "first-last" IPv6 addresses: a DHCPv6 server hands
	// them out on DHCPInterface and router advertisements there carry the
	// managed flag and the prefix (IPv6 provisioning networks).
	DHCP6Range string
	// TFTPListen enables TFTP (e.g. ":69"); TFTPRoot defaults to /usr/lib/ipxe.
	TFTPListen string
	TFTPRoot   string
	// InspectorListen serves the ironic-inspector v1 API (e.g.
	// 127.0.0.1:5050); empty disables it.
	InspectorListen string
	// DiscoveryDriver, when set, enrolls unknown machines that post an
	// inventory as new nodes of this driver (auto-discovery).
	DiscoveryDriver string
	// EtcdEndpoints, when set, keeps the state in that etcd cluster
	// (under EtcdPrefix) instead of <state-dir>/ferric.db: several
	// conductors share it.
	EtcdEndpoints []string
	EtcdPrefix    string
	// EtcdCACert, EtcdCert and EtcdKey are PEM files for TLS to etcd (CA
	// to trust; client certificate and key when the cluster asks for
	// one); EtcdUsername and EtcdPassword for etcd's own auth.
	EtcdCACert, EtcdCert, EtcdKey string
	EtcdUsername, EtcdPassword    string
	// EtcdCompactRetention is how long a change stays in etcd's history
	// (and a change-feed client can resume after it); one conductor
	// compacts the older history every EtcdCompactInterval and, with
	// EtcdDefragInterval set, defragments the members at most that
	// often. Zero: the defaults (DefaultEtcdCompactRetention, half of
	// it); a negative retention never compacts.
	EtcdCompactRetention time.Duration
	EtcdCompactInterval  time.Duration
	EtcdDefragInterval   time.Duration
	// ConductorGroup is the conductor_group of the nodes this conductor
	// serves ("" by default).
	ConductorGroup string
	// HeartbeatInterval and HeartbeatTimeout: how often this conductor
	// says it is alive, and after how long without a heartbeat another
	// conductor counts as dead and its nodes are taken over.
	HeartbeatInterval time.Duration
	HeartbeatTimeout  time.Duration
	// MetricsListen, when set, also serves /metrics on this address
	// (behind the same authentication as the API).
	MetricsListen string
	// PublicRate and PublicBurst rate-limit, per client address, what is
	// served without credentials: boot files, iPXE scripts and image
	// downloads (requests per second and burst; defaults
	// DefaultPublicRate and DefaultPublicBurst; a negative rate is off).
	PublicRate  float64
	PublicBurst int
	// ImageCache makes the conductor download http(s) images once and serve
	// the verified copy to agents by default (Ironic's
	// image_download_source=http); nodes may choose either way.
	ImageCache bool
	// HTTP bounds the connections of the API and inspector listeners
	// (timeouts, caps in total and per client) and sets their TLS.
	HTTP httpserver.Config
	// ProgressTimeout cuts a boot file or image transfer that moves no
	// byte for this long (default httpserver.DefaultProgressTimeout).
	ProgressTimeout time.Duration
	// ConsoleAddress is the IP address serial consoles listen on and
	// their URLs give (Ironic's [console]socat_address); default the
	// API's listen address when it is a specific IP, else 127.0.0.1.
	ConsoleAddress string
	// ConsolePortRange is "FIRST:LAST", the ports consoles take when a
	// node gives no ipmi_terminal_port (Ironic's [console]port_range).
	ConsolePortRange string
	// ConsoleTimeout closes a console client idle this long (Ironic's
	// [console]terminal_timeout; default console.DefaultIdleTimeout).
	ConsoleTimeout time.Duration
	// ImageMaxSize bounds an image upload to the image store (default
	// DefaultImageMaxSize; negative: no bound).
	ImageMaxSize int64
	// Stream bounds each client of the change feed (GET
	// /v1/events/stream; zero: the API's defaults).
	Stream api.StreamLimits
	// ComputeFlavors maps the Compute API's flavors to resource classes
	// and traits (empty: one flavor per resource class of the nodes).
	ComputeFlavors []compute.Flavor
	// DeployLogsCollect is Ironic's [agent]deploy_logs_collect: when the
	// ramdisk agent's logs are collected (on_failure by default, always,
	// never), kept under <state-dir>/ramdisk-logs within
	// RamdiskLogsMaxBytes in total (default ramdisklogs.DefaultMaxBytes)
	// and RamdiskLogsMaxAge (default ramdisklogs.DefaultMaxAge).
	DeployLogsCollect   string
	RamdiskLogsMaxBytes int64
	RamdiskLogsMaxAge   time.Duration
	// PolicyFile overrides Ironic's default access rules (oslo.policy's
	// policy file, YAML or JSON; see conductor/policy). They apply to
	// callers with a Keystone identity (--auth keystone).
	PolicyFile string
	// Neutron, with an endpoint or Keystone set, enables Ironic's neutron
	// network interface.
	Neutron NeutronConfig
}

// NeutronConfig configures the neutron network interface (Ironic's
// [neutron] section).
type NeutronConfig struct {
	// URL is Neutron's endpoint (e.g. http://neutron:9696/), reached
	// without a token (Neutron's auth_strategy = noauth).
	URL string
	// Keystone: find Neutron in Keystone's service catalog and send the
	// service user's token (Config.Keystone's URL and user).
	Keystone bool
	// Region of the catalog's endpoint (empty: any).
	Region string
	// ProvisioningNetwork, CleaningNetwork, RescuingNetwork and
	// InspectionNetwork are the networks (UUID or name) the ramdisk
	// boots on, unless a node's driver_info names its own. Rescue needs
	// a rescuing network; without an inspection network a node is
	// inspected on the network it is on.
	ProvisioningNetwork, CleaningNetwork, RescuingNetwork, InspectionNetwork string
}

// DefaultImageMaxSize bounds image uploads by default (Glance's
// image_size_cap is 1 TiB; a provisioning image stays far below).
const DefaultImageMaxSize = 64 << 30

// Run starts the conductor and blocks until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	authn, err := cfg.setDefaults()
	if err != nil {
		return err
	}
	rules := policy.Default()
	if cfg.PolicyFile != "" {
		if rules, err = policy.Load(cfg.PolicyFile); err != nil {
			return fmt.Errorf("conductor: --policy-file: %w", err)
		}
		cfg.Log.Info("access rules overridden", "file", cfg.PolicyFile, "rules", rules.Overridden())
	}
	public := auth.NewLimiter(cfg.PublicRate, cfg.PublicBurst)
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	images, resolver, err := openImages(cfg)
	if err != nil {
		return err
	}
	ruleStore := process.NewRuleStore(st)
	// The virtual media boot's kernel parameters are the network boot's,
	// which need the public URL: hosts is complete before any boot.
	hosts := &bootHosts{st: st, mediaBoot: map[string]bool{"redfish-virtual-media": true, "redfish-https": true}}
	vmBoot, err := vmedia.New(vmedia.Config{Dir: filepath.Join(cfg.StateDir, "vmedia"), Log: cfg.Log, Ramdisk: hosts.vmediaRamdisk(cfg.BootDir)})
	if err != nil {
		return fmt.Errorf("conductor: %w", err)
	}
	// Deploy images named by URL, downloaded for virtual media ISOs, and
	// the network boot's copies of ramdisk deploys' instance images.
	hosts.deployImages = &deployImages{dir: filepath.Join(cfg.StateDir, "deploy-images")}
	if hosts.instanceBoot, err = newInstanceBoot(filepath.Join(cfg.StateDir, "instance-boot"), hosts.deployImages, cfg.Log); err != nil {
		return err
	}
	neutronNet, err := newNeutron(ctx, cfg)
	if err != nil {
		return err
	}
	hcfg := hardware.Config{Log: cfg.Log, VirtualMediaBoot: vmBoot, HTTPSBoot: vmedia.NewHTTPS(vmBoot),
		NetworkInstance: hosts.instanceBoot}
	if neutronNet != nil {
		hcfg.Neutron = neutronNet
	}
	drivers := hardware.New(hcfg)
	pcfg := process.Config{Store: st, Rules: ruleStore, Log: cfg.Log}
	if cfg.DiscoveryDriver != "" {
		pcfg.Enroll = &process.Enroll{Driver: cfg.DiscoveryDriver, Drivers: drivers, ReturnUUID: true}
	}
	inspect := process.New(pcfg)
	first, last, err := console.ParseRange(cfg.ConsolePortRange)
	if err != nil {
		return fmt.Errorf("conductor: %w", err)
	}
	rdLogs := newRamdiskLogs(cfg)
	mgr := manager.New(manager.Config{
		DeployLogsCollect: cfg.DeployLogsCollect, RamdiskLogs: rdLogs,
		Store: st, Log: cfg.Log, Hostname: cfg.Hostname, Workers: cfg.Workers,
		Drivers:                   drivers,
		Images:                    resolver,
		Inspect:                   inspect,
		MediaPublisher:            vmBoot,
		ConfigDrive:               buildConfigDrive,
		AutomatedClean:            cfg.AutomatedClean,
		ForcePowerStateDuringSync: cfg.ForcePowerStateDuringSync,
		PowerSyncInterval:         cfg.PowerSyncInterval,
		ConductorGroup:            cfg.ConductorGroup,
		HeartbeatInterval:         cfg.HeartbeatInterval,
		HeartbeatTimeout:          cfg.HeartbeatTimeout,
		DeployCallbackTimeout:     cfg.WaitTimeout, CleanWaitTimeout: cfg.WaitTimeout, InspectWaitTimeout: cfg.WaitTimeout,
		FastTrack:        cfg.FastTrack,
		FastTrackTimeout: cfg.FastTrackTimeout,
		StallTimeout:     cfg.StallTimeout,
		Console:          consoleConfig(cfg, first, last),
	})
	srv, err := api.New(api.Config{Store: st, Manager: mgr, Log: cfg.Log, Authenticator: authn, Public: publicRoutes, Stream: cfg.Stream, Policy: rules})
	if err != nil {
		return err
	}
	ln, metricsLn, err := listen(cfg)
	if err != nil {
		return err
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = cfg.HTTP.Scheme() + "://" + ln.Addr().String()
	}
	if err := os.MkdirAll(cfg.BootDir, 0o755); err != nil {
		return fmt.Errorf("conductor: %w", err)
	}
	dhcpNow := &servingDHCP{}
	reg := mountRulesAndMetrics(srv, st, ruleStore, mgr, dhcpNow)
	rdLogs.mount(srv, st)
	resolver.publicURL = cfg.PublicURL
	resolver.peers = func() []string { return peerURLs(st, cfg.Hostname, cfg.HeartbeatTimeout) }
	mountImages(srv, public, images, resolver.cache)
	computeAPI, err := mountCompute(srv, public, cfg, st, mgr, images)
	if err != nil {
		return err
	}
	defer computeAPI.Close()
	hosts.publicURL = cfg.PublicURL
	vmBoot.SetBaseURL(cfg.PublicURL + "/boot/vmedia")
	hosts.instanceBoot.setBaseURL(cfg.PublicURL + "/boot/instance")
	if hosts.extraArgs, err = kernelParams(cfg.KernelAppendParams); err != nil {
		return err
	}
	bootHandler, err := ipxe.New(ipxe.Config{BaseURL: cfg.PublicURL + "/boot", Nodes: hosts, FilesDir: cfg.BootDir,
		FirmwareDir: cfg.FirmwareDir, Logger: cfg.Log})
	if err != nil {
		return err
	}
	defer bootHandler.Close()
	// The web console, behind the API's authentication.
	srv.HandleAny("/ui", ui.Handler("/ui"))
	srv.HandleAny("/ui/*", ui.Handler("/ui"))
	srv.HandleAny("/boot/*", public.Wrap(auth.ReadOnly(http.StripPrefix("/boot", bootHandler))))
	// Virtual media boot images: read-only, no credentials (the BMC
	// fetches them), each under a random name while inserted.
	srv.HandleAny("/boot/vmedia/*", public.Wrap(auth.ReadOnly(http.StripPrefix("/boot/vmedia", vmBoot))))
	// A ramdisk deploy's instance images the network boot serves.
	srv.HandleAny("/boot/instance/*", public.Wrap(auth.ReadOnly(http.StripPrefix("/boot/instance", hosts.instanceBoot))))
	if onRoutes != nil {
		onRoutes("api", srv.Routes())
	}
	hs := cfg.HTTP.Server(streaming(srv, cfg.ProgressTimeout))
	wl, err := cfg.HTTP.Listener(ln)
	if err != nil {
		ln.Close()
		return fmt.Errorf("conductor: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	if err := startPXE(gctx, g, cfg, st, hosts, dhcpNow); err != nil {
		ln.Close()
		return err
	}
	if err := mgr.Recover(gctx); err != nil {
		return err
	}
	mgr.SetAPIURL(cfg.PublicURL)
	g.Go(func() error { return mgr.Run(gctx) })
	if es, ok := st.(*store.Etcd); ok {
		cc := compactConfig(cfg)
		g.Go(func() error { return es.RunCompactor(gctx, cc) })
	}
	if cfg.InspectorListen != "" {
		insp := introspection.New(introspection.Config{Listen: cfg.InspectorListen, Store: st, Conductor: mgr,
			Rules: ruleStore, Log: cfg.Log, Authenticator: authn, HTTP: cfg.HTTP})
		if onRoutes != nil {
			onRoutes("inspector", insp.Routes())
		}
		g.Go(func() error { return insp.Run(gctx) })
	}
	if metricsLn != nil {
		serveMetrics(gctx, g, metricsLn, cfg.HTTP, authn, reg)
	}
	serveAPI(gctx, g, hs, wl)
	cfg.Log.Info("ferric-conductor ready", "api", cfg.HTTP.Scheme()+"://"+ln.Addr().String(), "state_dir", cfg.StateDir,
		"auth", cfg.Auth, "hostname", cfg.Hostname)
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}
	err = g.Wait()
	cfg.Log.Info("ferric-conductor stopped")
	return err
}

// openImages opens the image store and the image cache under the state
// directory, and the resolver that finds a node's image in them.
func openImages(cfg Config) (*imgstore.Store, *imageResolver, error) {
	images, err := imgstore.New(filepath.Join(cfg.StateDir, "images"), cfg.Log)
	if err != nil {
		return nil, nil, fmt.Errorf("conductor: %w", err)
	}
	images.MaxSize = cmp.Or(cfg.ImageMaxSize, DefaultImageMaxSize)
	resolver := &imageResolver{images: images, client: &http.Client{Timeout: time.Minute}, cacheByDefault: cfg.ImageCache}
	// The cache is always there for nodes that ask for it
	// (image_download_source http or local); --image-cache makes it the
	// default.
	if resolver.cache, err = cache.New(filepath.Join(cfg.StateDir, "image-cache"), nil, cfg.Log); err != nil {
		return nil, nil, fmt.Errorf("conductor: %w", err)
	}
	return images, resolver, nil
}

// mountRulesAndMetrics serves the inspection rules under /v1/rules and
// the metrics under /metrics, and counts the API's requests; it returns
// the metrics registry.
func mountRulesAndMetrics(srv *api.Server, st store.Store, ruleStore *process.RuleStore, mgr *manager.Manager, dhcpNow *servingDHCP) *metrics.Registry {
	ruleMux := (&ruleapi.Handler{Rules: ruleStore}).Routes()
	srv.MountV1(api.Version(ruleapi.MinVersion), ruleMux, ruleMux.Routes())
	reg := metrics.New(st, metrics.Func("ferric_tasks_running", "Tasks holding a conductor worker.",
		func() float64 { return float64(mgr.TasksRunning()) }), metrics.DHCP(dhcpNow.current))
	srv.Instrument(reg)
	srv.Handle(http.MethodGet, "/metrics", reg.Handler())
	return reg
}

// setDefaults fills cfg's unset fields with their defaults, checks its
// --auth and returns the authenticator it asks for (nil for noauth).
func (cfg *Config) setDefaults() (*auth.Authenticator, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.HTTP.Log = cfg.Log
	if cfg.APIListen == "" {
		cfg.APIListen = DefaultAPIListen
	}
	if cfg.StateDir == "" {
		cfg.StateDir = DefaultStateDir
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.Auth == "" {
		cfg.Auth = "noauth"
	}
	if err := manager.ValidDeployLogsCollect(cfg.DeployLogsCollect); err != nil {
		return nil, fmt.Errorf("conductor: --deploy-logs-collect: %w", err)
	}
	var authn *auth.Authenticator
	switch cfg.Auth {
	case "noauth":
	case "http_basic":
		a, err := auth.New(auth.Config{Htpasswd: cfg.Htpasswd, Log: cfg.Log})
		if err != nil {
			return nil, fmt.Errorf("conductor: %w", err)
		}
		authn = a
	case "keystone":
		k, err := auth.NewKeystone(cfg.Keystone)
		if err != nil {
			return nil, fmt.Errorf("conductor: %w", err)
		}
		authn = auth.NewKeystoneAuthenticator(k, cfg.Log)
	default:
		return nil, fmt.Errorf("conductor: --auth must be noauth, http_basic or keystone, not %q", cfg.Auth)
	}
	if cfg.PublicRate == 0 {
		cfg.PublicRate = DefaultPublicRate
	}
	if cfg.PublicBurst == 0 {
		cfg.PublicBurst = DefaultPublicBurst
	}
	if cfg.BootDir == "" {
		cfg.BootDir = filepath.Join(cfg.StateDir, "boot")
	}
	return authn, nil
}

// listen opens the API's listener and, with --metrics-listen, the
// metrics' own.
func listen(cfg Config) (api, metrics net.Listener, err error) {
	api, err = net.Listen("tcp", cfg.APIListen)
	if err != nil {
		return nil, nil, fmt.Errorf("conductor: listen %s: %w", cfg.APIListen, err)
	}
	if cfg.MetricsListen != "" {
		if metrics, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			api.Close()
			return nil, nil, fmt.Errorf("conductor: listen %s: %w", cfg.MetricsListen, err)
		}
	}
	return api, metrics, nil
}

// mountImages serves the image store under /images and the image cache
// under /images/cache. Image reads by id are public, and limited; listing
// and writes need credentials and are not.
func mountImages(srv *api.Server, public *auth.Limiter, images *imgstore.Store, imageCache *cache.Cache) {
	publicImage := auth.Compile(publicRoutes).Match
	imageMux := images.Handler("/images")
	imageMux.Miss = srv.Miss
	srv.Mount(public.WrapIf(imageMux, publicImage), imageMux.Routes())
	srv.HandleAny("/images/cache/*", public.Wrap(auth.ReadOnly(
		http.StripPrefix("/images/cache", imageCache.Handler()))))
}

// kernelParams parses --kernel-append-params (space separated).
func kernelParams(s string) ([]ipxe.Param, error) {
	var params []ipxe.Param
	for _, f := range strings.Fields(s) {
		p, err := ipxe.ParseParam(f)
		if err != nil {
			return nil, fmt.Errorf("conductor: --kernel-append-params %q: %w", f, err)
		}
		params = append(params, p)
	}
	return params, nil
}

// serveAPI serves the API with hs on wl in g until ctx ends, then shuts
// hs down (10 s for the requests in flight).
func serveAPI(ctx context.Context, g *errgroup.Group, hs *http.Server, wl net.Listener) {
	g.Go(func() error {
		if err := hs.Serve(wl); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("conductor: api: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return hs.Shutdown(sctx)
	})
}

// serveMetrics serves /metrics alone on ln (--metrics-listen), behind
// the same authentication and bounds (and TLS) as the API, until ctx ends.
func serveMetrics(ctx context.Context, g *errgroup.Group, ln net.Listener, hc httpserver.Config, authn *auth.Authenticator, reg *metrics.Registry) {
	e := ironichttp.NewMux()
	e.Handle(http.MethodGet, "/metrics", reg.Handler().ServeHTTP)
	if onRoutes != nil {
		onRoutes("metrics", e.Routes())
	}
	g.Go(func() error {
		if err := httpserver.Serve(ctx, ln, authn.Wrap(e, auth.Policy{Realm: "ferric metrics"}), hc); err != nil {
			return fmt.Errorf("conductor: metrics: %w", err)
		}
		return nil
	})
	hc.Log.Info("metrics listening", "listen", hc.Scheme()+"://"+ln.Addr().String())
}

// openStore opens the state store the configuration names: bbolt in the
// state directory, or the etcd cluster several conductors share.
func openStore(ctx context.Context, cfg Config) (store.Store, error) {
	if len(cfg.EtcdEndpoints) == 0 {
		st, err := store.OpenBolt(filepath.Join(cfg.StateDir, "ferric.db"))
		if err != nil {
			return nil, err
		}
		st.Host = cfg.Hostname
		return st, nil
	}
	ecfg := store.EtcdConfig{Endpoints: cfg.EtcdEndpoints, Prefix: cfg.EtcdPrefix, Log: cfg.Log,
		Username: cfg.EtcdUsername, Password: cfg.EtcdPassword}
	if cfg.EtcdCACert != "" || cfg.EtcdCert != "" {
		tc, err := etcdTLS(cfg.EtcdCACert, cfg.EtcdCert, cfg.EtcdKey)
		if err != nil {
			return nil, fmt.Errorf("conductor: etcd TLS: %w", err)
		}
		ecfg.TLS = tc
	}
	st, err := store.OpenEtcd(ctx, ecfg)
	if err != nil {
		return nil, fmt.Errorf("conductor: %w", err)
	}
	st.Host = cfg.Hostname
	cfg.Log.Info("store: etcd", "endpoints", cfg.EtcdEndpoints, "prefix", st.Prefix())
	return st, nil
}

// DefaultEtcdCompactRetention is how long etcd keeps a change when the
// configuration does not say.
const DefaultEtcdCompactRetention = 10 * time.Minute

// compactConfig is the compaction the configuration asks for.
func compactConfig(cfg Config) store.CompactConfig {
	cc := store.CompactConfig{Retention: cfg.EtcdCompactRetention, Interval: cfg.EtcdCompactInterval,
		Defrag: cfg.EtcdDefragInterval, Hostname: cfg.Hostname}
	if cc.Retention == 0 {
		cc.Retention = DefaultEtcdCompactRetention
	}
	if cc.Interval <= 0 {
		cc.Interval = cc.Retention / 2
	}
	return cc
}

// peerURLs lists the API URLs of the other live conductors on the store.
func peerURLs(st store.Store, self string, timeout time.Duration) []string {
	if timeout <= 0 {
		timeout = manager.DefaultHeartbeatTimeout
	}
	var out []string
	for _, c := range st.Conductors() {
		if c.Hostname != self && c.APIURL != "" && time.Since(c.HeartbeatAt) < timeout {
			out = append(out, c.APIURL)
		}
	}
	return out
}

// etcdTLS builds the client TLS configuration for etcd from PEM files.
func etcdTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
	}
	if certFile != "" || keyFile != "" {
		if certFile == "" || keyFile == "" {
			return nil, errors.New("a client certificate needs both --etcd-cert and --etcd-key")
		}
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// consoleConfig is the serial consoles' configuration: --console-address,
// or the API's listen address when it is a specific IP, else 127.0.0.1.
func consoleConfig(cfg Config, first, last int) console.Config {
	addr := cfg.ConsoleAddress
	if addr == "" {
		addr = "127.0.0.1"
		if h, _, err := net.SplitHostPort(cfg.APIListen); err == nil {
			if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
				addr = h
			}
		}
	}
	return console.Config{Address: addr, PortMin: first, PortMax: last, IdleTimeout: cfg.ConsoleTimeout, Log: cfg.Log}
}
