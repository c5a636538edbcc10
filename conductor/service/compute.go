package service

import (
	"github.com/ferric-metal/ferric/conductor/api"
	"github.com/ferric-metal/ferric/conductor/auth"
	"github.com/ferric-metal/ferric/conductor/compute"
	"github.com/ferric-metal/ferric/conductor/manager"
	"github.com/ferric-metal/ferric/conductor/store"
	imgstore "github.com/ferric-metal/ferric/images/store"
)

// mountCompute serves the Compute servers API under /compute (behind the
// API's authentication), and the deployed servers' phone-home URLs under
// /compute/phone-home/ (their own token, limited as the other public
// routes: publicRoutes lists them), and returns it to be closed when the
// conductor stops.
func mountCompute(srv *api.Server, public *auth.Limiter, cfg Config, st store.Store, mgr *manager.Manager, images *imgstore.Store) (*compute.Handler, error) {
	h, err := compute.New(compute.Config{Store: st, Manager: mgr, Images: images, Flavors: cfg.ComputeFlavors,
		StateDir: cfg.StateDir, PublicURL: cfg.PublicURL, Log: cfg.Log})
	if err != nil {
		return nil, err
	}
	srv.Mount(h, h.Routes())
	srv.Mount(public.Wrap(h.PhoneHome()), h.PhoneHomeRoutes())
	return h, nil
}
