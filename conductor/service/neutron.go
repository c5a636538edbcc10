package service

import (
	"context"
	"fmt"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ferric-metal/ferric/conductor/network/neutron"
)

// newNeutron returns the neutron network interface the configuration
// asks for, or nil.
func newNeutron(ctx context.Context, cfg Config) (*neutron.Network, error) {
	nc := cfg.Neutron
	var client *gophercloud.ServiceClient
	switch {
	case nc.Keystone:
		k := cfg.Keystone
		if k.URL == "" || k.Username == "" {
			return nil, fmt.Errorf("conductor: neutron through keystone needs --keystone-url and --keystone-username")
		}
		opts := gophercloud.AuthOptions{IdentityEndpoint: k.URL, Username: k.Username, Password: k.Password,
			DomainName: k.UserDomain}
		if k.ProjectName != "" {
			opts.Scope = &gophercloud.AuthScope{ProjectName: k.ProjectName, DomainName: k.ProjectDomain}
		} else {
			opts.Scope = &gophercloud.AuthScope{System: true}
		}
		c, err := neutron.KeystoneClient(ctx, opts, nc.Region)
		if err != nil {
			return nil, fmt.Errorf("conductor: %w", err)
		}
		client = c
	case nc.URL != "":
		client = neutron.NoAuthClient(nc.URL)
	default:
		return nil, nil
	}
	return neutron.New(neutron.Config{Client: client, ProvisioningNetwork: nc.ProvisioningNetwork,
		CleaningNetwork: nc.CleaningNetwork, RescuingNetwork: nc.RescuingNetwork, InspectionNetwork: nc.InspectionNetwork,
		Log: cfg.Log}), nil
}
