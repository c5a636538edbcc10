// Package agent is ferric's in-ramdisk agent: it finds its node through
// Ironic's lookup API, heartbeats, and serves the IPA-compatible command API
// through which the conductor deploys (write_image), cleans (erase steps)
// and powers the machine off.
package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ferric-metal/ferric/ipa/hints"
	"github.com/ferric-metal/ferric/ipa/internal/disk"
	"github.com/ferric-metal/ferric/ipa/internal/fetch"
	"github.com/ferric-metal/ferric/ipa/protocol"
	"github.com/ferric-metal/ferric/ipa/swraid"
)

// Defaults of Config.
const (
	DefaultListen          = ":9999"
	DefaultLookupMin       = 1 * time.Second
	DefaultLookupMax       = 30 * time.Second
	DefaultForcedHBGap     = 5 * time.Second
	DefaultHeartbeatTimout = 300 * time.Second
	// Version is reported as agent_version.
	Version = "ferric-agent 0.1"
)

// Powerer performs the end-of-life actions of the machine.
type Powerer interface {
	// PowerOff powers the machine off (reboot=false) or reboots it. In
	// process mode it returns and the agent starts over with a lookup.
	PowerOff(ctx context.Context, reboot bool) error
}

// InventoryFunc collects the hardware inventory.
type InventoryFunc func(ctx context.Context) (protocol.Inventory, error)

// Config configures an Agent.
type Config struct {
	// APIURLs are the Ironic API endpoints (first working one is used).
	// Without them and without a callback URL to derive one from, the
	// agent only inspects (if asked) and then idles.
	APIURLs []string
	// InspectionCallbackURL, if set, is where the agent posts its
	// inventory before the first lookup (ipa-inspection-callback-url).
	InspectionCallbackURL string
	// InspectionAttempts bounds the posts (default 5); InspectionRetryMin
	// and Max bound the random exponential backoff between them (5–30 s).
	InspectionAttempts                     int
	InspectionRetryMin, InspectionRetryMax time.Duration
	// Listen is the command API address (default ":9999").
	Listen string
	// AdvertiseHost/Port form the callback URL sent in heartbeats.
	AdvertiseHost string
	AdvertisePort int
	// MACs are the lookup addresses.
	MACs []string
	// NodeUUID is an optional lookup hint.
	NodeUUID string
	// AutoTLS serves the command API over TLS with a self-signed cert sent
	// as agent_verify_ca (when the API supports 1.68).
	AutoTLS bool
	// APIClient talks to Ironic and to image servers.
	APIClient *http.Client
	// Inventory collects hardware facts (disks for root device selection).
	Inventory InventoryFunc
	// MinRootSize is the smallest disk chosen without hints.
	MinRootSize int64
	// EFIVarsDir is the efivarfs directory install_bootloader registers
	// UEFI boot entries in; empty: not managed (process mode, BIOS).
	EFIVarsDir string
	// OpenDisk opens a disk by name (default disk.Open).
	OpenDisk func(name string) (disk.BlockDevice, error)
	// SoftwareRAID builds and removes md arrays (default: the machine's,
	// through mdadm).
	SoftwareRAID *swraid.Manager
	Power        Powerer
	// LookupMin/Max bound the random exponential lookup backoff.
	LookupMin, LookupMax time.Duration
	// ForcedHeartbeatGap is the minimum time between a heartbeat and the
	// one forced by a finished command (IPA: 5 s).
	ForcedHeartbeatGap time.Duration
	// HeartbeatInterval overrides heartbeat_timeout × U(0.3, 0.6) if set.
	HeartbeatInterval time.Duration
	// RequestID is sent as X-OpenStack-Request-ID.
	RequestID string
	// Token is a pre-shared agent token (ipa-agent-token).
	Token  string
	Logger *slog.Logger
	// LogBuffer, if set, is included by log.collect_system_logs.
	LogBuffer *LogRing
	// ProcRoot is where /proc-like files for system logs are read ("/").
	ProcRoot string
	// EtcDir is the ramdisk's /etc, where rescue.finalize_rescue sets the
	// rescue user's password; empty: rescue is refused (a process on a
	// test host never touches the host's).
	EtcDir string
	// RescueSSHListen, when set, is where the agent serves SSH once a
	// rescue set the rescue user's password (":22" in the ramdisk): the
	// user logs in with that password.
	RescueSSHListen string
	// RescueHome is the rescue user's home in SSH sessions.
	RescueHome string
}

// Agent is one running agent.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	started time.Time
	cmds    *commandLog
	tlsPEM  string
	tlsConf *tls.Config

	sshOnce     sync.Once
	mu          sync.Mutex
	token       string
	nodeUUID    string
	node        protocol.LookupNode
	hbTimeout   float64
	apiURL      string
	apiVersion  protocol.APIVersion
	generation  int
	forceHB     chan struct{}
	lastHB      time.Time
	partUUIDs   protocol.PartitionUUIDs
	rootName    string // the disk the last image went to
	cachedImage string
	stopAPI     chan struct{}
	md5Disabled bool
}

// New validates cfg and returns an Agent.
func New(cfg Config) (*Agent, error) {
	if len(cfg.APIURLs) == 0 && cfg.InspectionCallbackURL != "" {
		if api := apiFromCallback(cfg.InspectionCallbackURL); api != "" {
			cfg.APIURLs = []string{api}
		}
	}
	if len(cfg.APIURLs) == 0 && cfg.InspectionCallbackURL == "" {
		return nil, errors.New("agent: no Ironic API URL (ipa-api-url / --api-url) nor inspection callback URL (ipa-inspection-callback-url / --inspection-callback-url)")
	}
	if len(cfg.MACs) == 0 && len(cfg.APIURLs) > 0 {
		return nil, errors.New("agent: no MAC address to look up")
	}
	if cfg.InspectionAttempts <= 0 {
		cfg.InspectionAttempts = DefaultInspectionAttempts
	}
	if cfg.InspectionRetryMin <= 0 {
		cfg.InspectionRetryMin = DefaultInspectionRetryMin
	}
	if cfg.InspectionRetryMax < cfg.InspectionRetryMin {
		cfg.InspectionRetryMax = max(DefaultInspectionRetryMax, cfg.InspectionRetryMin)
	}
	if cfg.MinRootSize <= 0 {
		cfg.MinRootSize = hints.MinDefaultSize
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.AdvertisePort == 0 {
		cfg.AdvertisePort = protocol.DefaultAgentPort
	}
	if cfg.AdvertiseHost == "" {
		return nil, errors.New("agent: no advertise host")
	}
	if cfg.APIClient == nil {
		cfg.APIClient = &http.Client{Timeout: 0}
	}
	if cfg.OpenDisk == nil {
		cfg.OpenDisk = func(n string) (disk.BlockDevice, error) { return disk.Open(n) }
	}
	if cfg.LookupMin <= 0 {
		cfg.LookupMin = DefaultLookupMin
	}
	if cfg.LookupMax < cfg.LookupMin {
		cfg.LookupMax = max(DefaultLookupMax, cfg.LookupMin)
	}
	if cfg.ForcedHeartbeatGap <= 0 {
		cfg.ForcedHeartbeatGap = DefaultForcedHBGap
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/"
	}
	if cfg.Inventory == nil {
		return nil, errors.New("agent: no inventory source")
	}
	if cfg.Power == nil {
		return nil, errors.New("agent: no power implementation")
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, started: time.Now(), cmds: newCommandLog(),
		forceHB: make(chan struct{}, 1), stopAPI: make(chan struct{}), token: cfg.Token}
	if cfg.AutoTLS {
		conf, pem, err := selfSignedTLS(cfg.AdvertiseHost)
		if err != nil {
			return nil, err
		}
		a.tlsConf, a.tlsPEM = conf, pem
	}
	return a, nil
}

// CallbackURL is the agent URL sent in heartbeats.
func (a *Agent) CallbackURL() string {
	scheme := "http"
	if a.cfg.AutoTLS {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(a.cfg.AdvertiseHost, strconv.Itoa(a.cfg.AdvertisePort))
}

// Run serves the command API and runs lookup and heartbeats until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("agent: command API: %w", err)
	}
	if a.tlsConf != nil {
		ln = tls.NewListener(ln, a.tlsConf)
	}
	srv := &http.Server{Handler: a.Handler(ctx), ReadHeaderTimeout: 30 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("command API listening", "addr", ln.Addr().String(), "callback_url", a.CallbackURL(), "tls", a.cfg.AutoTLS)
	mctx, stopMain := context.WithCancel(ctx)
	defer stopMain()
	go a.main(mctx)
	select {
	case <-ctx.Done():
	case <-a.stopAPI:
		a.log.Warn("command API stopped (lockdown or rescue); no more heartbeats")
		srv.Close()
		stopMain()
		<-ctx.Done()
	case err := <-errc:
		return fmt.Errorf("agent: command API: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	return nil
}

// main inspects when asked, then looks the node up and heartbeats, as IPA
// does: a node that inspection returned to manageable is not found by
// lookup (404) until it is powered off or moves on.
func (a *Agent) main(ctx context.Context) {
	if a.cfg.InspectionCallbackURL != "" {
		if err := a.inspect(ctx); err != nil {
			a.log.Error("inspection failed", "error", err)
		}
	}
	if len(a.cfg.APIURLs) == 0 {
		a.log.Info("no Ironic API URL: not looking up")
		return
	}
	a.loop(ctx)
}

// loop looks the node up and heartbeats; after a simulated reboot (power
// off in process mode, or a refused heartbeat) it starts over.
func (a *Agent) loop(ctx context.Context) {
	for ctx.Err() == nil {
		a.mu.Lock()
		gen := a.generation
		a.mu.Unlock()
		if err := a.lookup(ctx); err != nil {
			return
		}
		a.heartbeatLoop(ctx, gen)
	}
}

// reset forgets the node, token and commands, as a freshly booted ramdisk.
func (a *Agent) reset(gen int, why string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.generation != gen {
		return
	}
	a.log.Info("starting over with a lookup", "reason", why)
	a.generation++
	a.token = ""
	a.nodeUUID = ""
	a.partUUIDs = protocol.PartitionUUIDs{}
	a.rootName = ""
	a.cachedImage = ""
	a.cmds.reset()
}

func jitter(d time.Duration, lo, hi float64) time.Duration {
	return time.Duration(float64(d) * (lo + (hi-lo)*rand.Float64()))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// imageFetcher returns the fetcher for image downloads of info.
func (a *Agent) imageFetcher(info protocol.ImageInfo) fetch.Fetcher {
	h := &fetch.HTTP{Client: a.cfg.APIClient, UserAgent: Version}
	hdr := http.Header{}
	if info.ImageRequestAuthorization != "" {
		if v, err := decodeB64(info.ImageRequestAuthorization); err == nil {
			hdr.Set("Authorization", v)
		}
	} else if info.ImageServerAuthStrategy == "http_basic" && info.ImageServerUser != "" {
		r, _ := http.NewRequest(http.MethodGet, "http://x", nil)
		r.SetBasicAuth(info.ImageServerUser, info.ImageServerPassword)
		hdr.Set("Authorization", r.Header.Get("Authorization"))
	}
	h.Header = hdr
	return h
}
