// Package service assembles a ferric conductor from its parts (store, task
// manager, drivers, Ironic API) and runs it until its context ends.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ferric-metal/ferric/conductor/api"
	"github.com/ferric-metal/ferric/conductor/driver"
	"github.com/ferric-metal/ferric/conductor/driver/bmc"
	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
	"golang.org/x/sync/errgroup"
)

// Defaults.
const (
	DefaultAPIListen = "127.0.0.1:6385"
	DefaultStateDir  = "./var"
)

// Config configures a conductor.
type Config struct {
	APIListen string
	StateDir  string
	Auth      string // noauth | http_basic
	Htpasswd  string
	Hostname  string
	Workers   int
	// AutomatedClean is the default for nodes without automated_clean.
	AutomatedClean bool
	// WaitTimeout bounds deploy/clean/inspect wait states.
	WaitTimeout time.Duration
	Log         *slog.Logger
	// Ready, when set, receives the API's bound address once serving.
	Ready func(addr string)
}

// Run starts the conductor and blocks until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
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
	if cfg.Auth != "noauth" && cfg.Auth != "http_basic" {
		return fmt.Errorf("conductor: --auth must be noauth or http_basic, not %q", cfg.Auth)
	}
	st, err := store.OpenBolt(filepath.Join(cfg.StateDir, "ferric.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	bcfg := bmc.Config{Logger: cfg.Log}
	ipmi, redfish := bmc.NewIPMI(bcfg), bmc.NewRedfish(bcfg)
	mgr := manager.New(manager.Config{
		Store: st, Log: cfg.Log, Hostname: cfg.Hostname, Workers: cfg.Workers,
		Power:                 map[string]driver.Power{"ipmitool": ipmi, "redfish": redfish},
		Management:            map[string]driver.Management{"ipmitool": ipmi, "redfish": redfish},
		Images:                manager.URLImages{},
		AutomatedClean:        cfg.AutomatedClean,
		DeployCallbackTimeout: cfg.WaitTimeout, CleanWaitTimeout: cfg.WaitTimeout, InspectWaitTimeout: cfg.WaitTimeout,
	})
	srv, err := api.New(api.Config{Store: st, Manager: mgr, Log: cfg.Log, Auth: cfg.Auth, Htpasswd: cfg.Htpasswd})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.APIListen)
	if err != nil {
		return fmt.Errorf("conductor: listen %s: %w", cfg.APIListen, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}
	g, gctx := errgroup.WithContext(ctx)
	if err := mgr.Recover(gctx); err != nil {
		return err
	}
	g.Go(func() error { return mgr.Run(gctx) })
	g.Go(func() error {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("conductor: api: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return hs.Shutdown(sctx)
	})
	cfg.Log.Info("ferric-conductor ready", "api", "http://"+ln.Addr().String(), "state_dir", cfg.StateDir,
		"auth", cfg.Auth, "hostname", cfg.Hostname)
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}
	err = g.Wait()
	cfg.Log.Info("ferric-conductor stopped")
	return err
}
