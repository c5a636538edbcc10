// Command ferric-conductor serves the Ironic-compatible API and drives
// bare-metal machines. Every flag has a FERRIC_* environment mirror.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferric-metal/ferric/conductor/auth"
	"github.com/ferric-metal/ferric/conductor/compute"
	"github.com/ferric-metal/ferric/conductor/console"
	"github.com/ferric-metal/ferric/conductor/httpserver"
	"github.com/ferric-metal/ferric/conductor/redact"
	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/inspector/introspection"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "ferric-conductor:", err)
		os.Exit(1)
	}
}

// envName maps a flag name to its environment mirror (api-listen ->
// FERRIC_API_LISTEN).
func envName(flagName string) string {
	return "FERRIC_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseSize reads a byte count with an optional binary suffix (64G).
func parseSize(v string) (int64, error) {
	v = strings.TrimSpace(strings.ToUpper(v))
	mult := int64(1)
	for i, u := range []string{"K", "M", "G", "T"} {
		if strings.HasSuffix(v, u) || strings.HasSuffix(v, u+"I") || strings.HasSuffix(v, u+"IB") {
			v = strings.TrimRight(v, "IB")
			v = strings.TrimSuffix(v, u)
			mult = 1 << (10 * (i + 1))
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", v, err)
	}
	return n * mult, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ferric-conductor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg service.Config
	var logLevel string
	fs.StringVar(&cfg.APIListen, "api-listen", service.DefaultAPIListen, "address of the Ironic API")
	fs.StringVar(&cfg.StateDir, "state-dir", service.DefaultStateDir, "directory of the store and image files")
	fs.StringVar(&cfg.Auth, "auth", "noauth", "authentication of every listener (API, inspector, image store, metrics): noauth, http_basic or keystone")
	fs.StringVar(&cfg.Htpasswd, "htpasswd", "", "htpasswd file (bcrypt) for --auth http_basic")
	fs.StringVar(&cfg.Keystone.URL, "keystone-url", "", "Keystone identity v3 endpoint validating tokens for --auth keystone, e.g. http://keystone:5000/v3")
	fs.StringVar(&cfg.Keystone.Username, "keystone-username", "", "service user validating tokens (--auth keystone)")
	fs.StringVar(&cfg.Keystone.UserDomain, "keystone-user-domain", "Default", "domain name of --keystone-username")
	fs.StringVar(&cfg.Keystone.ProjectName, "keystone-project", "service", "project of the service user's token (empty: system scope)")
	fs.StringVar(&cfg.Keystone.ProjectDomain, "keystone-project-domain", "Default", "domain name of --keystone-project")
	fs.DurationVar(&cfg.Keystone.CacheTTL, "keystone-token-cache", auth.DefaultKeystoneCacheTTL, "how long a token validation is reused (negative: validate every request)")
	fs.StringVar(&cfg.Keystone.Password, "keystone-password", "", "password of --keystone-username (better set as FERRIC_KEYSTONE_PASSWORD)")
	keystonePasswordFile := fs.String("keystone-password-file", "", "file holding the password of --keystone-username (instead of --keystone-password)")
	fs.StringVar(&cfg.PolicyFile, "policy-file", "", "YAML or JSON file overriding Ironic's default access rules (oslo.policy's policy file) for --auth keystone callers")
	fs.StringVar(&cfg.Neutron.URL, "neutron-url", "", "Neutron endpoint reached without a token (auth_strategy = noauth), e.g. http://neutron:9696/; enables the neutron network interface")
	fs.BoolVar(&cfg.Neutron.Keystone, "neutron-keystone", false, "find Neutron in Keystone's catalog and authenticate as the --keystone-username service user; enables the neutron network interface")
	fs.StringVar(&cfg.Neutron.Region, "neutron-region", "", "region of Neutron's catalog endpoint (empty: any)")
	fs.StringVar(&cfg.Neutron.ProvisioningNetwork, "provisioning-network", "", "Neutron network (UUID or name) deploy ramdisks boot on, unless a node's driver_info provisioning_network names one")
	fs.StringVar(&cfg.Neutron.CleaningNetwork, "cleaning-network", "", "Neutron network (UUID or name) cleaning ramdisks boot on, unless a node's driver_info cleaning_network names one")
	fs.StringVar(&cfg.Neutron.RescuingNetwork, "rescuing-network", "", "Neutron network (UUID or name) rescue ramdisks boot on, unless a node's driver_info rescuing_network names one; needed to rescue a node with the neutron network interface")
	fs.StringVar(&cfg.Neutron.InspectionNetwork, "inspection-network", "", "Neutron network (UUID or name) inspection ramdisks boot on, unless a node's driver_info inspection_network names one; without one, a node is inspected on the network it is on")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", "", "also serve /metrics on this address, behind --auth (empty: only on the API port)")
	fs.Float64Var(&cfg.PublicRate, "public-rate-limit", service.DefaultPublicRate,
		"requests per second per client address on what is served without credentials (boot files, iPXE scripts, image downloads); negative: off")
	fs.IntVar(&cfg.PublicBurst, "public-rate-burst", service.DefaultPublicBurst, "burst of --public-rate-limit")
	fs.StringVar(&cfg.Hostname, "hostname", "", "conductor name (default: the host name)")
	fs.IntVar(&cfg.Workers, "workers", 300, "concurrent tasks before the API answers 503")
	fs.BoolVar(&cfg.AutomatedClean, "automated-clean", true, "clean nodes on provide and undeploy unless the node says otherwise")
	fs.BoolVar(&cfg.ForcePowerStateDuringSync, "force-power-state-during-sync", false,
		"power sync drives a machine back to the recorded power state instead of recording the drift")
	fs.DurationVar(&cfg.PowerSyncInterval, "power-sync-interval", 60*time.Second,
		"period of the power state sync (3 failed syncs in a row move a node to maintenance)")
	fs.DurationVar(&cfg.WaitTimeout, "wait-timeout", 1800*time.Second, "timeout of deploy, clean and inspect wait states")
	fs.BoolVar(&cfg.FastTrack, "fast-track", false,
		"keep the ramdisk running between inspection, cleaning and deploy (Ironic's [deploy]fast_track); driver_info.fast_track overrides it per node")
	fs.DurationVar(&cfg.FastTrackTimeout, "fast-track-timeout", 300*time.Second, "an agent whose last heartbeat is older is not reused by fast-track")
	fs.DurationVar(&cfg.StallTimeout, "stall-timeout", 300*time.Second,
		"fail a deploy or cleaning whose agent is not heard from, or whose write makes no progress, for this long (negative: off)")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "API URL as machines reach it (default: http://<api-listen>)")
	fs.StringVar(&cfg.BootDir, "boot-dir", "", "deploy kernels and ramdisks served under /boot/files/ (default <state-dir>/boot)")
	fs.StringVar(&cfg.FirmwareDir, "firmware-dir", "", "iPXE binaries for UEFI HTTP boot, served under /boot/firmware/")
	fs.StringVar(&cfg.KernelAppendParams, "kernel-append-params", "", "extra kernel parameters for every deploy ramdisk boot")
	fs.StringVar(&cfg.DHCPMode, "dhcp-mode", "none", "DHCP service: none, proxy or full")
	fs.StringVar(&cfg.DHCPInterface, "dhcp-interface", "", "interface the DHCP service answers on")
	fs.StringVar(&cfg.DHCPRange, "dhcp-range", "", "address pool FIRST-LAST for --dhcp-mode full")
	fs.StringVar(&cfg.DHCPLeases, "dhcp-leases", service.DHCPLeasesAuto,
		"where --dhcp-mode full and --dhcp6-range keep leases: log (crash-safe lease logs in <state-dir>/"+service.DHCPLeaseLogName+
			" and "+service.DHCP6LeaseLogName+", bbolt only), store (the state store), auto (log on bbolt, store on etcd)")
	fs.BoolVar(&cfg.DHCPLeaseSync, "dhcp-lease-sync", false,
		"with the lease log, a DHCP ACK waits for the lease's fdatasync (survives a power loss, not only a crash; one fdatasync more per ACK)")
	fs.BoolVar(&cfg.AllowUnknownMACs, "allow-unknown-macs", false, "answer DHCP from machines with no enrolled port (discovery)")
	fs.StringVar(&cfg.DHCP6Range, "dhcp6-range", "", "IPv6 address pool FIRST-LAST: DHCPv6 and router advertisements (managed flag) on --dhcp-interface")
	fs.BoolVar(&cfg.RouterAdvertisements, "dhcp-router-advertisements", false, "answer IPv6 router solicitations on --dhcp-interface with an empty RA (saves iPXE ~16 s where no IPv6 router exists)")
	fs.StringVar(&cfg.TFTPListen, "tftp-listen", "", "TFTP address for iPXE first stages, e.g. :69 (empty: off)")
	fs.StringVar(&cfg.InspectorListen, "inspector-listen", introspection.DefaultListen, "ironic-inspector v1 API address (empty: off)")
	fs.StringVar(&cfg.DiscoveryDriver, "discovery-driver", "", "enroll unknown machines that post an inventory with this driver (empty: off)")
	fs.BoolVar(&cfg.ImageCache, "image-cache", false, "by default, download http(s) images once on the conductor and serve them to agents (a node's image_download_source http/local/swift overrides)")
	fs.Func("etcd-endpoints", "keep the state in this etcd cluster (comma-separated client URLs) instead of <state-dir>/ferric.db; conductors sharing it share the nodes", func(v string) error {
		cfg.EtcdEndpoints = nil
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				cfg.EtcdEndpoints = append(cfg.EtcdEndpoints, e)
			}
		}
		return nil
	})
	fs.StringVar(&cfg.EtcdCACert, "etcd-cacert", "", "PEM file of the CA that signed the etcd servers' certificates (TLS to etcd)")
	fs.StringVar(&cfg.EtcdCert, "etcd-cert", "", "PEM client certificate for etcd (with --etcd-key)")
	fs.StringVar(&cfg.EtcdKey, "etcd-key", "", "PEM key of --etcd-cert")
	fs.StringVar(&cfg.EtcdUsername, "etcd-username", "", "etcd user (etcd auth)")
	fs.StringVar(&cfg.EtcdPassword, "etcd-password", "", "password of --etcd-username (better set as FERRIC_ETCD_PASSWORD)")
	fs.StringVar(&cfg.ConductorGroup, "conductor-group", "", "conductor_group of the nodes this conductor serves")
	fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat-interval", 10*time.Second, "period of this conductor's heartbeat in the store")
	fs.DurationVar(&cfg.HeartbeatTimeout, "heartbeat-timeout", 60*time.Second, "a conductor silent for this long is dead: its nodes are taken over")
	fs.StringVar(&cfg.ConsoleAddress, "console-address", "", "IP address serial consoles (ipmitool-socat) listen on and give in console_info (default: the --api-listen IP when specific, else 127.0.0.1)")
	fs.StringVar(&cfg.ConsolePortRange, "console-port-range", "", "FIRST:LAST ports for serial consoles of nodes without driver_info.ipmi_terminal_port (Ironic's [console]port_range)")
	fs.DurationVar(&cfg.ConsoleTimeout, "console-timeout", console.DefaultIdleTimeout, "a serial console client idle this long is disconnected")
	fs.StringVar(&cfg.EtcdPrefix, "etcd-prefix", "/ferric", "key prefix of the state in etcd")
	fs.DurationVar(&cfg.EtcdCompactRetention, "etcd-compact-retention", service.DefaultEtcdCompactRetention, "keep this much of etcd's history (how long a change-feed client can be away and resume); one conductor compacts the older history (negative: never)")
	fs.DurationVar(&cfg.EtcdCompactInterval, "etcd-compact-interval", 0, "period of the etcd compactions (0: half of --etcd-compact-retention)")
	fs.DurationVar(&cfg.EtcdDefragInterval, "etcd-defrag-interval", 0, "defragment the etcd members after a compaction at most this often, giving the freed space back to the file system (0: never; a defragmentation blocks the member while it runs)")
	fs.StringVar(&cfg.TFTPRoot, "tftp-root", "/usr/lib/ipxe", "directory served over TFTP")
	fs.StringVar(&cfg.HTTP.TLSCert, "tls-cert", "", "PEM certificate (chain) to serve the API, the inspector API and the image store over HTTPS (with --tls-key)")
	fs.StringVar(&cfg.HTTP.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.DurationVar(&cfg.HTTP.ReadHeaderTimeout, "http-read-header-timeout", httpserver.DefaultReadHeaderTimeout, "time to read a request's headers")
	fs.DurationVar(&cfg.HTTP.ReadTimeout, "http-read-timeout", httpserver.DefaultReadTimeout, "time to read a whole request (boot files and images: see --progress-timeout)")
	fs.DurationVar(&cfg.HTTP.WriteTimeout, "http-write-timeout", httpserver.DefaultWriteTimeout, "time to write an answer (boot files and images: see --progress-timeout)")
	fs.DurationVar(&cfg.HTTP.IdleTimeout, "http-idle-timeout", httpserver.DefaultIdleTimeout, "a keep-alive connection idle this long is closed")
	fs.DurationVar(&cfg.ProgressTimeout, "progress-timeout", httpserver.DefaultProgressTimeout, "a boot file or image transfer that moves no byte this long is cut")
	fs.IntVar(&cfg.HTTP.MaxConns, "max-connections", 0, "open connections per listener before new ones get 503 (default: 4096, or half the file descriptor limit when lower)")
	fs.IntVar(&cfg.HTTP.MaxConnsPerClient, "max-connections-per-client", httpserver.DefaultMaxConnsPerClient, "open connections from one client (an IPv4 address or an IPv6 /64) before its new ones get 503")
	fs.StringVar(&cfg.DeployLogsCollect, "deploy-logs-collect", "on_failure",
		"collect the ramdisk agent's logs into <state-dir>/ramdisk-logs: on_failure (a failed deploy, cleaning, inspection or rescue), always (also at the end of deploys and cleanings) or never")
	fs.DurationVar(&cfg.RamdiskLogsMaxAge, "ramdisk-logs-max-age", 30*24*time.Hour, "collected ramdisk logs older than this are removed")
	fs.Func("ramdisk-logs-max-size", "total size of the collected ramdisk logs kept, in bytes or with K, M, G, T (default 256M): the oldest go first", func(v string) error {
		n, err := parseSize(v)
		if err != nil {
			return err
		}
		cfg.RamdiskLogsMaxBytes = n
		return nil
	})
	fs.Func("image-max-size", "largest image upload to the image store, in bytes or with K, M, G, T (default 64G; 0 or negative: no bound)", func(v string) error {
		n, err := parseSize(v)
		if err != nil {
			return err
		}
		if n <= 0 {
			n = -1
		}
		cfg.ImageMaxSize = n
		return nil
	})
	fs.Func("compute-flavors", "JSON file mapping the Compute API's flavors to resource classes and traits (default: one flavor per resource class of the nodes)", func(v string) error {
		fl, err := compute.LoadFlavors(v)
		cfg.ComputeFlavors = fl
		return err
	})
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: ferric-conductor [flags]\n\nEvery flag can also be set as FERRIC_<NAME> (e.g. FERRIC_API_LISTEN).\n\n")
		fs.PrintDefaults()
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s=%q: %w", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keystonePasswordFile != "" {
		b, err := os.ReadFile(*keystonePasswordFile)
		if err != nil {
			return fmt.Errorf("--keystone-password-file: %w", err)
		}
		cfg.Keystone.Password = strings.TrimSpace(string(b))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	// Logs never carry a secret (passwords, tokens, keys), however deep.
	cfg.Log = slog.New(redact.Handler(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl})))
	return service.Run(ctx, cfg)
}
